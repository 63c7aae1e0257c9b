//! `pfn._pfn`: the native module of the Python package. It exposes the Rust predictor, the
//! predictive distribution, the prior registry and the trainer; the scikit-learn estimators are pure
//! Python on top (`python/pfn`). The contract is `python/pfn/_pfn.pyi`.
//!
//! Every function that computes releases the GIL. Errors become `pfn._pfn.PfnError` (a
//! `ValueError`) carrying the same message as the `pfn` command line.

use std::path::{Path, PathBuf};

use pyo3::prelude::*;

mod model;
mod predictive;
mod prior;
mod train;

pyo3::create_exception!(
    _pfn,
    PfnError,
    pyo3::exceptions::PyValueError,
    "Bad input or a model that cannot answer; the message names the problem."
);

/// A `PfnError` with the display text of `e`.
pub(crate) fn error(e: impl std::fmt::Display) -> PyErr {
    PfnError::new_err(e.to_string())
}

/// The `models/` of the source checkout this module was built from (crates/pfn-py/../../models).
fn checkout_models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

/// Where a model name is looked up: `$PFN_MODELS` alone when set; else `./models`, the package's
/// bundled `models/` and the source checkout's `models/`.
pub(crate) fn model_search(py: Python<'_>) -> PyResult<pfn_infer::ModelSearch> {
    let env = std::env::var_os(pfn_infer::model_search::MODELS_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let mut extra = Vec::new();
    if let Ok(package) = py.import("pfn") {
        if let Ok(file) = package.getattr("__file__") {
            if let Ok(file) = file.extract::<PathBuf>() {
                if let Some(dir) = file.parent() {
                    extra.push(dir.join("models"));
                }
            }
        }
    }
    let checkout = checkout_models_dir();
    extra.push(checkout.canonicalize().unwrap_or(checkout));
    Ok(pfn_infer::ModelSearch::new(env, None).with_extra_dirs(extra))
}

/// Version of the Rust crates the module was built from.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Directories searched for a model name, in order.
#[pyfunction]
fn model_dirs(py: Python<'_>) -> PyResult<Vec<String>> {
    Ok(model_search(py)?
        .dirs()
        .iter()
        .map(|d| d.display().to_string())
        .collect())
}

/// Every loadable model of the first existing models directory, as dicts.
#[pyfunction]
fn models(py: Python<'_>) -> PyResult<Vec<Bound<'_, pyo3::types::PyDict>>> {
    let dir = model_search(py)?.models_dir().map_err(error)?;
    let listing = py.detach(|| pfn_infer::list_models(&dir)).map_err(error)?;
    listing
        .models
        .iter()
        .map(|m| {
            let d = pyo3::types::PyDict::new(py);
            d.set_item("name", &m.name)?;
            d.set_item("path", &m.file)?;
            d.set_item("task", &m.task)?;
            d.set_item("prior", &m.prior)?;
            d.set_item("min_features", m.feature_range[0])?;
            d.set_item("max_features", m.feature_range[1])?;
            d.set_item(
                "n_classes",
                if m.task == "classification" {
                    m.outputs
                } else {
                    0
                },
            )?;
            d.set_item("min_context", m.min_context)?;
            d.set_item("max_context", m.max_context)?;
            d.set_item("digest", &m.sha256)?;
            d.set_item("parameters", m.parameters)?;
            d.set_item("final_validation_loss", m.final_validation_loss)?;
            let all = &m.training.in_all;
            let training = pyo3::types::PyDict::new(py);
            training.set_item("runs", all.runs)?;
            training.set_item("steps", all.steps)?;
            training.set_item("datasets", all.datasets)?;
            training.set_item("seconds", all.seconds)?;
            training.set_item("complete", all.complete)?;
            d.set_item("training", training)?;
            Ok(d)
        })
        .collect()
}

/// The native module.
#[pymodule]
fn _pfn(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("PfnError", m.py().get_type::<PfnError>())?;
    // Smallest context that calibration (and a classifier's choice of input view) applies to.
    m.add(
        "CALIBRATION_MIN_ROWS",
        pfn_infer::calibration::DEFAULT_MIN_ROWS,
    )?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(model_dirs, m)?)?;
    m.add_function(wrap_pyfunction!(models, m)?)?;
    m.add_class::<model::Model>()?;
    m.add_class::<predictive::Predictive>()?;
    m.add_function(wrap_pyfunction!(prior::sample_prior, m)?)?;
    m.add_function(wrap_pyfunction!(prior::prior_names, m)?)?;
    m.add_function(wrap_pyfunction!(train::train, m)?)?;
    Ok(())
}

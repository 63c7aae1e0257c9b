//! `Model`: a loaded model file and its predictor.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pfn_artifact::OutputHead;
use pfn_infer::{ClassEnsemble, ClassTask, ContextCalibration, InputView, Precision, Predictor};
use pyo3::prelude::*;

use crate::error;
use crate::predictive::Predictive;

/// A PFN model file with its cached predictor.
#[pyclass(module = "pfn._pfn", name = "Model")]
pub struct Model {
    predictor: Predictor,
    path: PathBuf,
    n_threads: usize,
    /// Seconds of the last predict/predict_proba's compute (f64 bits), for overhead measurements.
    last_compute: AtomicU64,
}

fn parse_precision(s: &str) -> PyResult<Precision> {
    match s {
        "f32" => Ok(Precision::F32),
        "bf16" => Ok(Precision::Bf16),
        other => Err(error(format!(
            "precision must be \"f32\" or \"bf16\", got \"{other}\""
        ))),
    }
}

/// Row-major values of a 2-D array and its shape.
fn rows(a: &PyReadonlyArray2<'_, f64>) -> (Vec<f64>, usize, usize) {
    let view = a.as_array();
    let (n, d) = view.dim();
    (view.iter().copied().collect(), n, d)
}

impl Model {
    fn record(&self, start: Instant) {
        self.last_compute
            .store(start.elapsed().as_secs_f64().to_bits(), Ordering::Relaxed);
    }

    fn check_query_width(&self, d_context: usize, d_query: usize) -> PyResult<()> {
        if d_context != d_query {
            return Err(error(format!(
                "the query rows have {d_query} feature{} but the context rows have {d_context}",
                if d_query == 1 { "" } else { "s" }
            )));
        }
        Ok(())
    }

    fn check_context_rows(&self, n: usize, y_len: usize) -> PyResult<()> {
        if n != y_len {
            return Err(error(format!(
                "x_context has {n} row{} but y_context has {y_len} value{}",
                if n == 1 { "" } else { "s" },
                if y_len == 1 { "" } else { "s" }
            )));
        }
        Ok(())
    }
}

#[pymethods]
impl Model {
    /// Loads `model`: a name found in the model directories, or a path to a model file.
    #[new]
    #[pyo3(signature = (model, precision = "f32", n_threads = None))]
    fn new(
        py: Python<'_>,
        model: &str,
        precision: &str,
        n_threads: Option<usize>,
    ) -> PyResult<Self> {
        let precision = parse_precision(precision)?;
        let path = crate::model_search(py)?
            .resolve(Some(model))
            .map_err(|e| match e {
                pfn_infer::ModelSearchError::ModelNotFound { name, searched, .. } => {
                    error(format!(
                        "no model '{name}' found: looked for {name}.pfn in {}; pass the path of a \
                     .pfn file, or set PFN_MODELS to the directory of the model files \
                     (pfn.models() lists what is found)",
                        searched
                            .iter()
                            .map(|d| d.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                }
                other => error(other),
            })?;
        let threads = match n_threads {
            Some(0) => {
                return Err(error(
                    "n_threads must be at least 1 (or None for every core)",
                ))
            }
            Some(t) => t,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let mut predictor = py
            .detach(|| {
                let artifact = pfn_artifact::load_model(&path)?;
                Predictor::with_threads(&artifact, threads)
            })
            .map_err(|e| {
                // Errors of the model file name it already; others get the path in front.
                let text = e.to_string();
                if text.contains(&path.display().to_string()) {
                    error(text)
                } else {
                    error(format!("{}: {text}", path.display()))
                }
            })?;
        predictor.set_precision(precision);
        Ok(Self {
            predictor,
            path,
            n_threads: threads,
            last_compute: AtomicU64::new(0f64.to_bits()),
        })
    }

    /// The model file.
    #[getter]
    fn path(&self) -> String {
        self.path.display().to_string()
    }

    /// The file stem.
    #[getter]
    fn name(&self) -> String {
        self.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// SHA-256 content digest (hex), verified at load.
    #[getter]
    fn digest(&self) -> String {
        self.predictor.digest().to_string()
    }

    /// "regression" or "classification".
    #[getter]
    fn task(&self) -> &'static str {
        if self.predictor.is_regression() {
            "regression"
        } else {
            "classification"
        }
    }

    /// Registry name of the training prior.
    #[getter]
    fn prior(&self) -> String {
        self.predictor.metadata().prior.clone()
    }

    /// Fewest feature columns the model accepts.
    #[getter]
    fn min_features(&self) -> usize {
        self.predictor.feature_range().0
    }

    /// Most feature columns the model accepts.
    #[getter]
    fn max_features(&self) -> usize {
        self.predictor.feature_range().1
    }

    /// Classes of the head (0 for regression).
    #[getter]
    fn n_classes(&self) -> usize {
        match self.predictor.head() {
            OutputHead::Classes { n_out } => *n_out,
            OutputHead::Riemann { .. } => 0,
        }
    }

    /// Fewest context rows seen in training.
    #[getter]
    fn min_context(&self) -> usize {
        self.predictor.min_trained_context()
    }

    /// Most context rows seen in training.
    #[getter]
    fn max_context(&self) -> usize {
        self.predictor.max_trained_context()
    }

    /// "f32" or "bf16" (settable).
    #[getter]
    fn get_precision(&self) -> &'static str {
        match self.predictor.precision() {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }

    #[setter]
    fn set_precision(&mut self, precision: &str) -> PyResult<()> {
        self.predictor.set_precision(parse_precision(precision)?);
        Ok(())
    }

    /// Seconds the engine computed in the last `predict` or `predict_proba` (the GIL released);
    /// a call's wall time minus this is the binding's overhead (`scripts/bench_python.py`).
    #[getter]
    fn last_compute_seconds(&self) -> f64 {
        f64::from_bits(self.last_compute.load(Ordering::Relaxed))
    }

    /// Threads of the predictor.
    #[getter]
    fn n_threads(&self) -> usize {
        self.n_threads
    }

    /// Regression: the predictive distributions of the query rows given the context; with
    /// `calibrate`, tempered by a temperature fitted on the context by cross-validation, which
    /// also chooses the input view (`pfn_infer::calibration`, folds seeded by `seed`).
    #[pyo3(signature = (x_context, y_context, x_query, calibrate = false, seed = 0))]
    fn predict(
        &self,
        py: Python<'_>,
        x_context: PyReadonlyArray2<'_, f64>,
        y_context: PyReadonlyArray1<'_, f64>,
        x_query: PyReadonlyArray2<'_, f64>,
        calibrate: bool,
        seed: u64,
    ) -> PyResult<Predictive> {
        if !self.predictor.is_regression() {
            return Err(error(format!(
                "{} is a classification model: use predict_proba",
                self.path.display()
            )));
        }
        let (x, n, d) = rows(&x_context);
        let y: Vec<f64> = y_context.as_array().iter().copied().collect();
        self.check_context_rows(n, y.len())?;
        let (xq, _, dq) = rows(&x_query);
        self.check_query_width(d, dq)?;
        let predictor = &self.predictor;
        let start = Instant::now();
        let calibration = ContextCalibration {
            seed,
            ..ContextCalibration::default()
        };
        let items = py
            .detach(|| {
                // Calibrated: the folds fit the temperature and choose the input view (principal
                // components for a table wider than the model).
                let (view, beta) = if calibrate {
                    predictor.regression_calibration(&x, &y, d, calibration)?
                } else {
                    (InputView::AsGiven, 1.0)
                };
                let v = view.apply(&x, &xq, d)?;
                let mut context = predictor.context_with_features(&v.x, &y, v.features)?;
                context.set_temperature(beta)?;
                context.predict(&v.x_query)
            })
            .map_err(error)?;
        self.record(start);
        let items = items
            .into_iter()
            .map(|p| {
                p.into_regression()
                    .ok_or_else(|| error("the model returned a class prediction"))
            })
            .collect::<PyResult<Vec<_>>>()?;
        Ok(Predictive::new(items))
    }

    /// Classification: `(m, n_classes)` probabilities of the query rows given the context's class
    /// codes, pooled over `n_ensemble` members (`pfn_infer::ensemble`); with `calibrate`, tempered
    /// by a temperature fitted on the context by cross-validation (`pfn_infer::calibration`, folds
    /// seeded by `seed`).
    #[pyo3(signature = (x_context, y_context, x_query, n_classes, n_ensemble = 1, seed = 0, calibrate = false))]
    #[allow(clippy::too_many_arguments)]
    fn predict_proba<'py>(
        &self,
        py: Python<'py>,
        x_context: PyReadonlyArray2<'_, f64>,
        y_context: PyReadonlyArray1<'_, i64>,
        x_query: PyReadonlyArray2<'_, f64>,
        n_classes: usize,
        n_ensemble: usize,
        seed: u64,
        calibrate: bool,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        if self.predictor.is_regression() {
            return Err(error(format!(
                "{} is a regression model: use predict",
                self.path.display()
            )));
        }
        let (x, n, d) = rows(&x_context);
        let labels = y_context.as_array();
        self.check_context_rows(n, labels.len())?;
        let y = labels
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                usize::try_from(c)
                    .ok()
                    .filter(|&c| c < n_classes)
                    .ok_or_else(|| {
                        error(format!(
                            "y_context[{i}] = {c} is not a class code in 0..{n_classes}"
                        ))
                    })
            })
            .collect::<PyResult<Vec<usize>>>()?;
        let (xq, m, dq) = rows(&x_query);
        self.check_query_width(d, dq)?;
        let predictor = &self.predictor;
        let ensemble = ClassEnsemble::new(n_ensemble, seed);
        let start = Instant::now();
        let task = ClassTask {
            x: &x,
            labels: &y,
            x_query: &xq,
            features: d,
        };
        let calibration = ContextCalibration {
            seed,
            ..ContextCalibration::default()
        };
        let probs = py
            .detach(|| {
                if calibrate {
                    predictor
                        .calibrated_class_probabilities(task, n_classes, ensemble, calibration)
                        .map(|t| t.probabilities)
                } else {
                    predictor.ensemble_class_probabilities(&x, &y, d, &xq, n_classes, ensemble)
                }
            })
            .map_err(error)?;
        self.record(start);
        PyArray1::from_vec(py, probs).reshape([m, n_classes])
    }

    fn __repr__(&self) -> String {
        format!(
            "Model('{}', task='{}', prior='{}', features={}..={}, precision='{}')",
            self.path.display(),
            self.task(),
            self.prior(),
            self.min_features(),
            self.max_features(),
            self.get_precision()
        )
    }
}

//! Priors from Python: registry samples as NumPy arrays, and `PythonPrior`, a prior whose batches
//! come from a Python function (the trainer calls it on its loader threads, taking the GIL).

use numpy::{PyArray1, PyArray2, PyArray3, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pfn_prior::rng::PriorRng;
use pfn_prior::{
    check_finite_dataset, Batch, DatasetInfo, DatasetMut, DatasetPosition, Hyperparameters, Prior,
    PriorError,
};
use pyo3::prelude::*;
use rand::RngCore;

use crate::error;

/// Draws `batch_size` datasets of a registry prior: x (B, T, F), y (B, T), target_y (B, T).
#[pyfunction]
#[pyo3(signature = (name, batch_size, seq_len, num_features = None, seed = 0, batch_index = 0))]
#[allow(clippy::type_complexity)]
pub fn sample_prior<'py>(
    py: Python<'py>,
    name: &str,
    batch_size: usize,
    seq_len: usize,
    num_features: Option<usize>,
    seed: u64,
    batch_index: u64,
) -> PyResult<(
    Bound<'py, PyArray3<f32>>,
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray2<f32>>,
)> {
    let prior = pfn_prior::prior_by_name(name).map_err(error)?;
    let f = num_features.unwrap_or_else(|| prior.default_num_features());
    let batch = py
        .detach(|| prior.sample_batch(seed, batch_index, batch_size, seq_len, f))
        .map_err(error)?;
    let Batch { x, y, target_y, .. } = batch;
    Ok((
        PyArray1::from_vec(py, x).reshape([batch_size, seq_len, f])?,
        PyArray1::from_vec(py, y).reshape([batch_size, seq_len])?,
        PyArray1::from_vec(py, target_y).reshape([batch_size, seq_len])?,
    ))
}

/// Names of the registry's priors.
#[pyfunction]
pub fn prior_names() -> Vec<&'static str> {
    pfn_prior::PRIORS.iter().map(|e| e.name).collect()
}

/// A prior whose batches come from `func(batch_size, seq_len, num_features, rng)`, returning
/// `(x, y)` or `(x, y, target_y)` shaped (B, T, F), (B, T), (B, T); `rng` is a
/// `numpy.random.Generator` seeded from the run seed and the batch index, so a run is
/// reproducible when the function draws only from it.
pub struct PythonPrior {
    func: Py<PyAny>,
    label: String,
}

impl PythonPrior {
    /// Wraps a callable; `label` names it in messages and in the model file.
    pub fn new(func: Py<PyAny>, label: String) -> Self {
        Self { func, label }
    }

    fn failed(&self, message: impl Into<String>) -> PriorError {
        PriorError::Failed {
            prior: self.label.clone(),
            message: message.into(),
        }
    }

    /// Copies one returned array (any real dtype) into `out` after checking its shape.
    fn copy_array(
        &self,
        value: &Bound<'_, PyAny>,
        what: &str,
        shape: &[usize],
        out: &mut Vec<f32>,
    ) -> Result<(), PriorError> {
        let py = value.py();
        let numpy = py.import("numpy").map_err(|e| self.failed(e.to_string()))?;
        let array = numpy
            .call_method1("ascontiguousarray", (value, "float32"))
            .map_err(|e| self.failed(format!("{what}: {e}")))?;
        let array = array
            .cast_into::<PyArrayDyn<f32>>()
            .map_err(|e| self.failed(format!("{what}: {e}")))?;
        let got = array.shape().to_vec();
        // (B, T) is accepted for x when F = 1.
        let fits = got == shape || (shape.len() == 3 && shape[2] == 1 && got == shape[..2]);
        if !fits {
            return Err(self.failed(format!(
                "{what} has shape {got:?}, expected {shape:?} (batch_size, seq_len{})",
                if shape.len() == 3 {
                    ", num_features"
                } else {
                    ""
                }
            )));
        }
        let readonly = array.readonly();
        let values = readonly
            .as_slice()
            .map_err(|e| self.failed(format!("{what}: {e}")))?;
        out.clear();
        out.extend_from_slice(values);
        Ok(())
    }
}

impl Prior for PythonPrior {
    fn name(&self) -> String {
        self.label.clone()
    }

    fn default_num_features(&self) -> usize {
        1
    }

    fn sample_dataset(
        &self,
        _rng: &mut PriorRng,
        _position: &DatasetPosition,
        _data: DatasetMut<'_>,
    ) -> Result<DatasetInfo, PriorError> {
        Err(self.failed("a Python prior samples whole batches, not single datasets"))
    }

    fn sample_batch_into(
        &self,
        seed: u64,
        batch_index: u64,
        batch: usize,
        seq_len: usize,
        num_features: usize,
        out: &mut Batch,
    ) -> Result<(), PriorError> {
        if batch == 0 {
            return Err(PriorError::invalid("batch", "must be at least 1"));
        }
        self.check_request(seq_len, num_features)?;
        let numpy_seed = pfn_prior::rng::dataset_rng(seed, batch_index, 0).next_u64();
        Python::attach(|py| -> Result<(), PriorError> {
            let rng = py
                .import("numpy")
                .and_then(|np| np.getattr("random"))
                .and_then(|r| r.call_method1("default_rng", (numpy_seed,)))
                .map_err(|e| self.failed(e.to_string()))?;
            let result = self
                .func
                .call1(py, (batch, seq_len, num_features, rng))
                .map_err(|e| self.failed(e.to_string()))?;
            let result = result.bind(py);
            let parts: Vec<Bound<'_, PyAny>> = result
                .try_iter()
                .and_then(|it| it.collect::<PyResult<Vec<_>>>())
                .map_err(|_| self.failed("must return a tuple (x, y) or (x, y, target_y)"))?;
            if !(2..=3).contains(&parts.len()) {
                return Err(self.failed(format!(
                    "returned {} values; expected (x, y) or (x, y, target_y)",
                    parts.len()
                )));
            }
            self.copy_array(&parts[0], "x", &[batch, seq_len, num_features], &mut out.x)?;
            self.copy_array(&parts[1], "y", &[batch, seq_len], &mut out.y)?;
            match parts.get(2) {
                Some(t) => self.copy_array(t, "target_y", &[batch, seq_len], &mut out.target_y)?,
                None => out.target_y.clone_from(&out.y),
            }
            Ok(())
        })?;
        let per_x = seq_len * num_features;
        for b in 0..batch {
            check_finite_dataset(
                b,
                &out.x[b * per_x..(b + 1) * per_x],
                &out.y[b * seq_len..(b + 1) * seq_len],
                &out.target_y[b * seq_len..(b + 1) * seq_len],
            )?;
        }
        out.batch_size = batch;
        out.seq_len = seq_len;
        out.num_features = num_features;
        out.features_used.clear();
        out.features_used.resize(batch, num_features);
        out.hyperparameters.clear();
        out.hyperparameters.resize(batch, Hyperparameters::None);
        Ok(())
    }
}

//! `train`: a run between files, as `pfn train` does it, optionally on a Python-defined prior.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use pfn_train::{
    train_to_files, RunConfig, RunOptions, Start, StepReport, TrainObserver, ValidationReport,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error;
use crate::prior::PythonPrior;

/// Progress lines on stderr (unless quiet), and Ctrl-C: between steps it takes the GIL to let
/// Python run its signal handlers; a pending `KeyboardInterrupt` stops the run after the step
/// (with a checkpoint) and is raised when `train` returns.
struct Observer {
    quiet: bool,
    stop: Arc<AtomicBool>,
    interrupted: Option<PyErr>,
    every: u64,
}

impl TrainObserver for Observer {
    fn on_step(&mut self, r: &StepReport) {
        if self.interrupted.is_none() {
            if let Err(e) = Python::attach(|py| py.check_signals()) {
                self.interrupted = Some(e);
                self.stop.store(true, Ordering::SeqCst);
            }
        }
        if !self.quiet && r.step.is_multiple_of(self.every) {
            eprintln!("step {}  loss {:.4}  lr {:.2e}", r.step, r.loss, r.lr);
        }
    }

    fn on_validation(&mut self, r: &ValidationReport) {
        if !self.quiet {
            eprintln!("step {}: validation loss {:.4}", r.step, r.loss);
        }
    }
}

/// Trains the TOML run configuration `config` into the model file `out` (checkpoint
/// `out + ".ckpt"`); with `prior`, datasets come from that Python function.
#[pyfunction]
#[pyo3(signature = (config, out, prior = None, resume = false, quiet = true))]
pub fn train<'py>(
    py: Python<'py>,
    config: &str,
    out: PathBuf,
    prior: Option<Py<PyAny>>,
    resume: bool,
    quiet: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let config = RunConfig::from_toml_str(config, "<config>").map_err(error)?;
    let prior: Option<Arc<dyn pfn_prior::Prior>> = match prior {
        Some(f) => {
            if !f.bind(py).is_callable() {
                return Err(error(
                    "prior must be a function (batch_size, seq_len, num_features, rng) -> (x, y[, target_y])",
                ));
            }
            Some(Arc::new(PythonPrior::new(f, config.prior.name.clone())))
        }
        None => None,
    };
    if let Some(threads) = config.run.threads {
        // The prior's sampling runs on rayon's global pool (an error: it already exists).
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut observer = Observer {
        quiet,
        stop: stop.clone(),
        interrupted: None,
        every: config.budget.steps.map_or(100, |s| (s / 20).max(1)),
    };
    let start = if resume { Start::Resume } else { Start::Fresh };
    let options = RunOptions {
        stop_flag: Some(stop),
        ..RunOptions::default()
    };
    let run = py
        .detach(|| train_to_files(config, prior, &out, start, options, &mut observer))
        .map_err(error)?;
    if let Some(e) = observer.interrupted {
        return Err(e);
    }
    let s = &run.summary;
    let d = PyDict::new(py);
    d.set_item("steps", s.end_step)?;
    d.set_item("steps_this_session", s.end_step - s.start_step)?;
    d.set_item("datasets", s.datasets)?;
    d.set_item("seconds", s.session_seconds)?;
    d.set_item("datasets_per_second", s.datasets_per_second)?;
    d.set_item("steps_per_second", s.steps_per_second)?;
    d.set_item("final_validation_loss", s.final_validation_loss)?;
    d.set_item("last_loss", s.last_loss)?;
    d.set_item(
        "validation_history",
        run.trainer.validation_history().to_vec(),
    )?;
    d.set_item("complete", run.model_written())?;
    d.set_item("out", run.model.display().to_string())?;
    d.set_item("checkpoint", run.checkpoint.display().to_string())?;
    Ok(d)
}

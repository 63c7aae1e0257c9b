//! NUTS over the BNN weights (the paper's NUTS baseline for Fig. 5: one chain, warm-up = draws).
//!
//! The target is the log joint of [`BnnPosterior`]; starting points are
//! `U(-init_radius, init_radius)` per weight (Pyro's `init_to_uniform`), everything else is
//! [`crate::nuts`].

use std::time::{Duration, Instant};

use crate::bnn::model::{BnnArchitecture, BnnData, BnnPosterior};
use crate::bnn::predictive::BnnPredictive;
use crate::error::{check_matrix, BaselineError};
use crate::nuts::{run_nuts, NutsOptions, NutsRun};

/// The weight samples, their diagnostics and the predictive.
#[derive(Debug, Clone)]
pub struct BnnNutsResult {
    /// Traces (unconstrained = the weights themselves) and diagnostics.
    pub run: NutsRun,
    /// Class-1 probabilities of every kept draw at the test inputs.
    pub predictive: BnnPredictive,
    /// Wall time of sampling plus prediction.
    pub wall_time: Duration,
}

impl BnnNutsResult {
    /// All kept weight draws, row-major `draws x num_params`.
    pub fn samples(&self) -> Vec<f64> {
        self.run.all_draws()
    }
}

/// Samples `arch`'s weight posterior given `data` with NUTS and predicts at `x_test` (row-major
/// `m x F`). Score with [`BnnPredictive::bce`].
pub fn fit_bnn_nuts(
    arch: &BnnArchitecture,
    data: &BnnData,
    x_test: &[f64],
    opts: &NutsOptions,
) -> Result<BnnNutsResult, BaselineError> {
    let start = Instant::now();
    check_matrix("x_test", x_test, arch.features)?;
    let posterior = BnnPosterior::new(*arch, data.clone())?;
    let names = arch.parameter_names();
    let center = vec![0.0; arch.num_params()];
    let run = run_nuts(&posterior, &names, &center, opts)?;
    let predictive = BnnPredictive::from_samples(arch, &run.all_draws(), x_test)?;
    Ok(BnnNutsResult {
        run,
        predictive,
        wall_time: start.elapsed(),
    })
}

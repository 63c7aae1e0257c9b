//! Point-estimate GP baselines with the same predictive interface as NUTS: type-II maximum
//! likelihood / MAP (`pfn_gp::fit_type2`, the paper's "MLE-II") and the oracle exact GP with the
//! true hyperparameters.

use std::time::{Duration, Instant};

use pfn_gp::{
    fit_type2, ExactGp, GpHyper, HyperBounds, HyperPrior, KernelKind, Type2Fit, Type2Options,
};

use crate::error::{check_matrix, BaselineError};
use crate::gp_predictive::GpMixturePredictive;

/// The paper's MLE-II setting (BoTorch `fit_gpytorch_model` on a `SingleTaskGP`): MAP under the
/// hyper-priors of [`HyperPrior::paper`] taken at the hyperparameters (BoTorch's convention), the
/// noise bounded below by 1e-4 (BoTorch's default noise constraint), `restarts` random starts.
pub fn paper_type2_options(restarts: usize, seed: u64) -> Type2Options {
    Type2Options {
        restarts,
        seed,
        prior: Some(HyperPrior::paper()),
        bounds: HyperBounds {
            noise: (1e-4, 1e4),
            ..HyperBounds::default()
        },
        ..Type2Options::default()
    }
}

/// A fitted point-estimate baseline.
#[derive(Debug, Clone)]
pub struct PointBaseline {
    /// The hyperparameters used.
    pub hyper: GpHyper,
    /// The optimiser's report (`None` for the oracle).
    pub fit: Option<Type2Fit>,
    /// The exact GP predictive at the test inputs (one component).
    pub predictive: GpMixturePredictive,
    /// Wall time of fitting plus predicting.
    pub wall_time: Duration,
}

/// Type-II ML / MAP baseline: fits the hyperparameters of a `kernel` GP (ARD if `ard`) to (`x`,
/// `y`) with `opts` and predicts at `x_test` (row-major `m x d`).
pub fn fit_type2_baseline(
    x: &[f64],
    y: &[f64],
    d: usize,
    x_test: &[f64],
    kernel: KernelKind,
    ard: bool,
    opts: &Type2Options,
) -> Result<PointBaseline, BaselineError> {
    let start = Instant::now();
    check_matrix("x_test", x_test, d)?;
    if y.is_empty() {
        return Err(BaselineError::empty(
            "y",
            "type-II ML needs at least one observation",
        ));
    }
    let fit = fit_type2(x, y, d, kernel, ard, opts)?;
    let prediction = ExactGp::fit(x, y, d, &fit.hyper)?.predict(x_test)?;
    Ok(PointBaseline {
        hyper: fit.hyper.clone(),
        predictive: GpMixturePredictive::from_prediction(&prediction)?,
        fit: Some(fit),
        wall_time: start.elapsed(),
    })
}

/// The oracle: the exact GP predictive with the hyperparameters the data were drawn with.
pub fn exact_gp_baseline(
    x: &[f64],
    y: &[f64],
    d: usize,
    x_test: &[f64],
    hyper: &GpHyper,
) -> Result<PointBaseline, BaselineError> {
    let start = Instant::now();
    check_matrix("x_test", x_test, d)?;
    let prediction = ExactGp::fit(x, y, d, hyper)?.predict(x_test)?;
    Ok(PointBaseline {
        hyper: hyper.clone(),
        fit: None,
        predictive: GpMixturePredictive::from_prediction(&prediction)?,
        wall_time: start.elapsed(),
    })
}

//! The GP prior with fixed hyperparameters (paper §5.1): `x ~ U[0,1]^d`, `y = target_y ~ N(0, K + noise I)`.

use pfn_gp::{GpHyper, KernelKind};

use crate::error::PriorError;
use crate::gp_draw::sample_gp_at;
use crate::hyperparameters::Hyperparameters;
use crate::inputs::fill_uniform;
use crate::prior::{DatasetInfo, DatasetMut, DatasetPosition, Prior};
use crate::rng::PriorRng;

/// Zero-mean GP prior with fixed kernel hyperparameters and i.i.d. uniform inputs.
///
/// Per dataset: `x` (`seq_len x d`) is drawn from `U[0,1)` first, then `y ~ N(0, K(x, x) + noise I)`
/// from the f32-rounded `x`; `target_y = y` (the noisy sample, as in the paper's code).
#[derive(Debug, Clone, PartialEq)]
pub struct GpPrior {
    hyper: GpHyper,
    default_num_features: usize,
}

impl GpPrior {
    /// The paper's 1-D setting (Fig. 3, 7, 8, HF demo): RBF, lengthscale 0.1, outputscale 1, noise 1e-4.
    pub fn paper_1d() -> Self {
        Self::rbf(0.1, 1.0, 1e-4, 1).expect("constant hyperparameters are valid")
    }

    /// The paper's 5-D setting (Fig. 4a): RBF, lengthscale 0.6, outputscale 1, noise 1e-4, 5 features.
    pub fn paper_5d() -> Self {
        Self::rbf(0.6, 1.0, 1e-4, 5).expect("constant hyperparameters are valid")
    }

    /// An RBF GP with one lengthscale shared by all features.
    pub fn rbf(
        lengthscale: f64,
        outputscale: f64,
        noise: f64,
        default_num_features: usize,
    ) -> Result<Self, PriorError> {
        let hyper = GpHyper::new(KernelKind::Rbf, vec![lengthscale], outputscale, noise)?;
        Self::new(hyper, default_num_features)
    }

    /// Any kernel of `pfn-gp`. With one lengthscale per dimension (ARD) the prior only samples that many
    /// features, and `default_num_features` must equal it.
    pub fn new(hyper: GpHyper, default_num_features: usize) -> Result<Self, PriorError> {
        hyper.validate()?;
        if default_num_features == 0 {
            return Err(PriorError::invalid(
                "default_num_features",
                "must be at least 1",
            ));
        }
        hyper.check_dim(default_num_features)?;
        Ok(Self {
            hyper,
            default_num_features,
        })
    }

    /// The fixed hyperparameters.
    pub fn hyper(&self) -> &GpHyper {
        &self.hyper
    }
}

impl Prior for GpPrior {
    fn name(&self) -> String {
        "gp".into()
    }

    fn default_num_features(&self) -> usize {
        self.default_num_features
    }

    fn feature_range(&self) -> (usize, usize) {
        match self.hyper.lengthscales.len() {
            1 => (1, usize::MAX),
            d => (d, d),
        }
    }

    fn sample_dataset(
        &self,
        rng: &mut PriorRng,
        _position: &DatasetPosition,
        mut data: DatasetMut<'_>,
    ) -> Result<DatasetInfo, PriorError> {
        let d = data.num_features();
        let (x, y, target_y) = data.parts();
        fill_uniform(rng, x);
        sample_gp_at(&self.hyper, x, d, rng, y)?;
        target_y.copy_from_slice(y);
        Ok(DatasetInfo {
            features_used: d,
            hyperparameters: Hyperparameters::Gp(self.hyper.clone()),
        })
    }
}

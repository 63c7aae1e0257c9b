//! The PFN model: configuration, parameter layout, and the flat parameter and gradient buffers.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::PfnConfig;
use crate::error::{ModelError, Result};
use crate::params::{ParamInfo, ParamLayout};
use crate::precision::{Bf16TransposedWeights, Bf16Weights, Precision};
use std::sync::OnceLock;

/// A PFN: its configuration and its parameters and gradients, each in one flat f32 buffer laid out by
/// [`ParamLayout`].
///
/// `forward` (see [`PfnModel::forward`]) returns logits; `backward` takes d loss / d logits and
/// accumulates into the gradient buffer. The model is head-agnostic: the loss is computed outside.
#[derive(Clone, Debug)]
pub struct PfnModel {
    pub(crate) config: PfnConfig,
    pub(crate) layout: ParamLayout,
    pub(crate) params: Vec<f32>,
    pub(crate) grads: Vec<f32>,
    /// The arithmetic of inference passes.
    pub(crate) precision: Precision,
    /// The arithmetic of training passes (forward and backward).
    pub(crate) train_precision: Precision,
    /// The bf16 packing of the weights, built on the first bf16 pass and dropped by every `&mut`
    /// access to the parameters.
    pub(crate) bf16: OnceLock<Bf16Weights>,
    /// The transposed bf16 packing for the backward pass, built and dropped as `bf16`.
    pub(crate) bf16_t: OnceLock<Bf16TransposedWeights>,
}

impl PfnModel {
    /// A model with PyTorch's default initialisation, drawn from a ChaCha8 generator seeded with
    /// `seed`:
    /// - linear layers (encoders, feed-forward `linear1`, decoder): weight and bias uniform in
    ///   ±1/sqrt(fan_in);
    /// - attention `in_proj` weight: Xavier uniform over the packed (3E, E) matrix, bound
    ///   sqrt(6 / (4E)); `in_proj` bias 0;
    /// - attention `out_proj` and feed-forward `linear2`, weights and biases: 0 (the paper's zero
    ///   init, every residual branch starts as the identity);
    /// - LayerNorm: weight 1, bias 0.
    pub fn new(config: PfnConfig, seed: u64) -> Result<Self> {
        let mut model = Self::zeros(config)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let e = model.config.emsize;
        let layout = model.layout.clone();
        for info in layout.entries() {
            let data = &mut model.params[info.range()];
            let kind = init_kind(info, &layout, e);
            match kind {
                Init::Uniform(bound) => {
                    for v in data.iter_mut() {
                        *v = rng.random_range(-bound..=bound);
                    }
                }
                Init::Const(c) => data.fill(c),
            }
        }
        Ok(model)
    }

    /// A model with every parameter 0 (to be filled by loading).
    pub fn zeros(config: PfnConfig) -> Result<Self> {
        config.validate()?;
        let layout = ParamLayout::new(&config);
        let n = layout.len();
        Ok(Self {
            config,
            layout,
            params: vec![0.0; n],
            grads: vec![0.0; n],
            precision: Precision::F32,
            train_precision: Precision::F32,
            bf16: OnceLock::new(),
            bf16_t: OnceLock::new(),
        })
    }

    /// The arithmetic of inference passes (workspaces in [`crate::Mode::Inference`]); training
    /// passes follow [`PfnModel::set_training_precision`]. See [`crate::precision`].
    pub fn set_inference_precision(&mut self, precision: Precision) {
        self.precision = precision;
    }

    /// The arithmetic of inference passes.
    pub fn inference_precision(&self) -> Precision {
        self.precision
    }

    /// The arithmetic of training passes (workspaces in [`crate::Mode::Training`] and their
    /// backward): f32 (the default), or bf16 products with f32 accumulation, master weights and
    /// gradients (mixed precision). See [`crate::precision`].
    pub fn set_training_precision(&mut self, precision: Precision) {
        self.train_precision = precision;
    }

    /// The arithmetic of training passes.
    pub fn training_precision(&self) -> Precision {
        self.train_precision
    }

    /// The bf16 packing of the current weights (built on first use).
    pub(crate) fn bf16_weights(&self) -> &Bf16Weights {
        self.bf16.get_or_init(|| Bf16Weights::pack(self))
    }

    /// Drops the bf16 packings (the parameters are about to change).
    pub(crate) fn drop_packed(&mut self) {
        self.bf16 = OnceLock::new();
        self.bf16_t = OnceLock::new();
    }

    /// The configuration.
    pub fn config(&self) -> &PfnConfig {
        &self.config
    }

    /// The parameter layout (names, shapes, offsets).
    pub fn layout(&self) -> &ParamLayout {
        &self.layout
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.params.len()
    }

    /// All parameters, flat.
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// All parameters, flat and mutable.
    pub fn params_mut(&mut self) -> &mut [f32] {
        self.drop_packed();
        &mut self.params
    }

    /// All gradients, flat (same layout as the parameters).
    pub fn grads(&self) -> &[f32] {
        &self.grads
    }

    /// All gradients, flat and mutable.
    pub fn grads_mut(&mut self) -> &mut [f32] {
        &mut self.grads
    }

    /// Parameters (mutable) and gradients together, e.g. for an optimiser step.
    pub fn params_and_grads_mut(&mut self) -> (&mut [f32], &mut [f32]) {
        self.drop_packed();
        (&mut self.params, &mut self.grads)
    }

    /// Sets every gradient to 0 (`backward` accumulates).
    pub fn zero_grad(&mut self) {
        self.grads.fill(0.0);
    }

    fn info(&self, name: &str) -> Result<&ParamInfo> {
        self.layout
            .get(name)
            .ok_or_else(|| ModelError::UnknownParameter { name: name.into() })
    }

    /// The parameter tensor called `name` (see [`crate::params`] for the names).
    pub fn param(&self, name: &str) -> Result<&[f32]> {
        let r = self.info(name)?.range();
        Ok(&self.params[r])
    }

    /// The parameter tensor called `name`, mutable.
    pub fn param_mut(&mut self, name: &str) -> Result<&mut [f32]> {
        let r = self.info(name)?.range();
        self.drop_packed();
        Ok(&mut self.params[r])
    }

    /// The gradient of the parameter called `name`.
    pub fn grad(&self, name: &str) -> Result<&[f32]> {
        let r = self.info(name)?.range();
        Ok(&self.grads[r])
    }
}

enum Init {
    Uniform(f32),
    Const(f32),
}

fn init_kind(info: &ParamInfo, layout: &ParamLayout, emsize: usize) -> Init {
    let name = info.name.as_str();
    if name.contains(".norm") {
        return Init::Const(if name.ends_with(".weight") { 1.0 } else { 0.0 });
    }
    if name.contains(".attn.out_proj.") || name.contains(".ff.linear2.") {
        return Init::Const(0.0);
    }
    if name.ends_with("attn.in_proj.bias") {
        return Init::Const(0.0);
    }
    if name.ends_with("attn.in_proj.weight") {
        return Init::Uniform((6.0 / (4.0 * emsize as f64)).sqrt() as f32);
    }
    // nn.Linear: weight and bias uniform in ±1/sqrt(fan_in), fan_in = the weight's second dim.
    let weight_name = match name.strip_suffix(".bias") {
        Some(prefix) => format!("{prefix}.weight"),
        None => name.to_string(),
    };
    let fan_in = layout
        .get(&weight_name)
        .map(|w| w.shape[1])
        .unwrap_or(1)
        .max(1);
    Init::Uniform((1.0 / (fan_in as f64).sqrt()) as f32)
}

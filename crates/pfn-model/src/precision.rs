//! Precision of the matrix products: every product in f32, or the large ones in bf16 with f32
//! accumulation.
//!
//! [`PfnModel::set_inference_precision`] picks the arithmetic of inference passes (workspaces in
//! [`crate::Mode::Inference`]) and [`PfnModel::set_training_precision`] that of training passes
//! (forward and backward; f32 by default). With [`Precision::Bf16`] the attention projections, the
//! feed-forward layers and the decoder round their inputs and weights to bfloat16 (8 significant
//! bits) and accumulate in f32, through [`pfn_engine::linear_bf16`]: twice the f32 rate on CPUs with
//! AVX-512 BF16. In training the backward products of those layers do the same: the input gradients
//! `dy W` with W packed transposed, the weight gradients `dy^T x` through
//! [`pfn_engine::matmul_tn_bf16`]; parameters, gradients and the optimizer state stay f32 (mixed
//! precision). The thin encoder products (and the first layer's projection folded into them),
//! attention, LayerNorm, GELU, the softmax and the loss stay in f32; inference passes additionally
//! run the query rows' attention products in bf16. The packed bf16 weights are built on first use
//! and dropped whenever the parameters can change (every `&mut` access to them), so a training run
//! packs them once per optimizer step.

use std::fmt;
use std::str::FromStr;

use pfn_engine::PackedBf16Linear;

use crate::error::ModelError;
use crate::model::PfnModel;
use crate::params::LinearRanges;

/// The arithmetic of the matrix products of a pass (in a run configuration: `"f32"` or `"bf16"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in f32 (the default).
    #[default]
    F32,
    /// The projections, feed-forward and decoder products (in training also their backward
    /// products) with bf16 operands and f32 accumulation.
    Bf16,
}

impl Precision {
    /// The name used on command lines and in reports: `f32` or `bf16`.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
        }
    }

    /// Whether this is [`Precision::F32`] (the default, omitted when a configuration is written).
    pub fn is_f32(&self) -> bool {
        *self == Self::F32
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Self::F32),
            "bf16" | "bfloat16" => Ok(Self::Bf16),
            other => Err(ModelError::InvalidArgument {
                argument: "precision",
                reason: format!("unknown precision {other:?} (expected f32 or bf16)"),
            }),
        }
    }
}

/// One encoder layer's weights in bf16.
#[derive(Clone, Debug)]
pub(crate) struct LayerBf16 {
    /// The query rows of `in_proj` (E, E).
    pub q: PackedBf16Linear,
    /// The key and value rows of `in_proj` (2E, E).
    pub kv: PackedBf16Linear,
    pub out_proj: PackedBf16Linear,
    pub linear1: PackedBf16Linear,
    pub linear2: PackedBf16Linear,
}

/// The model's large weights packed for bf16 products.
#[derive(Clone, Debug)]
pub(crate) struct Bf16Weights {
    pub layers: Vec<LayerBf16>,
    pub decoder_hidden: PackedBf16Linear,
    pub decoder_output: PackedBf16Linear,
}

fn pack(p: &[f32], r: &LinearRanges, out: usize, inp: usize) -> PackedBf16Linear {
    PackedBf16Linear::pack(&p[r.weight.clone()], out, inp)
}

impl Bf16Weights {
    pub(crate) fn pack(model: &PfnModel) -> Self {
        let c = &model.config;
        let p = &model.params;
        let r = &model.layout.ranges;
        let (e, nh, o) = (c.emsize, c.nhid, c.n_out);
        let layers = r
            .layers
            .iter()
            .map(|l| {
                let w_in = &p[l.in_proj.weight.clone()];
                LayerBf16 {
                    q: PackedBf16Linear::pack(&w_in[..e * e], e, e),
                    kv: PackedBf16Linear::pack(&w_in[e * e..], 2 * e, e),
                    out_proj: pack(p, &l.out_proj, e, e),
                    linear1: pack(p, &l.linear1, nh, e),
                    linear2: pack(p, &l.linear2, e, nh),
                }
            })
            .collect();
        Self {
            layers,
            decoder_hidden: pack(p, &r.decoder_hidden, nh, e),
            decoder_output: pack(p, &r.decoder_output, o, nh),
        }
    }
}

/// One encoder layer's weights packed transposed, for the bf16 input gradients `dx = dy W`.
#[derive(Clone, Debug)]
pub(crate) struct LayerBf16Transposed {
    /// W_q^T and W_kv^T of `in_proj` (not needed in the first layer, whose input gradient is never
    /// formed).
    pub in_proj: Option<(PackedBf16Linear, PackedBf16Linear)>,
    pub out_proj: PackedBf16Linear,
    pub linear1: PackedBf16Linear,
    pub linear2: PackedBf16Linear,
}

/// The model's large weights packed transposed for the bf16 backward pass.
#[derive(Clone, Debug)]
pub(crate) struct Bf16TransposedWeights {
    pub layers: Vec<LayerBf16Transposed>,
    pub decoder_hidden: PackedBf16Linear,
    pub decoder_output: PackedBf16Linear,
}

fn pack_t(p: &[f32], r: &LinearRanges, out: usize, inp: usize) -> PackedBf16Linear {
    PackedBf16Linear::pack_transposed(&p[r.weight.clone()], out, inp)
}

impl Bf16TransposedWeights {
    pub(crate) fn pack(model: &PfnModel) -> Self {
        let c = &model.config;
        let p = &model.params;
        let r = &model.layout.ranges;
        let (e, nh, o) = (c.emsize, c.nhid, c.n_out);
        let layers = r
            .layers
            .iter()
            .enumerate()
            .map(|(l, lr)| {
                let w_in = &p[lr.in_proj.weight.clone()];
                LayerBf16Transposed {
                    in_proj: (l > 0).then(|| {
                        (
                            PackedBf16Linear::pack_transposed(&w_in[..e * e], e, e),
                            PackedBf16Linear::pack_transposed(&w_in[e * e..], 2 * e, e),
                        )
                    }),
                    out_proj: pack_t(p, &lr.out_proj, e, e),
                    linear1: pack_t(p, &lr.linear1, nh, e),
                    linear2: pack_t(p, &lr.linear2, e, nh),
                }
            })
            .collect();
        Self {
            layers,
            decoder_hidden: pack_t(p, &r.decoder_hidden, nh, e),
            decoder_output: pack_t(p, &r.decoder_output, o, nh),
        }
    }
}

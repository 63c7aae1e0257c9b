//! Inference precision: every matrix product in f32, or the large ones in bf16 with f32 accumulation.
//!
//! [`PfnModel::set_inference_precision`] picks the arithmetic of inference passes (workspaces in
//! [`crate::Mode::Inference`]); training passes are always f32. With [`Precision::Bf16`] the
//! attention projections, the feed-forward layers and the decoder round their inputs and weights to
//! bfloat16 (8 significant bits) and accumulate in f32, through
//! [`pfn_engine::linear_bf16`]: twice the f32 rate on CPUs with AVX-512 BF16. The thin encoder
//! products, attention, LayerNorm, GELU and the softmax stay in f32. The packed bf16 weights are
//! built on first use and dropped whenever the parameters can change (every `&mut` access to them).

use std::fmt;
use std::str::FromStr;

use pfn_engine::PackedBf16Linear;

use crate::error::ModelError;
use crate::model::PfnModel;
use crate::params::LinearRanges;

/// The arithmetic of the matrix products in inference passes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// Everything in f32 (the default; the arithmetic of training).
    #[default]
    F32,
    /// The projections, feed-forward and decoder products with bf16 operands and f32 accumulation.
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

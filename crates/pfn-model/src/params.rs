//! The flat parameter buffer layout: every parameter is a named range of one `Vec<f32>`.
//!
//! Names and shapes (our own names; weights are (out, in) as in PyTorch):
//!
//! | name | shape |
//! |---|---|
//! | `encoder.x.weight`, `encoder.x.bias` | (E, F), (E) |
//! | `encoder.y.weight`, `encoder.y.bias` | (E, 1) or (E, K) with a K-class label embedding, (E) |
//! | `layers.{i}.attn.in_proj.weight`, `.bias` | (3E, E), (3E): rows Q, K, V |
//! | `layers.{i}.attn.out_proj.weight`, `.bias` | (E, E), (E) |
//! | `layers.{i}.norm1.weight`, `.bias` | (E), (E) |
//! | `layers.{i}.ff.linear1.weight`, `.bias` | (nhid, E), (nhid) |
//! | `layers.{i}.ff.linear2.weight`, `.bias` | (E, nhid), (E) |
//! | `layers.{i}.norm2.weight`, `.bias` | (E), (E) |
//! | `decoder.hidden.weight`, `.bias` | (nhid, E), (nhid) |
//! | `decoder.output.weight`, `.bias` | (n_out, nhid), (n_out) |

use std::ops::Range;

use crate::config::PfnConfig;

/// One named parameter tensor inside the flat buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamInfo {
    /// Our tensor name.
    pub name: String,
    /// Its shape (row-major).
    pub shape: Vec<usize>,
    /// Offset of its first element in the flat buffer.
    pub offset: usize,
}

impl ParamInfo {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The range of the flat buffer that holds it.
    pub fn range(&self) -> Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// Ranges of a linear layer's weight and bias.
#[derive(Clone, Debug)]
pub(crate) struct LinearRanges {
    pub weight: Range<usize>,
    pub bias: Range<usize>,
}

/// Ranges of a LayerNorm's scale and shift.
#[derive(Clone, Debug)]
pub(crate) struct NormRanges {
    pub gamma: Range<usize>,
    pub beta: Range<usize>,
}

/// Ranges of one encoder layer.
#[derive(Clone, Debug)]
pub(crate) struct LayerRanges {
    pub in_proj: LinearRanges,
    pub out_proj: LinearRanges,
    pub norm1: NormRanges,
    pub linear1: LinearRanges,
    pub linear2: LinearRanges,
    pub norm2: NormRanges,
}

/// Ranges of every parameter, for the forward and backward passes.
#[derive(Clone, Debug)]
pub(crate) struct ModelRanges {
    pub encoder_x: LinearRanges,
    pub encoder_y: LinearRanges,
    pub layers: Vec<LayerRanges>,
    pub decoder_hidden: LinearRanges,
    pub decoder_output: LinearRanges,
}

/// The ordered list of parameters of a configuration and their place in the flat buffer.
#[derive(Clone, Debug)]
pub struct ParamLayout {
    entries: Vec<ParamInfo>,
    total: usize,
    pub(crate) ranges: ModelRanges,
}

struct Builder {
    entries: Vec<ParamInfo>,
    total: usize,
}

impl Builder {
    fn push(&mut self, name: String, shape: Vec<usize>) -> Range<usize> {
        let info = ParamInfo {
            name,
            shape,
            offset: self.total,
        };
        self.total += info.len();
        let r = info.range();
        self.entries.push(info);
        r
    }

    fn linear(&mut self, prefix: &str, out: usize, inp: usize) -> LinearRanges {
        LinearRanges {
            weight: self.push(format!("{prefix}.weight"), vec![out, inp]),
            bias: self.push(format!("{prefix}.bias"), vec![out]),
        }
    }

    fn norm(&mut self, prefix: &str, e: usize) -> NormRanges {
        NormRanges {
            gamma: self.push(format!("{prefix}.weight"), vec![e]),
            beta: self.push(format!("{prefix}.bias"), vec![e]),
        }
    }
}

impl ParamLayout {
    /// The layout of a configuration (assumed valid).
    pub fn new(config: &PfnConfig) -> Self {
        let (f, e, h, o) = (
            config.num_features,
            config.emsize,
            config.nhid,
            config.n_out,
        );
        let mut b = Builder {
            entries: Vec::new(),
            total: 0,
        };
        let encoder_x = b.linear("encoder.x", e, f);
        let encoder_y = b.linear("encoder.y", e, config.y_width());
        let layers = (0..config.nlayers)
            .map(|i| LayerRanges {
                in_proj: b.linear(&format!("layers.{i}.attn.in_proj"), 3 * e, e),
                out_proj: b.linear(&format!("layers.{i}.attn.out_proj"), e, e),
                norm1: b.norm(&format!("layers.{i}.norm1"), e),
                linear1: b.linear(&format!("layers.{i}.ff.linear1"), h, e),
                linear2: b.linear(&format!("layers.{i}.ff.linear2"), e, h),
                norm2: b.norm(&format!("layers.{i}.norm2"), e),
            })
            .collect();
        let decoder_hidden = b.linear("decoder.hidden", h, e);
        let decoder_output = b.linear("decoder.output", o, h);
        Self {
            entries: b.entries,
            total: b.total,
            ranges: ModelRanges {
                encoder_x,
                encoder_y,
                layers,
                decoder_hidden,
                decoder_output,
            },
        }
    }

    /// All parameters in buffer order.
    pub fn entries(&self) -> &[ParamInfo] {
        &self.entries
    }

    /// Total number of parameters (the flat buffer length).
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether there are no parameters (never true for a valid configuration).
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The parameter of this name.
    pub fn get(&self, name: &str) -> Option<&ParamInfo> {
        self.entries.iter().find(|p| p.name == name)
    }
}

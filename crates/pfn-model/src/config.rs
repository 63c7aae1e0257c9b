//! The architecture description of a PFN.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

fn default_true() -> bool {
    true
}

fn default_eps() -> f32 {
    1e-5
}

/// Architecture of a PFN (the paper's model): a linear x encoder, a y encoder (linear in the
/// scalar y, or an embedding of a class label: `y_classes`), `nlayers` post-norm encoder
/// layers of width `emsize` with `nhead` heads and a GELU feed-forward of width `nhid`, and the decoder
/// `Linear(emsize, nhid) -> GELU -> Linear(nhid, n_out)` on the query positions.
///
/// `n_out` selects the head: the number of buckets of a Riemann (bar) distribution, 1 for binary
/// classification, C for C-class classification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PfnConfig {
    /// Number of input features F.
    pub num_features: usize,
    /// Model width E.
    pub emsize: usize,
    /// Number of attention heads (must divide `emsize`).
    pub nhead: usize,
    /// Hidden width of the feed-forward blocks and of the decoder.
    pub nhid: usize,
    /// Number of encoder layers.
    pub nlayers: usize,
    /// Number of outputs per query.
    pub n_out: usize,
    /// Whether each query token also attends to itself (true: the paper's code and the golden
    /// fixtures; false: the maintained `automl/PFNs` library).
    #[serde(default = "default_true")]
    pub query_self_attention: bool,
    /// LayerNorm epsilon (PyTorch default 1e-5).
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f32,
    /// The y encoder. `None` (the default): `Linear(1, emsize)` of the scalar context target, as
    /// the paper's models. `Some(K)`: the context target is a class label in `0..K`, embedded by
    /// a learned table, the `(emsize, K)` weight of `encoder.y` applied to the label's one-hot
    /// vector (plus `encoder.y.bias`), as the paper's Omniglot model (`nn.Embedding`). A label
    /// carries no order then, which a linear encoder of the class number imposes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y_classes: Option<usize>,
}

impl PfnConfig {
    /// A configuration with the paper's defaults for the optional fields (query self-attention on,
    /// LayerNorm epsilon 1e-5).
    pub fn new(
        num_features: usize,
        emsize: usize,
        nhead: usize,
        nhid: usize,
        nlayers: usize,
        n_out: usize,
    ) -> Self {
        Self {
            num_features,
            emsize,
            nhead,
            nhid,
            nlayers,
            n_out,
            query_self_attention: true,
            layer_norm_eps: default_eps(),
            y_classes: None,
        }
    }

    /// Columns of the y encoder's input: `K` for a class embedding, else 1.
    pub fn y_width(&self) -> usize {
        self.y_classes.unwrap_or(1)
    }

    /// Columns of the encoders' combined token input `[x, y part, context flag, 1]`:
    /// `num_features + y_width() + 2` (see `encoder.rs`).
    pub fn token_width(&self) -> usize {
        self.num_features + self.y_width() + 2
    }

    /// Checks that every size is usable.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("num_features", self.num_features),
            ("emsize", self.emsize),
            ("nhead", self.nhead),
            ("nhid", self.nhid),
            ("n_out", self.n_out),
        ];
        if self.y_classes == Some(0) {
            return Err(ModelError::InvalidConfig {
                field: "y_classes",
                reason: "a label embedding needs at least 1 class".into(),
            });
        }
        for (field, v) in positive {
            if v == 0 {
                return Err(ModelError::InvalidConfig {
                    field,
                    reason: "must be at least 1".into(),
                });
            }
        }
        // Every tensor and the parameter count must be addressable (no overflow in the layout).
        let (f, e, h, o, l) = (
            self.num_features,
            self.emsize,
            self.nhid,
            self.n_out,
            self.nlayers,
        );
        let count = (|| {
            let enc = e.checked_mul(f.checked_add(self.y_width())?.checked_add(2)?)?;
            let layer = e
                .checked_mul(
                    e.checked_mul(4)?
                        .checked_add(4)?
                        .checked_add(h.checked_mul(2)?)?,
                )?
                .checked_add(h)?
                .checked_add(e.checked_mul(5)?)?;
            let dec = h
                .checked_mul(e.checked_add(1)?.checked_add(o)?)?
                .checked_add(o)?;
            enc.checked_add(layer.checked_mul(l)?)?.checked_add(dec)
        })();
        if !matches!(count, Some(c) if c <= (isize::MAX as usize) / 8) {
            return Err(ModelError::InvalidConfig {
                field: "sizes",
                reason: "the parameter count overflows".into(),
            });
        }
        if !self.emsize.is_multiple_of(self.nhead) {
            return Err(ModelError::InvalidConfig {
                field: "nhead",
                reason: format!("{} does not divide emsize {}", self.nhead, self.emsize),
            });
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return Err(ModelError::InvalidConfig {
                field: "layer_norm_eps",
                reason: format!("must be positive and finite, got {}", self.layer_norm_eps),
            });
        }
        Ok(())
    }

    /// Dimension per attention head.
    pub fn head_dim(&self) -> usize {
        self.emsize / self.nhead.max(1)
    }
}

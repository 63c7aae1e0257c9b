//! One transformer layer, post-norm as in the paper's PyTorch model:
//!
//! ```text
//! x1  = LayerNorm1(h  + Attention(h))      (crate::attention)
//! out = LayerNorm2(x1 + FeedForward(x1))   (crate::feed_forward)
//! ```
//!
//! and [`LayerPlan`], the rows a layer computes. The input of layer l is `Workspace::hidden[l % 2]`,
//! its output `hidden[(l + 1) % 2]`.

use std::ops::Range;

use pfn_engine::PfnAttention;

use crate::attention::{self, KvCache};
use crate::backward::BackwardPass;
use crate::config::PfnConfig;
use crate::feed_forward;
use crate::forward::Pass;
use crate::workspace::{Dims, Workspace};

/// The rows one layer computes in a pass.
///
/// Context tokens never attend to queries, so a layer whose context outputs are not needed (the last
/// layer, or every layer when the context's keys and values come from a cache) computes only the
/// query rows after the attention, and projects keys and values only for the rows that have none yet.
#[derive(Clone, Debug)]
pub(crate) struct LayerPlan {
    /// The first row computed after the attention: 0, or the first query row.
    pub r0: usize,
    /// All token rows.
    pub tokens: usize,
    /// The rows whose keys and values are projected: the context (unless cached) and, with query
    /// self-attention, the queries.
    pub kv: Range<usize>,
    /// The attention geometry.
    pub geo: PfnAttention,
}

impl LayerPlan {
    /// The plan of layer `l`; `cached` when the context's keys and values come from a cache.
    pub fn new(c: &PfnConfig, d: &Dims, l: usize, cached: bool) -> Self {
        let last = l + 1 == c.nlayers;
        // Without context outputs (last layer, or cached context) only query rows are computed.
        let queries_only = last || cached;
        let kv_start = if cached { d.ctx_rows } else { 0 };
        let kv_end = if c.query_self_attention {
            d.tokens
        } else {
            d.ctx_rows
        };
        Self {
            r0: if queries_only { d.ctx_rows } else { 0 },
            tokens: d.tokens,
            kv: kv_start..kv_end.max(kv_start),
            geo: PfnAttention {
                batch: d.batch,
                n_ctx: d.n,
                n_qry: d.m,
                heads: c.nhead,
                head_dim: c.head_dim(),
                query_self: c.query_self_attention,
                context_outputs: !queries_only,
            },
        }
    }

    /// The computed rows, `r0..tokens`.
    pub fn out_rows(&self) -> Range<usize> {
        self.r0..self.tokens
    }

    /// Number of computed rows.
    pub fn rows(&self) -> usize {
        self.tokens - self.r0
    }

    /// The computed rows' values in a row-major buffer of `width` columns.
    pub fn span(&self, width: usize) -> Range<usize> {
        self.r0 * width..self.tokens * width
    }

    /// Whether the queries, keys and values of every row are projected (one product for all).
    pub fn projects_all(&self) -> bool {
        self.r0 == 0 && self.kv == (0..self.tokens)
    }
}

/// Forward of layer `l`: `hidden[(l + 1) % 2] = LN2(x1 + FF(x1))` with `x1 = LN1(h + Attn(h))`,
/// `h = hidden[l % 2]`, for the rows of `plan`. `folded`: the projections are computed from the
/// encoder input through the folded weight (first layer only, see
/// [`crate::encoder::fold_first_projection`]).
pub(crate) fn forward(
    pass: &Pass<'_>,
    ws: &mut Workspace,
    l: usize,
    plan: &LayerPlan,
    folded: bool,
    cache: KvCache<'_>,
) {
    attention::forward(pass, ws, l, plan, folded, cache);
    feed_forward::forward(pass, ws, l, plan);
}

/// Backward of layer `l`: `Workspace::d_hidden` goes from d out to d h (the first layer stops at
/// d QKV and the residual part, which the encoder's backward takes; see [`crate::encoder::backward`]).
pub(crate) fn backward(
    pass: &BackwardPass<'_>,
    ws: &mut Workspace,
    g: &mut [f32],
    l: usize,
    plan: &LayerPlan,
) {
    feed_forward::backward(pass, ws, g, l, plan);
    attention::backward(pass, ws, g, l, plan);
}

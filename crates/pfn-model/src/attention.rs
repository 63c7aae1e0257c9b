//! The attention block of a layer, forward and backward:
//!
//! ```text
//! [Q | K | V] = h W_in^T + b_in              (in_proj, one packed (tokens, 3E) matrix)
//! a           = MaskedMultiHeadAttention(Q, K, V)
//! x1          = LayerNorm1(h + a W_out^T + b_out)
//! ```
//!
//! The mask is the PFN's: every token attends to the context of its dataset, a query also to itself
//! with query self-attention, and never to other queries (the engine's
//! [`pfn_engine::attention`] kernels). The projections are written and read through [`Qkv`] views
//! of the packed matrix. With a cached context the context rows' keys and values come from the
//! cache ([`KvCache`]).

use pfn_engine::layer_norm::residual_layer_norm_forward;
use pfn_engine::{
    pfn_attention_backward, pfn_attention_forward, pfn_attention_forward_bf16, Bf16Epilogue,
    PfnAttention,
};

use crate::backward::BackwardPass;
use crate::feed_forward;
use crate::forward::Pass;
use crate::layer::LayerPlan;
use crate::ops::{
    col_sums, input_grad, linear_param_grads, matmul_wt, matmul_wt_bf16, norm, norm_backward,
    ranges_mut, rebuild_norm_output, thin_wt, weight_grad, Linear, Rows, RowsMut,
};
use crate::params::LayerRanges;
use crate::precision::LayerBf16;
use crate::workspace::{LayerBuffers, Workspace};

/// A view of the packed projections, (tokens, 3E) row-major: Q in columns `[0, E)`, K in
/// `[E, 2E)`, V in `[2E, 3E)` (PyTorch's `in_proj` order).
#[derive(Clone, Copy)]
pub(crate) struct Qkv<'a> {
    all: Rows<'a>,
    e: usize,
}

impl<'a> Qkv<'a> {
    /// The view of `data`, which holds at least `tokens * 3E` values.
    pub fn new(data: &'a [f32], tokens: usize, e: usize) -> Self {
        Self {
            all: Rows::dense(data, tokens, 3 * e),
            e,
        }
    }

    /// Every token's Q | K | V.
    pub fn all(self) -> Rows<'a> {
        self.all
    }

    /// The queries of rows `r`.
    pub fn q(self, r: std::ops::Range<usize>) -> Rows<'a> {
        self.all.block(r, 0..self.e)
    }

    /// The keys and values of rows `r`.
    pub fn kv(self, r: std::ops::Range<usize>) -> Rows<'a> {
        self.all.block(r, self.e..3 * self.e)
    }
}

/// A mutable view of the packed projections (see [`Qkv`]).
pub(crate) struct QkvMut<'a> {
    all: RowsMut<'a>,
    e: usize,
}

impl<'a> QkvMut<'a> {
    /// The view of `data`, which holds at least `tokens * 3E` values.
    pub fn new(data: &'a mut [f32], tokens: usize, e: usize) -> Self {
        Self {
            all: RowsMut::dense(data, tokens, 3 * e),
            e,
        }
    }

    /// Every token's Q | K | V.
    pub fn all(&mut self) -> RowsMut<'_> {
        self.all.reborrow()
    }

    /// The queries of rows `r`.
    pub fn q(&mut self, r: std::ops::Range<usize>) -> RowsMut<'_> {
        self.all.block(r, 0..self.e)
    }

    /// The keys and values of rows `r`.
    pub fn kv(&mut self, r: std::ops::Range<usize>) -> RowsMut<'_> {
        self.all.block(r, self.e..3 * self.e)
    }

    /// The whole matrix, read-only.
    pub fn as_qkv(&self) -> Qkv<'_> {
        Qkv {
            all: self.all.as_rows(),
            e: self.e,
        }
    }
}

/// The keys and values of one layer for the context rows, each (context rows, 2E) row-major.
pub(crate) struct KvCache<'a> {
    /// Read from a cache (the context rows are not computed).
    pub read: Option<&'a [f32]>,
    /// Copied out to build a cache.
    pub write: Option<&'a mut [f32]>,
}

/// The input of the `in_proj` product: the layer input h with `W_in`, or in a folded first layer
/// the encoder input U with the folded weight `W_in Wa`.
struct ProjectionInput<'a> {
    /// (tokens, k) row-major.
    x: Rows<'a>,
    /// (3E, k) row-major.
    w: &'a [f32],
    /// Whether this is the folded first-layer product.
    folded: bool,
}

/// Q for the rows `plan.out_rows()`, K and V for the rows `plan.kv`, each with its part of the bias.
fn project_qkv(
    pass: &Pass<'_>,
    plan: &LayerPlan,
    input: ProjectionInput<'_>,
    bias: &[f32],
    packed: Option<&LayerBf16>,
    qkv: &mut QkvMut<'_>,
) {
    let e = pass.config.emsize;
    let (x, k) = (input.x, input.x.cols);
    let (w_q, w_kv) = input.w.split_at(e * k);
    let (b_q, b_kv) = bias.split_at(e);
    let (q_src, kv_src) = (x.row_range(plan.out_rows()), x.row_range(plan.kv.clone()));
    match packed {
        // bf16: the query and key-value products with their bias in the epilogue.
        Some(lw) if !input.folded => {
            let q = qkv.q(plan.out_rows());
            matmul_wt_bf16(q, q_src, &lw.q, false, Bf16Epilogue::Bias(b_q));
            let kv = qkv.kv(plan.kv.clone());
            matmul_wt_bf16(kv, kv_src, &lw.kv, false, Bf16Epilogue::Bias(b_kv));
        }
        // bf16 inference, folded: the thin products (exact f32).
        _ if pass.infer_bf16 && input.folded => {
            thin_wt(qkv.q(plan.out_rows()), q_src, w_q, Some(b_q));
            thin_wt(qkv.kv(plan.kv.clone()), kv_src, w_kv, Some(b_kv));
        }
        // Every row: one product.
        _ if plan.projects_all() => {
            qkv.all().fill_rows(bias);
            matmul_wt(qkv.all(), x, input.w, true);
        }
        _ => {
            let mut q = qkv.q(plan.out_rows());
            q.fill_rows(b_q);
            matmul_wt(q, q_src, w_q, true);
            let mut kv = qkv.kv(plan.kv.clone());
            kv.fill_rows(b_kv);
            matmul_wt(kv, kv_src, w_kv, true);
        }
    }
}

/// The masked multi-head attention (the engine's kernel) over the packed projections: the output
/// (tokens, E) before `out_proj` into `out`, the probabilities into `probs`. With `bf16` (bf16
/// inference) the query rows' products take bf16 operands.
fn attend(geo: &PfnAttention, qkv: Qkv<'_>, probs: &mut [f32], out: &mut [f32], bf16: bool) {
    let qkv = qkv.all().dense_slice();
    if bf16 {
        pfn_attention_forward_bf16(geo, qkv, probs, out);
    } else {
        pfn_attention_forward(geo, qkv, probs, out);
    }
}

/// Forward of layer `l`'s attention block: `Workspace::h1 = LN1(h + attention(h) W_out^T + b_out)`
/// for the rows of `plan`, keeping Q|K|V, the attention probabilities and output, and the
/// LayerNorm's `xhat1` and `rstd1` in the layer's buffers.
pub(crate) fn forward(
    pass: &Pass<'_>,
    ws: &mut Workspace,
    l: usize,
    plan: &LayerPlan,
    folded: bool,
    cache: KvCache<'_>,
) {
    let (c, p) = (pass.config, pass.params);
    let (e, tok, ctx) = (c.emsize, plan.tokens, pass.dims.ctx_rows);
    let lr = &pass.ranges.layers[l];
    let lw = pass.bf16.map(|b| &b.layers[l]);
    let lb = &mut ws.layers[pass.slot(l)];
    let hin = &ws.hidden[l % 2][..tok * e];

    // Q for rows [r0, tok), K and V for the rows of plan.kv.
    let input = if folded {
        let fa = c.token_width();
        ProjectionInput {
            x: Rows::dense(&ws.enc_in[..tok * fa], tok, fa),
            w: &ws.enc_qkv_w[..3 * e * fa],
            folded: true,
        }
    } else {
        ProjectionInput {
            x: Rows::dense(hin, tok, e),
            w: &p[lr.in_proj.weight.clone()],
            folded: false,
        }
    };
    let mut qkv = QkvMut::new(&mut lb.qkv[..tok * 3 * e], tok, e);
    project_qkv(pass, plan, input, &p[lr.in_proj.bias.clone()], lw, &mut qkv);
    // Context keys and values: from the cache, or copied into a new cache.
    if let Some(kv) = cache.read {
        qkv.kv(0..ctx).copy_from(Rows::dense(kv, ctx, 2 * e));
    }
    if let Some(out) = cache.write {
        RowsMut::dense(out, ctx, 2 * e).copy_from(qkv.as_qkv().kv(0..ctx));
    }

    let geo = &plan.geo;
    let probs = &mut lb.probs[..geo.probs_len()];
    let attn = &mut lb.attn[..tok * e];
    attend(geo, qkv.as_qkv(), probs, attn, pass.infer_bf16);

    // x1 = LN1(h + out_proj(attn))
    let (span, rows) = (plan.span(e), plan.rows());
    let out_proj = Linear::new(p, &lr.out_proj, lw.map(|w| &w.out_proj));
    let tmp = &mut ws.tmp[span.clone()];
    let a = Rows::dense(&attn[span.clone()], rows, e);
    out_proj.product(RowsMut::dense(tmp, rows, e), a);
    residual_layer_norm_forward(
        &hin[span.clone()],
        tmp,
        Some(out_proj.bias),
        norm(p, &lr.norm1, c.layer_norm_eps),
        &mut ws.h1[span.clone()],
        &mut lb.xhat1[span],
        &mut lb.rstd1[plan.out_rows()],
    );
}

/// The block's output x1 over `span`, rebuilt bit for bit from the kept `xhat1` into `out`.
pub(crate) fn rebuild_output<'o>(
    pass: &BackwardPass<'_>,
    lr: &LayerRanges,
    lb: &LayerBuffers,
    span: std::ops::Range<usize>,
    out: &'o mut [f32],
) -> &'o [f32] {
    let eps = pass.config.layer_norm_eps;
    rebuild_norm_output(&lb.xhat1[span], pass.params, &lr.norm1, eps, out)
}

/// Backward of layer `l`'s attention block: `Workspace::d_hidden` (rows of `plan`) goes from d x1
/// to d h, accumulating the gradients of LN1, `out_proj` and `in_proj`. In the first layer it
/// stops at d(h + attention) and d QKV (in `Workspace::d_qkv`), from which the encoder's backward
/// forms its weight gradient and the `in_proj` weight gradient (see [`crate::encoder::backward`]).
pub(crate) fn backward(
    pass: &BackwardPass<'_>,
    ws: &mut Workspace,
    g: &mut [f32],
    l: usize,
    plan: &LayerPlan,
) {
    let (c, p, bf) = (pass.config, pass.params, pass.bf16);
    let (e, tok) = (c.emsize, plan.tokens);
    let (span, rows) = (plan.span(e), plan.rows());
    let lr = &pass.ranges.layers[l];
    let lt = pass.bf16_t.map(|b| &b.layers[l]);
    let lb = &ws.layers[l];

    // Through LN1: d_h becomes d(h + attn_out) (and the out_proj bias gradient its column sum).
    let dz = &mut ws.d_hidden[span.clone()];
    let (xhat1, rstd1) = (&lb.xhat1[span.clone()], &lb.rstd1[plan.out_rows()]);
    norm_backward(g, p, &lr.norm1, &lr.out_proj.bias, dz, xhat1, rstd1);

    // Output projection.
    let d_attn = &mut ws.d_attn[..tok * e];
    let dy = Rows::dense(dz, rows, e);
    let a = Rows::dense(&lb.attn[span.clone()], rows, e);
    weight_grad(&mut g[lr.out_proj.weight.clone()], dy, a, bf);
    let w_out = &p[lr.out_proj.weight.clone()];
    let w_out_t = lt.map(|t| &t.out_proj);
    let d_a = RowsMut::dense(&mut d_attn[span], rows, e);
    input_grad(d_a, dy, w_out, w_out_t, false);

    // Attention.
    let geo = &plan.geo;
    let (qkv, probs) = (&lb.qkv[..tok * 3 * e], &lb.probs[..geo.probs_len()]);
    let d_probs = &mut ws.d_probs[..geo.probs_len()];
    let d_qkv = &mut ws.d_qkv[..tok * 3 * e];
    pfn_attention_backward(geo, qkv, probs, d_attn, d_probs, d_qkv);

    in_proj_backward(pass, ws, g, l, plan);
}

/// Backward of the input projection from d QKV (`Workspace::d_qkv`): the `in_proj` gradients and,
/// for l > 0, `d_hidden` += dQ W_q + dKV W_kv (the residual is already there).
///
/// Its input h (l > 0) is the previous layer's output, rebuilt from that layer's xhat2 (every row:
/// only the last layer skips context rows); the first layer's weight gradient is formed from the
/// encoder input by the encoder's backward and needs no h.
fn in_proj_backward(
    pass: &BackwardPass<'_>,
    ws: &mut Workspace,
    g: &mut [f32],
    l: usize,
    plan: &LayerPlan,
) {
    let (e, tok, rows) = (pass.config.emsize, plan.tokens, plan.rows());
    let lr = &pass.ranges.layers[l];
    let d_qkv = Qkv::new(&ws.d_qkv[..tok * 3 * e], tok, e);
    let hin = (l > 0).then(|| {
        let (prev, lb) = (&pass.ranges.layers[l - 1], &ws.layers[l - 1]);
        let out = &mut ws.tmp[..tok * e];
        Rows::dense(
            feed_forward::rebuild_output(pass, prev, lb, 0..tok * e, out),
            tok,
            e,
        )
    });
    in_proj_param_grads(g, lr, plan, d_qkv, hin, e, pass.bf16);
    if l == 0 {
        return;
    }
    // d_h becomes the gradient of the layer input: residual + dQ W_q + dKV W_kv.
    let d_h = &mut ws.d_hidden[..tok * e];
    let w_in = &pass.params[lr.in_proj.weight.clone()];
    let w_in_t = pass.bf16_t.and_then(|b| b.layers[l].in_proj.as_ref());
    if plan.projects_all() && w_in_t.is_none() {
        input_grad(RowsMut::dense(d_h, tok, e), d_qkv.all(), w_in, None, true);
    } else {
        d_h[..plan.r0 * e].fill(0.0);
        let (w_q, w_kv) = w_in.split_at(e * e);
        let (w_qt, w_kvt) = (w_in_t.map(|t| &t.0), w_in_t.map(|t| &t.1));
        let dh_q = RowsMut::dense(&mut d_h[plan.span(e)], rows, e);
        input_grad(dh_q, d_qkv.q(plan.out_rows()), w_q, w_qt, true);
        let kv = plan.kv.clone();
        let dh_kv = RowsMut::dense(&mut d_h[kv.start * e..kv.end * e], kv.len(), e);
        input_grad(dh_kv, d_qkv.kv(kv), w_kv, w_kvt, true);
    }
}

/// The `in_proj` gradients: the bias gradient, and with the layer input `hin` the weight gradient
/// (`[dQ | dKV]^T h`; without it, in the first layer, the encoder's backward forms it).
fn in_proj_param_grads(
    g: &mut [f32],
    lr: &LayerRanges,
    plan: &LayerPlan,
    d_qkv: Qkv<'_>,
    hin: Option<Rows<'_>>,
    e: usize,
    bf16: bool,
) {
    let r = &lr.in_proj;
    if plan.projects_all() {
        match hin {
            Some(h) => linear_param_grads(g, r, d_qkv.all(), h, bf16),
            None => col_sums(d_qkv.all(), &mut g[r.bias.clone()]),
        }
        return;
    }
    let [gw, gb] = ranges_mut(g, [r.weight.clone(), r.bias.clone()]);
    let (dq, dkv) = (d_qkv.q(plan.out_rows()), d_qkv.kv(plan.kv.clone()));
    if let Some(h) = hin {
        let (gq, gkv) = gw.split_at_mut(e * e);
        weight_grad(gq, dq, h.row_range(plan.out_rows()), bf16);
        weight_grad(gkv, dkv, h.row_range(plan.kv.clone()), bf16);
    }
    let (gb_q, gb_kv) = gb.split_at_mut(e);
    col_sums(dq, gb_q);
    col_sums(dkv, gb_kv);
}

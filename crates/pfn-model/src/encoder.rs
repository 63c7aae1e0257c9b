//! The encoders, forward and backward: each token's embedding is `Linear_x(x) + Linear_y(y)`, the
//! y part for context tokens only. Both are one product `h0 = U Wa^T` with the token input
//! `U = [x, y, 1, 1]` (context) or `[x, 0, 0, 1]` (query), (tokens, F + 3), and the combined weight
//! `Wa = [W_x | w_y | b_y | b_x]`, (E, F + 3).
//!
//! With a K-class label embedding (`PfnConfig::y_classes`) the y part is the label's one-hot
//! vector: `U = [x, onehot(y), 1, 1]` (context) or `[x, 0…0, 0, 1]` (query), (tokens, F + K + 2),
//! and `w_y` is the (E, K) embedding table, so `W_y onehot(y)` is the table's column of the label.
//! `Y` below is the y part's width (1 or K).
//!
//! The first layer reads h0 only through its input projection `h0 W_in^T = U (W_in Wa)^T`; when the
//! input is narrow and the rows many ([`fold_first_projection`]), the forward computes it from U
//! with the folded (3E, F + 3) weight ([`fold_into_first_projection`]), and the backward always
//! forms the encoder's and `in_proj`'s weight gradients reassociated through it ([`backward`]).

use pfn_engine::{matmul, MatMut, MatRef};

use crate::attention::Qkv;
use crate::backward::BackwardPass;
use crate::forward::{Pass, Source};
use crate::layer::LayerPlan;
use crate::ops::{matmul_wt, thin_wt, Rows, RowsMut};
use crate::workspace::{Dims, Workspace};

/// Whether computing a projection of `rows` rows from the encoder input (width `fa`) through a folded
/// (3E, fa) weight, which itself costs 3E * E * fa, is cheaper than from the (rows, E) hidden state.
pub(crate) fn fold_first_projection(e: usize, fa: usize, rows: usize) -> bool {
    fa < e && rows * (e - fa) > 3 * e * fa
}

/// Gathers the inputs into the token layout `u` (tokens, F + Y + 2): row = [x, y, 1, 1] (or
/// [x, onehot(y), 1, 1]) for context tokens and [x, 0, 0, 1] for queries, so that
/// Linear_x(x) + Linear_y(y) is one product with the combined weight [W_x | w_y | b_y | b_x]. With
/// cached context only the query rows are written. A label outside `0..K` (checked before the
/// pass) would get an all-zero one-hot part.
fn gather_tokens(u: &mut [f32], src: Source<'_>, d: &Dims, f: usize, y_classes: Option<usize>) {
    let yw = y_classes.unwrap_or(1);
    let fa = f + yw + 2;
    let (n, m, ctx) = (d.n, d.m, d.ctx_rows);
    match src {
        Source::Batch(batch) => {
            // Only the first n + m points of each dataset are used (all of them, except when
            // encoding a context, where m = 0).
            let (y_stride, x_stride) = (batch.y.len() / d.batch, batch.seq_len);
            for b in 0..d.batch {
                for s in 0..n + m {
                    let (row, yv, c) = if s < n {
                        (b * n + s, batch.y[b * y_stride + s], 1.0)
                    } else {
                        (ctx + b * m + (s - n), 0.0, 0.0)
                    };
                    let dst = &mut u[row * fa..(row + 1) * fa];
                    dst[..f].copy_from_slice(
                        &batch.x[(b * x_stride + s) * f..(b * x_stride + s + 1) * f],
                    );
                    write_y(&mut dst[f..f + yw], yv, c, y_classes);
                    dst[f + yw] = c;
                    dst[f + yw + 1] = 1.0;
                }
            }
        }
        Source::Queries { x, .. } => {
            for q in 0..d.qry_rows {
                let dst = &mut u[(ctx + q) * fa..(ctx + q + 1) * fa];
                dst[..f].copy_from_slice(&x[q * f..(q + 1) * f]);
                dst[f..f + yw + 1].fill(0.0);
                dst[f + yw + 1] = 1.0;
            }
        }
    }
}

/// The y part of a context token: `y` itself, or the one-hot vector of the label `y` (all zeros
/// for a query, `context = 0`, or a label outside `0..K`).
fn write_y(dst: &mut [f32], y: f32, context: f32, y_classes: Option<usize>) {
    match y_classes {
        None => dst[0] = y,
        Some(k) => {
            dst.fill(0.0);
            if context != 0.0 {
                if let Some(label) = class_index(y, k) {
                    dst[label] = 1.0;
                }
            }
        }
    }
}

/// `y` as a class index in `0..k`, if it is one (an integer-valued float).
pub(crate) fn class_index(y: f32, k: usize) -> Option<usize> {
    (y >= 0.0 && y.fract() == 0.0 && (y as usize) < k).then_some(y as usize)
}

/// Forward: `hidden[0] = U Wa^T` for the rows from `r0` on (the query rows with a cached context),
/// after gathering U into `Workspace::enc_in` and Wa into `Workspace::enc_w`.
pub(crate) fn forward(pass: &Pass<'_>, ws: &mut Workspace, src: Source<'_>, r0: usize) {
    let (p, r) = (pass.params, pass.ranges);
    let (e, f, tok) = (
        pass.config.emsize,
        pass.config.num_features,
        pass.dims.tokens,
    );
    let (yw, fa) = (pass.config.y_width(), pass.config.token_width());
    let u = &mut ws.enc_in[..tok * fa];
    gather_tokens(u, src, &pass.dims, f, pass.config.y_classes);

    let wa = &mut ws.enc_w[..e * fa];
    let (wx, bx) = (&p[r.encoder_x.weight.clone()], &p[r.encoder_x.bias.clone()]);
    let (wy, by) = (&p[r.encoder_y.weight.clone()], &p[r.encoder_y.bias.clone()]);
    for i in 0..e {
        let dst = &mut wa[i * fa..(i + 1) * fa];
        dst[..f].copy_from_slice(&wx[i * f..(i + 1) * f]);
        dst[f..f + yw].copy_from_slice(&wy[i * yw..(i + 1) * yw]);
        dst[f + yw] = by[i];
        dst[f + yw + 1] = bx[i];
    }

    let h0 = RowsMut::dense(&mut ws.hidden[0][r0 * e..tok * e], tok - r0, e);
    let u = Rows::dense(u, tok, fa).row_range(r0..tok);
    if pass.infer_bf16 {
        // bf16 inference: the thin product without gemm's packing (exact f32 arithmetic).
        thin_wt(h0, u, wa, None);
    } else {
        matmul_wt(h0, u, wa, false);
    }
}

/// The first layer's input projection folded into the encoder: `Workspace::enc_qkv_w = W_in Wa`,
/// (3E, F + Y + 2), so that the first layer's Q, K and V come from the encoder input in one thin
/// product (tokens * 3E * (F + Y + 2) instead of tokens * 3E * E).
pub(crate) fn fold_into_first_projection(pass: &Pass<'_>, ws: &mut Workspace) {
    let (e, fa) = (pass.config.emsize, pass.config.token_width());
    let w_in = &pass.params[pass.ranges.layers[0].in_proj.weight.clone()];
    matmul(
        MatMut::row_major(&mut ws.enc_qkv_w[..3 * e * fa], 3 * e, fa),
        MatRef::row_major(w_in, 3 * e, e),
        MatRef::row_major(&ws.enc_w[..e * fa], e, fa),
        false,
        1.0,
    );
}

/// Backward: the gradient of the combined weight, `dWa = d_h0^T U`, into `Workspace::enc_grad`,
/// scattered into the gradients of `W_x`, `b_x`, `w_y` and `b_y`.
///
/// Without layers d_h0 is `Workspace::d_hidden`. Otherwise d_h0 = R + dQ W_q + dKV W_kv, with R the
/// first layer's residual gradient in `d_hidden` and dQ|dKV its `d_qkv`, and it is never formed:
/// `d_h0^T U = R^T U + W_q^T (dQ^T U) + W_kv^T (dKV^T U)` costs O(tokens * 3E * (F + Y + 2)) instead of
/// O(tokens * 3E * E), and the first layer's `in_proj` weight gradient `[dQ | dKV]^T h0` with
/// `h0 = U Wa^T` is `(dQ^T U | dKV^T U) Wa^T`.
pub(crate) fn backward(pass: &BackwardPass<'_>, ws: &mut Workspace, g: &mut [f32]) {
    let c = pass.config;
    let (e, f, tok) = (c.emsize, c.num_features, pass.dims.tokens);
    let (yw, fa) = (c.y_width(), c.token_width());
    if c.nlayers == 0 {
        let u = Rows::dense(&ws.enc_in[..tok * fa], tok, fa);
        let d_h = Rows::dense(&ws.d_hidden[..tok * e], tok, e);
        at_b(&mut ws.enc_grad[..e * fa], d_h, u, false);
    } else {
        through_first_projection(pass, ws, g);
    }

    // Wa = [W_x | w_y | b_y | b_x]: scatter its gradient.
    let r = pass.ranges;
    let ga = &ws.enc_grad[..e * fa];
    for i in 0..e {
        let row = &ga[i * fa..(i + 1) * fa];
        for (k, v) in row[..f].iter().enumerate() {
            g[r.encoder_x.weight.start + i * f + k] += v;
        }
        for (k, v) in row[f..f + yw].iter().enumerate() {
            g[r.encoder_y.weight.start + i * yw + k] += v;
        }
        g[r.encoder_y.bias.start + i] += row[f + yw];
        g[r.encoder_x.bias.start + i] += row[f + yw + 1];
    }
}

/// `Workspace::enc_grad = d_h0^T U` reassociated through the first layer's input projection, and
/// that projection's weight gradient (see [`backward`]).
fn through_first_projection(pass: &BackwardPass<'_>, ws: &mut Workspace, g: &mut [f32]) {
    let c = pass.config;
    let (e, fa, tok) = (c.emsize, c.token_width(), pass.dims.tokens);
    let plan = LayerPlan::new(c, &pass.dims, 0, false);
    let (q, kv) = (plan.out_rows(), plan.kv.clone());
    let u = Rows::dense(&ws.enc_in[..tok * fa], tok, fa);
    let d_h = Rows::dense(&ws.d_hidden[..tok * e], tok, e);
    let d_qkv = Qkv::new(&ws.d_qkv[..tok * 3 * e], tok, e);
    let in_proj = &pass.ranges.layers[0].in_proj;
    let ga = &mut ws.enc_grad[..e * fa];
    let tq = &mut ws.enc_tmp[..3 * e * fa];

    // R^T U over the rows the first layer computes.
    at_b(ga, d_h.row_range(q.clone()), u.row_range(q.clone()), false);
    // tq = [dQ^T U ; dKV^T U], (3E, F + Y + 2).
    let (tq_q, tq_kv) = tq.split_at_mut(e * fa);
    at_b(tq_q, d_qkv.q(q.clone()), u.row_range(q), false);
    at_b(tq_kv, d_qkv.kv(kv.clone()), u.row_range(kv), false);
    let tq = Rows::dense(tq, 3 * e, fa);
    // dWa += W_in^T tq
    let w_in = Rows::dense(&pass.params[in_proj.weight.clone()], 3 * e, e);
    at_b(ga, w_in, tq, true);
    // dW_in += tq Wa^T
    let d_w_in = RowsMut::dense(&mut g[in_proj.weight.clone()], 3 * e, e);
    matmul_wt(d_w_in, tq, &ws.enc_w[..e * fa], true);
}

/// `dst (+)= a^T b` into a row-major (`a.cols`, `b.cols`) `dst` (f32, gemm).
fn at_b(dst: &mut [f32], a: Rows<'_>, b: Rows<'_>, accumulate: bool) {
    let dst = MatMut::row_major(dst, a.cols, b.cols);
    matmul(dst, a.mat().t(), b.mat(), accumulate, 1.0);
}

#[cfg(test)]
mod tests {
    use super::fold_first_projection;

    #[test]
    fn folding_pays_off_only_for_narrow_inputs_and_many_rows() {
        // The default benchmark model (emsize 256, one feature): training and 1000-query inference
        // fold, a single cached query does not (building the folded weight would dominate).
        assert!(fold_first_projection(256, 4, 6400));
        assert!(fold_first_projection(256, 4, 1000));
        assert!(!fold_first_projection(256, 4, 1));
        // break-even: rows (E - fa) > 3 E fa
        assert!(!fold_first_projection(8, 6, 72));
        assert!(fold_first_projection(8, 6, 73));
        // inputs as wide as the model never fold
        assert!(!fold_first_projection(16, 16, 1_000_000));
        assert!(!fold_first_projection(16, 20, 1_000_000));
    }
}

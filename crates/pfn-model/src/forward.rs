//! The forward pass.
//!
//! Tokens are processed as one row-major matrix with all context tokens first (dataset b, point i
//! at row `b * n + i`) and all query tokens after them (dataset b, query j at row
//! `batch * n + b * m + j`), so that every linear layer is one matrix product, the keys and values of
//! the context are one block, and the decoder reads one contiguous block. Context tokens never see
//! the queries, and in the last layer only the query rows are computed after the attention (the
//! context outputs of the last layer are unused). With a cached context (see [`crate::cache`]) every
//! layer computes only the query rows, reading the context keys and values from the cache.

use pfn_engine::elementwise::{broadcast_rows, broadcast_rows_strided};
use pfn_engine::gelu::{bias_gelu_forward, bias_gelu_inplace, bias_gelu_keep_input};
use pfn_engine::layer_norm::residual_layer_norm_forward;
use pfn_engine::{
    linear_bf16, matmul, pfn_attention_forward, pfn_attention_forward_bf16, thin_linear,
    Bf16Epilogue, Engine, LayerNormParams, MatMut, MatRef, PfnAttention,
};

use crate::config::PfnConfig;
use crate::error::{ModelError, Result};
use crate::model::PfnModel;
use crate::params::{LinearRanges, NormRanges};
use crate::precision::Precision;
use crate::workspace::{Batch, Dims, Mode, Workspace};

/// `dst (rows x out) (+)= src (rows x in) * W^T` for a PyTorch-layout weight W (out, in).
pub(crate) fn linear_into(
    dst: &mut [f32],
    src: &[f32],
    w: &[f32],
    rows: usize,
    out: usize,
    inp: usize,
    accumulate: bool,
) {
    matmul(
        MatMut::row_major(dst, rows, out),
        MatRef::row_major(src, rows, inp),
        MatRef::row_major(w, out, inp).t(),
        accumulate,
        1.0,
    );
}

/// Where the tokens of a forward pass come from.
#[derive(Clone, Copy)]
pub(crate) enum Source<'a> {
    /// A full batch: context and query points.
    Batch(&'a Batch<'a>),
    /// Query points (batch, m, F) against a context whose per-layer keys and values are cached
    /// ((batch * n, 2E) per layer).
    Queries {
        x: &'a [f32],
        cache_kv: &'a [Vec<f32>],
    },
}

/// The attention geometry of a layer; `queries_only` skips the context outputs.
pub(crate) fn attention_geometry(c: &PfnConfig, d: &Dims, queries_only: bool) -> PfnAttention {
    PfnAttention {
        batch: d.batch,
        n_ctx: d.n,
        n_qry: d.m,
        heads: c.nhead,
        head_dim: c.head_dim(),
        query_self: c.query_self_attention,
        context_outputs: !queries_only,
    }
}

impl PfnModel {
    pub(crate) fn check_batch(&self, batch: &Batch<'_>) -> Result<Dims> {
        let (b, t, n) = (batch.batch, batch.seq_len, batch.single_eval_pos);
        if b == 0 {
            return Err(ModelError::InvalidArgument {
                argument: "batch",
                reason: "must be at least 1".into(),
            });
        }
        if t == 0 {
            return Err(ModelError::InvalidArgument {
                argument: "seq_len",
                reason: "must be at least 1".into(),
            });
        }
        if n > t {
            return Err(ModelError::InvalidArgument {
                argument: "single_eval_pos",
                reason: format!("{n} exceeds seq_len {t}"),
            });
        }
        let f = self.config.num_features;
        if batch.x.len() != b * t * f {
            return Err(ModelError::LengthMismatch {
                argument: "x (batch x seq_len x num_features)",
                expected: b * t * f,
                actual: batch.x.len(),
            });
        }
        if batch.y.len() != b * t && batch.y.len() != b * n {
            return Err(ModelError::LengthMismatch {
                argument: "y (batch x seq_len, or batch x single_eval_pos)",
                expected: b * t,
                actual: batch.y.len(),
            });
        }
        if let Some(i) = batch.x.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::NonFinite {
                argument: "x",
                index: i,
                value: batch.x[i],
            });
        }
        let y_stride = batch.y.len() / b;
        for bi in 0..b {
            let row = &batch.y[bi * y_stride..bi * y_stride + n];
            if let Some(i) = row.iter().position(|v| !v.is_finite()) {
                return Err(ModelError::NonFinite {
                    argument: "y",
                    index: bi * y_stride + i,
                    value: row[i],
                });
            }
        }
        let m = t - n;
        Ok(Dims {
            batch: b,
            n,
            m,
            tokens: b * t,
            ctx_rows: b * n,
            qry_rows: b * m,
        })
    }

    /// Runs the network on a batch and returns the logits of the query points, (batch, m, n_out)
    /// row-major with m = seq_len - single_eval_pos.
    ///
    /// In a [`Mode::Training`] workspace the activations are kept for [`PfnModel::backward`].
    /// With `single_eval_pos = 0` and query self-attention off, queries attend to nothing: their
    /// attention output is defined as 0 (PyTorch would return NaN).
    ///
    /// A failed call leaves the workspace without a stored pass (a following `backward` is refused).
    ///
    /// Errors: a zero batch or sequence length, `single_eval_pos > seq_len`, wrong lengths of `x`
    /// or `y`, or non-finite inputs (the first one is named).
    pub fn forward<'w>(
        &self,
        engine: &Engine,
        ws: &'w mut Workspace,
        batch: &Batch<'_>,
    ) -> Result<&'w [f32]> {
        ws.state = None;
        let dims = self.check_batch(batch)?;
        ws.prepare(&self.config, &dims);
        engine.install(|| self.forward_impl(ws, Source::Batch(batch), &dims, None));
        ws.state = Some(dims);
        Ok(&ws.logits[..dims.qry_rows * self.config.n_out])
    }

    /// The forward pass over the token layout. With `src = Source::Queries`, the context rows hold
    /// only the cached keys and values: every layer computes the query rows only. With `kv_out`, the
    /// keys and values of the context rows of every layer are copied out (to build a cache).
    pub(crate) fn forward_impl(
        &self,
        ws: &mut Workspace,
        src: Source<'_>,
        d: &Dims,
        mut kv_out: Option<&mut [Vec<f32>]>,
    ) {
        let c = &self.config;
        let p = &self.params;
        let r = &self.layout.ranges;
        let (e, f, nh, o) = (c.emsize, c.num_features, c.nhid, c.n_out);
        let (n, m, tok, ctx, qry) = (d.n, d.m, d.tokens, d.ctx_rows, d.qry_rows);
        let train = ws.mode == Mode::Training;
        let precision = if train {
            self.train_precision
        } else {
            self.precision
        };
        // bf16 weights for the large products of a bf16 pass (packed once per parameter change).
        let bf = (precision == Precision::Bf16).then(|| self.bf16_weights());
        // Kernels of bf16 inference only: the thin encoder kernel and the bf16 attention products
        // (training keeps gemm there and the attention in f32).
        let infer_bf = bf.is_some() && !train;
        let t = n + m;
        let cached = match src {
            Source::Queries { cache_kv, .. } => Some(cache_kv),
            Source::Batch(_) => None,
        };
        // First row that each layer computes (the context rows are skipped with a cache).
        let enc_r0 = if cached.is_some() { ctx } else { 0 };

        // Gather the inputs into the token layout: row = [x, y, 1, 1] for context tokens and
        // [x, 0, 0, 1] for queries, so that Linear_x(x) + Linear_y(y) is one product with the
        // combined weight [W_x | w_y | b_y | b_x].
        let fa = f + 3;
        let u = &mut ws.enc_in[..tok * fa];
        match src {
            Source::Batch(batch) => {
                // Only the first n + m points of each dataset are used (all of them, except when
                // encoding a context, where m = 0).
                let (y_stride, x_stride) = (batch.y.len() / d.batch, batch.seq_len);
                for b in 0..d.batch {
                    for s in 0..t {
                        let (row, yv, c) = if s < n {
                            (b * n + s, batch.y[b * y_stride + s], 1.0)
                        } else {
                            (ctx + b * m + (s - n), 0.0, 0.0)
                        };
                        let dst = &mut u[row * fa..(row + 1) * fa];
                        dst[..f].copy_from_slice(
                            &batch.x[(b * x_stride + s) * f..(b * x_stride + s + 1) * f],
                        );
                        dst[f] = yv;
                        dst[f + 1] = c;
                        dst[f + 2] = 1.0;
                    }
                }
            }
            Source::Queries { x, .. } => {
                for q in 0..qry {
                    let dst = &mut u[(ctx + q) * fa..(ctx + q + 1) * fa];
                    dst[..f].copy_from_slice(&x[q * f..(q + 1) * f]);
                    dst[f] = 0.0;
                    dst[f + 1] = 0.0;
                    dst[f + 2] = 1.0;
                }
            }
        }
        let wa = &mut ws.enc_w[..e * fa];
        let (wx, bx) = (&p[r.encoder_x.weight.clone()], &p[r.encoder_x.bias.clone()]);
        let (wy, by) = (&p[r.encoder_y.weight.clone()], &p[r.encoder_y.bias.clone()]);
        for i in 0..e {
            let dst = &mut wa[i * fa..(i + 1) * fa];
            dst[..f].copy_from_slice(&wx[i * f..(i + 1) * f]);
            dst[f] = wy[i];
            dst[f + 1] = by[i];
            dst[f + 2] = bx[i];
        }
        let h0 = &mut ws.hidden[0][enc_r0 * e..tok * e];
        if infer_bf {
            // bf16 inference: the thin product without gemm's packing (exact f32 arithmetic).
            thin_linear(h0, e, &u[enc_r0 * fa..], fa, tok - enc_r0, wa, e, fa, None);
        } else {
            linear_into(h0, &u[enc_r0 * fa..], wa, tok - enc_r0, e, fa, false);
        }

        let nl = c.nlayers;
        // The first layer's projections read the encoder output h0 = U Wa^T only through
        // h0 W_in^T = U (W_in Wa)^T: with the folded (3E, F + 3) weight they cost tokens * 3E * (F + 3)
        // instead of tokens * 3E * E.
        let first_rows = {
            let r0 = if nl == 1 || cached.is_some() { ctx } else { 0 };
            let kv_end = if c.query_self_attention { tok } else { ctx }.max(enc_r0);
            (tok - r0) + (kv_end - enc_r0)
        };
        let fold_first = nl > 0 && fold_first_projection(e, fa, first_rows);
        if fold_first {
            let first = &r.layers[0];
            matmul(
                MatMut::row_major(&mut ws.enc_qkv_w[..3 * e * fa], 3 * e, fa),
                MatRef::row_major(&p[first.in_proj.weight.clone()], 3 * e, e),
                MatRef::row_major(&ws.enc_w[..e * fa], e, fa),
                false,
                1.0,
            );
        }
        for l in 0..nl {
            let last = l + 1 == nl;
            // Without context outputs (last layer, or cached context) only query rows are computed.
            let queries_only = last || cached.is_some();
            let geo = attention_geometry(c, d, queries_only);
            let r0 = if queries_only { ctx } else { 0 };
            let rows = tok - r0;
            let kv_start = enc_r0;
            let kv_end = if c.query_self_attention { tok } else { ctx }.max(kv_start);
            let (hin_idx, hout_idx) = (l % 2, (l + 1) % 2);
            let (hin, hout) = pair(&mut ws.hidden, hin_idx, hout_idx);
            let hin = &hin[..tok * e];
            let hout = &mut hout[..tok * e];
            let lb = &mut ws.layers[if train { l } else { 0 }];
            let lr = &r.layers[l];

            // Q for rows [r0, tok), K and V for rows [kv_start, kv_end).
            let qkv = &mut lb.qkv[..tok * 3 * e];
            let b_in = &p[lr.in_proj.bias.clone()];
            // The projection's input (tokens, k) and weight (3E, k): h and W_in, or the encoder input
            // and the folded weight in the first layer.
            let (src, w_in, k): (&[f32], &[f32], usize) = if l == 0 && fold_first {
                (&ws.enc_in[..tok * fa], &ws.enc_qkv_w[..3 * e * fa], fa)
            } else {
                (hin, &p[lr.in_proj.weight.clone()], e)
            };
            let kv_rows = kv_end - kv_start;
            let layer_bf = bf.map(|b| &b.layers[l]);
            if let (Some(lw), false) = (layer_bf, l == 0 && fold_first) {
                linear_bf16(
                    &mut qkv[r0 * 3 * e..],
                    3 * e,
                    &src[r0 * k..],
                    k,
                    rows,
                    &lw.q,
                    false,
                    Bf16Epilogue::Bias(&b_in[..e]),
                );
                linear_bf16(
                    &mut qkv[kv_start * 3 * e + e..],
                    3 * e,
                    &src[kv_start * k..],
                    k,
                    kv_rows,
                    &lw.kv,
                    false,
                    Bf16Epilogue::Bias(&b_in[e..]),
                );
            } else if infer_bf && l == 0 && fold_first {
                let q_dst = &mut qkv[r0 * 3 * e..];
                thin_linear(
                    q_dst,
                    3 * e,
                    &src[r0 * k..],
                    k,
                    rows,
                    &w_in[..e * k],
                    e,
                    k,
                    Some(&b_in[..e]),
                );
                let kv_dst = &mut qkv[kv_start * 3 * e + e..];
                let kv_src = &src[kv_start * k..];
                let kv_w = &w_in[e * k..3 * e * k];
                thin_linear(
                    kv_dst,
                    3 * e,
                    kv_src,
                    k,
                    kv_rows,
                    kv_w,
                    2 * e,
                    k,
                    Some(&b_in[e..]),
                );
            } else if r0 == 0 && kv_start == 0 && kv_end == tok {
                broadcast_rows(qkv, b_in);
                linear_into(qkv, src, w_in, tok, 3 * e, k, true);
            } else {
                broadcast_rows_strided(&mut qkv[r0 * 3 * e..], rows, 3 * e, &b_in[..e]);
                matmul(
                    MatMut::new(&mut qkv[r0 * 3 * e..], rows, e, 3 * e, 1),
                    MatRef::row_major(&src[r0 * k..], rows, k),
                    MatRef::row_major(&w_in[..e * k], e, k).t(),
                    true,
                    1.0,
                );
                let kv_dst = &mut qkv[kv_start * 3 * e + e..];
                broadcast_rows_strided(kv_dst, kv_rows, 3 * e, &b_in[e..]);
                matmul(
                    MatMut::new(kv_dst, kv_rows, 2 * e, 3 * e, 1),
                    MatRef::row_major(&src[kv_start * k..], kv_rows, k),
                    MatRef::row_major(&w_in[e * k..], 2 * e, k).t(),
                    true,
                    1.0,
                );
            }
            // Context keys and values: from the cache, or copied into a new cache.
            if let Some(kv) = cached {
                for row in 0..ctx {
                    qkv[row * 3 * e + e..(row + 1) * 3 * e]
                        .copy_from_slice(&kv[l][row * 2 * e..(row + 1) * 2 * e]);
                }
            }
            if let Some(out) = kv_out.as_deref_mut() {
                for row in 0..ctx {
                    out[l][row * 2 * e..(row + 1) * 2 * e]
                        .copy_from_slice(&qkv[row * 3 * e + e..(row + 1) * 3 * e]);
                }
            }
            let probs = &mut lb.probs[..geo.probs_len()];
            let attn = &mut lb.attn[..tok * e];
            if infer_bf {
                pfn_attention_forward_bf16(&geo, qkv, probs, attn);
            } else {
                pfn_attention_forward(&geo, qkv, probs, attn);
            }

            // x1 = LN1(h + out_proj(attn))
            let span = r0 * e..tok * e;
            let tmp = &mut ws.tmp[span.clone()];
            if let Some(lw) = layer_bf {
                let a = &attn[span.clone()];
                linear_bf16(tmp, e, a, e, rows, &lw.out_proj, false, Bf16Epilogue::None);
            } else {
                linear_into(
                    tmp,
                    &attn[span.clone()],
                    &p[lr.out_proj.weight.clone()],
                    rows,
                    e,
                    e,
                    false,
                );
            }
            let h1 = &mut ws.h1[span.clone()];
            residual_layer_norm_forward(
                &hin[span.clone()],
                tmp,
                Some(&p[lr.out_proj.bias.clone()]),
                norm(p, &lr.norm1, c.layer_norm_eps),
                h1,
                &mut lb.xhat1[span.clone()],
                &mut lb.rstd1[r0..tok],
            );

            // out = LN2(x1 + linear2(GELU(linear1(x1))))
            let fspan = r0 * nh..tok * nh;
            let act = &mut ws.ff_act[fspan.clone()];
            if train {
                // Keep the GELU input; the backward rebuilds the activation and its derivative.
                let z = &mut lb.ff_z[fspan];
                if let Some(lw) = layer_bf {
                    linear_bf16(z, nh, h1, e, rows, &lw.linear1, false, Bf16Epilogue::None);
                } else {
                    linear_into(z, h1, &p[lr.linear1.weight.clone()], rows, nh, e, false);
                }
                bias_gelu_keep_input(z, &p[lr.linear1.bias.clone()], act);
            } else if let Some(lw) = layer_bf {
                let b1 = Bf16Epilogue::BiasGelu(&p[lr.linear1.bias.clone()]);
                linear_bf16(act, nh, h1, e, rows, &lw.linear1, false, b1);
            } else {
                linear_into(act, h1, &p[lr.linear1.weight.clone()], rows, nh, e, false);
                bias_gelu_inplace(act, &p[lr.linear1.bias.clone()]);
            }
            if let Some(lw) = layer_bf {
                linear_bf16(
                    tmp,
                    e,
                    act,
                    nh,
                    rows,
                    &lw.linear2,
                    false,
                    Bf16Epilogue::None,
                );
            } else {
                linear_into(tmp, act, &p[lr.linear2.weight.clone()], rows, e, nh, false);
            }
            residual_layer_norm_forward(
                h1,
                tmp,
                Some(&p[lr.linear2.bias.clone()]),
                norm(p, &lr.norm2, c.layer_norm_eps),
                &mut hout[span.clone()],
                &mut lb.xhat2[span],
                &mut lb.rstd2[r0..tok],
            );
        }

        // Decoder on the query rows.
        let last_idx = nl % 2;
        let hq = &ws.hidden[last_idx][ctx * e..tok * e];
        let act = &mut ws.dec_act[..qry * nh];
        let dh = &r.decoder_hidden;
        if train {
            let pre = &mut ws.dec_deriv[..qry * nh];
            if let Some(b) = bf {
                let w = &b.decoder_hidden;
                linear_bf16(pre, nh, hq, e, qry, w, false, Bf16Epilogue::None);
            } else {
                linear_into(pre, hq, &p[dh.weight.clone()], qry, nh, e, false);
            }
            bias_gelu_forward(pre, &p[dh.bias.clone()], act);
        } else if let Some(b) = bf {
            let epi = Bf16Epilogue::BiasGelu(&p[dh.bias.clone()]);
            linear_bf16(act, nh, hq, e, qry, &b.decoder_hidden, false, epi);
        } else {
            linear_into(act, hq, &p[dh.weight.clone()], qry, nh, e, false);
            bias_gelu_inplace(act, &p[dh.bias.clone()]);
        }
        let logits = &mut ws.logits[..qry * o];
        let dout: &LinearRanges = &r.decoder_output;
        if let Some(b) = bf {
            let epi = Bf16Epilogue::Bias(&p[dout.bias.clone()]);
            linear_bf16(logits, o, act, nh, qry, &b.decoder_output, false, epi);
        } else {
            broadcast_rows(logits, &p[dout.bias.clone()]);
            linear_into(logits, act, &p[dout.weight.clone()], qry, o, nh, true);
        }
    }
}

/// Whether computing a projection of `rows` rows from the encoder input (width `fa`) through a folded
/// (3E, fa) weight, which itself costs 3E * E * fa, is cheaper than from the (rows, E) hidden state.
pub(crate) fn fold_first_projection(e: usize, fa: usize, rows: usize) -> bool {
    fa < e && rows * (e - fa) > 3 * e * fa
}

/// The LayerNorm parameters of `r` in the flat parameter buffer.
pub(crate) fn norm<'a>(p: &'a [f32], r: &NormRanges, eps: f32) -> LayerNormParams<'a> {
    LayerNormParams {
        gamma: &p[r.gamma.clone()],
        beta: &p[r.beta.clone()],
        eps,
    }
}

/// Two distinct elements of a vector, both mutable.
fn pair<T>(v: &mut [T], a: usize, b: usize) -> (&mut T, &mut T) {
    assert_ne!(a, b, "pair of identical indices");
    if a < b {
        let (lo, hi) = v.split_at_mut(b);
        (&mut lo[a], &mut hi[0])
    } else {
        let (lo, hi) = v.split_at_mut(a);
        (&mut hi[0], &mut lo[b])
    }
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

//! The backward pass: d loss / d logits to gradients of every parameter.
//!
//! With bf16 training ([`PfnModel::set_training_precision`]) the backward products of the layers
//! that the forward runs in bf16 (attention projections except the first layer's folded one,
//! feed-forward, decoder) take bf16 operands with f32 accumulation: input gradients `dy W` through
//! the transposed packing of W, weight gradients `dy^T x` through
//! [`pfn_engine::matmul_tn_bf16`]. Gradients are accumulated in f32.

use std::ops::Range;

use pfn_engine::gelu::{gelu_backward, gelu_recompute};
use pfn_engine::layer_norm::{layer_norm_backward, layer_norm_output};
use pfn_engine::reduce::{col_sums_accumulate, col_sums_accumulate_strided};
use pfn_engine::{
    linear_bf16, matmul, matmul_tn_bf16, pfn_attention_backward, Bf16Epilogue, Engine, MatMut,
    MatRef, PackedBf16Linear,
};

use crate::error::{ModelError, Result};
use crate::forward::{attention_geometry, norm};
use crate::model::PfnModel;
use crate::params::{LinearRanges, NormRanges};
use crate::precision::{Bf16TransposedWeights, Precision};
use crate::workspace::{Dims, Mode, Workspace};

/// For a linear layer y = x W^T + b over `rows` rows: accumulates dW += dy^T x and db += colsum(dy)
/// (the weight gradient with bf16 operands when `bf16`).
#[allow(clippy::too_many_arguments)]
fn linear_param_grads(
    g: &mut [f32],
    lr: &LinearRanges,
    dy: &[f32],
    x: &[f32],
    rows: usize,
    out: usize,
    inp: usize,
    bf16: bool,
) {
    weight_grad(g, lr, dy, x, rows, out, inp, bf16);
    col_sums_accumulate(dy, &mut g[lr.bias.clone()]);
}

/// dx (+)= dy W for a PyTorch-layout weight W (out, in): `dx` is (rows, in) row-major, `dy` is
/// (rows, out) with row stride `dy_stride`. With `wt` (W packed transposed) the operands are
/// rounded to bf16 (f32 accumulation).
#[allow(clippy::too_many_arguments)]
fn linear_input_grad(
    dx: &mut [f32],
    dy: &[f32],
    dy_stride: usize,
    w: &[f32],
    wt: Option<&PackedBf16Linear>,
    rows: usize,
    out: usize,
    inp: usize,
    accumulate: bool,
) {
    match wt {
        Some(wt) => linear_bf16(
            dx,
            inp,
            dy,
            dy_stride,
            rows,
            wt,
            accumulate,
            Bf16Epilogue::None,
        ),
        None => matmul(
            MatMut::row_major(dx, rows, inp),
            MatRef::new(dy, rows, out, dy_stride, 1),
            MatRef::row_major(w, out, inp),
            accumulate,
            1.0,
        ),
    }
}

/// dW += dy^T x over `rows` rows into a row-major (out, in) `dw`: `dy` is (rows, out) with row
/// stride `dy_stride`, `x` is (rows, in) row-major; bf16 operands (f32 accumulation) when `bf16`.
#[allow(clippy::too_many_arguments)]
fn weight_grad_into(
    dw: &mut [f32],
    dy: &[f32],
    dy_stride: usize,
    x: &[f32],
    rows: usize,
    out: usize,
    inp: usize,
    bf16: bool,
) {
    if bf16 {
        matmul_tn_bf16(dw, inp, dy, dy_stride, x, inp, rows, out, inp, true);
    } else {
        matmul(
            MatMut::row_major(dw, out, inp),
            MatRef::new(dy, rows, out, dy_stride, 1).t(),
            MatRef::row_major(x, rows, inp),
            true,
            1.0,
        );
    }
}

/// Disjoint ranges of one buffer, all mutable at once.
///
/// # Panics
/// If two ranges overlap (a bug in the layout code).
fn ranges_mut<const N: usize>(buf: &mut [f32], ranges: [Range<usize>; N]) -> [&mut [f32]; N] {
    let mut order: [usize; N] = std::array::from_fn(|i| i);
    order.sort_by_key(|&i| ranges[i].start);
    let mut out: [&mut [f32]; N] = std::array::from_fn(|_| Default::default());
    let mut rest = buf;
    let mut offset = 0;
    for i in order {
        let r = &ranges[i];
        assert!(r.start >= offset, "overlapping parameter ranges");
        let tail = std::mem::take(&mut rest);
        let (_, tail) = tail.split_at_mut(r.start - offset);
        let (mid, tail) = tail.split_at_mut(r.len());
        out[i] = mid;
        rest = tail;
        offset = r.end;
    }
    out
}

/// Backward through a residual LayerNorm block: `dz` goes from d out to d(x + branch + bias),
/// accumulating the LayerNorm gradients and the branch's bias gradient in the same pass.
fn norm_backward(
    g: &mut [f32],
    p: &[f32],
    nr: &NormRanges,
    bias: &Range<usize>,
    dz: &mut [f32],
    xhat: &[f32],
    rstd: &[f32],
) {
    let [dgamma, dbeta, dbias] = ranges_mut(g, [nr.gamma.clone(), nr.beta.clone(), bias.clone()]);
    layer_norm_backward(
        dz,
        xhat,
        rstd,
        &p[nr.gamma.clone()],
        dgamma,
        dbeta,
        Some(dbias),
    );
}

/// dW += dy^T x for a linear layer whose bias gradient was already accumulated elsewhere.
#[allow(clippy::too_many_arguments)]
fn weight_grad(
    g: &mut [f32],
    lr: &LinearRanges,
    dy: &[f32],
    x: &[f32],
    rows: usize,
    out: usize,
    inp: usize,
    bf16: bool,
) {
    weight_grad_into(&mut g[lr.weight.clone()], dy, out, x, rows, out, inp, bf16);
}

impl PfnModel {
    /// Backpropagates `d_logits` = d loss / d logits, (batch, m, n_out) as returned by the last
    /// [`PfnModel::forward`] on `ws`, and **adds** the parameter gradients to the gradient buffer
    /// (call [`PfnModel::zero_grad`] first for a fresh gradient).
    ///
    /// The parameters must not have changed since that forward pass. Each forward pass allows one
    /// backward pass: to save memory the backward rebuilds activations in place of what the forward
    /// kept, so a second `backward` on the same pass is refused.
    ///
    /// Errors: no preceding training-mode forward on `ws` (or its backward already ran), or
    /// `d_logits` of the wrong length.
    pub fn backward(
        &mut self,
        engine: &Engine,
        ws: &mut Workspace,
        d_logits: &[f32],
    ) -> Result<()> {
        let dims = match (ws.mode, ws.state, ws.backward_done) {
            (Mode::Training, Some(d), false) => d,
            _ => return Err(ModelError::NoForwardState),
        };
        let expected = dims.qry_rows * self.config.n_out;
        if d_logits.len() != expected {
            return Err(ModelError::LengthMismatch {
                argument: "d_logits (batch x queries x n_out)",
                expected,
                actual: d_logits.len(),
            });
        }
        ws.prepare_backward(&self.config, &dims);
        // The pass is consumed even if the backward panics half-way through.
        ws.backward_done = true;
        engine.install(|| self.backward_impl(ws, d_logits, &dims));
        Ok(())
    }

    fn backward_impl(&mut self, ws: &mut Workspace, d_logits: &[f32], d: &Dims) {
        let c = self.config.clone();
        // bf16 training: the weights packed transposed for the input gradients (once per
        // parameter change).
        let bf = self.train_precision == Precision::Bf16;
        if bf && self.bf16_t.get().is_none() {
            let packed = Bf16TransposedWeights::pack(self);
            // Cannot be set already: the cell was checked empty above.
            let _ = self.bf16_t.set(packed);
        }
        let bt: Option<&Bf16TransposedWeights> = if bf { self.bf16_t.get() } else { None };
        let p = &self.params;
        let g = &mut self.grads;
        let r = &self.layout.ranges;
        let (e, f, nh, o) = (c.emsize, c.num_features, c.nhid, c.n_out);
        let (tok, ctx, qry) = (d.tokens, d.ctx_rows, d.qry_rows);
        let nl = c.nlayers;

        // Decoder. Its input, the last layer's output, is rebuilt from that layer's xhat2 (only
        // the query rows exist).
        let d_h = &mut ws.d_hidden[..tok * e];
        {
            let hq: &[f32] = if nl == 0 {
                &ws.hidden[0][ctx * e..tok * e]
            } else {
                let lr = &r.layers[nl - 1];
                let out = &mut ws.tmp[ctx * e..tok * e];
                layer_norm_output(
                    &ws.layers[nl - 1].xhat2[ctx * e..tok * e],
                    norm(p, &lr.norm2, c.layer_norm_eps),
                    out,
                );
                out
            };
            let act = &ws.dec_act[..qry * nh];
            let d_dec = &mut ws.d_dec[..qry * nh];
            let (dh, dout) = (&r.decoder_hidden, &r.decoder_output);
            linear_param_grads(g, dout, d_logits, act, qry, o, nh, bf);
            linear_input_grad(
                d_dec,
                d_logits,
                o,
                &p[dout.weight.clone()],
                bt.map(|b| &b.decoder_output),
                qry,
                o,
                nh,
                false,
            );
            gelu_backward(
                d_dec,
                &ws.dec_deriv[..qry * nh],
                Some(&mut g[dh.bias.clone()]),
            );
            weight_grad(g, dh, d_dec, hq, qry, nh, e, bf);
            linear_input_grad(
                &mut d_h[ctx * e..],
                d_dec,
                nh,
                &p[dh.weight.clone()],
                bt.map(|b| &b.decoder_hidden),
                qry,
                nh,
                e,
                false,
            );
            d_h[..ctx * e].fill(0.0);
        }

        for l in (0..nl).rev() {
            let last = l + 1 == nl;
            let geo = attention_geometry(&c, d, last);
            let r0 = if last { ctx } else { 0 };
            let rows = tok - r0;
            let kv_end = if c.query_self_attention { tok } else { ctx };
            let (earlier, rest) = ws.layers.split_at_mut(l);
            let lb = &mut rest[0];
            let lr = &r.layers[l];
            let lt = bt.map(|b| &b.layers[l]);
            let span = r0 * e..tok * e;
            let fspan = r0 * nh..tok * nh;

            // Through LN2: d_h becomes d(x1 + ff_out) (and the linear2 bias gradient its column sum).
            let dz = &mut d_h[span.clone()];
            norm_backward(
                g,
                p,
                &lr.norm2,
                &lr.linear2.bias,
                dz,
                &lb.xhat2[span.clone()],
                &lb.rstd2[r0..tok],
            );

            // Feed-forward; the residual keeps dz, the branch adds d_ff W1. The activation is
            // rebuilt from the kept GELU input (which becomes the derivative), h1 from xhat1.
            let d_ff = &mut ws.d_ff[fspan.clone()];
            let act = &mut ws.ff_act[fspan.clone()];
            gelu_recompute(&mut lb.ff_z[fspan.clone()], act);
            weight_grad(g, &lr.linear2, dz, act, rows, e, nh, bf);
            let w2 = &p[lr.linear2.weight.clone()];
            let w2t = lt.map(|t| &t.linear2);
            linear_input_grad(d_ff, dz, e, w2, w2t, rows, e, nh, false);
            gelu_backward(d_ff, &lb.ff_z[fspan], Some(&mut g[lr.linear1.bias.clone()]));
            let h1 = &mut ws.tmp[span.clone()];
            let norm1 = norm(p, &lr.norm1, c.layer_norm_eps);
            layer_norm_output(&lb.xhat1[span.clone()], norm1, h1);
            weight_grad(g, &lr.linear1, d_ff, h1, rows, nh, e, bf);
            let w1 = &p[lr.linear1.weight.clone()];
            let w1t = lt.map(|t| &t.linear1);
            linear_input_grad(dz, d_ff, nh, w1, w1t, rows, nh, e, true);

            // Through LN1: d_h becomes d(x + attn_out) (and the out_proj bias gradient its column sum).
            norm_backward(
                g,
                p,
                &lr.norm1,
                &lr.out_proj.bias,
                dz,
                &lb.xhat1[span.clone()],
                &lb.rstd1[r0..tok],
            );

            // Output projection.
            let d_attn = &mut ws.d_attn[..tok * e];
            weight_grad(g, &lr.out_proj, dz, &lb.attn[span.clone()], rows, e, e, bf);
            linear_input_grad(
                &mut d_attn[span.clone()],
                dz,
                e,
                &p[lr.out_proj.weight.clone()],
                lt.map(|t| &t.out_proj),
                rows,
                e,
                e,
                false,
            );

            // Attention.
            let qkv = &lb.qkv[..tok * 3 * e];
            let d_qkv = &mut ws.d_qkv[..tok * 3 * e];
            pfn_attention_backward(
                &geo,
                qkv,
                &lb.probs[..geo.probs_len()],
                d_attn,
                &mut ws.d_probs[..geo.probs_len()],
                d_qkv,
            );

            // Input projection. Its input h (l > 0) is the previous layer's output, rebuilt from that
            // layer's xhat2 (every row: only the last layer skips context rows); the first layer's
            // weight gradient is formed from the encoder input below and needs no h.
            let hin: &[f32] = if l > 0 {
                let prev_r = &r.layers[l - 1];
                let out = &mut ws.tmp[..tok * e];
                layer_norm_output(
                    &earlier[l - 1].xhat2[..tok * e],
                    norm(p, &prev_r.norm2, c.layer_norm_eps),
                    out,
                );
                out
            } else {
                &[]
            };
            let w_in = &p[lr.in_proj.weight.clone()];
            let d_qkv: &[f32] = d_qkv;
            let full = r0 == 0 && kv_end == tok;
            let dq = MatRef::new(&d_qkv[r0 * 3 * e..], rows, e, 3 * e, 1);
            let dkv = MatRef::new(&d_qkv[e..], kv_end, 2 * e, 3 * e, 1);
            // The first layer's weight gradient is formed below from the encoder input.
            let weights = l > 0;
            if full && weights {
                linear_param_grads(g, &lr.in_proj, d_qkv, hin, tok, 3 * e, e, bf);
            } else if full {
                col_sums_accumulate(d_qkv, &mut g[lr.in_proj.bias.clone()]);
            } else {
                let [gw, gb] = ranges_mut(g, [lr.in_proj.weight.clone(), lr.in_proj.bias.clone()]);
                if weights {
                    let (gq, gkv) = gw.split_at_mut(e * e);
                    let dq_rows = &d_qkv[r0 * 3 * e..];
                    weight_grad_into(gq, dq_rows, 3 * e, &hin[span.clone()], rows, e, e, bf);
                    weight_grad_into(gkv, &d_qkv[e..], 3 * e, hin, kv_end, 2 * e, e, bf);
                }
                col_sums_accumulate_strided(&d_qkv[r0 * 3 * e..], rows, 3 * e, &mut gb[..e]);
                col_sums_accumulate_strided(&d_qkv[e..], kv_end, 3 * e, &mut gb[e..]);
            }
            if l > 0 {
                // d_h becomes the gradient of the layer input: residual + dQ W_q + dKV W_kv.
                let w_in_t = lt.and_then(|t| t.in_proj.as_ref());
                if full && w_in_t.is_none() {
                    linear_input_grad(d_h, d_qkv, 3 * e, w_in, None, tok, 3 * e, e, true);
                } else {
                    d_h[..r0 * e].fill(0.0);
                    let (w_q, w_kv) = w_in.split_at(e * e);
                    let (w_qt, w_kvt) = (w_in_t.map(|t| &t.0), w_in_t.map(|t| &t.1));
                    let dq_rows = &d_qkv[r0 * 3 * e..];
                    let dh_rows = &mut d_h[span.clone()];
                    linear_input_grad(dh_rows, dq_rows, 3 * e, w_q, w_qt, rows, e, e, true);
                    let dh_kv = &mut d_h[..kv_end * e];
                    let dkv = &d_qkv[e..];
                    linear_input_grad(dh_kv, dkv, 3 * e, w_kv, w_kvt, kv_end, 2 * e, e, true);
                }
            } else {
                // First layer: the encoder gradient d_h0^T U with d_h0 = R + dQ W_q + dKV W_kv is
                // reassociated as R^T U + W_q^T (dQ^T U) + W_kv^T (dKV^T U), which costs
                // O(tokens * 3E * (F + 3)) instead of the O(tokens * 3E * E) of forming d_h0.
                let fa = f + 3;
                let u = &ws.enc_in[..tok * fa];
                let ga = &mut ws.enc_grad[..e * fa];
                let tq = &mut ws.enc_tmp[..3 * e * fa];
                matmul(
                    MatMut::row_major(ga, e, fa),
                    MatRef::row_major(&d_h[span.clone()], rows, e).t(),
                    MatRef::row_major(&u[r0 * fa..], rows, fa),
                    false,
                    1.0,
                );
                let (tq_q, tq_kv) = tq.split_at_mut(e * fa);
                matmul(
                    MatMut::row_major(tq_q, e, fa),
                    dq.t(),
                    MatRef::row_major(&u[r0 * fa..], rows, fa),
                    false,
                    1.0,
                );
                matmul(
                    MatMut::row_major(tq_kv, 2 * e, fa),
                    dkv.t(),
                    MatRef::row_major(u, kv_end, fa),
                    false,
                    1.0,
                );
                matmul(
                    MatMut::row_major(ga, e, fa),
                    MatRef::row_major(w_in, 3 * e, e).t(),
                    MatRef::row_major(tq, 3 * e, fa),
                    true,
                    1.0,
                );
                // The input projection's weight gradient [dQ | dKV]^T h0 with h0 = U Wa^T is
                // (dQ^T U | dKV^T U) Wa^T = tq Wa^T: 3E * E * (F + 3) instead of tokens * 3E * E.
                matmul(
                    MatMut::row_major(&mut g[lr.in_proj.weight.clone()], 3 * e, e),
                    MatRef::row_major(tq, 3 * e, fa),
                    MatRef::row_major(&ws.enc_w[..e * fa], e, fa).t(),
                    true,
                    1.0,
                );
            }
        }

        // Encoders: the combined weight [W_x | w_y | b_y | b_x] has gradient d_h0^T U.
        let fa = f + 3;
        if nl == 0 {
            matmul(
                MatMut::row_major(&mut ws.enc_grad[..e * fa], e, fa),
                MatRef::row_major(d_h, tok, e).t(),
                MatRef::row_major(&ws.enc_in[..tok * fa], tok, fa),
                false,
                1.0,
            );
        }
        let ga = &ws.enc_grad[..e * fa];
        for i in 0..e {
            let row = &ga[i * fa..(i + 1) * fa];
            for (k, v) in row[..f].iter().enumerate() {
                g[r.encoder_x.weight.start + i * f + k] += v;
            }
            g[r.encoder_y.weight.start + i] += row[f];
            g[r.encoder_y.bias.start + i] += row[f + 1];
            g[r.encoder_x.bias.start + i] += row[f + 2];
        }
    }
}

#[cfg(test)]
mod tests {
    use pfn_engine::Engine;

    use crate::config::PfnConfig;
    use crate::error::ModelError;
    use crate::model::PfnModel;
    use crate::workspace::{Batch, Workspace};

    #[test]
    fn one_backward_per_forward_and_a_new_forward_gives_the_same_gradients() {
        let engine = Engine::new(1).unwrap();
        let mut model = PfnModel::new(PfnConfig::new(2, 8, 2, 12, 2, 5), 4).unwrap();
        let (b, t, n) = (2, 6, 3);
        let x: Vec<f32> = (0..b * t * 2).map(|i| (i as f32 * 0.7).sin()).collect();
        let y: Vec<f32> = (0..b * t).map(|i| (i as f32 * 0.3).cos()).collect();
        let batch = Batch {
            x: &x,
            y: &y,
            batch: b,
            seq_len: t,
            single_eval_pos: n,
        };
        let d_logits: Vec<f32> = (0..b * (t - n) * 5).map(|i| (i as f32).sin()).collect();
        let mut ws = Workspace::training();

        model.forward(&engine, &mut ws, &batch).unwrap();
        model.zero_grad();
        model.backward(&engine, &mut ws, &d_logits).unwrap();
        let first = model.grads().to_vec();
        assert!(first.iter().any(|&g| g != 0.0));
        // the pass is consumed: the gradients stay as they were
        let e = model.backward(&engine, &mut ws, &d_logits).unwrap_err();
        assert!(matches!(e, ModelError::NoForwardState), "{e:?}");
        assert_eq!(model.grads(), &first[..]);
        // the logits of the pass stay readable
        assert_eq!(ws.logits().len(), d_logits.len());

        model.forward(&engine, &mut ws, &batch).unwrap();
        model.zero_grad();
        model.backward(&engine, &mut ws, &d_logits).unwrap();
        let same = first
            .iter()
            .zip(model.grads())
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same,
            "a repeated forward and backward changed the gradients"
        );
    }
}

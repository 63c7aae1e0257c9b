//! The decoder on the query rows, forward and backward:
//!
//! ```text
//! logits = GELU(h W_h^T + b_h) W_o^T + b_o
//! ```
//!
//! with h the last layer's output (the encoder output without layers). Training keeps the hidden
//! layer's activation and GELU derivative.

use pfn_engine::gelu::{bias_gelu_forward, gelu_backward};

use crate::backward::BackwardPass;
use crate::feed_forward;
use crate::forward::Pass;
use crate::ops::{input_grad, linear_param_grads, weight_grad, Linear, Rows, RowsMut};
use crate::workspace::Workspace;

/// Forward: `Workspace::logits` (query rows, n_out) from the query rows of the last hidden state.
pub(crate) fn forward(pass: &Pass<'_>, ws: &mut Workspace) {
    let (c, p, r, d) = (pass.config, pass.params, pass.ranges, &pass.dims);
    let (e, nh, o) = (c.emsize, c.nhid, c.n_out);
    let (ctx, tok, qry) = (d.ctx_rows, d.tokens, d.qry_rows);
    let hidden = Linear::new(p, &r.decoder_hidden, pass.bf16.map(|b| &b.decoder_hidden));
    let output = Linear::new(p, &r.decoder_output, pass.bf16.map(|b| &b.decoder_output));
    let hq = Rows::dense(&ws.hidden[c.nlayers % 2][ctx * e..tok * e], qry, e);

    let act = &mut ws.dec_act[..qry * nh];
    if pass.train {
        let pre = &mut ws.dec_deriv[..qry * nh];
        hidden.product(RowsMut::dense(pre, qry, nh), hq);
        bias_gelu_forward(pre, hidden.bias, act);
    } else {
        hidden.forward_gelu(RowsMut::dense(act, qry, nh), hq);
    }
    let logits = RowsMut::dense(&mut ws.logits[..qry * o], qry, o);
    output.forward(logits, Rows::dense(act, qry, nh));
}

/// Backward: from `d_logits`, accumulates the decoder's gradients and writes d loss / d h into
/// `Workspace::d_hidden` (query rows; the context rows are set to 0).
pub(crate) fn backward(
    pass: &BackwardPass<'_>,
    ws: &mut Workspace,
    g: &mut [f32],
    d_logits: &[f32],
) {
    let (c, p, r, d, bf) = (pass.config, pass.params, pass.ranges, &pass.dims, pass.bf16);
    let (e, nh, o, nl) = (c.emsize, c.nhid, c.n_out, c.nlayers);
    let (ctx, tok, qry) = (d.ctx_rows, d.tokens, d.qry_rows);
    let (dh, dout) = (&r.decoder_hidden, &r.decoder_output);
    let bt = pass.bf16_t;

    // The decoder's input, the last layer's output, is rebuilt from that layer's xhat2 (only the
    // query rows exist).
    let hq: &[f32] = if nl == 0 {
        &ws.hidden[0][ctx * e..tok * e]
    } else {
        let (lr, lb) = (&r.layers[nl - 1], &ws.layers[nl - 1]);
        let span = ctx * e..tok * e;
        feed_forward::rebuild_output(pass, lr, lb, span.clone(), &mut ws.tmp[span])
    };
    let act = Rows::dense(&ws.dec_act[..qry * nh], qry, nh);
    let d_out = Rows::dense(d_logits, qry, o);

    // Output layer.
    linear_param_grads(g, dout, d_out, act, bf);
    let d_dec = &mut ws.d_dec[..qry * nh];
    let (w_o, w_o_t) = (&p[dout.weight.clone()], bt.map(|b| &b.decoder_output));
    input_grad(RowsMut::dense(d_dec, qry, nh), d_out, w_o, w_o_t, false);

    // Hidden layer.
    gelu_backward(
        d_dec,
        &ws.dec_deriv[..qry * nh],
        Some(&mut g[dh.bias.clone()]),
    );
    let d_pre = Rows::dense(d_dec, qry, nh);
    weight_grad(
        &mut g[dh.weight.clone()],
        d_pre,
        Rows::dense(hq, qry, e),
        bf,
    );
    let d_h = &mut ws.d_hidden[..tok * e];
    let (w_h, w_h_t) = (&p[dh.weight.clone()], bt.map(|b| &b.decoder_hidden));
    input_grad(
        RowsMut::dense(&mut d_h[ctx * e..], qry, e),
        d_pre,
        w_h,
        w_h_t,
        false,
    );
    d_h[..ctx * e].fill(0.0);
}

//! The feed-forward block of a layer, forward and backward:
//!
//! ```text
//! out = LayerNorm2(x1 + GELU(x1 W1^T + b1) W2^T + b2)
//! ```
//!
//! Training keeps the GELU input `z = x1 W1^T + b1` (not the activation) and the LayerNorm's
//! `xhat2` and `rstd2`; the backward rebuilds the activation, its derivative and the block's input
//! x1 bit for bit from them.

use pfn_engine::gelu::{bias_gelu_keep_input, gelu_backward, gelu_recompute};
use pfn_engine::layer_norm::residual_layer_norm_forward;

use crate::attention;
use crate::backward::BackwardPass;
use crate::forward::Pass;
use crate::layer::LayerPlan;
use crate::ops::{
    input_grad, norm, norm_backward, rebuild_norm_output, weight_grad, Linear, Rows, RowsMut,
};
use crate::params::LayerRanges;
use crate::workspace::{LayerBuffers, Workspace};

/// Forward of layer `l`'s feed-forward block: `hidden[(l + 1) % 2] = LN2(x1 + FF(x1))` with x1 in
/// `Workspace::h1`, for the rows of `plan`.
pub(crate) fn forward(pass: &Pass<'_>, ws: &mut Workspace, l: usize, plan: &LayerPlan) {
    let (c, p) = (pass.config, pass.params);
    let (e, nh) = (c.emsize, c.nhid);
    let (span, fspan, rows) = (plan.span(e), plan.span(nh), plan.rows());
    let lr = &pass.ranges.layers[l];
    let lw = pass.bf16.map(|b| &b.layers[l]);
    let linear1 = Linear::new(p, &lr.linear1, lw.map(|w| &w.linear1));
    let linear2 = Linear::new(p, &lr.linear2, lw.map(|w| &w.linear2));
    let lb = &mut ws.layers[pass.slot(l)];
    let x1 = Rows::dense(&ws.h1[span.clone()], rows, e);

    // act = GELU(x1 W1^T + b1)
    let act = &mut ws.ff_act[fspan.clone()];
    if pass.train {
        // Keep the GELU input; the backward rebuilds the activation and its derivative.
        let z = &mut lb.ff_z[fspan];
        linear1.product(RowsMut::dense(z, rows, nh), x1);
        bias_gelu_keep_input(z, linear1.bias, act);
    } else {
        linear1.forward_gelu(RowsMut::dense(act, rows, nh), x1);
    }

    // out = LN2(x1 + act W2^T + b2)
    let tmp = &mut ws.tmp[span.clone()];
    linear2.product(RowsMut::dense(tmp, rows, e), Rows::dense(act, rows, nh));
    residual_layer_norm_forward(
        x1.dense_slice(),
        tmp,
        Some(linear2.bias),
        norm(p, &lr.norm2, c.layer_norm_eps),
        &mut ws.hidden[(l + 1) % 2][span.clone()],
        &mut lb.xhat2[span],
        &mut lb.rstd2[plan.out_rows()],
    );
}

/// The block's output (the layer's output) over `span`, rebuilt bit for bit from the kept `xhat2`
/// into `out`.
pub(crate) fn rebuild_output<'o>(
    pass: &BackwardPass<'_>,
    lr: &LayerRanges,
    lb: &LayerBuffers,
    span: std::ops::Range<usize>,
    out: &'o mut [f32],
) -> &'o [f32] {
    let eps = pass.config.layer_norm_eps;
    rebuild_norm_output(&lb.xhat2[span], pass.params, &lr.norm2, eps, out)
}

/// Backward of layer `l`'s feed-forward block: `Workspace::d_hidden` (rows of `plan`) goes from
/// d out to d x1 (the residual plus `d_ff W1`), accumulating the gradients of LN2, `linear2` and
/// `linear1`. Consumes the kept GELU input (it becomes the derivative).
pub(crate) fn backward(
    pass: &BackwardPass<'_>,
    ws: &mut Workspace,
    g: &mut [f32],
    l: usize,
    plan: &LayerPlan,
) {
    let (c, p, bf) = (pass.config, pass.params, pass.bf16);
    let (e, nh) = (c.emsize, c.nhid);
    let (span, fspan, rows) = (plan.span(e), plan.span(nh), plan.rows());
    let lr = &pass.ranges.layers[l];
    let lt = pass.bf16_t.map(|b| &b.layers[l]);
    let lb = &mut ws.layers[l];

    // Through LN2: d_h becomes d(x1 + ff_out) (and the linear2 bias gradient its column sum).
    let dz = &mut ws.d_hidden[span.clone()];
    let (xhat2, rstd2) = (&lb.xhat2[span.clone()], &lb.rstd2[plan.out_rows()]);
    norm_backward(g, p, &lr.norm2, &lr.linear2.bias, dz, xhat2, rstd2);

    // Feed-forward; the residual keeps dz, the branch adds d_ff W1. The activation is rebuilt from
    // the kept GELU input (which becomes the derivative), x1 from xhat1.
    let d_ff = &mut ws.d_ff[fspan.clone()];
    let act = &mut ws.ff_act[fspan.clone()];
    gelu_recompute(&mut lb.ff_z[fspan.clone()], act);
    let dy = Rows::dense(dz, rows, e);
    weight_grad(
        &mut g[lr.linear2.weight.clone()],
        dy,
        Rows::dense(act, rows, nh),
        bf,
    );
    let w2 = &p[lr.linear2.weight.clone()];
    input_grad(
        RowsMut::dense(d_ff, rows, nh),
        dy,
        w2,
        lt.map(|t| &t.linear2),
        false,
    );
    gelu_backward(d_ff, &lb.ff_z[fspan], Some(&mut g[lr.linear1.bias.clone()]));
    let x1 = attention::rebuild_output(pass, lr, lb, span.clone(), &mut ws.tmp[span]);
    let d_ff = Rows::dense(d_ff, rows, nh);
    weight_grad(
        &mut g[lr.linear1.weight.clone()],
        d_ff,
        Rows::dense(x1, rows, e),
        bf,
    );
    let w1 = &p[lr.linear1.weight.clone()];
    input_grad(
        RowsMut::dense(dz, rows, e),
        d_ff,
        w1,
        lt.map(|t| &t.linear1),
        true,
    );
}

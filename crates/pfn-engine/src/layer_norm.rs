//! Residual add + LayerNorm (affine) with an explicit backward.
//!
//! Forward per row: `z = x + branch (+ branch_bias)`, `xhat = (z - mean z) / sqrt(var z + eps)` with the
//! biased variance (as PyTorch), `out = gamma * xhat + beta`. The forward keeps `xhat` and `rstd` for the
//! backward.

use rayon::prelude::*;

use crate::parallel::rows_per_task;
use crate::reduce::reduce_rows_mut;
use crate::simd::{self, multiversion};

/// The affine parameters and epsilon of a LayerNorm over rows of `gamma.len()` elements.
#[derive(Clone, Copy, Debug)]
pub struct LayerNormParams<'a> {
    /// Scale, one per column.
    pub gamma: &'a [f32],
    /// Shift, one per column.
    pub beta: &'a [f32],
    /// Added to the variance (PyTorch default 1e-5).
    pub eps: f32,
}

multiversion! {
    fn forward_block(
        x: &[f32],
        branch: &[f32],
        branch_bias: Option<&[f32]>,
        gamma: &[f32],
        beta: &[f32],
        eps: f32,
        out: &mut [f32],
        xhat: &mut [f32],
        rstd: &mut [f32],
    ) {
        let cols = gamma.len();
        let inv_cols = 1.0 / cols as f32;
        for (r, rs) in rstd.iter_mut().enumerate() {
            let span = r * cols..(r + 1) * cols;
            let (xr, br) = (&x[span.clone()], &branch[span.clone()]);
            let zr = &mut xhat[span.clone()];
            match branch_bias {
                Some(bb) => {
                    for (((z, a), b), c) in zr.iter_mut().zip(xr).zip(br).zip(bb) {
                        *z = *a + (*b + *c);
                    }
                }
                None => {
                    for ((z, a), b) in zr.iter_mut().zip(xr).zip(br) {
                        *z = *a + *b;
                    }
                }
            }
            let mean = simd::sum(zr) * inv_cols;
            let var = simd::sum_sq_dev(zr, mean) * inv_cols;
            let inv = 1.0 / (var + eps).sqrt();
            *rs = inv;
            let or = &mut out[span];
            for (((o, z), g), b) in or.iter_mut().zip(zr.iter_mut()).zip(gamma).zip(beta) {
                let h = (*z - mean) * inv;
                *z = h;
                *o = *g * h + *b;
            }
        }
    }
}

multiversion! {
    fn output_block(xhat: &[f32], gamma: &[f32], beta: &[f32], out: &mut [f32]) {
        let cols = gamma.len();
        for (o, h) in out.chunks_exact_mut(cols).zip(xhat.chunks_exact(cols)) {
            for (((o, h), g), b) in o.iter_mut().zip(h).zip(gamma).zip(beta) {
                *o = *g * *h + *b;
            }
        }
    }
}

/// The LayerNorm output `out = gamma * xhat + beta` from the normalised values kept by
/// [`residual_layer_norm_forward`]: bit for bit the `out` that call wrote (the same two roundings), so
/// training may keep only `xhat` and rebuild the output when the backward pass needs it.
///
/// # Panics
/// If the lengths do not agree.
pub fn layer_norm_output(xhat: &[f32], params: LayerNormParams<'_>, out: &mut [f32]) {
    let cols = params.gamma.len();
    assert!(
        cols > 0
            && params.beta.len() == cols
            && xhat.len() == out.len()
            && xhat.len().is_multiple_of(cols),
        "layer_norm_output: inconsistent lengths"
    );
    if out.is_empty() {
        return;
    }
    let chunk = rows_per_task(xhat.len() / cols, cols) * cols;
    out.par_chunks_mut(chunk)
        .zip(xhat.par_chunks(chunk))
        .for_each(|(o, h)| output_block(h, params.gamma, params.beta, o));
}

/// Training forward: `out = LayerNorm(x + branch + branch_bias)` over row-major rows of
/// `params.gamma.len()` columns, storing the normalised values in `xhat` and 1/std per row in `rstd`.
///
/// # Panics
/// If the lengths do not agree.
pub fn residual_layer_norm_forward(
    x: &[f32],
    branch: &[f32],
    branch_bias: Option<&[f32]>,
    params: LayerNormParams<'_>,
    out: &mut [f32],
    xhat: &mut [f32],
    rstd: &mut [f32],
) {
    let cols = params.gamma.len();
    let rows = rstd.len();
    assert!(
        cols > 0
            && params.beta.len() == cols
            && branch_bias.is_none_or(|b| b.len() == cols)
            && x.len() == rows * cols
            && branch.len() == rows * cols
            && out.len() == rows * cols
            && xhat.len() == rows * cols,
        "residual_layer_norm_forward: inconsistent lengths"
    );
    if rows == 0 {
        return;
    }
    let tr = rows_per_task(rows, cols);
    let chunk = tr * cols;
    out.par_chunks_mut(chunk)
        .zip(xhat.par_chunks_mut(chunk))
        .zip(rstd.par_chunks_mut(tr))
        .enumerate()
        .for_each(|(i, ((o, h), s))| {
            let span = i * chunk..i * chunk + o.len();
            forward_block(
                &x[span.clone()],
                &branch[span],
                branch_bias,
                params.gamma,
                params.beta,
                params.eps,
                o,
                h,
                s,
            );
        });
}

multiversion! {
    fn backward_block(
        grad: &mut [f32],
        xhat: &[f32],
        rstd: &[f32],
        gamma: &[f32],
        partials: &mut [f32],
        with_bias: bool,
    ) {
        let cols = gamma.len();
        let inv_cols = 1.0 / cols as f32;
        let (dgamma, rest) = partials.split_at_mut(cols);
        let (dbeta, dbias) = rest.split_at_mut(cols);
        for ((g, h), &inv) in grad.chunks_exact_mut(cols).zip(xhat.chunks_exact(cols)).zip(rstd) {
            // parameter gradients from d out; then dxhat = g * gamma and
            // dz = inv * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
            let mut s1 = [0.0f32; 16];
            let mut s2 = [0.0f32; 16];
            let mut tail = [0.0f32; 2];
            let full = cols / 16 * 16;
            for j0 in (0..full).step_by(16) {
                for l in 0..16 {
                    let j = j0 + l;
                    dgamma[j] += g[j] * h[j];
                    dbeta[j] += g[j];
                    let d = g[j] * gamma[j];
                    s1[l] += d;
                    s2[l] += d * h[j];
                }
            }
            for j in full..cols {
                dgamma[j] += g[j] * h[j];
                dbeta[j] += g[j];
                let d = g[j] * gamma[j];
                tail[0] += d;
                tail[1] += d * h[j];
            }
            let m1 = (simd::sum(&s1) + tail[0]) * inv_cols;
            let m2 = (simd::sum(&s2) + tail[1]) * inv_cols;
            for ((gv, hv), gm) in g.iter_mut().zip(h).zip(gamma) {
                *gv = inv * ((*gv * *gm - m1) - *hv * m2);
            }
            if with_bias {
                for (b, gv) in dbias.iter_mut().zip(g.iter()) {
                    *b += *gv;
                }
            }
        }
    }
}

/// Backward of [`residual_layer_norm_forward`], in place: `grad` goes from d loss / d out to
/// d loss / d z (z = x + branch + branch_bias: the gradient of both the residual input and the
/// branch), while accumulating `dgamma += sum_rows grad * xhat`, `dbeta += sum_rows grad` and, if
/// given, the branch bias gradient `d_branch_bias += sum_rows (d loss / d z)` in the same pass.
///
/// # Panics
/// If the lengths do not agree.
pub fn layer_norm_backward(
    grad: &mut [f32],
    xhat: &[f32],
    rstd: &[f32],
    gamma: &[f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
    d_branch_bias: Option<&mut [f32]>,
) {
    let cols = gamma.len();
    let rows = rstd.len();
    assert!(
        cols > 0
            && grad.len() == rows * cols
            && xhat.len() == rows * cols
            && dgamma.len() == cols
            && dbeta.len() == cols
            && d_branch_bias.as_ref().is_none_or(|b| b.len() == cols),
        "layer_norm_backward: inconsistent lengths"
    );
    if rows == 0 {
        return;
    }
    let with_bias = d_branch_bias.is_some();
    // Three partial vectors per chunk (gamma, beta, bias); without a bias the third is not added
    // anywhere (an empty output).
    let mut none: [f32; 0] = [];
    let bias_out: &mut [f32] = match d_branch_bias {
        Some(b) => b,
        None => &mut none,
    };
    let mut outs: [&mut [f32]; 3] = [dgamma, dbeta, bias_out];
    reduce_rows_mut(grad, cols, cols, &mut outs, |first, block, partials| {
        let nrows = block.len() / cols;
        backward_block(
            block,
            &xhat[first * cols..(first + nrows) * cols],
            &rstd[first..first + nrows],
            gamma,
            partials,
            with_bias,
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random(n: usize, seed: u64, scale: f32) -> Vec<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| rng.random_range(-scale..scale)).collect()
    }

    /// f64 reference: loss = sum w * LN(x + b + bias).
    fn loss64(
        x: &[f64],
        br: &[f64],
        bias: &[f64],
        gamma: &[f64],
        beta: &[f64],
        w: &[f64],
        eps: f64,
    ) -> (f64, Vec<f64>) {
        let cols = gamma.len();
        let mut out = vec![0.0; x.len()];
        let mut loss = 0.0;
        for r in 0..x.len() / cols {
            let z: Vec<f64> = (0..cols)
                .map(|c| x[r * cols + c] + br[r * cols + c] + bias[c])
                .collect();
            let mean = z.iter().sum::<f64>() / cols as f64;
            let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / cols as f64;
            for c in 0..cols {
                let o = gamma[c] * (z[c] - mean) / (var + eps).sqrt() + beta[c];
                out[r * cols + c] = o;
                loss += w[r * cols + c] * o;
            }
        }
        (loss, out)
    }

    #[test]
    fn output_rebuilt_from_xhat_is_bit_identical() {
        let engine = crate::Engine::new(2).unwrap();
        let (rows, cols) = (300, 37);
        let x = random(rows * cols, 11, 2.0);
        let br = random(rows * cols, 12, 1.0);
        let gamma = random(cols, 13, 1.5);
        let beta = random(cols, 14, 0.5);
        let params = LayerNormParams {
            gamma: &gamma,
            beta: &beta,
            eps: 1e-5,
        };
        let (mut out, mut xhat, mut rstd) = (
            vec![0.0; rows * cols],
            vec![0.0; rows * cols],
            vec![0.0; rows],
        );
        let mut rebuilt = vec![f32::NAN; rows * cols];
        engine.install(|| {
            residual_layer_norm_forward(&x, &br, None, params, &mut out, &mut xhat, &mut rstd);
            layer_norm_output(&xhat, params, &mut rebuilt);
        });
        assert!(out
            .iter()
            .zip(&rebuilt)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn forward_and_backward_match_f64_reference() {
        let engine = crate::Engine::new(2).unwrap();
        for &(rows, cols) in &[(4usize, 5usize), (3, 37), (700, 48)] {
            let x = random(rows * cols, 1, 2.0);
            let br = random(rows * cols, 2, 1.0);
            let bias = random(cols, 3, 0.5);
            let gamma: Vec<f32> = random(cols, 4, 0.5).iter().map(|g| 1.0 + g).collect();
            let beta = random(cols, 5, 0.5);
            let w = random(rows * cols, 6, 1.0);
            let eps = 1e-5f32;
            let p = LayerNormParams {
                gamma: &gamma,
                beta: &beta,
                eps,
            };
            let mut out = vec![0.0; rows * cols];
            let mut xhat = vec![0.0; rows * cols];
            let mut rstd = vec![0.0; rows];
            let mut grad = w.clone();
            let mut dgamma = vec![0.0; cols];
            let mut dbeta = vec![0.0; cols];
            let mut dbias = vec![0.0; cols];
            engine.install(|| {
                residual_layer_norm_forward(
                    &x,
                    &br,
                    Some(&bias),
                    p,
                    &mut out,
                    &mut xhat,
                    &mut rstd,
                );
                layer_norm_backward(
                    &mut grad,
                    &xhat,
                    &rstd,
                    &gamma,
                    &mut dgamma,
                    &mut dbeta,
                    Some(&mut dbias),
                );
            });
            let f = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<f64>>();
            let (x64, br64, bias64, g64, b64, w64) =
                (f(&x), f(&br), f(&bias), f(&gamma), f(&beta), f(&w));
            let (_, want) = loss64(&x64, &br64, &bias64, &g64, &b64, &w64, eps as f64);
            for (o, wv) in out.iter().zip(&want) {
                assert!((*o as f64 - wv).abs() < 1e-5, "{o} vs {wv}");
            }
            // central differences of the f64 reference (error ~h^2, far below the f32 tolerance)
            let h = 1e-5;
            let check = |got: f32, plus: f64, minus: f64| {
                let fd = (plus - minus) / (2.0 * h);
                assert!(
                    (got as f64 - fd).abs() < 1e-4 * (1.0 + fd.abs()),
                    "{got} vs {fd}"
                );
            };
            for i in (0..rows * cols).step_by(7) {
                let mut xp = x64.clone();
                xp[i] += h;
                let mut xm = x64.clone();
                xm[i] -= h;
                check(
                    grad[i],
                    loss64(&xp, &br64, &bias64, &g64, &b64, &w64, eps as f64).0,
                    loss64(&xm, &br64, &bias64, &g64, &b64, &w64, eps as f64).0,
                );
            }
            for c in 0..cols {
                let mut gp = g64.clone();
                gp[c] += h;
                let mut gm = g64.clone();
                gm[c] -= h;
                check(
                    dgamma[c],
                    loss64(&x64, &br64, &bias64, &gp, &b64, &w64, eps as f64).0,
                    loss64(&x64, &br64, &bias64, &gm, &b64, &w64, eps as f64).0,
                );
                let mut bp = bias64.clone();
                bp[c] += h;
                let mut bm = bias64.clone();
                bm[c] -= h;
                check(
                    dbias[c],
                    loss64(&x64, &br64, &bp, &g64, &b64, &w64, eps as f64).0,
                    loss64(&x64, &br64, &bm, &g64, &b64, &w64, eps as f64).0,
                );
                let mut bp = b64.clone();
                bp[c] += h;
                let mut bm = b64.clone();
                bm[c] -= h;
                check(
                    dbeta[c],
                    loss64(&x64, &br64, &bias64, &g64, &bp, &w64, eps as f64).0,
                    loss64(&x64, &br64, &bias64, &g64, &bm, &w64, eps as f64).0,
                );
            }
        }
    }
}

//! Fused bias + GELU (exact erf form) with an explicit backward.
//!
//! The forward keeps the derivative GELU'(z) in place of the pre-activation, so the backward is a
//! single multiplication and needs no second erf evaluation.

use rayon::prelude::*;

use crate::math::{gelu, gelu_and_grad};
use crate::parallel::rows_per_task;
use crate::reduce::reduce_rows_mut;
use crate::simd::multiversion;

multiversion! {
    fn bias_gelu_block(pre: &mut [f32], bias: &[f32], act: &mut [f32]) {
        let cols = bias.len();
        for (p, a) in pre.chunks_exact_mut(cols).zip(act.chunks_exact_mut(cols)) {
            for ((p, a), b) in p.iter_mut().zip(a.iter_mut()).zip(bias) {
                let (g, d) = gelu_and_grad(*p + *b);
                *a = g;
                *p = d;
            }
        }
    }
}

multiversion! {
    pub(crate) fn bias_gelu_inplace_block(x: &mut [f32], bias: &[f32]) {
        let cols = bias.len();
        for r in x.chunks_exact_mut(cols) {
            for (v, b) in r.iter_mut().zip(bias) {
                *v = gelu(*v + *b);
            }
        }
    }
}

multiversion! {
    fn bias_gelu_keep_input_block(pre: &mut [f32], bias: &[f32], act: &mut [f32]) {
        let cols = bias.len();
        for (p, a) in pre.chunks_exact_mut(cols).zip(act.chunks_exact_mut(cols)) {
            for ((p, a), b) in p.iter_mut().zip(a.iter_mut()).zip(bias) {
                let z = *p + *b;
                *p = z;
                *a = gelu(z);
            }
        }
    }
}

multiversion! {
    fn gelu_recompute_block(z: &mut [f32], act: &mut [f32]) {
        for (zv, a) in z.iter_mut().zip(act.iter_mut()) {
            let (g, d) = gelu_and_grad(*zv);
            *a = g;
            *zv = d;
        }
    }
}

multiversion! {
    fn mul_block(grad: &mut [f32], deriv: &[f32]) {
        for (g, d) in grad.iter_mut().zip(deriv) {
            *g *= *d;
        }
    }
}

fn rows_of(len: usize, cols: usize) -> usize {
    assert!(
        cols > 0 && len.is_multiple_of(cols),
        "bias length {cols} does not divide the buffer of {len}"
    );
    len / cols
}

/// Training forward of `act = GELU(pre + bias)` over a row-major matrix with `bias.len()` columns.
///
/// On return `act` holds the activations and `pre` holds the derivative GELU'(pre + bias), which
/// [`gelu_backward`] consumes.
///
/// # Panics
/// If the lengths do not agree.
pub fn bias_gelu_forward(pre: &mut [f32], bias: &[f32], act: &mut [f32]) {
    assert_eq!(pre.len(), act.len(), "bias_gelu_forward: length mismatch");
    par_row_blocks(pre, bias, act, bias_gelu_block);
}

/// Runs `block(pre rows, bias, act rows)` over blocks of whole rows of two equally long row-major
/// matrices with `bias.len()` columns, in parallel.
fn par_row_blocks(
    pre: &mut [f32],
    bias: &[f32],
    act: &mut [f32],
    block: fn(&mut [f32], &[f32], &mut [f32]),
) {
    if pre.is_empty() {
        return;
    }
    let cols = bias.len();
    let rows = rows_of(pre.len(), cols);
    let chunk = rows_per_task(rows, cols) * cols;
    pre.par_chunks_mut(chunk)
        .zip(act.par_chunks_mut(chunk))
        .for_each(|(p, a)| block(p, bias, a));
}

/// Training forward that keeps the GELU input instead of the derivative (for memory-lean training):
/// `pre += bias`, then `act = GELU(pre)`. [`gelu_recompute`] later turns `pre` into the derivative and
/// rebuilds `act`, bit for bit as [`bias_gelu_forward`] would have left them.
///
/// # Panics
/// If the lengths do not agree.
pub fn bias_gelu_keep_input(pre: &mut [f32], bias: &[f32], act: &mut [f32]) {
    assert_eq!(
        pre.len(),
        act.len(),
        "bias_gelu_keep_input: length mismatch"
    );
    par_row_blocks(pre, bias, act, bias_gelu_keep_input_block);
}

/// From the GELU input `z` kept by [`bias_gelu_keep_input`]: `act = GELU(z)` and `z` replaced by
/// GELU'(z), the derivative [`gelu_backward`] consumes.
///
/// # Panics
/// If the lengths differ.
pub fn gelu_recompute(z: &mut [f32], act: &mut [f32]) {
    assert_eq!(z.len(), act.len(), "gelu_recompute: length mismatch");
    if z.is_empty() {
        return;
    }
    let chunk = rows_per_task(z.len().div_ceil(1024), 1024) * 1024;
    z.par_chunks_mut(chunk)
        .zip(act.par_chunks_mut(chunk))
        .for_each(|(zc, a)| gelu_recompute_block(zc, a));
}

/// Inference forward: `x = GELU(x + bias)` in place.
///
/// # Panics
/// If `bias.len()` does not divide `x.len()`.
pub fn bias_gelu_inplace(x: &mut [f32], bias: &[f32]) {
    if x.is_empty() {
        return;
    }
    let cols = bias.len();
    let rows = rows_of(x.len(), cols);
    let chunk = rows_per_task(rows, cols) * cols;
    x.par_chunks_mut(chunk)
        .for_each(|b| bias_gelu_inplace_block(b, bias));
}

multiversion! {
    fn mul_sum_block(grad: &mut [f32], deriv: &[f32], acc: &mut [f32]) {
        let cols = acc.len();
        for (g, d) in grad.chunks_exact_mut(cols).zip(deriv.chunks_exact(cols)) {
            for ((gv, dv), a) in g.iter_mut().zip(d).zip(acc.iter_mut()) {
                *gv *= *dv;
                *a += *gv;
            }
        }
    }
}

/// Backward: `grad *= deriv`, turning d loss / d act into d loss / d (pre + bias), given the
/// derivative left by [`bias_gelu_forward`]; with `dbias`, also accumulates the bias gradient
/// `dbias += column sums of the result` (columns = `dbias.len()`) in the same pass.
///
/// # Panics
/// If the lengths differ, or `dbias.len()` does not divide them.
pub fn gelu_backward(grad: &mut [f32], deriv: &[f32], dbias: Option<&mut [f32]>) {
    assert_eq!(grad.len(), deriv.len(), "gelu_backward: length mismatch");
    match dbias {
        None => {
            let chunk = rows_per_task(grad.len(), 1);
            grad.par_chunks_mut(chunk)
                .zip(deriv.par_chunks(chunk))
                .for_each(|(g, d)| mul_block(g, d));
        }
        Some(db) => {
            let cols = db.len();
            rows_of(grad.len(), cols);
            reduce_rows_mut(grad, cols, cols, &mut [db], |first, block, acc| {
                mul_sum_block(block, &deriv[first * cols..first * cols + block.len()], acc)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn gelu64(x: f64) -> f64 {
        0.5 * x * libm::erfc(-x / std::f64::consts::SQRT_2)
    }

    #[test]
    fn keeping_the_input_and_recomputing_is_bit_identical() {
        let engine = crate::Engine::new(2).unwrap();
        let cols = 13;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(21);
        let pre: Vec<f32> = (0..cols * 500)
            .map(|_| rng.random_range(-6.0..6.0))
            .collect();
        let bias: Vec<f32> = (0..cols).map(|_| rng.random_range(-1.0..1.0)).collect();
        let (mut deriv, mut act) = (pre.clone(), vec![0.0; pre.len()]);
        let (mut z, mut act_kept, mut act_again) =
            (pre.clone(), vec![0.0; pre.len()], vec![0.0; pre.len()]);
        engine.install(|| {
            bias_gelu_forward(&mut deriv, &bias, &mut act);
            bias_gelu_keep_input(&mut z, &bias, &mut act_kept);
            gelu_recompute(&mut z, &mut act_again);
        });
        let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(u, v)| u.to_bits() == v.to_bits());
        assert!(same(&act, &act_kept));
        assert!(same(&act, &act_again));
        assert!(same(&deriv, &z));
    }

    #[test]
    fn forward_matches_naive_and_backward_matches_finite_differences() {
        let engine = crate::Engine::new(2).unwrap();
        let cols = 7;
        let rows = 5000; // large enough to run in parallel
        let pre0: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 9.0)
            .collect();
        let bias: Vec<f32> = (0..cols).map(|c| c as f32 * 0.1 - 0.3).collect();
        let mut pre = pre0.clone();
        let mut act = vec![0.0f32; rows * cols];
        engine.install(|| bias_gelu_forward(&mut pre, &bias, &mut act));
        let mut inplace = pre0.clone();
        engine.install(|| bias_gelu_inplace(&mut inplace, &bias));
        assert_eq!(inplace, act);
        // upstream gradient: arbitrary weights w, loss = sum w * act
        let w: Vec<f32> = (0..rows * cols)
            .map(|i| ((i % 13) as f32 - 6.0) / 6.0)
            .collect();
        let mut grad = w.clone();
        engine.install(|| gelu_backward(&mut grad, &pre, None));
        let mut fused = w.clone();
        let mut dbias = vec![0.5f32; cols];
        engine.install(|| gelu_backward(&mut fused, &pre, Some(&mut dbias)));
        assert_eq!(fused, grad);
        for c in 0..cols {
            let want: f64 = 0.5 + (0..rows).map(|r| grad[r * cols + c] as f64).sum::<f64>();
            assert!(
                (dbias[c] as f64 - want).abs() < 1e-3,
                "{} vs {want}",
                dbias[c]
            );
        }
        for i in 0..rows * cols {
            let z = pre0[i] as f64 + bias[i % cols] as f64;
            assert!((act[i] as f64 - gelu64(z)).abs() < 3e-7 * (1.0 + z.abs()));
            let h = 1e-5;
            let fd = (gelu64(z + h) - gelu64(z - h)) / (2.0 * h) * w[i] as f64;
            assert!(
                (grad[i] as f64 - fd).abs() < 1e-6 * (1.0 + fd.abs()),
                "at {z}: {} vs {fd}",
                grad[i]
            );
        }
    }
}

//! The AdamW parameter update as an element-wise kernel over flat buffers.

use rayon::prelude::*;

use crate::parallel::rows_per_task;
use crate::simd::multiversion;

/// The scalars of one AdamW step (PyTorch's `torch.optim.AdamW` semantics, decoupled weight decay).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWStep {
    /// Learning rate of this step.
    pub lr: f32,
    /// Decay rate of the first-moment average.
    pub beta1: f32,
    /// Decay rate of the second-moment average.
    pub beta2: f32,
    /// Added to the root of the second moment.
    pub eps: f32,
    /// Decoupled weight decay factor (parameters shrink by `lr * weight_decay` per step).
    pub weight_decay: f32,
    /// The 1-based step number t (for the bias corrections 1 - beta^t).
    pub step: u64,
}

multiversion! {
    fn adamw_block(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], decay: f32, b1: f32, b2: f32, step_size: f32, inv_bc2_sqrt: f32, eps: f32) {
        for (((p, g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            *p *= decay;
            *m += (1.0 - b1) * (*g - *m);
            *v = b2 * *v + (1.0 - b2) * *g * *g;
            let denom = v.sqrt() * inv_bc2_sqrt + eps;
            *p -= step_size * *m / denom;
        }
    }
}

/// Applies one AdamW step to `params` given `grads` and the moment buffers `m` and `v`:
/// `p *= 1 - lr wd; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;`
/// `p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.
///
/// # Panics
/// If the four buffers differ in length or `step.step` is 0.
pub fn adamw_update(
    params: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    step: &AdamWStep,
) {
    let len = params.len();
    assert!(
        grads.len() == len && m.len() == len && v.len() == len,
        "adamw_update: buffer lengths differ"
    );
    assert!(step.step >= 1, "adamw_update: steps are counted from 1");
    let t = step.step.min(i32::MAX as u64) as i32;
    let bc1 = 1.0 - (step.beta1 as f64).powi(t);
    let bc2 = 1.0 - (step.beta2 as f64).powi(t);
    let step_size = (step.lr as f64 / bc1) as f32;
    let inv_bc2_sqrt = (1.0 / bc2.sqrt()) as f32;
    let decay = 1.0 - step.lr * step.weight_decay;
    let chunk = rows_per_task(len, 1);
    params
        .par_chunks_mut(chunk)
        .zip(grads.par_chunks(chunk))
        .zip(m.par_chunks_mut(chunk))
        .zip(v.par_chunks_mut(chunk))
        .for_each(|(((p, g), m), v)| {
            adamw_block(
                p,
                g,
                m,
                v,
                decay,
                step.beta1,
                step.beta2,
                step_size,
                inv_bc2_sqrt,
                step.eps,
            )
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_scalar_f64_adamw() {
        let s = AdamWStep {
            lr: 1e-2,
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            weight_decay: 0.1,
            step: 1,
        };
        let mut p = vec![0.5f32, -1.0, 2.0];
        let mut m = vec![0.0f32; 3];
        let mut v = vec![0.0f32; 3];
        let (mut p64, mut m64, mut v64) =
            (vec![0.5f64, -1.0, 2.0], vec![0.0f64; 3], vec![0.0f64; 3]);
        for t in 1..=5u64 {
            let g: Vec<f32> = p.iter().map(|x| x * 0.3 + t as f32 * 0.1).collect();
            adamw_update(&mut p, &g, &mut m, &mut v, &AdamWStep { step: t, ..s });
            for i in 0..3 {
                let gi = p64[i] * 0.3 + t as f64 * 0.1;
                p64[i] *= 1.0 - 1e-2 * 0.1;
                m64[i] = 0.9 * m64[i] + 0.1 * gi;
                v64[i] = 0.99 * v64[i] + 0.01 * gi * gi;
                let mh = m64[i] / (1.0 - 0.9f64.powi(t as i32));
                let vh = v64[i] / (1.0 - 0.99f64.powi(t as i32));
                p64[i] -= 1e-2 * mh / (vh.sqrt() + 1e-8);
            }
        }
        for i in 0..3 {
            assert!(
                (p[i] as f64 - p64[i]).abs() < 1e-5,
                "{} vs {}",
                p[i],
                p64[i]
            );
        }
    }
}

//! Linear layers with very few inputs (the encoders: a handful of features), `dst = bias + src W^T`.
//!
//! A general matrix product spends most of its time packing when the inner dimension is 4; here each
//! output row is built as `bias + sum_k src[k] * W^T[k]` over contiguous rows of the transposed
//! weight, which vectorises over the outputs and streams the destination once.

use rayon::prelude::*;

use crate::parallel::rows_per_task;
use crate::simd::multiversion;

multiversion! {
    fn thin_rows(
        dst: &mut [f32],
        dst_stride: usize,
        src: &[f32],
        src_stride: usize,
        rows: usize,
        wt: &[f32],
        k: usize,
        bias: Option<&[f32]>,
    ) {
        let out = wt.len() / k;
        for r in 0..rows {
            let d = &mut dst[r * dst_stride..r * dst_stride + out];
            match bias {
                Some(b) => d.copy_from_slice(b),
                None => d.fill(0.0),
            }
            for (kk, &s) in src[r * src_stride..r * src_stride + k].iter().enumerate() {
                for (dv, wv) in d.iter_mut().zip(&wt[kk * out..(kk + 1) * out]) {
                    *dv += s * *wv;
                }
            }
        }
    }
}

/// `dst = src W^T (+ bias)` for `rows` rows, where `src` is (rows, k) with row stride `src_stride`,
/// `w` is a PyTorch-layout weight (out, k) and `dst` is (rows, out) with row stride `dst_stride`.
/// Meant for small k (up to a few dozen); runs on the current rayon pool.
///
/// # Panics
/// If a matrix does not fit its buffer, a stride is shorter than its row, or the bias length is not
/// `out`.
#[allow(clippy::too_many_arguments)]
pub fn thin_linear(
    dst: &mut [f32],
    dst_stride: usize,
    src: &[f32],
    src_stride: usize,
    rows: usize,
    w: &[f32],
    out: usize,
    k: usize,
    bias: Option<&[f32]>,
) {
    assert_eq!(w.len(), out * k, "thin_linear: weight is not {out} x {k}");
    if let Some(b) = bias {
        assert_eq!(b.len(), out, "thin_linear: bias length is not {out}");
    }
    if rows == 0 || out == 0 {
        return;
    }
    assert!(
        src_stride >= k && (rows - 1) * src_stride + k <= src.len(),
        "thin_linear: source {rows} x {k} (stride {src_stride}) exceeds a buffer of {}",
        src.len()
    );
    assert!(
        dst_stride >= out && (rows - 1) * dst_stride + out <= dst.len(),
        "thin_linear: destination {rows} x {out} (stride {dst_stride}) exceeds a buffer of {}",
        dst.len()
    );
    if k == 0 {
        for r in 0..rows {
            let d = &mut dst[r * dst_stride..r * dst_stride + out];
            match bias {
                Some(b) => d.copy_from_slice(b),
                None => d.fill(0.0),
            }
        }
        return;
    }
    let mut wt = vec![0.0f32; k * out];
    for j in 0..out {
        for kk in 0..k {
            wt[kk * out + j] = w[j * k + kk];
        }
    }
    let task_rows = rows_per_task(rows, out);
    let dst = &mut dst[..(rows - 1) * dst_stride + out];
    dst.par_chunks_mut(task_rows * dst_stride)
        .enumerate()
        .for_each(|(c, chunk)| {
            let r0 = c * task_rows;
            let n = task_rows.min(rows - r0);
            thin_rows(
                chunk,
                dst_stride,
                &src[r0 * src_stride..],
                src_stride,
                n,
                &wt,
                k,
                bias,
            );
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn matches_a_naive_product_with_strides_and_bias() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for &(rows, out, k) in &[
            (1, 1, 1),
            (7, 33, 4),
            (1000, 256, 4),
            (50, 768, 7),
            (3, 5, 0),
        ] {
            let (ss, ds) = (k + 2, out + 3);
            let src: Vec<f32> = (0..rows * ss)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let w: Vec<f32> = (0..out * k).map(|_| rng.random_range(-1.0..1.0)).collect();
            let b: Vec<f32> = (0..out).map(|_| rng.random_range(-1.0..1.0)).collect();
            for bias in [None, Some(&b[..])] {
                let mut dst = vec![7.0f32; rows * ds];
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(3)
                    .build()
                    .unwrap();
                pool.install(|| thin_linear(&mut dst, ds, &src, ss, rows, &w, out, k, bias));
                for r in 0..rows {
                    for j in 0..ds {
                        let got = dst[r * ds + j];
                        if j >= out {
                            assert_eq!(got, 7.0, "padding written at ({r}, {j})");
                            continue;
                        }
                        let mut want = bias.map_or(0.0, |b| f64::from(b[j]));
                        for kk in 0..k {
                            want += f64::from(src[r * ss + kk]) * f64::from(w[j * k + kk]);
                        }
                        assert!(
                            (f64::from(got) - want).abs() < 1e-5,
                            "({r}, {j}) of {rows}x{out}x{k}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}

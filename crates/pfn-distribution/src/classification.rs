//! Classification heads: sigmoid + binary cross-entropy with logits (binary tasks, one logit per
//! query) and softmax cross-entropy (multi-class, `num_classes` logits per query, row-major).
//!
//! Losses are computed per row in f64 and summed in a fixed order; gradients are written in place,
//! scaled by `scale` (pass `1 / number of non-ignored rows` for the mean). Ignored rows contribute a
//! loss of 0 and a zero gradient. As in the bar-distribution kernel, logits are not validated:
//! a NaN logit gives a NaN loss.

use rayon::prelude::*;

use crate::error::{DistributionError, Result};

/// Multi-class target value meaning "ignore this row" (PyTorch's `ignore_index` default).
pub const IGNORE_INDEX: f32 = -100.0;

/// Rows per parallel task for the multi-class kernel, in logits.
const CHUNK_ELEMENTS: usize = 16_384;

/// Numerically stable logistic sigmoid `1 / (1 + exp(-z))`.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Sigmoid probabilities `P(class 1)` of binary logits.
pub fn sigmoid_probabilities(logits: &[f32]) -> Vec<f32> {
    logits
        .iter()
        .map(|&z| sigmoid(f64::from(z)) as f32)
        .collect()
}

/// Binary cross-entropy with logits, summed over rows: per row
/// `max(z, 0) - z t + log(1 + exp(-|z|))` (stable for any `z`), with gradient
/// `scale * (sigmoid(z) - t)` written to `grad`.
///
/// Targets must lie in `[0, 1]` (soft labels allowed); NaN targets are ignored.
pub fn binary_cross_entropy_with_logits(
    logits: &[f32],
    targets: &[f32],
    grad: &mut [f32],
    scale: f32,
) -> Result<f64> {
    check_len("logits", targets.len(), logits.len())?;
    check_len("grad", targets.len(), grad.len())?;
    let mut total = 0.0;
    for (row, ((&z, &t), g)) in logits.iter().zip(targets).zip(grad.iter_mut()).enumerate() {
        if t.is_nan() {
            *g = 0.0;
            continue;
        }
        if !(0.0..=1.0).contains(&t) {
            return Err(DistributionError::InvalidBinaryTarget { value: t }.in_row(row));
        }
        let (z, t) = (f64::from(z), f64::from(t));
        total += z.max(0.0) - z * t + (-z.abs()).exp().ln_1p();
        *g = (f64::from(scale) * (sigmoid(z) - t)) as f32;
    }
    Ok(total)
}

/// Softmax probabilities of `rows x num_classes` logits (row-major), computed in f64.
pub fn softmax_probabilities(logits: &[f32], num_classes: usize) -> Result<Vec<f32>> {
    let rows = rows_of(logits, num_classes)?;
    let mut out = vec![0.0f32; rows * num_classes];
    for (z, p) in logits
        .chunks_exact(num_classes)
        .zip(out.chunks_exact_mut(num_classes))
    {
        let max = z
            .iter()
            .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
        let sum: f64 = z.iter().map(|&v| (f64::from(v) - max).exp()).sum();
        for (pi, &v) in p.iter_mut().zip(z) {
            *pi = ((f64::from(v) - max).exp() / sum) as f32;
        }
    }
    Ok(out)
}

/// Softmax cross-entropy over `rows = targets.len()` rows of `num_classes` logits (row-major),
/// summed over rows: per row `logsumexp(z) - z[t]`, with gradient
/// `scale * (softmax(z) - onehot(t))` written to `grad`.
///
/// A target is a class index stored as a float (`0.0, 1.0, ...`); [`IGNORE_INDEX`] (-100) and NaN
/// mean "ignore this row". Any other value not an integer in `0..num_classes` is an error naming
/// the row.
pub fn softmax_cross_entropy(
    logits: &[f32],
    targets: &[f32],
    num_classes: usize,
    grad: &mut [f32],
    scale: f32,
) -> Result<f64> {
    if num_classes == 0 {
        return Err(DistributionError::InvalidParameter {
            argument: "num_classes",
            value: 0.0,
            domain: "at least 1",
        });
    }
    check_len("logits", targets.len() * num_classes, logits.len())?;
    check_len("grad", logits.len(), grad.len())?;
    let chunk_rows = (CHUNK_ELEMENTS / num_classes).max(1);
    let totals: Vec<f64> = logits
        .par_chunks(chunk_rows * num_classes)
        .zip(grad.par_chunks_mut(chunk_rows * num_classes))
        .zip(targets.par_chunks(chunk_rows))
        .enumerate()
        .map(|(chunk, ((z_chunk, g_chunk), t_chunk))| {
            let mut total = 0.0;
            for (row, ((z, g), &t)) in z_chunk
                .chunks_exact(num_classes)
                .zip(g_chunk.chunks_exact_mut(num_classes))
                .zip(t_chunk)
                .enumerate()
            {
                let Some(class) =
                    class_of(t, num_classes).map_err(|e| e.in_row(chunk * chunk_rows + row))?
                else {
                    g.fill(0.0);
                    continue;
                };
                let log_sum_exp = scaled_softmax_row(z, g, scale);
                g[class] -= scale;
                total += log_sum_exp - f64::from(z[class]);
            }
            Ok(total)
        })
        .collect::<Result<Vec<f64>>>()?;
    Ok(totals.iter().sum())
}

/// Writes `g = scale * softmax(z)` (exponentials in f64) and returns `log(sum_j exp(z_j))`.
fn scaled_softmax_row(z: &[f32], g: &mut [f32], scale: f32) -> f64 {
    let max = z
        .iter()
        .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
    let mut sum = 0.0;
    for (gi, &v) in g.iter_mut().zip(z) {
        let e = (f64::from(v) - max).exp();
        sum += e;
        *gi = e as f32;
    }
    let factor = f64::from(scale) / sum;
    for gi in g.iter_mut() {
        *gi = (f64::from(*gi) * factor) as f32;
    }
    max + sum.ln()
}

/// Softmax cross-entropy against whole class distributions (soft labels): row `r` of `num_classes`
/// logits is scored against `probabilities[r * num_classes..]`, loss `sum_c -P_c log softmax(z)_c`,
/// gradient `scale * (softmax(z) - P)` written to `grad`; returns the sum over rows. This is the
/// expectation of [`softmax_cross_entropy`] over labels drawn from `P` (posterior training
/// targets). Each row of `P` must be finite, non-negative and sum to 1 within `1e-4`; a row whose
/// first entry is NaN is ignored (zero loss and gradient). Errors name the row.
pub fn soft_cross_entropy(
    logits: &[f32],
    probabilities: &[f32],
    num_classes: usize,
    grad: &mut [f32],
    scale: f32,
) -> Result<f64> {
    rows_of(logits, num_classes)?;
    check_len("probabilities", logits.len(), probabilities.len())?;
    check_len("grad", logits.len(), grad.len())?;
    let chunk = (CHUNK_ELEMENTS / num_classes).max(1) * num_classes;
    let totals: Vec<f64> = logits
        .par_chunks(chunk)
        .zip(grad.par_chunks_mut(chunk))
        .zip(probabilities.par_chunks(chunk))
        .enumerate()
        .map(|(c, ((z_chunk, g_chunk), p_chunk))| {
            let mut total = 0.0;
            for (row, ((z, g), p)) in z_chunk
                .chunks_exact(num_classes)
                .zip(g_chunk.chunks_exact_mut(num_classes))
                .zip(p_chunk.chunks_exact(num_classes))
                .enumerate()
            {
                if p[0].is_nan() {
                    g.fill(0.0);
                    continue;
                }
                let sum: f64 = p.iter().map(|&v| f64::from(v)).sum();
                if p.iter().any(|v| !(*v >= 0.0 && v.is_finite())) || (sum - 1.0).abs() > 1e-4 {
                    return Err(DistributionError::InvalidParameter {
                        argument: "class probabilities",
                        value: sum,
                        domain: "finite, non-negative, summing to 1",
                    }
                    .in_row(c * chunk / num_classes + row));
                }
                let log_sum_exp = scaled_softmax_row(z, g, scale);
                for ((gi, &zi), &pi) in g.iter_mut().zip(z).zip(p) {
                    total += f64::from(pi) * (log_sum_exp - f64::from(zi));
                    *gi -= scale * pi;
                }
            }
            Ok(total)
        })
        .collect::<Result<Vec<f64>>>()?;
    Ok(totals.iter().sum())
}

/// The class index of a multi-class target, `None` for ignored rows.
fn class_of(t: f32, num_classes: usize) -> Result<Option<usize>> {
    if t.is_nan() || t == IGNORE_INDEX {
        return Ok(None);
    }
    if t >= 0.0 && t.fract() == 0.0 && (t as usize) < num_classes {
        Ok(Some(t as usize))
    } else {
        Err(DistributionError::InvalidClassTarget {
            value: t,
            num_classes,
        })
    }
}

fn rows_of(logits: &[f32], num_classes: usize) -> Result<usize> {
    if num_classes == 0 {
        return Err(DistributionError::InvalidParameter {
            argument: "num_classes",
            value: 0.0,
            domain: "at least 1",
        });
    }
    if !logits.len().is_multiple_of(num_classes) {
        return Err(DistributionError::ShapeMismatch {
            argument: "logits",
            expected: (logits.len() / num_classes + 1) * num_classes,
            actual: logits.len(),
        });
    }
    Ok(logits.len() / num_classes)
}

fn check_len(argument: &'static str, expected: usize, actual: usize) -> Result<()> {
    if expected != actual {
        return Err(DistributionError::ShapeMismatch {
            argument,
            expected,
            actual,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bce_matches_the_definition_and_is_stable() {
        let logits = [-3.0f32, 0.0, 2.5, 80.0, -80.0, 0.7];
        let targets = [0.0f32, 1.0, 1.0, 0.0, 0.0, f32::NAN];
        let mut grad = [9.0f32; 6];
        let total = binary_cross_entropy_with_logits(&logits, &targets, &mut grad, 0.5).unwrap();
        let mut expected = 0.0;
        for i in 0..5 {
            let z = f64::from(logits[i]);
            let t = f64::from(targets[i]);
            let p = 1.0 / (1.0 + (-z).exp());
            // Direct formula is fine for |z| <= 3; for +-80 use the asymptotics.
            let l = if z.abs() < 10.0 {
                -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())
            } else if (z > 0.0) == (t > 0.5) {
                (-z.abs()).exp()
            } else {
                z.abs()
            };
            expected += l;
            assert!((f64::from(grad[i]) - 0.5 * (p - t)).abs() < 1e-7);
        }
        assert!((total - expected).abs() < 1e-9, "{total} vs {expected}");
        assert_eq!(grad[5], 0.0);
        assert!(total.is_finite());
    }

    #[test]
    fn bce_rejects_bad_targets_and_shapes() {
        let mut g = [0.0f32; 2];
        assert!(matches!(
            binary_cross_entropy_with_logits(&[0.0, 1.0], &[0.0, 2.0], &mut g, 1.0),
            Err(DistributionError::InRow { row: 1, .. })
        ));
        assert!(matches!(
            binary_cross_entropy_with_logits(&[0.0], &[0.0, 1.0], &mut g, 1.0),
            Err(DistributionError::ShapeMismatch {
                argument: "logits",
                ..
            })
        ));
    }

    #[test]
    fn cross_entropy_matches_the_definition_with_ignored_rows() {
        let c = 3;
        let logits = [
            1.0f32, 2.0, 0.5, -1.0, 0.0, 4.0, 0.3, 0.3, 0.3, 9.0, 1.0, 1.0,
        ];
        let targets = [1.0f32, 2.0, IGNORE_INDEX, f32::NAN];
        let mut grad = vec![7.0f32; 12];
        let total = softmax_cross_entropy(&logits, &targets, c, &mut grad, 1.0).unwrap();
        let mut expected = 0.0;
        let probs = softmax_probabilities(&logits, c).unwrap();
        for row in 0..2 {
            let z = &logits[row * c..(row + 1) * c];
            let lse = z.iter().map(|&v| f64::from(v).exp()).sum::<f64>().ln();
            let t = targets[row] as usize;
            expected += lse - f64::from(z[t]);
            for j in 0..c {
                let onehot = if j == t { 1.0 } else { 0.0 };
                let g = f64::from(probs[row * c + j]) - onehot;
                assert!((f64::from(grad[row * c + j]) - g).abs() < 1e-6);
            }
        }
        assert!((total - expected).abs() < 1e-9);
        assert!(grad[6..].iter().all(|&g| g == 0.0));
        let row_sums: Vec<f32> = probs.chunks(c).map(|r| r.iter().sum()).collect();
        assert!(row_sums.iter().all(|s| (s - 1.0).abs() < 1e-6));
    }

    #[test]
    fn cross_entropy_rejects_bad_targets() {
        let mut g = [0.0f32; 4];
        for bad in [2.0f32, 0.5, -1.0, f32::INFINITY] {
            let err = softmax_cross_entropy(&[0.0; 4], &[0.0, bad], 2, &mut g, 1.0).unwrap_err();
            assert!(
                matches!(err, DistributionError::InRow { row: 1, .. }),
                "{bad}: {err}"
            );
        }
        assert!(softmax_cross_entropy(&[0.0; 4], &[0.0, 1.0], 0, &mut g, 1.0).is_err());
        assert!(softmax_probabilities(&[0.0; 5], 2).is_err());
    }

    #[test]
    fn soft_cross_entropy_is_the_expected_hard_loss() {
        let logits = [0.3f32, -1.2, 0.8, 2.0, 0.0, -0.5];
        let probs = [0.2f32, 0.5, 0.3, 1.0, 0.0, 0.0];
        let mut grad = [0.0f32; 6];
        let total = soft_cross_entropy(&logits, &probs, 3, &mut grad, 0.5).unwrap();
        let mut expected = 0.0;
        let mut expected_grad = [0.0f64; 6];
        for r in 0..2 {
            for c in 0..3 {
                let mut g = [0.0f32; 3];
                let hard =
                    softmax_cross_entropy(&logits[r * 3..r * 3 + 3], &[c as f32], 3, &mut g, 0.5)
                        .unwrap();
                let p = f64::from(probs[r * 3 + c]);
                expected += p * hard;
                for j in 0..3 {
                    expected_grad[r * 3 + j] += p * f64::from(g[j]);
                }
            }
        }
        assert!((total - expected).abs() < 1e-6, "{total} vs {expected}");
        for (a, b) in grad.iter().zip(expected_grad) {
            assert!((f64::from(*a) - b).abs() < 1e-6);
        }
        let bad = soft_cross_entropy(&logits, &[0.5, 0.6, 0.0, 1.0, 0.0, 0.0], 3, &mut grad, 1.0);
        assert!(
            matches!(bad, Err(DistributionError::InRow { row: 0, .. })),
            "{bad:?}"
        );
    }
}

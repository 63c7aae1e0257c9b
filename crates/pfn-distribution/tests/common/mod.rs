//! Helpers shared by the integration tests: numerical quadrature over a bar distribution.
#![allow(dead_code)]

use pfn_distribution::{BarPrediction, Support};

/// Logits `ln p` as f32.
pub fn ln_probs(p: &[f64]) -> Vec<f32> {
    p.iter().map(|&v| v.ln() as f32).collect()
}

/// Gauss–Legendre 5-point nodes and weights on [-1, 1].
const GL_NODES: [f64; 5] = [
    -0.906_179_845_938_664,
    -0.538_469_310_105_683_1,
    0.0,
    0.538_469_310_105_683_1,
    0.906_179_845_938_664,
];
const GL_WEIGHTS: [f64; 5] = [
    0.236_926_885_056_189_1,
    0.478_628_670_499_366_5,
    0.568_888_888_888_888_9,
    0.478_628_670_499_366_5,
    0.236_926_885_056_189_1,
];

/// Composite 5-point Gauss–Legendre over `[a, b]` with `pieces` equal subintervals
/// (nodes are strictly inside, so `f` is never evaluated at `a` or `b`).
pub fn gauss_legendre(f: &impl Fn(f64) -> f64, a: f64, b: f64, pieces: usize) -> f64 {
    let h = (b - a) / pieces as f64;
    let mut total = 0.0;
    for i in 0..pieces {
        let lo = a + i as f64 * h;
        let mid = lo + 0.5 * h;
        for (x, w) in GL_NODES.iter().zip(GL_WEIGHTS) {
            total += w * f(mid + 0.5 * h * x);
        }
    }
    0.5 * h * total
}

/// Integrates `f` over the whole support of `pred`, from -inf (or the first border) up to `upper`,
/// splitting at every border, at the extra `breaks`, and covering 14 half-normal scales of each
/// tail (the mass beyond is below 1e-43).
pub fn integrate_over_support(
    pred: &BarPrediction,
    f: impl Fn(f64) -> f64,
    upper: f64,
    breaks: &[f64],
) -> f64 {
    let dist = pred.distribution();
    let b = dist.borders();
    let k = dist.num_buckets();
    let mut points: Vec<f64> = Vec::new();
    let mut tail_segments = Vec::new();
    match (dist.support(), dist.tails()) {
        (Support::Full, Some((left, right))) => {
            let lo = left.anchor - 14.0 * left.scale;
            let hi = right.anchor + 14.0 * right.scale;
            points.push(lo);
            points.extend_from_slice(&b[1..k]);
            points.push(hi);
            tail_segments.push((lo, left.anchor));
            tail_segments.push((right.anchor, hi));
        }
        _ => points.extend_from_slice(b),
    }
    points.extend(breaks.iter().copied());
    points.push(upper);
    points.retain(|&p| p.is_finite());
    points.sort_by(f64::total_cmp);
    points.dedup();
    let mut total = 0.0;
    for w in points.windows(2) {
        let (a, c) = (w[0], w[1]);
        if c > upper {
            break;
        }
        let in_tail = tail_segments.iter().any(|&(lo, hi)| a >= lo && c <= hi);
        let pieces = if in_tail { 400 } else { 4 };
        total += gauss_legendre(&f, a, c, pieces);
    }
    total
}

//! Building blocks of the experiments' plots on top of `pfn-plot`: a mean curve with its 95%
//! band, and a robust y range that keeps a few diverging runs from flattening every curve.

use pfn_plot::{Figure, Rgb, Series, PALETTE};

use crate::stats::Summary;

/// The colour of series `i`.
pub fn color(i: usize) -> Rgb {
    PALETTE[i % PALETTE.len()]
}

/// Adds the mean of `summaries` over `xs` as a line with markers and, when `band`, the 95%
/// confidence band of the mean.
pub fn add_curve(
    fig: &mut Figure,
    label: &str,
    xs: &[f64],
    summaries: &[Summary],
    color: Rgb,
    dashed: bool,
    band: bool,
) {
    if band && summaries.iter().any(|s| s.ci95.is_finite()) {
        fig.series.push(Series::Band {
            label: String::new(),
            x: xs.to_vec(),
            lower: summaries.iter().map(Summary::lower).collect(),
            upper: summaries.iter().map(Summary::upper).collect(),
            color,
            opacity: 0.18,
        });
    }
    let points: Vec<(f64, f64)> = xs
        .iter()
        .zip(summaries)
        .map(|(&x, s)| (x, s.mean))
        .collect();
    fig.series.push(Series::Line {
        label: label.to_string(),
        points: points.clone(),
        color,
        dashed,
    });
    fig.series.push(Series::Points {
        label: String::new(),
        points,
        color,
        radius: 3,
    });
}

/// A y range covering every curve's band, except that it is capped at `headroom` beyond the
/// smallest and largest median of the curves (runs that diverge would otherwise squash the
/// others). Returns the range and whether anything was cut off.
pub fn robust_y_range(curves: &[&[Summary]], headroom: f64) -> Option<((f64, f64), bool)> {
    let all: Vec<&Summary> = curves.iter().flat_map(|c| c.iter()).collect();
    let finite_fold = |f: fn(&Summary) -> f64, init: f64, pick: fn(f64, f64) -> f64| {
        all.iter()
            .map(|s| f(s))
            .filter(|v| v.is_finite())
            .fold(init, pick)
    };
    let lo = finite_fold(Summary::lower, f64::INFINITY, f64::min);
    let hi = finite_fold(Summary::upper, f64::NEG_INFINITY, f64::max);
    let med_lo = finite_fold(|s| s.median, f64::INFINITY, f64::min);
    let med_hi = finite_fold(|s| s.median, f64::NEG_INFINITY, f64::max);
    if !(lo.is_finite() && hi.is_finite() && med_lo.is_finite() && med_hi.is_finite()) {
        return None;
    }
    let bottom = lo.max(med_lo - headroom);
    let top = hi.min(med_hi + headroom).max(bottom + 1e-9);
    let pad = 0.05 * (top - bottom).max(1e-6);
    Some(((bottom - pad, top + pad), hi > top || lo < bottom))
}

/// Removes markers outside `y_range` (lines are clipped at the frame by the plotting crate, but
/// markers would be drawn on the frame, looking like values at its edge).
pub fn drop_markers_outside(fig: &mut Figure, y_range: (f64, f64)) {
    for s in &mut fig.series {
        if let Series::Points { points, .. } = s {
            points.retain(|&(_, y)| y >= y_range.0 && y <= y_range.1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outlying_curves_are_capped() {
        let a = vec![Summary::of(&[0.0, 0.2]), Summary::of(&[1.0, 1.2])];
        let b = vec![
            Summary::of(&[0.1, 900.0, 0.3]),
            Summary::of(&[1.1, 1.3, 1.2]),
        ];
        let ((lo, hi), cut) = robust_y_range(&[&a, &b], 3.0).unwrap();
        assert!(cut);
        assert!(
            lo < 0.0 && lo > 0.1 - 3.0 - 1.0 && hi < 1.3 + 3.0 + 1.0,
            "{lo} {hi}"
        );
        let ((_, hi2), cut2) = robust_y_range(&[&a], 3.0).unwrap();
        assert!(!cut2 && hi2 >= a[1].upper());
    }
}

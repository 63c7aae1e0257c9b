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

/// Clips every line and marker to `y_range`: the plotting crate clamps coordinates to the frame,
/// which would draw values beyond it as segments and markers along the frame's edge. Lines are
/// cut where they leave the range (one polyline per visible piece, the legend label on the
/// first), markers outside are dropped; bands are left to fill up to the edge.
pub fn clip_to_y_range(fig: &mut Figure, y_range: (f64, f64)) {
    let (lo, hi) = y_range;
    let mut out = Vec::with_capacity(fig.series.len());
    for s in fig.series.drain(..) {
        match s {
            Series::Points {
                label,
                mut points,
                color,
                radius,
            } => {
                points.retain(|&(_, y)| y >= lo && y <= hi);
                out.push(Series::Points {
                    label,
                    points,
                    color,
                    radius,
                });
            }
            Series::Line {
                label,
                points,
                color,
                dashed,
            } => {
                let pieces = clip_polyline(&points, lo, hi);
                if pieces.is_empty() && !label.is_empty() {
                    // Keep the legend entry.
                    out.push(Series::Line {
                        label,
                        points: Vec::new(),
                        color,
                        dashed,
                    });
                    continue;
                }
                for (k, piece) in pieces.into_iter().enumerate() {
                    out.push(Series::Line {
                        label: if k == 0 { label.clone() } else { String::new() },
                        points: piece,
                        color,
                        dashed,
                    });
                }
            }
            band => out.push(band),
        }
    }
    fig.series = out;
}

/// The pieces of a polyline inside `lo <= y <= hi` (segments cut at the boundary).
pub fn clip_polyline(points: &[(f64, f64)], lo: f64, hi: f64) -> Vec<Vec<(f64, f64)>> {
    let inside = |p: (f64, f64)| p.0.is_finite() && p.1 >= lo && p.1 <= hi;
    let mut pieces: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    let mut flush = |current: &mut Vec<(f64, f64)>| {
        if !current.is_empty() {
            pieces.push(std::mem::take(current));
        }
    };
    if points.len() == 1 {
        if inside(points[0]) {
            return vec![points.to_vec()];
        }
        return Vec::new();
    }
    for w in points.windows(2) {
        let (a, b) = (w[0], w[1]);
        if !(a.0.is_finite() && a.1.is_finite() && b.0.is_finite() && b.1.is_finite()) {
            flush(&mut current);
            continue;
        }
        let dy = b.1 - a.1;
        let (t0, t1) = if dy == 0.0 {
            if inside(a) {
                (0.0, 1.0)
            } else {
                flush(&mut current);
                continue;
            }
        } else {
            let (ta, tb) = ((lo - a.1) / dy, (hi - a.1) / dy);
            (ta.min(tb).max(0.0), ta.max(tb).min(1.0))
        };
        if t0 > t1 {
            flush(&mut current);
            continue;
        }
        let at = |t: f64| (a.0 + t * (b.0 - a.0), a.1 + t * dy);
        let (p0, p1) = (at(t0), at(t1));
        if current.last() != Some(&p0) {
            flush(&mut current);
            current.push(p0);
        }
        current.push(p1);
        if t1 < 1.0 {
            flush(&mut current);
        }
    }
    flush(&mut current);
    pieces
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

    #[test]
    fn polylines_are_cut_at_the_range() {
        let pieces = clip_polyline(
            &[(0.0, 0.0), (1.0, 10.0), (2.0, 0.0), (3.0, 0.5)],
            -1.0,
            1.0,
        );
        assert_eq!(
            pieces,
            vec![
                vec![(0.0, 0.0), (0.1, 1.0)],
                vec![(1.9, 1.0), (2.0, 0.0), (3.0, 0.5)]
            ]
        );
        assert!(clip_polyline(&[(0.0, 5.0), (1.0, 6.0)], -1.0, 1.0).is_empty());
        assert_eq!(
            clip_polyline(&[(0.0, 0.5)], -1.0, 1.0),
            vec![vec![(0.0, 0.5)]]
        );
        let mut fig = Figure::new("t", "x", "y");
        fig.series.push(Series::Points {
            label: String::new(),
            points: vec![(0.0, 0.0), (1.0, 10.0)],
            color: color(0),
            radius: 3,
        });
        fig.series.push(Series::Line {
            label: "l".into(),
            points: vec![(0.0, 0.0), (1.0, 10.0), (2.0, 0.0)],
            color: color(0),
            dashed: false,
        });
        clip_to_y_range(&mut fig, (-1.0, 1.0));
        assert_eq!(fig.series.len(), 3);
        match (&fig.series[0], &fig.series[1], &fig.series[2]) {
            (
                Series::Points { points, .. },
                Series::Line { label: l1, .. },
                Series::Line { label: l2, .. },
            ) => {
                assert_eq!(points, &vec![(0.0, 0.0)]);
                assert_eq!((l1.as_str(), l2.as_str()), ("l", ""));
            }
            _ => panic!("unexpected series"),
        }
    }
}

//! Figures of class predictions: the reliability diagram of labelled queries (is a prediction
//! made with 80 % confidence right 80 % of the time?) and the class probabilities of each query
//! as stacked bars.

use crate::{Bars, Figure, Labels, PlotError, Rgb, Series, PALETTE};

/// Ten distinguishable colours (Tableau 10), one per class of a model with up to ten classes;
/// more classes reuse them in turn.
pub const CLASS_PALETTE: [Rgb; 10] = [
    PALETTE[0],
    PALETTE[1],
    PALETTE[2],
    PALETTE[3],
    PALETTE[4],
    PALETTE[5],
    PALETTE[6],
    PALETTE[7],
    (188, 189, 34),
    (23, 190, 207),
];

/// One confidence bin of a reliability diagram (top label: confidence is the largest class
/// probability of a query, accuracy the fraction of its queries whose most probable class is
/// right).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConfidenceBin {
    /// Lower edge of the bin.
    pub lower: f64,
    /// Upper edge of the bin.
    pub upper: f64,
    /// Queries whose confidence falls in the bin.
    pub count: usize,
    /// Their mean confidence (ignored when `count` is 0).
    pub confidence: f64,
    /// Their accuracy (ignored when `count` is 0).
    pub accuracy: f64,
}

/// A reliability diagram: per non-empty confidence bin a bar up to its accuracy with its query
/// count above it, a point at (mean confidence, accuracy), and the diagonal of perfect
/// calibration. Errors when every bin is empty.
pub fn reliability_diagram(title: &str, bins: &[ConfidenceBin]) -> Result<Figure, PlotError> {
    let used: Vec<&ConfidenceBin> = bins.iter().filter(|b| b.count > 0).collect();
    if used.is_empty() {
        return Err(PlotError::Invalid(
            "a reliability diagram needs at least one labelled prediction".into(),
        ));
    }
    let mut fig = Figure::new(
        title,
        "confidence (probability of the predicted class)",
        "accuracy (fraction predicted right)",
    );
    fig.x_range = Some((0.0, 1.0));
    fig.y_range = Some((0.0, 1.12));
    fig.legend_upper_left = true;
    let gap = |b: &ConfidenceBin| (b.upper - b.lower) * 0.04;
    fig.bars.push(Bars {
        label: "accuracy per confidence bin (number: its queries)".into(),
        rects: used
            .iter()
            .map(|b| (b.lower + gap(b), b.upper - gap(b), 0.0, b.accuracy))
            .collect(),
        color: PALETTE[0],
        opacity: 0.55,
    });
    fig.series.push(Series::Line {
        label: "perfect calibration".into(),
        points: vec![(0.0, 0.0), (1.0, 1.0)],
        color: PALETTE[7],
        dashed: true,
    });
    fig.series.push(Series::Points {
        label: "(mean confidence, accuracy) of a bin".into(),
        points: used.iter().map(|b| (b.confidence, b.accuracy)).collect(),
        color: PALETTE[3],
        radius: 4,
    });
    fig.labels.push(Labels {
        items: used
            .iter()
            .map(|b| {
                (
                    (b.lower + b.upper) / 2.0,
                    b.accuracy + 0.015,
                    format!("{}", b.count),
                )
            })
            .collect(),
        color: (0, 0, 0),
        size: 13,
    });
    Ok(fig)
}

/// The class probabilities of each query as a stacked bar (`probabilities` row-major, one row of
/// `class_names.len()` values per query, in the order drawn), one colour per class with its name
/// in the legend, which sits in a strip to the right of the bars. Errors on a length mismatch or
/// no query.
pub fn class_probability_bars(
    title: &str,
    x_label: &str,
    class_names: &[String],
    probabilities: &[f64],
) -> Result<Figure, PlotError> {
    let k = class_names.len();
    if k == 0 || probabilities.is_empty() || !probabilities.len().is_multiple_of(k) {
        return Err(PlotError::Invalid(format!(
            "{} probabilities are not whole rows of {k} classes",
            probabilities.len()
        )));
    }
    let m = probabilities.len() / k;
    let mut fig = Figure::new(title, x_label, "class probability");
    // Room on the right for the legend: its width in pixels over the ~800 px of the axes.
    let longest = class_names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(1);
    let legend_px = (70 + 8 * longest).min(400) as f64;
    let share = legend_px / 800.0;
    let extra = m as f64 * share / (1.0 - share);
    fig.x_range = Some((0.5, m as f64 + 0.5 + extra));
    fig.y_range = Some((0.0, 1.0));
    let half = if m > 200 { 0.5 } else { 0.4 };
    let mut bottom = vec![0.0; m];
    for (c, name) in class_names.iter().enumerate() {
        let rects = (0..m)
            .map(|i| {
                let p = probabilities[i * k + c].clamp(0.0, 1.0);
                let x = (i + 1) as f64;
                let r = (x - half, x + half, bottom[i], (bottom[i] + p).min(1.0));
                bottom[i] = r.3;
                r
            })
            .collect();
        fig.bars.push(Bars {
            label: name.clone(),
            rects,
            color: CLASS_PALETTE[c % CLASS_PALETTE.len()],
            opacity: 0.9,
        });
    }
    Ok(fig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_figures_draw() {
        let dir = std::env::temp_dir().join(format!("pfn-plot-classes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bins: Vec<ConfidenceBin> = (0..10)
            .map(|b| ConfidenceBin {
                lower: b as f64 / 10.0,
                upper: (b + 1) as f64 / 10.0,
                count: if b < 5 { 0 } else { b },
                confidence: b as f64 / 10.0 + 0.05,
                accuracy: b as f64 / 10.0,
            })
            .collect();
        let fig = reliability_diagram("r", &bins).unwrap();
        let names = vec!["setosa".to_string(), "b".into(), "c".into()];
        let bars = class_probability_bars(
            "p",
            "query",
            &names,
            &[0.2, 0.3, 0.5, 1.0, 0.0, 0.0, 0.1, 0.8, 0.1],
        )
        .unwrap();
        for ext in ["png", "svg"] {
            for (f, name) in [(&fig, "r"), (&bars, "p")] {
                let p = dir.join(format!("{name}.{ext}"));
                f.save(&p).unwrap();
                assert!(std::fs::metadata(&p).unwrap().len() > 1000);
            }
        }
        let svg = std::fs::read_to_string(dir.join("p.svg")).unwrap();
        assert!(svg.contains("setosa"));
        assert!(reliability_diagram("r", &bins[..5]).is_err());
        assert!(class_probability_bars("p", "q", &names, &[0.5, 0.5]).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}

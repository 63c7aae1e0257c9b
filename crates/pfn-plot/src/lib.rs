//! Small figures for `pfn`: lines, scattered points, shaded bands, bars, text labels and a density
//! heat map, written as PNG or SVG (chosen by the file extension). Text uses an embedded DejaVu
//! Sans font, so no system fonts are needed at run time. [`classes`] builds the figures of class
//! predictions (reliability diagram, class probabilities per query); [`images`] draws grids of
//! small grayscale images (the episodes of an image prior).
#![warn(missing_docs)]

pub mod classes;
pub mod images;

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

/// Errors from drawing a figure.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The figure has nothing to draw or a series is malformed.
    #[error("invalid figure: {0}")]
    Invalid(String),
    /// The file extension is neither `.png` nor `.svg`.
    #[error("{0}: plot files must end in .png or .svg")]
    Extension(String),
    /// The drawing backend failed (e.g. the file could not be written).
    #[error("could not draw {path}: {message}")]
    Backend {
        /// The output file.
        path: String,
        /// The backend's message.
        message: String,
    },
}

/// An RGB colour.
pub type Rgb = (u8, u8, u8);

/// A closed interval `(low, high)` on one axis.
type Range = (f64, f64);

/// A palette of distinguishable colours (Tableau 10).
pub const PALETTE: [Rgb; 8] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
];

/// One thing drawn on the axes.
#[derive(Debug, Clone)]
pub enum Series {
    /// A polyline through `(x, y)` points.
    Line {
        /// Legend label (empty for none).
        label: String,
        /// The points, in drawing order.
        points: Vec<(f64, f64)>,
        /// Colour.
        color: Rgb,
        /// Dashed line.
        dashed: bool,
    },
    /// Scattered markers.
    Points {
        /// Legend label (empty for none).
        label: String,
        /// The points.
        points: Vec<(f64, f64)>,
        /// Colour.
        color: Rgb,
        /// Marker radius in pixels.
        radius: u32,
    },
    /// A shaded band between `lower` and `upper` over `x`.
    Band {
        /// Legend label (empty for none).
        label: String,
        /// Abscissae.
        x: Vec<f64>,
        /// Lower edge per abscissa.
        lower: Vec<f64>,
        /// Upper edge per abscissa.
        upper: Vec<f64>,
        /// Colour.
        color: Rgb,
        /// Opacity in [0, 1].
        opacity: f64,
    },
}

/// Filled axis-aligned rectangles (the bars of a histogram or of a stacked bar chart), drawn
/// above the heat map and below the series.
#[derive(Debug, Clone)]
pub struct Bars {
    /// Legend label (empty for none).
    pub label: String,
    /// The rectangles, each `(x0, x1, y0, y1)`.
    pub rects: Vec<(f64, f64, f64, f64)>,
    /// Colour.
    pub color: Rgb,
    /// Opacity in [0, 1].
    pub opacity: f64,
}

/// Text labels, each centred horizontally on its `(x, y)` point with its bottom there, drawn
/// above everything else.
#[derive(Debug, Clone)]
pub struct Labels {
    /// The labels: position and text.
    pub items: Vec<(f64, f64, String)>,
    /// Colour.
    pub color: Rgb,
    /// Font size in pixels.
    pub size: u32,
}

/// A density heat map on a regular grid: `values[row * nx + col]`, rows from `y_range.0` upwards.
#[derive(Debug, Clone)]
pub struct HeatMap {
    /// Range of the x axis covered by the columns.
    pub x_range: (f64, f64),
    /// Range of the y axis covered by the rows.
    pub y_range: (f64, f64),
    /// Number of columns.
    pub nx: usize,
    /// Number of rows.
    pub ny: usize,
    /// Non-negative values; drawn with a white-to-blue ramp scaled to the largest value.
    pub values: Vec<f64>,
}

/// A figure with one set of axes.
#[derive(Debug, Clone, Default)]
pub struct Figure {
    /// Title above the axes.
    pub title: String,
    /// Label of the x axis.
    pub x_label: String,
    /// Label of the y axis.
    pub y_label: String,
    /// Series drawn in order (later ones on top).
    pub series: Vec<Series>,
    /// Optional heat map drawn below all series.
    pub heat_map: Option<HeatMap>,
    /// Fixed x range; computed from the data when `None`.
    pub x_range: Option<(f64, f64)>,
    /// Fixed y range; computed from the data when `None`.
    pub y_range: Option<(f64, f64)>,
    /// Logarithmic x axis.
    pub log_x: bool,
    /// Image size in pixels (defaults to 900 x 560 when zero).
    pub size: (u32, u32),
    /// Draw the legend in the upper left corner instead of the upper right.
    pub legend_upper_left: bool,
    /// Bars drawn below the series.
    pub bars: Vec<Bars>,
    /// Text labels drawn on top.
    pub labels: Vec<Labels>,
}

static FONT: Once = Once::new();

/// A figure that draws itself on any plotters backend.
pub(crate) trait Drawing {
    /// Draws onto `root`.
    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static;
}

/// Writes `figure` to `path` as PNG or SVG (by the extension), `size` pixels; errors name `name`.
pub(crate) fn save_drawing<T: Drawing>(
    figure: &T,
    path: &Path,
    name: &str,
    size: (u32, u32),
) -> Result<(), PlotError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    let backend_err = |e: &dyn std::fmt::Display| PlotError::Backend {
        path: name.to_string(),
        message: e.to_string(),
    };
    match ext.as_deref() {
        Some("png") => {
            let root = BitMapBackend::new(path, size).into_drawing_area();
            figure.draw_on(&root).map_err(|e| backend_err(&e))?;
            root.present().map_err(|e| backend_err(&e))
        }
        Some("svg") => {
            let root = SVGBackend::new(path, size).into_drawing_area();
            figure.draw_on(&root).map_err(|e| backend_err(&e))?;
            root.present().map_err(|e| backend_err(&e))
        }
        _ => Err(PlotError::Extension(name.to_string())),
    }
}

fn register_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../assets/DejaVuSans.ttf");
        // The embedded font is known to be valid; failure would only lose text, not the plot.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
}

impl Figure {
    /// Creates an empty figure with a title and axis labels.
    pub fn new(title: &str, x_label: &str, y_label: &str) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            ..Self::default()
        }
    }

    /// Adds a series and returns the figure (builder style).
    pub fn with(mut self, s: Series) -> Self {
        self.series.push(s);
        self
    }

    fn data_ranges(&self) -> Result<(Range, Range), PlotError> {
        let mut xs = (f64::INFINITY, f64::NEG_INFINITY);
        let mut ys = (f64::INFINITY, f64::NEG_INFINITY);
        let mut add = |x: f64, y: f64| {
            if x.is_finite() && y.is_finite() && (!self.log_x || x > 0.0) {
                xs = (xs.0.min(x), xs.1.max(x));
                ys = (ys.0.min(y), ys.1.max(y));
            }
        };
        for s in &self.series {
            match s {
                Series::Line { points, .. } | Series::Points { points, .. } => {
                    points.iter().for_each(|&(x, y)| add(x, y))
                }
                Series::Band {
                    x, lower, upper, ..
                } => {
                    if x.len() != lower.len() || x.len() != upper.len() {
                        return Err(PlotError::Invalid(format!(
                            "band has {} x values but {} lower and {} upper",
                            x.len(),
                            lower.len(),
                            upper.len()
                        )));
                    }
                    for i in 0..x.len() {
                        add(x[i], lower[i]);
                        add(x[i], upper[i]);
                    }
                }
            }
        }
        for b in &self.bars {
            b.rects.iter().for_each(|&(x0, x1, y0, y1)| {
                add(x0, y0);
                add(x1, y1);
            });
        }
        for l in &self.labels {
            l.items.iter().for_each(|(x, y, _)| add(*x, *y));
        }
        if let Some(h) = &self.heat_map {
            if h.values.len() != h.nx * h.ny || h.nx == 0 || h.ny == 0 {
                return Err(PlotError::Invalid(format!(
                    "heat map has {} values for a {} x {} grid",
                    h.values.len(),
                    h.ny,
                    h.nx
                )));
            }
            add(h.x_range.0, h.y_range.0);
            add(h.x_range.1, h.y_range.1);
        }
        let x = self.x_range.unwrap_or(xs);
        let y = self.y_range.unwrap_or(ys);
        if !(x.0.is_finite() && x.1.is_finite() && y.0.is_finite() && y.1.is_finite()) {
            return Err(PlotError::Invalid("no finite data to plot".into()));
        }
        let pad = |r: (f64, f64), frac: f64| {
            if r.1 > r.0 {
                let p = (r.1 - r.0) * frac;
                (r.0 - p, r.1 + p)
            } else {
                (r.0 - 0.5, r.1 + 0.5)
            }
        };
        let x = if self.x_range.is_some() || self.log_x {
            if x.1 > x.0 {
                x
            } else {
                (x.0 * 0.5, x.1 * 2.0)
            }
        } else {
            pad(x, 0.02)
        };
        let y = if self.y_range.is_some() {
            y
        } else {
            pad(y, 0.05)
        };
        Ok((x, y))
    }

    /// Writes the figure to `path` (`.png` or `.svg`).
    pub fn save(&self, path: &Path) -> Result<(), PlotError> {
        register_font();
        let name = path.display().to_string();
        let size = if self.size.0 == 0 {
            (900, 560)
        } else {
            self.size
        };
        save_drawing(self, path, &name, size)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let ((x0, x1), (y0, y1)) = self.data_ranges().map_err(|e| e.to_string())?;
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut builder = ChartBuilder::on(root);
        builder
            .caption(&self.title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(60);
        if self.log_x {
            let mut chart = builder
                .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_desc(&self.x_label)
                .y_desc(&self.y_label)
                .label_style(("sans-serif", 14))
                .draw()
                .map_err(|e| e.to_string())?;
            self.draw_series(&mut chart)
        } else {
            let mut chart = builder
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_desc(&self.x_label)
                .y_desc(&self.y_label)
                .label_style(("sans-serif", 14))
                .draw()
                .map_err(|e| e.to_string())?;
            self.draw_series(&mut chart)
        }
    }

    fn draw_series<'a, DB, X>(
        &self,
        chart: &mut ChartContext<'a, DB, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
    ) -> Result<(), String>
    where
        DB: DrawingBackend + 'a,
        DB::ErrorType: 'static,
        X: Ranged<ValueType = f64>,
    {
        let mut any_label = false;
        if let Some(h) = &self.heat_map {
            let max = h.values.iter().cloned().fold(0.0f64, f64::max);
            let dx = (h.x_range.1 - h.x_range.0) / h.nx as f64;
            let dy = (h.y_range.1 - h.y_range.0) / h.ny as f64;
            let rects = (0..h.ny).flat_map(|r| {
                (0..h.nx).map(move |c| {
                    let v = if max > 0.0 {
                        (h.values[r * h.nx + c] / max).clamp(0.0, 1.0)
                    } else {
                        0.0
                    };
                    // White to deep blue; a square-root ramp keeps low densities visible.
                    let t = v.sqrt();
                    let col = RGBColor(
                        (255.0 * (1.0 - 0.85 * t)) as u8,
                        (255.0 * (1.0 - 0.65 * t)) as u8,
                        (255.0 * (1.0 - 0.25 * t)) as u8,
                    );
                    let xa = h.x_range.0 + c as f64 * dx;
                    let ya = h.y_range.0 + r as f64 * dy;
                    Rectangle::new([(xa, ya), (xa + dx, ya + dy)], col.filled())
                })
            });
            chart.draw_series(rects).map_err(|e| e.to_string())?;
        }
        for Bars {
            label,
            rects,
            color,
            opacity,
        } in &self.bars
        {
            let c = RGBColor(color.0, color.1, color.2).mix(*opacity);
            let a = chart
                .draw_series(
                    rects
                        .iter()
                        .map(|&(x0, x1, y0, y1)| Rectangle::new([(x0, y0), (x1, y1)], c.filled()))
                        .collect::<Vec<_>>(),
                )
                .map_err(|e| e.to_string())?;
            if !label.is_empty() {
                any_label = true;
                a.label(label.as_str()).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 16, y + 5)], c.filled())
                });
            }
        }
        for s in &self.series {
            match s {
                Series::Band {
                    label,
                    x,
                    lower,
                    upper,
                    color,
                    opacity,
                } => {
                    let c = RGBColor(color.0, color.1, color.2).mix(*opacity);
                    let poly: Vec<(f64, f64)> = x
                        .iter()
                        .zip(upper)
                        .map(|(&a, &b)| (a, b))
                        .chain(x.iter().zip(lower).rev().map(|(&a, &b)| (a, b)))
                        .collect();
                    let a = chart
                        .draw_series(std::iter::once(Polygon::new(poly, c.filled())))
                        .map_err(|e| e.to_string())?;
                    if !label.is_empty() {
                        any_label = true;
                        a.label(label.as_str()).legend(move |(x, y)| {
                            Rectangle::new([(x, y - 5), (x + 16, y + 5)], c.filled())
                        });
                    }
                }
                Series::Line {
                    label,
                    points,
                    color,
                    dashed,
                } => {
                    let c = RGBColor(color.0, color.1, color.2);
                    let style = c.stroke_width(2);
                    let a = if *dashed {
                        chart
                            .draw_series(DashedLineSeries::new(points.iter().cloned(), 6, 4, style))
                            .map_err(|e| e.to_string())?
                    } else {
                        chart
                            .draw_series(LineSeries::new(points.iter().cloned(), style))
                            .map_err(|e| e.to_string())?
                    };
                    if !label.is_empty() {
                        any_label = true;
                        a.label(label.as_str()).legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2))
                        });
                    }
                }
                Series::Points {
                    label,
                    points,
                    color,
                    radius,
                } => {
                    let c = RGBColor(color.0, color.1, color.2);
                    let r = *radius as i32;
                    let a = chart
                        .draw_series(
                            points
                                .iter()
                                .map(|&p| Circle::new(p, r, c.filled()))
                                .collect::<Vec<_>>(),
                        )
                        .map_err(|e| e.to_string())?;
                    if !label.is_empty() {
                        any_label = true;
                        a.label(label.as_str())
                            .legend(move |(x, y)| Circle::new((x + 8, y), r, c.filled()));
                    }
                }
            }
        }
        for Labels { items, color, size } in &self.labels {
            use plotters::style::text_anchor::{HPos, Pos, VPos};
            let style = ("sans-serif", *size as f64)
                .into_font()
                .color(&RGBColor(color.0, color.1, color.2))
                .pos(Pos::new(HPos::Center, VPos::Bottom));
            chart
                .draw_series(
                    items
                        .iter()
                        .map(|(x, y, t)| Text::new(t.clone(), (*x, *y), style.clone()))
                        .collect::<Vec<_>>(),
                )
                .map_err(|e| e.to_string())?;
        }
        if any_label {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .position(if self.legend_upper_left {
                    SeriesLabelPosition::UpperLeft
                } else {
                    SeriesLabelPosition::UpperRight
                })
                .draw()
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

impl Drawing for Figure {
    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        self.draw(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_png_and_svg() {
        let dir = std::env::temp_dir().join(format!("pfn-plot-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let xs: Vec<f64> = (0..50).map(|i| i as f64 / 49.0).collect();
        let fig = Figure::new("test", "x", "y")
            .with(Series::Band {
                label: "band".into(),
                x: xs.clone(),
                lower: xs.iter().map(|x| x.sin() - 0.2).collect(),
                upper: xs.iter().map(|x| x.sin() + 0.2).collect(),
                color: PALETTE[0],
                opacity: 0.3,
            })
            .with(Series::Line {
                label: "sin".into(),
                points: xs.iter().map(|&x| (x, x.sin())).collect(),
                color: PALETTE[0],
                dashed: false,
            })
            .with(Series::Points {
                label: "data".into(),
                points: vec![(0.2, 0.1), (0.7, 0.5)],
                color: PALETTE[3],
                radius: 4,
            });
        for ext in ["png", "svg"] {
            let p = dir.join(format!("f.{ext}"));
            fig.save(&p).unwrap();
            assert!(std::fs::metadata(&p).unwrap().len() > 1000);
        }
        let png = std::fs::read(dir.join("f.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        assert!(matches!(
            fig.save(&dir.join("f.jpg")),
            Err(PlotError::Extension(_))
        ));
        let empty = Figure::new("e", "x", "y");
        assert!(empty.save(&dir.join("e.png")).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}

//! The paper's stroke prior for few-shot image classification (§7, spec §4.6; registry name
//! `strokes`): N-way k-shot episodes of 28 x 28 grayscale images, each class a prototype made of
//! straight strokes that every image of the class redraws with its own width, offset and jitter.
//!
//! # One dataset (an episode)
//!
//! 1. **Class prototypes.** Each of the `N` classes ([`StrokeConfig::classes`], default 5) gets
//!    `U{1..3}` straight strokes ([`StrokeConfig::strokes_per_class`]). Per stroke: a length
//!    `L ~ U{5..20}` px, a start `s ~ U{2..25}²` px (x, then y) and a direction `θ ~ U[0, 2π)`; the
//!    end is `s + L (cos θ, sin θ)` rounded to the nearest pixel. While the end lies outside
//!    `[0, 27]²` the direction is redrawn, and on every third redraw the start is redrawn first (the
//!    length is kept), which is the paper code's rule.
//! 2. **Labels.** The first `N·k` positions ([`StrokeConfig::shots`] `k`, default 5) are the context:
//!    `k` labels of every class, shuffled with the dataset's generator (the paper shuffles its 25
//!    balanced labels). Every later position is a query whose class is uniform on `0..N`. A
//!    sequence shorter than `N·k` holds the first positions of that shuffled context (its classes
//!    are then not balanced). Labels are f32 class indices in both `y` and `target_y`.
//! 3. **Images**, one per position in sequence order: the position's class prototype is redrawn
//!    with a line width `w ~ U{1..4}` px, one offset `U{−4..4}²` px for the whole image, and an
//!    independent jitter `U{−2..2}²` px on each end point of each stroke (start and end alike). A
//!    pixel is inked when its centre lies within `w / 2` of a jittered stroke (a straight segment;
//!    strokes, or parts of them, pushed out of the image are clipped). Inked pixels get values
//!    `U{200..254}` (independently per pixel), then the image is blurred with the paper's
//!    `GaussianBlur(0.2)` and stored as 8-bit values divided by 255, so every pixel lies in
//!    `[0, 1]` with 0 the background; the image is flattened row-major (row `r`, column `c` is
//!    feature `28 r + c`), 784 features.
//!
//! The blur follows PIL's `GaussianBlur(radius)`: three passes of an "extended box" filter per axis
//! whose combined variance is `radius²` (per pass a box of integer half-width `l` plus weight `a` on
//! the two next pixels, `l` and `a` solved from the variance), with edge pixels repeated. For the
//! default radius 0.2 this moves about 2 % of a stroke pixel's value onto each 4-neighbour.
//!
//! # Draw order (a stable contract: changing it changes every dataset)
//!
//! Per class in order: the number of strokes, then per stroke the length, the start (x, y) and the
//! directions (with redrawn starts) until the end is inside. Then the context shuffle, then one
//! class per query position. Then per image in sequence order: the width, the offset (x, y), per
//! stroke the start jitter (x, y) and the end jitter (x, y), then one ink value per inked pixel in
//! row-major order.
//!
//! The record is [`StrokesDraw`] in [`Hyperparameters::Custom`] (the prototypes; the per-image
//! draws are not recorded). There is no closed-form posterior: the class of a query given the
//! context integrates over the unobserved prototypes and per-image draws.

use std::f64::consts::TAU;

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::PriorError;
use crate::hyperparameters::Hyperparameters;
use crate::prior::{DatasetInfo, DatasetMut, DatasetPosition, Prior};
use crate::rng::PriorRng;
use crate::tabular::{from_custom_record, to_custom_record};

/// Height and width of every image in pixels.
pub const IMAGE_SIDE: usize = 28;

/// Pixels per image, the number of features of the prior (`28 * 28`).
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;

/// The most direction draws one stroke may take before sampling gives up: a guard for
/// configurations whose longest strokes barely fit (the paper's needs a few draws on average).
const MAX_DIRECTION_DRAWS: usize = 100_000;

/// Configuration of [`StrokePrior`]; validated by [`StrokePrior::new`]. Ranges are inclusive
/// `[min, max]` pairs of integers, in pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrokeConfig {
    /// Number of classes `N` per episode (>= 2).
    pub classes: usize,
    /// Context images per class `k` (>= 1); the context is the first `N·k` positions.
    pub shots: usize,
    /// Number of strokes of a class prototype (>= 1).
    pub strokes_per_class: [usize; 2],
    /// Length of a stroke (>= 1).
    pub stroke_length: [u32; 2],
    /// Each coordinate of a stroke's start (inside `[0, 27]`).
    pub stroke_start: [u32; 2],
    /// Line width of an image (>= 1).
    pub line_width: [u32; 2],
    /// Largest absolute offset of an image, per coordinate.
    pub max_offset: u32,
    /// Largest absolute jitter of each stroke end point in an image, per coordinate.
    pub max_endpoint_jitter: u32,
    /// Value of an inked pixel before the blur, out of 255 (`1 <= min <= max <= 255`).
    pub ink: [u8; 2],
    /// Radius (standard deviation, pixels) of the blur; 0 for none.
    pub blur_radius: f64,
}

impl StrokeConfig {
    /// The paper's prior (spec §4.6) for 5-way 5-shot episodes.
    pub fn paper() -> Self {
        Self {
            classes: 5,
            shots: 5,
            strokes_per_class: [1, 3],
            stroke_length: [5, 20],
            stroke_start: [2, 25],
            line_width: [1, 4],
            max_offset: 4,
            max_endpoint_jitter: 2,
            ink: [200, 254],
            blur_radius: 0.2,
        }
    }

    /// Number of context positions `N·k`.
    pub fn context_len(&self) -> usize {
        self.classes * self.shots
    }
}

impl Default for StrokeConfig {
    /// [`StrokeConfig::paper`].
    fn default() -> Self {
        Self::paper()
    }
}

/// A straight stroke between two pixel positions `[x, y]` (`x` the column, `y` the row from the
/// top).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stroke {
    /// Start point `[x, y]`.
    pub start: [i32; 2],
    /// End point `[x, y]`.
    pub end: [i32; 2],
}

impl Stroke {
    /// Euclidean length in pixels.
    pub fn length(&self) -> f64 {
        let dx = f64::from(self.end[0] - self.start[0]);
        let dy = f64::from(self.end[1] - self.start[1]);
        dx.hypot(dy)
    }

    /// Distance in pixels from the point `(x, y)` to the segment.
    pub fn distance_to(&self, x: f64, y: f64) -> f64 {
        let (ax, ay) = (f64::from(self.start[0]), f64::from(self.start[1]));
        let (bx, by) = (f64::from(self.end[0]), f64::from(self.end[1]));
        let (dx, dy) = (bx - ax, by - ay);
        let len2 = dx * dx + dy * dy;
        let t = if len2 > 0.0 {
            (((x - ax) * dx + (y - ay) * dy) / len2).clamp(0.0, 1.0)
        } else {
            0.0
        };
        (x - (ax + t * dx)).hypot(y - (ay + t * dy))
    }
}

/// What [`StrokePrior`] drew for one episode, stored as [`Hyperparameters::Custom`] with
/// `"model": "strokes"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrokesDraw {
    /// Always `"strokes"`.
    pub model: String,
    /// Number of classes `N`.
    pub classes: usize,
    /// Context images per class `k`.
    pub shots: usize,
    /// The strokes of each class prototype (before any per-image offset or jitter), class by class.
    pub prototypes: Vec<Vec<Stroke>>,
}

impl StrokesDraw {
    /// The value of [`StrokesDraw::model`].
    pub const MODEL: &'static str = "strokes";

    /// Number of context positions `N·k`.
    pub fn context_len(&self) -> usize {
        self.classes * self.shots
    }

    /// As a [`Hyperparameters::Custom`] record.
    pub fn to_hyperparameters(&self) -> Result<Hyperparameters, PriorError> {
        to_custom_record(self, "strokes record")
    }

    /// The draw recorded in `h`, if it is one.
    pub fn from_hyperparameters(h: &Hyperparameters) -> Option<Self> {
        from_custom_record(h, Self::MODEL)
    }
}

/// How one image redraws its class prototype.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageDraw {
    /// Line width in pixels.
    pub width: u32,
    /// The strokes after offset and jitter.
    pub strokes: Vec<Stroke>,
}

/// The stroke prior; see the module docs.
#[derive(Debug, Clone)]
pub struct StrokePrior {
    config: StrokeConfig,
    /// Per blur pass: integer half-width and weight of the two next pixels.
    blur: Option<(usize, f64)>,
}

fn check_range<T: PartialOrd + std::fmt::Debug>(
    name: &str,
    [lo, hi]: [T; 2],
    min: T,
) -> Result<(), PriorError> {
    if lo < min || hi < lo {
        return Err(PriorError::invalid(
            name,
            format!("[{lo:?}, {hi:?}] must satisfy {min:?} <= min <= max"),
        ));
    }
    Ok(())
}

/// Number of box passes per axis of the blur (as PIL).
const BLUR_PASSES: usize = 3;

/// The extended box of one of [`BLUR_PASSES`] passes whose combined variance is `radius²`.
fn extended_box(radius: f64) -> (usize, f64) {
    let var = radius * radius / BLUR_PASSES as f64;
    // Largest plain box (half-width l, variance l(l+1)/3) not wider than the target variance.
    let l = (((12.0 * var + 1.0).sqrt() - 1.0) / 2.0).floor().max(0.0);
    // Weight a on the pixels at +-(l+1): the variance (l(l+1)(2l+1)/3 + 2a(l+1)²) / (2l+1+2a)
    // equals var.
    let n = 2.0 * l + 1.0;
    let a = n * (l * (l + 1.0) / 3.0 - var) / (2.0 * (var - (l + 1.0) * (l + 1.0)));
    (l as usize, a)
}

impl StrokePrior {
    /// Validates `config` and builds the prior.
    pub fn new(config: StrokeConfig) -> Result<Self, PriorError> {
        if config.classes < 2 {
            return Err(PriorError::invalid("classes", "must be at least 2"));
        }
        if config.shots == 0 {
            return Err(PriorError::invalid("shots", "must be at least 1"));
        }
        check_range("strokes_per_class", config.strokes_per_class, 1)?;
        check_range("stroke_length", config.stroke_length, 1)?;
        check_range("stroke_start", config.stroke_start, 0)?;
        check_range("line_width", config.line_width, 1)?;
        check_range("ink", config.ink, 1)?;
        let last = (IMAGE_SIDE - 1) as u32;
        if config.stroke_start[1] > last {
            return Err(PriorError::invalid(
                "stroke_start",
                format!("{} lies outside [0, {last}]", config.stroke_start[1]),
            ));
        }
        // Every drawn length must fit from some start: the farthest pixel from a start is an
        // image corner, at most sqrt(2) max(s, 27 - s) away, largest at an end of the range.
        let reach = |s: u32| f64::from(s.max(last - s));
        let farthest = std::f64::consts::SQRT_2
            * reach(config.stroke_start[0]).max(reach(config.stroke_start[1]));
        if f64::from(config.stroke_length[1]) > farthest {
            return Err(PriorError::invalid(
                "stroke_length",
                format!(
                    "{} px strokes cannot fit from any start in {:?}",
                    config.stroke_length[1], config.stroke_start
                ),
            ));
        }
        if config.max_offset > last || config.max_endpoint_jitter > last {
            return Err(PriorError::invalid(
                "max_offset / max_endpoint_jitter",
                format!("must be at most {last}"),
            ));
        }
        if !(config.blur_radius.is_finite() && config.blur_radius >= 0.0) {
            return Err(PriorError::invalid(
                "blur_radius",
                format!("{} must be finite and >= 0", config.blur_radius),
            ));
        }
        let blur = (config.blur_radius > 0.0).then(|| extended_box(config.blur_radius));
        Ok(Self { config, blur })
    }

    /// The paper's configuration ([`StrokeConfig::paper`]).
    pub fn paper() -> Self {
        Self::new(StrokeConfig::paper()).expect("constant configuration is valid")
    }

    /// The configuration.
    pub fn config(&self) -> &StrokeConfig {
        &self.config
    }

    /// Draws one class prototype (step 1 of the module docs).
    pub fn sample_prototype(&self, rng: &mut PriorRng) -> Result<Vec<Stroke>, PriorError> {
        let c = &self.config;
        let count = rng.random_range(c.strokes_per_class[0]..=c.strokes_per_class[1]);
        (0..count).map(|_| self.sample_stroke(rng)).collect()
    }

    fn sample_stroke(&self, rng: &mut PriorRng) -> Result<Stroke, PriorError> {
        let c = &self.config;
        let last = (IMAGE_SIDE - 1) as f64;
        let length = f64::from(rng.random_range(c.stroke_length[0]..=c.stroke_length[1]));
        let draw_start = |rng: &mut PriorRng| -> [i32; 2] {
            let x = rng.random_range(c.stroke_start[0]..=c.stroke_start[1]);
            let y = rng.random_range(c.stroke_start[0]..=c.stroke_start[1]);
            [x as i32, y as i32]
        };
        let mut start = draw_start(rng);
        for attempt in 0..MAX_DIRECTION_DRAWS {
            if attempt > 0 && attempt % 3 == 0 {
                start = draw_start(rng);
            }
            let theta = rng.random_range(0.0..TAU);
            let ex = (f64::from(start[0]) + length * theta.cos()).round();
            let ey = (f64::from(start[1]) + length * theta.sin()).round();
            if (0.0..=last).contains(&ex) && (0.0..=last).contains(&ey) {
                return Ok(Stroke {
                    start,
                    end: [ex as i32, ey as i32],
                });
            }
        }
        Err(PriorError::Failed {
            prior: StrokesDraw::MODEL.into(),
            message: format!(
                "no stroke of length {length} fitted the image in {MAX_DIRECTION_DRAWS} draws"
            ),
        })
    }

    /// Draws how one image redraws `prototype`: its width, offset and end-point jitter.
    pub fn sample_image_draw(&self, rng: &mut PriorRng, prototype: &[Stroke]) -> ImageDraw {
        let c = &self.config;
        let width = rng.random_range(c.line_width[0]..=c.line_width[1]);
        let (o, j) = (c.max_offset as i32, c.max_endpoint_jitter as i32);
        let offset = [rng.random_range(-o..=o), rng.random_range(-o..=o)];
        let mut shift = |p: [i32; 2]| {
            let jx = rng.random_range(-j..=j);
            let jy = rng.random_range(-j..=j);
            [p[0] + offset[0] + jx, p[1] + offset[1] + jy]
        };
        let strokes = prototype
            .iter()
            .map(|s| {
                let start = shift(s.start);
                let end = shift(s.end);
                Stroke { start, end }
            })
            .collect();
        ImageDraw { width, strokes }
    }

    /// Renders `draw` into `out` (784 values, row-major): inks the pixels within `width / 2` of a
    /// stroke with values drawn from `rng`, blurs and quantises to `k / 255`.
    pub fn render(&self, rng: &mut PriorRng, draw: &ImageDraw, out: &mut [f32]) {
        let mask = ink_mask(&draw.strokes, draw.width);
        let c = &self.config;
        let mut img = [0.0f32; IMAGE_PIXELS];
        for (v, &inked) in img.iter_mut().zip(&mask) {
            if inked {
                *v = f32::from(rng.random_range(c.ink[0]..=c.ink[1]));
            }
        }
        if let Some((l, a)) = self.blur {
            blur(&mut img, l, a as f32);
        }
        for (o, v) in out.iter_mut().zip(&img) {
            *o = v.round().clamp(0.0, 255.0) / 255.0;
        }
    }
}

/// The pixels whose centres lie within `width / 2` of one of `strokes`, row-major.
pub fn ink_mask(strokes: &[Stroke], width: u32) -> [bool; IMAGE_PIXELS] {
    let mut mask = [false; IMAGE_PIXELS];
    let half = f64::from(width) / 2.0;
    let side = IMAGE_SIDE as i64;
    for s in strokes {
        // Only the pixels of the stroke's bounding box grown by the half width can be inked.
        let grow = half.ceil() as i64;
        let range = |a: i32, b: i32| {
            let lo = (i64::from(a.min(b)) - grow).max(0);
            let hi = (i64::from(a.max(b)) + grow).min(side - 1);
            lo..=hi
        };
        for r in range(s.start[1], s.end[1]) {
            for col in range(s.start[0], s.end[0]) {
                if s.distance_to(col as f64, r as f64) <= half {
                    mask[r as usize * IMAGE_SIDE + col as usize] = true;
                }
            }
        }
    }
    mask
}

/// [`BLUR_PASSES`] extended-box passes along the rows, then along the columns, edges repeated.
fn blur(img: &mut [f32; IMAGE_PIXELS], l: usize, a: f32) {
    let n = IMAGE_SIDE as isize;
    let norm = 1.0 / (2.0 * l as f32 + 1.0 + 2.0 * a);
    let reach = l as isize;
    let mut line = [0.0f32; IMAGE_SIDE];
    for vertical in [false, true] {
        for k in 0..IMAGE_SIDE {
            let index = |i: usize| {
                if vertical {
                    i * IMAGE_SIDE + k
                } else {
                    k * IMAGE_SIDE + i
                }
            };
            for _ in 0..BLUR_PASSES {
                for (i, v) in line.iter_mut().enumerate() {
                    *v = img[index(i)];
                }
                let at = |i: isize| line[i.clamp(0, n - 1) as usize];
                for i in 0..n {
                    let inner: f32 = (i - reach..=i + reach).map(at).sum();
                    let outer = at(i - reach - 1) + at(i + reach + 1);
                    img[index(i as usize)] = (inner + a * outer) * norm;
                }
            }
        }
    }
}

impl Prior for StrokePrior {
    fn name(&self) -> String {
        StrokesDraw::MODEL.into()
    }

    fn default_num_features(&self) -> usize {
        IMAGE_PIXELS
    }

    fn feature_range(&self) -> (usize, usize) {
        (IMAGE_PIXELS, IMAGE_PIXELS)
    }

    fn sample_dataset(
        &self,
        rng: &mut PriorRng,
        _position: &DatasetPosition,
        mut data: DatasetMut<'_>,
    ) -> Result<DatasetInfo, PriorError> {
        let c = &self.config;
        let seq_len = data.seq_len();
        if data.num_features() != IMAGE_PIXELS {
            return Err(PriorError::invalid(
                "num_features",
                format!(
                    "the stroke prior draws {IMAGE_PIXELS} pixels, not {}",
                    data.num_features()
                ),
            ));
        }
        let prototypes = (0..c.classes)
            .map(|_| self.sample_prototype(rng))
            .collect::<Result<Vec<_>, _>>()?;
        let mut labels: Vec<usize> = (0..c.classes)
            .flat_map(|class| std::iter::repeat_n(class, c.shots))
            .collect();
        labels.shuffle(rng);
        labels.truncate(seq_len);
        while labels.len() < seq_len {
            labels.push(rng.random_range(0..c.classes));
        }
        let (x, y, target_y) = data.parts();
        for ((image, &label), (yi, ti)) in x
            .chunks_exact_mut(IMAGE_PIXELS)
            .zip(&labels)
            .zip(y.iter_mut().zip(target_y.iter_mut()))
        {
            let draw = self.sample_image_draw(rng, &prototypes[label]);
            self.render(rng, &draw, image);
            *yi = label as f32;
            *ti = label as f32;
        }
        let record = StrokesDraw {
            model: StrokesDraw::MODEL.into(),
            classes: c.classes,
            shots: c.shots,
            prototypes,
        };
        Ok(DatasetInfo {
            features_used: IMAGE_PIXELS,
            hyperparameters: record.to_hyperparameters()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prior::Batch;
    use crate::rng::dataset_rng;

    fn draws(b: &Batch) -> Vec<StrokesDraw> {
        b.hyperparameters
            .iter()
            .map(|h| StrokesDraw::from_hyperparameters(h).expect("a strokes record"))
            .collect()
    }

    fn image(b: &Batch, d: usize, t: usize) -> &[f32] {
        &b.x_of(d)[t * IMAGE_PIXELS..(t + 1) * IMAGE_PIXELS]
    }

    /// No jitter, offset or blur, width 1, one stroke: every image is its prototype's line.
    fn exact_lines() -> StrokePrior {
        StrokePrior::new(StrokeConfig {
            strokes_per_class: [1, 1],
            line_width: [1, 1],
            max_offset: 0,
            max_endpoint_jitter: 0,
            blur_radius: 0.0,
            ..StrokeConfig::paper()
        })
        .unwrap()
    }

    #[test]
    fn same_seed_same_batch_other_batch_index_differs() {
        let prior = StrokePrior::paper();
        let a = prior.sample_batch(7, 3, 4, 26, IMAGE_PIXELS).unwrap();
        assert_eq!(a, prior.sample_batch(7, 3, 4, 26, IMAGE_PIXELS).unwrap());
        let other = prior.sample_batch(7, 4, 4, 26, IMAGE_PIXELS).unwrap();
        assert_ne!(a.x, other.x);
        assert_ne!(a.hyperparameters, other.hyperparameters);
        assert_ne!(a.x_of(0), a.x_of(1));
        // Dataset i is the stream (seed, batch, i), whatever the batch size.
        let small = prior.sample_batch(7, 3, 2, 26, IMAGE_PIXELS).unwrap();
        assert_eq!(small.x_of(1), a.x_of(1));
        assert_eq!(small.y_of(1), a.y_of(1));
        // The records survive a JSON round trip.
        for h in &a.hyperparameters {
            let back: Hyperparameters =
                serde_json::from_str(&serde_json::to_string(h).unwrap()).unwrap();
            assert_eq!(&back, h);
            assert!(StrokesDraw::from_hyperparameters(&back).is_some());
        }
    }

    #[test]
    fn shapes_and_feature_count() {
        let prior = StrokePrior::paper();
        let b = prior.sample_batch(1, 0, 3, 30, IMAGE_PIXELS).unwrap();
        assert_eq!((b.batch_size, b.seq_len, b.num_features), (3, 30, 784));
        assert_eq!(b.x.len(), 3 * 30 * 784);
        assert_eq!((b.y.len(), b.target_y.len()), (90, 90));
        assert_eq!(b.features_used, vec![784; 3]);
        assert_eq!(prior.feature_range(), (784, 784));
        assert_eq!(prior.default_num_features(), 784);
        assert!(prior.sample_batch(1, 0, 3, 30, 783).is_err());
        assert!(prior.sample_batch(1, 0, 3, 0, 784).is_err());
    }

    #[test]
    fn pixels_are_finite_in_unit_interval_and_eight_bit() {
        let prior = StrokePrior::paper();
        let b = prior.sample_batch(2, 0, 8, 26, IMAGE_PIXELS).unwrap();
        for &v in &b.x {
            assert!(v.is_finite() && (0.0..=1.0).contains(&v), "{v}");
            let k = v * 255.0;
            assert!((k - k.round()).abs() < 1e-3, "{v} is not k / 255");
        }
        // Strokes are bright (>= 200 / 255 before a 2 % blur) on a zero background, and nearly
        // every image shows one (a stroke pushed wholly outside by offset and jitter is rare).
        let mut inked = 0;
        for d in 0..8 {
            for t in 0..26 {
                let img = image(&b, d, t);
                let max = img.iter().cloned().fold(0.0f32, f32::max);
                assert!(max == 0.0 || max >= 190.0 / 255.0, "max {max}");
                assert!(img.iter().filter(|&&v| v == 0.0).count() > 392);
                inked += usize::from(max > 0.0);
            }
        }
        assert!(inked >= 8 * 26 - 2, "{inked} inked images");
    }

    #[test]
    fn every_class_has_exactly_k_context_images_then_random_queries() {
        let prior = StrokePrior::paper();
        let (n, k) = (5, 5);
        let b = prior.sample_batch(3, 1, 16, 40, IMAGE_PIXELS).unwrap();
        assert_eq!(b.y, b.target_y);
        let mut orders = std::collections::HashSet::new();
        let mut query_classes = [0usize; 5];
        for d in 0..16 {
            let y = b.y_of(d);
            let context = &y[..n * k];
            for class in 0..n {
                let count = context.iter().filter(|&&v| v == class as f32).count();
                assert_eq!(count, k, "dataset {d}, class {class}");
            }
            orders.insert(context.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            for &q in &y[n * k..] {
                assert!(q.fract() == 0.0 && (0.0..n as f32).contains(&q));
                query_classes[q as usize] += 1;
            }
        }
        // The context is shuffled (not one fixed order) and queries cover every class.
        assert_eq!(orders.len(), 16);
        assert!(query_classes.iter().all(|&c| c > 10), "{query_classes:?}");
        // A short sequence is a prefix of the shuffled context.
        let short = prior.sample_batch(3, 1, 16, 10, IMAGE_PIXELS).unwrap();
        for d in 0..16 {
            assert_eq!(short.y_of(d), &b.y_of(d)[..10]);
        }
        // Another configuration: 20-way 1-shot.
        let wide = StrokePrior::new(StrokeConfig {
            classes: 20,
            shots: 1,
            ..StrokeConfig::paper()
        })
        .unwrap();
        let w = wide.sample_batch(0, 0, 2, 21, IMAGE_PIXELS).unwrap();
        let mut ctx: Vec<f32> = w.y_of(0)[..20].to_vec();
        ctx.sort_by(f32::total_cmp);
        assert_eq!(ctx, (0..20).map(|c| c as f32).collect::<Vec<_>>());
        assert_eq!(draws(&w)[0].prototypes.len(), 20);
    }

    /// Mean squared pixel distance between images of the same class and of different classes.
    fn within_and_between(b: &Batch) -> (f64, f64) {
        let (mut within, mut nw, mut between, mut nb) = (0.0, 0usize, 0.0, 0usize);
        for d in 0..b.batch_size {
            let y = b.y_of(d);
            for s in 0..b.seq_len {
                for t in s + 1..b.seq_len {
                    let dist: f64 = image(b, d, s)
                        .iter()
                        .zip(image(b, d, t))
                        .map(|(p, q)| f64::from(p - q).powi(2))
                        .sum();
                    if y[s] == y[t] {
                        within += dist;
                        nw += 1;
                    } else {
                        between += dist;
                        nb += 1;
                    }
                }
            }
        }
        (within / nw as f64, between / nb as f64)
    }

    /// Fraction of images whose nearest other image (squared pixel distance) in the episode has
    /// the same class.
    fn leave_one_out_accuracy(b: &Batch) -> f64 {
        let mut right = 0usize;
        for d in 0..b.batch_size {
            let y = b.y_of(d);
            for s in 0..b.seq_len {
                let nearest = (0..b.seq_len)
                    .filter(|&t| t != s)
                    .map(|t| {
                        let dist: f32 = image(b, d, s)
                            .iter()
                            .zip(image(b, d, t))
                            .map(|(p, q)| (p - q) * (p - q))
                            .sum();
                        (dist, t)
                    })
                    .min_by(|a, c| a.0.total_cmp(&c.0))
                    .map(|(_, t)| t)
                    .unwrap();
                right += usize::from(y[nearest] == y[s]);
            }
        }
        right as f64 / (b.batch_size * b.seq_len) as f64
    }

    #[test]
    fn images_of_a_class_are_closer_to_each_other_than_to_other_classes() {
        let prior = StrokePrior::paper();
        let b = prior.sample_batch(4, 0, 32, 25, IMAGE_PIXELS).unwrap();
        let (within, between) = within_and_between(&b);
        // About 0.85 for seeds 0..6; 1.00 with shuffled labels (below).
        assert!(
            within < 0.92 * between,
            "within {within}, between {between}"
        );
        // Leave-one-out nearest neighbour on pixels finds the class well above chance (4 of the
        // 24 other images share the class): about 0.52.
        let accuracy = leave_one_out_accuracy(&b);
        assert!(accuracy > 0.4, "1-NN accuracy {accuracy}");
        // Without per-image variation, images of a class ink the same pixels (only the ink
        // values differ).
        let exact = exact_lines()
            .sample_batch(4, 0, 4, 25, IMAGE_PIXELS)
            .unwrap();
        for d in 0..4 {
            let y = exact.y_of(d);
            let support =
                |t: usize| -> Vec<bool> { image(&exact, d, t).iter().map(|&v| v > 0.0).collect() };
            for s in 0..25 {
                for t in s + 1..25 {
                    assert_eq!(support(s) == support(t), y[s] == y[t], "dataset {d}");
                }
            }
        }
        // The control: with labels shuffled across the episode the two are alike, so the
        // comparison above measures the classes, not the statistic.
        let mut shuffled = b.clone();
        let mut rng = dataset_rng(99, 0, 0);
        for d in 0..shuffled.batch_size {
            shuffled.y[d * 25..(d + 1) * 25].shuffle(&mut rng);
        }
        let (w, bt) = within_and_between(&shuffled);
        assert!((w / bt - 1.0).abs() < 0.05, "within {w}, between {bt}");
        let chance = leave_one_out_accuracy(&shuffled);
        assert!(chance < 0.25, "1-NN accuracy {chance} with shuffled labels");
    }

    #[test]
    fn one_stroke_without_jitter_draws_a_straight_line_between_its_end_points() {
        let prior = exact_lines();
        let b = prior.sample_batch(5, 0, 16, 25, IMAGE_PIXELS).unwrap();
        for (d, draw) in draws(&b).iter().enumerate() {
            for t in 0..25 {
                let class = b.y_of(d)[t] as usize;
                let [stroke] = draw.prototypes[class][..] else {
                    panic!("one stroke expected")
                };
                let img = image(&b, d, t);
                let on: Vec<(usize, usize)> = (0..IMAGE_PIXELS)
                    .filter(|&i| img[i] > 0.0)
                    .map(|i| (i % IMAGE_SIDE, i / IMAGE_SIDE))
                    .collect();
                // Every inked pixel lies within half a pixel of the segment, ...
                for &(x, y) in &on {
                    assert!(stroke.distance_to(x as f64, y as f64) <= 0.5);
                }
                // ... both end points are inked, ...
                for p in [stroke.start, stroke.end] {
                    assert!(on.contains(&(p[0] as usize, p[1] as usize)));
                }
                // ... and the line is one pixel thin and unbroken: between one and two pixels
                // per step along its major axis.
                let dx = (stroke.end[0] - stroke.start[0]).unsigned_abs() as usize;
                let dy = (stroke.end[1] - stroke.start[1]).unsigned_abs() as usize;
                let steps = dx.max(dy);
                assert!(
                    on.len() > steps && on.len() <= 2 * steps + 1,
                    "{} pixels for {stroke:?}",
                    on.len()
                );
                // Inked values are the raw ink range.
                assert!(on.iter().all(|&(x, y)| {
                    let v = img[y * IMAGE_SIDE + x] * 255.0;
                    (199.5..=254.5).contains(&v)
                }));
            }
        }
    }

    #[test]
    fn prototype_strokes_fit_the_image_with_the_drawn_length() {
        let prior = StrokePrior::paper();
        let b = prior.sample_batch(6, 0, 64, 2, IMAGE_PIXELS).unwrap();
        let mut counts = [0usize; 4];
        let mut lengths = std::collections::HashSet::new();
        for draw in draws(&b) {
            assert_eq!((draw.classes, draw.shots), (5, 5));
            for proto in &draw.prototypes {
                counts[proto.len()] += 1;
                for s in proto {
                    for c in s.start {
                        assert!((2..=25).contains(&c), "{s:?}");
                    }
                    for c in s.end {
                        assert!((0..=27).contains(&c), "{s:?}");
                    }
                    // The end is rounded to a pixel: at most sqrt(2)/2 from the drawn length.
                    let len = s.length();
                    assert!((5.0 - 0.71..=20.0 + 0.71).contains(&len), "{s:?}: {len}");
                    lengths.insert(len.round() as i64);
                }
            }
        }
        assert_eq!(counts[0], 0);
        assert!(counts[1..].iter().all(|&c| c > 60), "{counts:?}");
        assert!(lengths.contains(&5) && lengths.contains(&20), "{lengths:?}");
    }

    #[test]
    fn the_blur_keeps_mass_and_spreads_two_percent() {
        let (l, a) = extended_box(0.2);
        assert_eq!(l, 0);
        // Three passes of [a, 1, a] / (1 + 2a) have variance 3 * 2a / (1 + 2a) = 0.04.
        assert!((3.0 * 2.0 * a / (1.0 + 2.0 * a) - 0.04).abs() < 1e-12);
        let mut img = [0.0f32; IMAGE_PIXELS];
        img[14 * IMAGE_SIDE + 14] = 255.0;
        blur(&mut img, l, a as f32);
        let total: f32 = img.iter().sum();
        assert!((total - 255.0).abs() < 1e-2);
        let right = img[14 * IMAGE_SIDE + 15];
        assert!(right > 3.0 && right < 7.0, "{right}");
        assert!((img[14 * IMAGE_SIDE + 15] - img[13 * IMAGE_SIDE + 14]).abs() < 1e-4);
        // A wider radius: variance again the target.
        let (l, a) = extended_box(2.0);
        let n = 2.0 * l as f64 + 1.0;
        let var = (l as f64 * (l as f64 + 1.0) * n / 3.0 + 2.0 * a * (l as f64 + 1.0).powi(2))
            / (n + 2.0 * a);
        assert!((3.0 * var - 4.0).abs() < 1e-9, "{l} {a} {var}");
    }

    #[test]
    fn the_registry_entry_describes_this_prior() {
        use crate::registry::{prior_by_name, registered_prior, ReferencePosterior, TaskKind};
        let e = registered_prior("strokes").unwrap();
        let paper = StrokePrior::paper();
        assert_eq!(e.task, TaskKind::Classification);
        assert_eq!(e.num_classes, Some(paper.config().classes));
        assert_eq!(e.image_shape, Some([IMAGE_SIDE, IMAGE_SIDE]));
        assert_eq!(e.reference_posterior(), ReferencePosterior::None);
        assert!(e.baselines.is_empty());
        let by_name = prior_by_name("strokes").unwrap();
        assert_eq!(by_name.name(), "strokes");
        assert_eq!(
            by_name.sample_batch(1, 2, 2, 26, IMAGE_PIXELS).unwrap(),
            paper.sample_batch(1, 2, 2, 26, IMAGE_PIXELS).unwrap()
        );
    }

    #[test]
    fn invalid_configurations_are_rejected() {
        let paper = StrokeConfig::paper();
        let bad = |c: StrokeConfig| StrokePrior::new(c).is_err();
        assert!(bad(StrokeConfig {
            classes: 1,
            ..paper.clone()
        }));
        assert!(bad(StrokeConfig {
            shots: 0,
            ..paper.clone()
        }));
        assert!(bad(StrokeConfig {
            strokes_per_class: [2, 1],
            ..paper.clone()
        }));
        assert!(bad(StrokeConfig {
            stroke_start: [2, 28],
            ..paper.clone()
        }));
        assert!(bad(StrokeConfig {
            stroke_length: [50, 60],
            ..paper.clone()
        }));
        assert!(bad(StrokeConfig {
            line_width: [0, 2],
            ..paper.clone()
        }));
        assert!(bad(StrokeConfig {
            blur_radius: f64::NAN,
            ..paper.clone()
        }));
        assert!(StrokePrior::new(paper).is_ok());
    }
}

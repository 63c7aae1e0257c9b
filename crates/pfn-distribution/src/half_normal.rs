//! The half-normal tails of the full-support bar distribution.
//!
//! A tail is `Y = anchor + direction * H` with `H ~ HalfNormal(scale)`, anchored at the *inner*
//! border of an edge bucket and extending outward. The scale is `width / HALF_NORMAL_MEDIAN`, so
//! that the half-normal median lies on the outer border: half of the tail's mass stays inside the
//! original edge bucket and half lies beyond it.

use crate::normal;

/// Median of the standard half-normal distribution, `Phi^-1(0.75)`.
pub const HALF_NORMAL_MEDIAN: f64 = 0.674_489_750_196_081_7;

/// `0.5 * ln(2 / pi)`: the log density of a standard half-normal at 0.
const HALF_LN_2_OVER_PI: f64 = -0.225_791_352_644_727_43;

/// Which way a tail extends from its anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailSide {
    /// Extends to `-inf` (the first bucket).
    Left,
    /// Extends to `+inf` (the last bucket).
    Right,
}

/// One half-normal tail: its anchor, scale and precomputed constants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HalfNormalTail {
    /// The inner border of the edge bucket where the half-normal has its mode.
    pub anchor: f64,
    /// Scale `s` of the half-normal (`width / HALF_NORMAL_MEDIAN`).
    pub scale: f64,
    /// Direction of the tail.
    pub side: TailSide,
    /// `ln(sqrt(2/pi) / s)`, the log density at the anchor.
    log_density_at_anchor: f64,
    /// `1 / (2 s^2)`.
    half_inv_var: f64,
}

impl HalfNormalTail {
    /// A tail for an edge bucket of width `width` (must be positive) anchored at `anchor`.
    pub fn new(anchor: f64, width: f64, side: TailSide) -> Self {
        let scale = width / HALF_NORMAL_MEDIAN;
        HalfNormalTail {
            anchor,
            scale,
            side,
            log_density_at_anchor: HALF_LN_2_OVER_PI - scale.ln(),
            half_inv_var: 0.5 / (scale * scale),
        }
    }

    /// Distance of `y` from the anchor in the tail's direction (negative on the wrong side).
    pub fn distance(&self, y: f64) -> f64 {
        match self.side {
            TailSide::Left => self.anchor - y,
            TailSide::Right => y - self.anchor,
        }
    }

    /// Log density of the half-normal at distance `d >= 0` from the anchor (`d` is clamped at 0).
    #[inline]
    pub fn log_pdf_at_distance(&self, d: f64) -> f64 {
        let d = d.max(0.0);
        self.log_density_at_anchor - d * d * self.half_inv_var
    }

    /// Density of the half-normal at the anchor, its maximum.
    pub fn pdf_at_anchor(&self) -> f64 {
        self.log_density_at_anchor.exp()
    }

    /// `P(H > d)` for `d >= 0`: the mass of the tail further than `d` from the anchor.
    pub fn survival_at_distance(&self, d: f64) -> f64 {
        if d <= 0.0 {
            return 1.0;
        }
        2.0 * normal::upper_tail(d / self.scale)
    }

    /// The distance `d` with `P(H > d) = u`, for `u` in `[0, 1]` (`u = 0` gives `+inf`).
    pub fn distance_with_survival(&self, u: f64) -> f64 {
        self.scale * normal::upper_tail_inverse(0.5 * u.clamp(0.0, 1.0))
    }

    /// The point at distance `d` from the anchor in the tail's direction.
    pub fn point_at_distance(&self, d: f64) -> f64 {
        match self.side {
            TailSide::Left => self.anchor - d,
            TailSide::Right => self.anchor + d,
        }
    }

    /// Mean of the tail component `E[Y]`.
    pub fn mean(&self) -> f64 {
        self.point_at_distance(self.scale * normal::SQRT_2_OVER_PI)
    }

    /// Variance of the tail component, `s^2 (1 - 2/pi)`.
    pub fn variance(&self) -> f64 {
        self.scale * self.scale * (1.0 - 2.0 / std::f64::consts::PI)
    }

    /// Differential entropy of the tail component, `0.5 ln(pi e s^2 / 2)`.
    pub fn entropy(&self) -> f64 {
        0.5 * (std::f64::consts::PI * self.scale * self.scale / 2.0).ln() + 0.5
    }

    /// `E[(H - c)^+]` for the underlying half-normal `H` and `c >= 0`:
    /// `2 (s phi(c/s) - c Q(c/s))`.
    fn expected_excess(&self, c: f64) -> f64 {
        if c <= 0.0 {
            return self.scale * normal::SQRT_2_OVER_PI - c;
        }
        let z = c / self.scale;
        (2.0 * (self.scale * normal::pdf(z) - c * normal::upper_tail(z))).max(0.0)
    }

    /// Expected improvement of the tail component over `best`, maximisation:
    /// `E[max(Y - best, 0)]`, in closed form.
    pub fn expected_improvement(&self, best: f64) -> f64 {
        match self.side {
            // Y = a + H: E[(H - (best - a))^+].
            TailSide::Right => self.expected_excess(best - self.anchor),
            // Y = a - H: E[(c - H)^+] with c = a - best; (c - H)^+ = (c - H) + (H - c)^+.
            TailSide::Left => {
                let c = self.anchor - best;
                if c <= 0.0 {
                    0.0
                } else {
                    (c - self.scale * normal::SQRT_2_OVER_PI + self.expected_excess(c)).max(0.0)
                }
            }
        }
    }

    /// `P(Y > best)` for the tail component.
    pub fn probability_above(&self, best: f64) -> f64 {
        let d = self.distance(best);
        match self.side {
            TailSide::Right => self.survival_at_distance(d),
            TailSide::Left => {
                if d <= 0.0 {
                    0.0
                } else {
                    1.0 - self.survival_at_distance(d)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_of_the_mass_lies_within_one_width() {
        let tail = HalfNormalTail::new(1.0, 0.5, TailSide::Right);
        assert!((tail.survival_at_distance(0.5) - 0.5).abs() < 1e-14);
        let d = tail.distance_with_survival(0.5);
        assert!((d - 0.5).abs() < 1e-13);
    }

    #[test]
    fn expected_improvement_matches_quadrature() {
        // E[max(Y - b, 0)] = int (y - b)^+ q(y) dy by composite midpoint on a fine grid.
        for side in [TailSide::Left, TailSide::Right] {
            let tail = HalfNormalTail::new(0.3, 0.7, side);
            for &best in &[-3.0, -0.5, 0.0, 0.3, 0.6, 1.5, 4.0] {
                let n = 200_000;
                let span = 14.0 * tail.scale;
                let h = span / n as f64;
                let mut acc = 0.0;
                for i in 0..n {
                    let d = (i as f64 + 0.5) * h;
                    let y = tail.point_at_distance(d);
                    acc += (y - best).max(0.0) * tail.log_pdf_at_distance(d).exp() * h;
                }
                let exact = tail.expected_improvement(best);
                assert!(
                    (exact - acc).abs() < 1e-7,
                    "{side:?} best {best}: closed form {exact} vs quadrature {acc}"
                );
            }
        }
    }
}

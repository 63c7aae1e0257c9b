//! The learning-rate schedule: linear warm-up, then cosine decay or a constant, counted in
//! optimizer steps.
//!
//! For optimizer step `s` (0-based: `s = 0` is the first parameter update), peak learning rate
//! `lr`, warm-up length `W`, total steps `T` and final fraction `f`:
//!
//! * warm-up, `s < W`: `lr · (s + 1) / W` (the first update already moves, the last warm-up step
//!   reaches `lr`);
//! * cosine, `s ≥ W`: `lr · (f + (1 − f) · ½ · (1 + cos(π · p)))` with
//!   `p = min(1, (s − W) / (T − W))`; so `s = W` gives `lr` and `s ≥ T` gives `f · lr`;
//! * constant, `s ≥ W`: `lr`.
//!
//! This is the HuggingFace cosine-with-warm-up formula of spec §5.1 (plus a floor `f`), counted in
//! optimizer steps rather than epochs (spec §10.12).

use serde::{Deserialize, Serialize};

/// What the learning rate does after the warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    /// Half-cosine decay from the peak to `min_lr_fraction · peak` at `total_steps`.
    #[default]
    Cosine,
    /// Stay at the peak.
    Constant,
}

/// A learning-rate schedule; [`LrSchedule::lr_at`] is a pure function of the step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    /// Cosine or constant after the warm-up.
    pub kind: ScheduleKind,
    /// Peak learning rate, reached at the end of the warm-up.
    pub peak_lr: f64,
    /// Number of warm-up steps (0: start at the peak).
    pub warmup_steps: u64,
    /// Step at which the cosine reaches its floor (ignored by `Constant`).
    pub total_steps: u64,
    /// Floor of the cosine as a fraction of the peak, in [0, 1].
    pub min_lr_fraction: f64,
}

impl LrSchedule {
    /// The multiplier applied to the peak learning rate at optimizer step `step` (0-based).
    pub fn factor_at(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return (step + 1) as f64 / self.warmup_steps as f64;
        }
        match self.kind {
            ScheduleKind::Constant => 1.0,
            ScheduleKind::Cosine => {
                let decay_len = self.total_steps.saturating_sub(self.warmup_steps);
                let progress = if decay_len == 0 {
                    1.0
                } else {
                    ((step - self.warmup_steps) as f64 / decay_len as f64).min(1.0)
                };
                let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
                self.min_lr_fraction + (1.0 - self.min_lr_fraction) * cosine
            }
        }
    }

    /// The learning rate to use for optimizer step `step` (0-based).
    pub fn lr_at(&self, step: u64) -> f64 {
        self.peak_lr * self.factor_at(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(warmup: u64, total: u64, floor: f64) -> LrSchedule {
        LrSchedule {
            kind: ScheduleKind::Cosine,
            peak_lr: 1e-3,
            warmup_steps: warmup,
            total_steps: total,
            min_lr_fraction: floor,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-15 + 1e-12 * b.abs()
    }

    #[test]
    fn warmup_is_linear_and_reaches_the_peak() {
        let s = cosine(4, 104, 0.0);
        let want = [0.25e-3, 0.5e-3, 0.75e-3, 1e-3];
        for (step, w) in want.iter().enumerate() {
            assert!(
                close(s.lr_at(step as u64), *w),
                "step {step}: {}",
                s.lr_at(step as u64)
            );
        }
    }

    #[test]
    fn cosine_values_at_known_points() {
        let s = cosine(4, 104, 0.0);
        // End of warm-up = start of decay: the peak.
        assert!(close(s.lr_at(4), 1e-3));
        // A quarter of the decay: 0.5 (1 + cos(pi/4)).
        let q = 0.5 * (1.0 + (std::f64::consts::PI / 4.0).cos()) * 1e-3;
        assert!(close(s.lr_at(29), q), "{} vs {q}", s.lr_at(29));
        // Half way: exactly half the peak.
        assert!(close(s.lr_at(54), 0.5e-3), "{}", s.lr_at(54));
        // At and after the end: the floor (0).
        assert!(s.lr_at(104).abs() < 1e-18);
        assert!(s.lr_at(10_000).abs() < 1e-18);
    }

    #[test]
    fn cosine_floor_is_respected() {
        let s = cosine(0, 100, 0.1);
        assert!(close(s.lr_at(0), 1e-3));
        assert!(close(s.lr_at(50), (0.1 + 0.9 * 0.5) * 1e-3));
        assert!(close(s.lr_at(100), 1e-4));
        assert!(close(s.lr_at(1_000), 1e-4));
    }

    #[test]
    fn cosine_is_monotone_after_warmup() {
        let s = cosine(10, 500, 0.05);
        let mut prev = f64::INFINITY;
        for step in 10..600 {
            let lr = s.lr_at(step);
            assert!(lr <= prev, "lr rose at step {step}");
            prev = lr;
        }
    }

    #[test]
    fn constant_after_warmup() {
        let s = LrSchedule {
            kind: ScheduleKind::Constant,
            peak_lr: 3e-4,
            warmup_steps: 2,
            total_steps: 0,
            min_lr_fraction: 0.0,
        };
        assert!(close(s.lr_at(0), 1.5e-4));
        assert!(close(s.lr_at(1), 3e-4));
        for step in [2, 3, 100, 1_000_000] {
            assert!(close(s.lr_at(step), 3e-4));
        }
    }

    #[test]
    fn no_warmup_and_degenerate_decay_length() {
        // warmup == total: the decay has no length and the schedule drops to the floor.
        let s = cosine(5, 5, 0.2);
        assert!(close(s.lr_at(4), 1e-3));
        assert!(close(s.lr_at(5), 2e-4));
    }
}

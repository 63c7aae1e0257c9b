//! The loss of a model's output head: the Riemann (bar) distribution's negative log density or the
//! softmax cross-entropy of a class head, over rows of logits (one row per query point).

use pfn_distribution::classification::{soft_cross_entropy, softmax_cross_entropy};
use pfn_distribution::{BarDistribution, DistributionError, Support};

use pfn_prior::QueryPosterior;

use pfn_artifact::OutputHead;

/// A usable output head: the bar distribution (validated borders) or the number of classes.
#[derive(Debug, Clone, PartialEq)]
pub enum Head {
    /// Regression with a Riemann distribution over `num_buckets()` buckets.
    Riemann(BarDistribution),
    /// Classification with softmax cross-entropy over `n_out` classes; targets are class indices
    /// stored as floats (`0.0, 1.0, …`).
    Classes {
        /// Number of classes.
        n_out: usize,
    },
}

impl Head {
    /// The head an artifact describes (validates the borders; the bar distribution is
    /// [`OutputHead::bar_distribution`]).
    pub fn from_output_head(head: &OutputHead) -> Result<Self, DistributionError> {
        Ok(match head.bar_distribution()? {
            Some(dist) => Head::Riemann(dist),
            None => Head::Classes {
                n_out: head.width(),
            },
        })
    }

    /// The artifact description of this head.
    pub fn to_output_head(&self) -> OutputHead {
        match self {
            Head::Riemann(dist) => OutputHead::from_bar_distribution(dist),
            Head::Classes { n_out } => OutputHead::Classes { n_out: *n_out },
        }
    }

    /// Logits per query row: buckets or classes.
    pub fn width(&self) -> usize {
        match self {
            Head::Riemann(dist) => dist.num_buckets(),
            Head::Classes { n_out } => *n_out,
        }
    }

    /// Sum over rows of the loss of `targets` (one per row of `width()` logits), writing
    /// `grad = scale · d(row loss)/d(logits)`. Call inside `Engine::install` to use the engine's
    /// threads.
    pub fn loss_and_grad(
        &self,
        logits: &[f32],
        targets: &[f32],
        grad: &mut [f32],
        scale: f32,
    ) -> Result<f64, DistributionError> {
        match self {
            Head::Riemann(dist) => dist.nll_and_grad(logits, targets, grad, scale),
            Head::Classes { n_out } => softmax_cross_entropy(logits, targets, *n_out, grad, scale),
        }
    }

    /// Like [`Head::loss_and_grad`] with posterior targets: each row is scored against the whole
    /// distribution of its target (the expected loss over it; gradient `scale * (softmax - P)`).
    /// A Riemann head takes Gaussian targets, a class head class probabilities with as many
    /// classes; anything else is an error.
    pub fn posterior_loss_and_grad(
        &self,
        logits: &[f32],
        posterior: &QueryPosterior,
        grad: &mut [f32],
        scale: f32,
    ) -> Result<f64, DistributionError> {
        match (self, posterior) {
            (Head::Riemann(dist), QueryPosterior::Gaussian { mean, std }) => {
                dist.gaussian_cross_entropy_and_grad(logits, mean, std, grad, scale)
            }
            (
                Head::Classes { n_out },
                QueryPosterior::Classes {
                    num_classes,
                    probabilities,
                },
            ) if n_out == num_classes => {
                soft_cross_entropy(logits, probabilities, *n_out, grad, scale)
            }
            _ => Err(DistributionError::InvalidParameter {
                argument: "posterior targets",
                value: f64::NAN,
                domain: "Gaussian targets for a Riemann head, class probabilities for a class head with as many classes",
            }),
        }
    }

    /// The loss (negative log density or cross-entropy) of each row, in f64.
    pub fn row_losses(
        &self,
        logits: &[f32],
        targets: &[f32],
    ) -> Result<Vec<f64>, DistributionError> {
        match self {
            Head::Riemann(dist) => Ok(dist
                .log_density_batch(logits, targets)?
                .into_iter()
                .map(|l| -l)
                .collect()),
            Head::Classes { n_out } => {
                let n = *n_out;
                if logits.len() != targets.len() * n {
                    return Err(DistributionError::ShapeMismatch {
                        argument: "logits",
                        expected: targets.len() * n,
                        actual: logits.len(),
                    });
                }
                let mut scratch = vec![0.0f32; n];
                logits
                    .chunks_exact(n)
                    .zip(targets)
                    .map(|(z, &t)| softmax_cross_entropy(z, &[t], n, &mut scratch, 1.0))
                    .collect()
            }
        }
    }

    /// Why `target` cannot be scored by this head, if it cannot: a class head needs an integer
    /// label in `0..n_out`, a bounded Riemann head a value inside its borders, every head a finite
    /// value.
    pub fn target_problem(&self, target: f32) -> Option<String> {
        if !target.is_finite() {
            return Some(format!("target {target} is not finite"));
        }
        match self {
            Head::Riemann(dist) => {
                let b = dist.borders();
                let (lo, hi) = (b[0], b[b.len() - 1]);
                let t = f64::from(target);
                (dist.support() == Support::Bounded && !(lo..=hi).contains(&t)).then(|| {
                    format!(
                        "target {target} lies outside the bounded support [{lo}, {hi}] of the bar distribution"
                    )
                })
            }
            Head::Classes { n_out } => {
                let ok = target >= 0.0 && target.fract() == 0.0 && (target as usize) < *n_out;
                (!ok).then(|| {
                    format!(
                        "target {target} is not a class label in 0..{n_out} (a class head needs a classification prior)"
                    )
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_losses_match_the_summed_training_loss() {
        let borders: Vec<f64> = (0..=6).map(|i| i as f64 - 3.0).collect();
        let riemann = Head::Riemann(BarDistribution::full_support(borders).unwrap());
        let logits: Vec<f32> = (0..12).map(|i| (i % 5) as f32 * 0.3 - 0.4).collect();
        let targets = [0.3f32, -4.0];
        let mut grad = vec![0.0; 12];
        let total = riemann
            .loss_and_grad(&logits, &targets, &mut grad, 1.0)
            .unwrap();
        let rows = riemann.row_losses(&logits, &targets).unwrap();
        assert!(
            (rows.iter().sum::<f64>() - total).abs() < 1e-6,
            "{rows:?} vs {total}"
        );

        let classes = Head::Classes { n_out: 3 };
        let logits = [0.1f32, 0.5, -0.2, 1.0, 0.0, 0.3];
        let targets = [2.0f32, 0.0];
        let mut grad = vec![0.0; 6];
        let total = classes
            .loss_and_grad(&logits, &targets, &mut grad, 1.0)
            .unwrap();
        let rows = classes.row_losses(&logits, &targets).unwrap();
        assert!((rows.iter().sum::<f64>() - total).abs() < 1e-12);
        let lse = (0.1f64.exp() + 0.5f64.exp() + (-0.2f64).exp()).ln();
        assert!((rows[0] - (lse + 0.2)).abs() < 1e-6);
    }

    #[test]
    fn target_problems_are_described() {
        let classes = Head::Classes { n_out: 2 };
        assert!(classes.target_problem(1.0).is_none());
        assert!(classes.target_problem(0.5).unwrap().contains("class label"));
        assert!(classes.target_problem(2.0).is_some());
        let bounded = Head::Riemann(BarDistribution::bounded(vec![0.0, 1.0, 2.0]).unwrap());
        assert!(bounded.target_problem(1.5).is_none());
        assert!(bounded.target_problem(2.5).unwrap().contains("outside"));
        let full = Head::Riemann(BarDistribution::full_support(vec![0.0, 1.0, 2.0]).unwrap());
        assert!(full.target_problem(25.0).is_none());
        assert!(full.target_problem(f32::NAN).is_some());
    }

    #[test]
    fn output_head_round_trip() {
        let head = OutputHead::Riemann {
            borders: vec![-1.0, 0.0, 2.0],
            full_support: false,
            tail: Default::default(),
        };
        let h = Head::from_output_head(&head).unwrap();
        assert_eq!(h.width(), 2);
        assert_eq!(h.to_output_head(), head);
        assert!(Head::from_output_head(&OutputHead::Riemann {
            borders: vec![1.0, 0.0],
            full_support: true,
            tail: Default::default(),
        })
        .is_err());
    }
}

//! The prediction pipeline on stand-in models whose answers are known: a "PFN" that returns the
//! exact GP posterior discretised on fine buckets (KL ≈ 0, same mean and intervals), and one that
//! returns it shifted by δ (KL = δ² / (2σ²) at every point).

use std::sync::Arc;

use pfn_distribution::{equal_width_borders, normal, BarDistribution};
use pfn_gp::{ExactGp, GpHyper};
use pfn_infer::TargetScaler;
use pfn_prior::GpPrior;
use pfn_server::api::{validate, PredictRequest};
use pfn_server::catalog::{DefaultView, ModelInfo, TrainingInAll, TrainingSummary};
use pfn_server::predict::predict;
use pfn_server::reference_gp::ReferenceGp;
use pfn_server::{ModelEntry, PosteriorError, PosteriorModel, RegressionPredictive};

/// Returns the GP posterior predictive (shifted by `shift`) as bucket probabilities on ±8 (wide
/// enough that the half-normal tails, much narrower than a Gaussian tail, hold no visible mass).
struct DiscretisedGp {
    hyper: GpHyper,
    shift: f64,
    dist: Arc<BarDistribution>,
}

impl DiscretisedGp {
    fn new(shift: f64) -> Self {
        Self {
            hyper: GpPrior::paper_1d().hyper().clone(),
            shift,
            dist: Arc::new(
                BarDistribution::full_support(equal_width_borders(6400, -8.0, 8.0).unwrap())
                    .unwrap(),
            ),
        }
    }
}

impl PosteriorModel for DiscretisedGp {
    fn num_features(&self) -> usize {
        1
    }

    fn predict(
        &self,
        cx: &[f64],
        cy: &[f64],
        q: &[f64],
    ) -> Result<Vec<RegressionPredictive>, PosteriorError> {
        let gp = ExactGp::fit(cx, cy, 1, &self.hyper)
            .map_err(|e| PosteriorError::Model(e.to_string()))?;
        let p = gp
            .predict(q)
            .map_err(|e| PosteriorError::Model(e.to_string()))?;
        let b = self.dist.borders();
        let k = self.dist.num_buckets();
        let mut logits = Vec::with_capacity(q.len() * k);
        for j in 0..q.len() {
            let (mu, sd) = (p.mean[j] + self.shift, p.var_y[j].sqrt());
            for i in 0..k {
                let lo = if i == 0 {
                    f64::NEG_INFINITY
                } else {
                    (b[i] - mu) / sd
                };
                let hi = if i == k - 1 {
                    f64::INFINITY
                } else {
                    (b[i + 1] - mu) / sd
                };
                let mass = (normal::cdf(hi) - normal::cdf(lo)).max(1e-300);
                logits.push(mass.ln() as f32);
            }
        }
        logits
            .chunks_exact(k)
            .map(|row| {
                let bar = BarDistribution::predict_shared(&self.dist, row)?;
                Ok(RegressionPredictive::new(bar, TargetScaler::identity()))
            })
            .collect()
    }
}

fn entry(shift: f64) -> ModelEntry {
    ModelEntry {
        info: ModelInfo {
            name: "stand-in".into(),
            prior: "gp-1d".into(),
            prior_description: String::new(),
            num_features: 1,
            feature_range: [1, 1],
            needs_context: false,
            max_context: 10,
            seq_len: 11,
            buckets: 6400,
            full_support: true,
            trained_x_range: Some([0.0, 1.0]),
            trained_y_range: Some([-8.0, 8.0]),
            x_normalisation: "none".into(),
            y_normalisation: "none".into(),
            reference_gp: Some("exact".into()),
            reference_gp_label: Some("GP (exact)".into()),
            training: TrainingSummary {
                steps: 0,
                datasets: 0,
                seconds: 0.0,
                started_from: None,
                in_all: TrainingInAll {
                    runs: 1,
                    steps: 0,
                    datasets: 0,
                    seconds: 0.0,
                    complete: true,
                    unknown_start: None,
                },
            },
            final_validation_loss: None,
            digest: String::new(),
            supported: true,
            unsupported_reason: None,
            default_view: DefaultView {
                x: [0.0, 1.0],
                y: [-3.0, 3.0],
            },
        },
        backend: Some(Arc::new(DiscretisedGp::new(shift))),
        reference: ReferenceGp::for_prior("gp-1d"),
    }
}

fn request() -> PredictRequest {
    serde_json::from_value(serde_json::json!({
        "model": "stand-in",
        "x": [0.2, 0.6],
        "y": [0.8, -0.4],
        "query": [0.05, 0.35, 0.45, 0.85, 1.0],
        "levels": [0.5, 0.9],
        "heatmap": {"n": 0}
    }))
    .unwrap()
}

#[test]
fn a_model_that_returns_the_gp_posterior_has_kl_near_zero_and_the_gp_statistics() {
    let e = entry(0.0);
    let r = predict(&e, &validate(request(), &e.info).unwrap()).unwrap();
    let gp = r.gp.as_ref().expect("gp overlay");
    let c = &gp.comparison;
    // Discretisation alone costs about w²/(24σ²) ≈ 3e-7 nats for buckets of width w = 0.0025.
    assert!(
        c.mean_kl.unwrap() < 1e-5,
        "mean KL {:?}: {:?}, std {:?}",
        c.mean_kl,
        c.kl,
        gp.std
    );
    for j in 0..5 {
        assert!(
            (r.mean[j] - gp.mean[j]).abs() < 2e-3,
            "mean {j}: {} vs {}",
            r.mean[j],
            gp.mean[j]
        );
        assert!(
            (r.std[j] - gp.std[j]).abs() < 2e-3 * (1.0 + gp.std[j]),
            "std {j}"
        );
        for (band, gp_band) in r.intervals.iter().zip(&gp.intervals) {
            assert!(
                (band.lower[j] - gp_band.lower[j]).abs() < 5e-3,
                "lower {j} at {}",
                band.level
            );
            assert!(
                (band.upper[j] - gp_band.upper[j]).abs() < 5e-3,
                "upper {j} at {}",
                band.level
            );
        }
    }
    let ce = c.mean_cross_entropy.unwrap();
    assert!(
        (ce - c.mean_gp_entropy).abs() < 1e-5,
        "cross-entropy {ce}, entropy {}, kl {:?}",
        c.mean_gp_entropy,
        c.kl
    );
}

#[test]
fn a_shifted_model_has_the_analytic_gaussian_kl_at_every_point() {
    let delta = 0.3;
    let e = entry(delta);
    let r = predict(&e, &validate(request(), &e.info).unwrap()).unwrap();
    let gp = r.gp.as_ref().unwrap();
    for j in 0..5 {
        let sd = gp.std[j];
        let want = delta * delta / (2.0 * sd * sd);
        let got = gp.comparison.kl[j].unwrap();
        assert!(
            (got - want).abs() < 1e-3 * want + 1e-5,
            "point {j} (std {sd}): KL {got}, analytic {want}"
        );
        assert!((r.mean[j] - gp.mean[j] - delta).abs() < 2e-3);
    }
}

//! The BNN model, its prior, and the SVI and NUTS baselines.

use pfn_baselines::bnn::{
    class1_probabilities, fit_bnn_nuts, fit_svi, forward_logits, BnnArchitecture,
    BnnClassificationPrior, BnnData, BnnDatasetSplit, BnnPosterior, BnnPredictive,
    ContextNormalization, PredictiveRule, SviOptions,
};
use pfn_baselines::{BaselineError, NutsOptions};
use pfn_prior::{Hyperparameters, Prior};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

fn random_theta(arch: &BnnArchitecture, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..arch.num_params())
        .map(|_| 0.7 * rng.sample::<f64, _>(StandardNormal))
        .collect()
}

fn prior_data(arch: BnnArchitecture, n: usize, seed: u64) -> (BnnData, Vec<f64>) {
    let prior = BnnClassificationPrior::new(arch).unwrap();
    let ds = prior.sample(&mut ChaCha8Rng::seed_from_u64(seed), n);
    (
        BnnData::new(&ds.x, &ds.labels, arch.features).unwrap(),
        ds.weights,
    )
}

#[test]
fn log_joint_gradient_matches_finite_differences() {
    for (arch, seed) in [
        (BnnArchitecture::SMALL, 1u64),
        (BnnArchitecture::new(4, 7).unwrap(), 2),
        (BnnArchitecture::new(1, 1).unwrap(), 3),
    ] {
        let (data, _) = prior_data(arch, 25, seed);
        let mut post = BnnPosterior::new(arch, data).unwrap();
        let theta = random_theta(&arch, seed + 10);
        let mut grad = vec![0.0; theta.len()];
        post.log_joint_and_grad(&theta, &mut grad).unwrap();
        for j in 0..theta.len() {
            let h = 1e-5;
            let mut tp = theta.clone();
            let mut tm = theta.clone();
            tp[j] += h;
            tm[j] -= h;
            let fd = (post.log_joint(&tp).unwrap() - post.log_joint(&tm).unwrap()) / (2.0 * h);
            assert!(
                (fd - grad[j]).abs() < 1e-6 * (1.0 + fd.abs()),
                "{arch:?} parameter {j}: analytic {} vs finite difference {fd}",
                grad[j]
            );
        }
    }
}

#[test]
fn log_joint_equals_the_layered_model() {
    let arch = BnnArchitecture::new(3, 4).unwrap();
    let (data, _) = prior_data(arch, 30, 4);
    let theta = random_theta(&arch, 5);
    let logits = forward_logits(&arch, &theta, data.x()).unwrap();
    let probs = class1_probabilities(&arch, &theta, data.x()).unwrap();
    let mut expected = 0.0;
    for ((l, p), y) in logits.iter().zip(&probs).zip(data.labels()) {
        let max = l[0].max(l[1]);
        let lse = max + ((l[0] - max).exp() + (l[1] - max).exp()).ln();
        let softmax1 = (l[1] - lse).exp();
        assert!(
            (softmax1 - p).abs() < 1e-12,
            "softmax {softmax1} vs collapsed {p}"
        );
        expected += if *y == 1.0 { l[1] - lse } else { l[0] - lse };
    }
    for t in &theta {
        expected += -0.5 * t * t - 0.5 * (2.0 * std::f64::consts::PI).ln();
    }
    let mut post = BnnPosterior::new(arch, data).unwrap();
    let got = post.log_joint(&theta).unwrap();
    assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
}

#[test]
fn svi_elbo_increases_over_windows_and_is_reproducible() {
    let arch = BnnArchitecture::SMALL;
    let (data, _) = prior_data(arch, 100, 6);
    let x_test = vec![0.1; 3 * 4];
    let opts = SviOptions {
        steps: 2000,
        predictive_samples: 64,
        seed: 7,
        ..SviOptions::default()
    };
    let r = fit_svi(&arch, &data, &x_test, &opts).unwrap();
    assert_eq!(r.elbo.len(), 2000);
    let windows: Vec<f64> = r
        .elbo
        .chunks(400)
        .map(|w| w.iter().sum::<f64>() / w.len() as f64)
        .collect();
    for k in 1..windows.len() {
        assert!(
            windows[k] > windows[k - 1],
            "ELBO window means do not increase: {windows:?}"
        );
    }
    assert!(windows[4] > windows[0] + 5.0, "{windows:?}");
    assert_eq!(r.samples.len(), 64 * arch.num_params());
    assert!(r.scale.iter().all(|s| *s > 0.0));
    let again = fit_svi(&arch, &data, &x_test, &opts).unwrap();
    assert_eq!(r.elbo, again.elbo);
    assert_eq!(r.loc, again.loc);
}

/// A 10-parameter BNN on 10 points: the posterior predictive by self-normalised importance
/// sampling from the prior is accurate, and NUTS must agree with it.
#[test]
fn nuts_predictive_matches_importance_sampling_on_a_tiny_bnn() {
    let arch = BnnArchitecture::new(1, 2).unwrap();
    let (data, _) = prior_data(arch, 10, 11);
    let x_test = [-1.5, -0.5, 0.0, 0.7, 2.0];

    let mut post = BnnPosterior::new(arch, data.clone()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let p = arch.num_params();
    let draws = 200_000;
    let (mut sw, mut sw2) = (0.0, 0.0);
    let mut num = [0.0; 5];
    let mut theta = vec![0.0; p];
    for _ in 0..draws {
        theta
            .iter_mut()
            .for_each(|t| *t = rng.sample(StandardNormal));
        let log_prior: f64 = theta
            .iter()
            .map(|t| -0.5 * t * t - 0.5 * (2.0 * std::f64::consts::PI).ln())
            .sum();
        let w = (post.log_joint(&theta).unwrap() - log_prior).exp();
        sw += w;
        sw2 += w * w;
        let probs = class1_probabilities(&arch, &theta, &x_test).unwrap();
        for k in 0..5 {
            num[k] += w * probs[k];
        }
    }
    let is_ess = sw * sw / sw2;
    assert!(is_ess > 5_000.0, "importance sampling ESS {is_ess}");
    let opts = NutsOptions {
        warmup: 500,
        draws: 1000,
        chains: 4,
        seed: 13,
        ..NutsOptions::default()
    };
    let r = fit_bnn_nuts(&arch, &data, &x_test, &opts).unwrap();
    let nuts = r
        .predictive
        .probabilities(PredictiveRule::AveragedProbability, 0);
    for k in 0..5 {
        let exact = num[k] / sw;
        assert!(
            (nuts[k] - exact).abs() < 0.02,
            "x = {}: NUTS {} vs importance sampling {exact}",
            x_test[k],
            nuts[k]
        );
    }
    assert_eq!(r.predictive.num_samples, 4000);
}

#[test]
fn nuts_and_svi_learn_a_small_bnn_dataset() {
    let arch = BnnArchitecture::SMALL;
    let prior = BnnClassificationPrior::new(arch).unwrap();
    let ds = prior.sample(&mut ChaCha8Rng::seed_from_u64(21), 300);
    let (ctx, x_test, y_test) = ds.split(100).unwrap();
    let nuts = fit_bnn_nuts(&arch, &ctx, &x_test, &NutsOptions::steps(200, 1)).unwrap();
    let svi = fit_svi(&arch, &ctx, &x_test, &SviOptions::budget(2000, 1)).unwrap();
    let truth = class1_probabilities(&arch, &ds.weights, &x_test).unwrap();
    let oracle = pfn_baselines::bnn::binary_cross_entropy(&truth, &y_test).unwrap();
    let bce_nuts = nuts
        .predictive
        .bce(&y_test, PredictiveRule::AveragedProbability, 0)
        .unwrap();
    let bce_svi = svi
        .predictive
        .bce(&y_test, PredictiveRule::AveragedProbability, 0)
        .unwrap();
    // The prior predictive is 0.5 everywhere (BCE ln 2); both must learn from 100 points and
    // NUTS must come close to the true weights.
    assert!(bce_nuts < 2f64.ln() - 0.1, "NUTS BCE {bce_nuts}");
    assert!(bce_svi < 2f64.ln() - 0.05, "SVI BCE {bce_svi}");
    assert!(
        bce_nuts < oracle + 0.1,
        "NUTS {bce_nuts} vs oracle {oracle}"
    );
    assert!(nuts.run.diagnostics.max_rhat() < 1.1);
    let paper = nuts
        .predictive
        .bce(&y_test, PredictiveRule::SampledLabelFraction, 3)
        .unwrap();
    assert!(paper.is_finite() && paper > 0.0);
}

#[test]
fn prior_labels_follow_the_model_probabilities() {
    let arch = BnnArchitecture::SMALL;
    let prior = BnnClassificationPrior::new(arch).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    let (mut sum_y, mut sum_p, mut var) = (0.0, 0.0, 0.0);
    let datasets = 200;
    let n = 100;
    for _ in 0..datasets {
        let ds = prior.sample(&mut rng, n);
        assert_eq!(ds.x.len(), n * 3);
        assert_eq!(ds.weights.len(), arch.num_params());
        let p = class1_probabilities(&arch, &ds.weights, &ds.x).unwrap();
        sum_y += ds.labels.iter().sum::<f64>();
        sum_p += p.iter().sum::<f64>();
        var += p.iter().map(|q| q * (1.0 - q)).sum::<f64>();
    }
    // Given the probabilities, the label sum has variance sum p (1 - p).
    assert!(
        (sum_y - sum_p).abs() < 4.0 * var.sqrt(),
        "labels {sum_y} vs probabilities {sum_p} (sd {})",
        var.sqrt()
    );
    // By symmetry of the weights, classes are balanced under the prior.
    let frac = sum_y / (datasets * n) as f64;
    assert!((frac - 0.5).abs() < 0.08, "{frac}");
}

#[test]
fn prior_implements_the_batch_sampler() {
    let arch = BnnArchitecture::BIG;
    let mut prior = BnnClassificationPrior::new(arch).unwrap();
    let batch = prior.sample_batch(5, 0, 4, 50, 8).unwrap();
    assert_eq!(batch.x.len(), 4 * 50 * 8);
    assert_eq!(batch.y, batch.target_y);
    assert!(batch.y.iter().all(|v| *v == 0.0 || *v == 1.0));
    let Hyperparameters::Custom { value } = &batch.hyperparameters[0] else {
        panic!("expected the weights to be recorded")
    };
    assert_eq!(
        value["weights"].as_array().unwrap().len(),
        arch.num_params()
    );
    // Same seed, same batch; labels are those of the recorded weights on the raw inputs.
    assert_eq!(prior.sample_batch(5, 0, 4, 50, 8).unwrap(), batch);
    assert!(matches!(
        prior.sample_batch(5, 0, 4, 50, 3),
        Err(pfn_prior::PriorError::FeatureCount { .. })
    ));
    prior.normalize_x = true;
    let normed = prior.sample_batch(5, 0, 4, 50, 8).unwrap();
    assert_eq!(normed.y, batch.y);
    for f in 0..8 {
        let col: Vec<f64> = normed
            .x_of(0)
            .iter()
            .skip(f)
            .step_by(8)
            .map(|&v| v as f64)
            .collect();
        let mean = col.iter().sum::<f64>() / 50.0;
        let sd = (col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 49.0).sqrt();
        assert!(
            mean.abs() < 1e-5 && (sd - 1.0).abs() < 1e-4,
            "feature {f}: {mean} {sd}"
        );
    }
}

#[test]
fn context_normalization_uses_context_statistics_only() {
    let x = [1.0, 10.0, 3.0, 20.0, 5.0, 30.0, 100.0, -100.0];
    let norm = ContextNormalization::fit(&x[..6], 2).unwrap();
    assert_eq!(norm.mean, vec![3.0, 20.0]);
    assert!((norm.std[0] - 2.0).abs() < 1e-12 && (norm.std[1] - 10.0).abs() < 1e-12);
    let mut all = x.to_vec();
    norm.apply(&mut all).unwrap();
    assert!((all[0] + 1.0).abs() < 1e-6 && (all[6] - 97.0 / 2.0).abs() < 1e-4);
    assert!(ContextNormalization::fit(&[], 2).is_err());
    assert!(norm.apply(&mut [1.0, 2.0, 3.0]).is_err());
}

#[test]
fn bad_inputs_are_errors() {
    let arch = BnnArchitecture::SMALL;
    assert!(matches!(
        BnnData::new(&[0.0; 6], &[0.0, 2.0], 3),
        Err(BaselineError::InvalidLabel { index: 1, .. })
    ));
    assert!(matches!(
        BnnData::new(&[0.0, f64::NAN, 0.0], &[1.0], 3),
        Err(BaselineError::NotFinite { index: 1, .. })
    ));
    assert!(matches!(
        BnnData::new(&[0.0; 7], &[0.0, 1.0], 3),
        Err(BaselineError::Shape { .. })
    ));
    assert!(matches!(
        BnnData::new(&[0.0; 6], &[0.0], 3),
        Err(BaselineError::Shape { .. })
    ));
    assert!(BnnArchitecture::new(0, 5).is_err());
    let data = BnnData::new(&[0.0; 6], &[0.0, 1.0], 3).unwrap();
    let wrong_f = BnnData::new(&[0.0; 4], &[0.0, 1.0], 2).unwrap();
    assert!(matches!(
        BnnPosterior::new(arch, wrong_f),
        Err(BaselineError::Shape { .. })
    ));
    let mut post = BnnPosterior::new(arch, data.clone()).unwrap();
    assert!(matches!(
        post.log_joint(&[0.0; 5]),
        Err(BaselineError::Shape { .. })
    ));
    let mut theta = vec![0.0; arch.num_params()];
    theta[3] = f64::NAN;
    assert!(matches!(
        post.log_joint(&theta),
        Err(BaselineError::NotFinite { index: 3, .. })
    ));
    assert!(matches!(
        fit_svi(&arch, &data, &[0.0; 4], &SviOptions::default()),
        Err(BaselineError::Shape { .. })
    ));
    assert!(matches!(
        fit_svi(
            &arch,
            &data,
            &[0.0; 3],
            &SviOptions {
                learning_rate: 0.0,
                ..SviOptions::default()
            }
        ),
        Err(BaselineError::InvalidOption { .. })
    ));
    assert!(matches!(
        fit_bnn_nuts(&arch, &data, &[f64::NAN; 3], &NutsOptions::steps(4, 0)),
        Err(BaselineError::NotFinite { .. })
    ));
    assert!(matches!(
        BnnPredictive::from_samples(&arch, &[], &[0.0; 3]),
        Err(BaselineError::Empty { .. })
    ));
    let pred =
        BnnPredictive::from_samples(&arch, &vec![0.1; arch.num_params()], &[0.0; 3]).unwrap();
    assert!(matches!(
        pred.bce(&[1.0, 0.0], PredictiveRule::AveragedProbability, 0),
        Err(BaselineError::Shape { .. })
    ));
    let empty_test =
        BnnPredictive::from_samples(&arch, &vec![0.1; arch.num_params()], &[]).unwrap();
    assert!(matches!(
        empty_test.bce(&[], PredictiveRule::AveragedProbability, 0),
        Err(BaselineError::Empty { .. })
    ));
}

//! The GP priors: covariance construction, sample covariance, hyper-prior draws.

use pfn_gp::{GpHyper, KernelKind};
use pfn_prior::rng::{dataset_rng, stream_rng};
use pfn_prior::{
    covariance_at, sample_gp_at, GpHyperPrior, GpHyperPriorConfig, GpPrior, Hyperparameters, Prior,
    PriorError,
};

#[test]
fn covariance_matches_pfn_gp_train_cov() {
    let mut rng = stream_rng(0, 5, &[]);
    for (kind, ls, d) in [
        (KernelKind::Rbf, vec![0.1], 1),
        (KernelKind::Rbf, vec![0.6], 5),
        (KernelKind::Matern52, vec![0.3, 0.7, 0.2], 3),
    ] {
        let hyper = GpHyper::new(kind, ls, 1.7, 1e-3).unwrap();
        let n = 30;
        let x: Vec<f32> = (0..n * d)
            .map(|_| rand::Rng::random::<f32>(&mut rng))
            .collect();
        let ours = covariance_at(&hyper, &x, d).unwrap();
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let reference = hyper.train_cov(&x64, d);
        assert_eq!(ours.len(), reference.len());
        for (a, b) in ours.iter().zip(&reference) {
            assert!(
                (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                "{kind:?}: {a} vs {b}"
            );
        }
    }
}

/// Empirical second moments of `m` draws at fixed inputs against the covariance.
///
/// With zero mean, `C_ij = mean(y_i y_j)` has standard error `sqrt((K_ii K_jj + K_ij^2) / m)` for
/// Gaussian data; we require every entry within 5 standard errors (15 entries, so a false alarm has
/// probability below 1e-5). With m = 20000 the band is about ±0.05 at unit variance, which catches a
/// missing 1/2 in the RBF exponent (0.88 vs 0.78 at distance 0.05) or a wrong lengthscale.
fn check_empirical_covariance(hyper: &GpHyper, x: &[f32], d: usize, m: usize) {
    let n = x.len() / d;
    // The reference covariance comes from pfn-gp, independently of the sampler's own construction.
    let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let k = hyper.train_cov(&x64, d);
    let mut acc = vec![0.0f64; n * n];
    let mut y = vec![0.0f32; n];
    for s in 0..m as u64 {
        let mut rng = dataset_rng(11, 0, s);
        sample_gp_at(hyper, x, d, &mut rng, &mut y).unwrap();
        for i in 0..n {
            for j in 0..=i {
                acc[i * n + j] += y[i] as f64 * y[j] as f64;
            }
        }
    }
    for i in 0..n {
        for j in 0..=i {
            let c = acc[i * n + j] / m as f64;
            let kij = k[i * n + j];
            let se = ((k[i * n + i] * k[j * n + j] + kij * kij) / m as f64).sqrt();
            assert!(
                (c - kij).abs() < 5.0 * se,
                "entry ({i},{j}): empirical {c}, kernel {kij}, se {se}"
            );
        }
    }
}

#[test]
fn gp_samples_have_the_kernel_covariance_1d() {
    let hyper = GpPrior::paper_1d().hyper().clone();
    check_empirical_covariance(&hyper, &[0.0, 0.05, 0.1, 0.3, 0.9], 1, 20_000);
}

#[test]
fn gp_samples_have_the_kernel_covariance_ard_matern() {
    let hyper = GpHyper::new(KernelKind::Matern52, vec![0.2, 1.0], 2.0, 1e-2).unwrap();
    let x = [0.1, 0.5, 0.15, 0.9, 0.3, 0.5, 0.8, 0.1, 0.12, 0.52];
    check_empirical_covariance(&hyper, &x, 2, 20_000);
}

#[test]
fn gp_prior_batch_has_unit_marginal_variance_and_uniform_inputs() {
    // 256 datasets x 100 points of gp-1d: y is N(0, 1 + 1e-4) marginally. The points of one dataset are
    // strongly correlated (lengthscale 0.1), so the effective sample size is roughly 256 * 5 draws;
    // the band ±0.15 is about 5 standard errors of a variance estimate from ~1300 draws.
    let prior = GpPrior::paper_1d();
    let b = prior.sample_batch(3, 0, 256, 100, 1).unwrap();
    let var = b.y.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / b.y.len() as f64;
    assert!((var - 1.0001).abs() < 0.15, "marginal variance {var}");
    assert_eq!(b.y, b.target_y);
    assert!(b.x.iter().all(|&v| (0.0..1.0).contains(&v)));
    let mean_x = b.x.iter().map(|&v| v as f64).sum::<f64>() / b.x.len() as f64;
    assert!((mean_x - 0.5).abs() < 0.01, "mean x {mean_x}");
    assert!(matches!(&b.hyperparameters[0], Hyperparameters::Gp(h) if h.lengthscales == vec![0.1]));
}

#[test]
fn paper_constructors_have_the_paper_settings() {
    for (p, ls, d) in [(GpPrior::paper_1d(), 0.1, 1), (GpPrior::paper_5d(), 0.6, 5)] {
        let h = p.hyper();
        assert_eq!(h.kind, KernelKind::Rbf);
        assert_eq!(h.lengthscales, vec![ls]);
        assert_eq!(h.outputscale, 1.0);
        assert_eq!(h.noise, 1e-4);
        assert_eq!(p.default_num_features(), d);
    }
}

#[test]
fn invalid_gp_settings_are_errors() {
    assert!(matches!(
        GpPrior::rbf(-0.1, 1.0, 1e-4, 1),
        Err(PriorError::Gp(_))
    ));
    assert!(GpPrior::rbf(0.1, 0.0, 1e-4, 1).is_err());
    assert!(GpPrior::rbf(0.1, 1.0, -1e-4, 1).is_err());
    assert!(GpPrior::rbf(f64::NAN, 1.0, 1e-4, 1).is_err());
    assert!(GpPrior::rbf(0.1, 1.0, 1e-4, 0).is_err());
    // ARD with 3 lengthscales samples exactly 3 features.
    let ard = GpHyper::new(KernelKind::Matern52, vec![0.1, 0.2, 0.3], 1.0, 1e-4).unwrap();
    assert!(GpPrior::new(ard.clone(), 2).is_err());
    let p = GpPrior::new(ard, 3).unwrap();
    assert!(matches!(
        p.sample_batch(0, 0, 2, 10, 2),
        Err(PriorError::FeatureCount {
            requested: 2,
            min: 3,
            max: 3,
            ..
        })
    ));
    assert!(p.sample_batch(0, 0, 2, 10, 3).is_ok());
    // Shapes of the direct sampler.
    let h = GpPrior::paper_1d().hyper().clone();
    let mut y = vec![0.0f32; 4];
    let mut rng = dataset_rng(0, 0, 0);
    assert!(matches!(
        sample_gp_at(&h, &[0.1, 0.2, 0.3], 1, &mut rng, &mut y),
        Err(PriorError::Shape {
            expected: 4,
            actual: 3,
            ..
        })
    ));
    assert!(sample_gp_at(&h, &[0.1, f32::NAN, 0.3, 0.4], 1, &mut rng, &mut y).is_err());
}

#[test]
fn singular_covariance_still_samples() {
    // K is singular (two identical points, no noise); the sampler must still return finite values
    // (via pfn-gp's jittered Cholesky when faer meets a zero pivot) with the two outputs (nearly) equal.
    let h = GpHyper::new(KernelKind::Rbf, vec![0.5], 1.0, 0.0).unwrap();
    let mut y = vec![0.0f32; 3];
    let mut rng = dataset_rng(0, 0, 0);
    sample_gp_at(&h, &[0.3, 0.3, 0.8], 1, &mut rng, &mut y).unwrap();
    assert!(y.iter().all(|v| v.is_finite()));
    assert!((y[0] - y[1]).abs() < 1e-3, "{y:?}");
}

/// Mean and variance of a sample.
fn moments(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (
        m,
        v.iter().map(|a| (a - m).powi(2)).sum::<f64>() / (n - 1.0),
    )
}

#[test]
fn hyper_prior_draws_have_gamma_moments() {
    // Paper values: lengthscale Γ(3, 6): mean 0.5, var 1/12; outputscale Γ(2, 0.15): mean 13.33,
    // var 88.9. Bands are 5 standard errors (SE(var) ≈ var sqrt((2 + 6/α)/n)). Confusing rate with
    // scale would give means 18 and 0.3.
    let prior = GpHyperPrior::paper();
    let n = 20_000;
    let (mut ls, mut os, mut noise) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n as u64 {
        let h = prior.sample_hyper(&mut dataset_rng(1, 0, i), 2).unwrap();
        assert_eq!(h.kind, KernelKind::Matern52);
        assert_eq!(h.lengthscales.len(), 2);
        ls.extend(&h.lengthscales);
        os.push(h.outputscale);
        noise.push(h.noise);
    }
    for (name, v, a, b) in [
        ("lengthscale", &ls, 3.0, 6.0),
        ("outputscale", &os, 2.0, 0.15),
    ] {
        let (m, var) = moments(v);
        let (tm, tv) = (a / b, a / (b * b));
        let k = v.len() as f64;
        assert!(
            (m - tm).abs() < 5.0 * (tv / k).sqrt(),
            "{name} mean {m} vs {tm}"
        );
        let se_v = tv * ((2.0 + 6.0 / a) / k).sqrt();
        assert!((var - tv).abs() < 5.0 * se_v, "{name} var {var} vs {tv}");
    }
    // Γ(1e-4, 1) puts P ≈ (1e-4)^(1e-4) ≈ 0.9991 below the 1e-4 floor: nearly every draw is floored.
    assert!(noise.iter().all(|&v| v >= 1e-4));
    let floored = noise.iter().filter(|&&v| v == 1e-4).count() as f64 / n as f64;
    assert!(floored > 0.995, "fraction floored {floored}");
}

#[test]
fn reference_code_hyper_prior_and_batch_records() {
    // Noise Γ(1.1, 0.05): mean 22, var 440, read back from the hyperparameters recorded in batches
    // (2 points per dataset keeps it cheap), which also checks the Prior wiring.
    let prior = GpHyperPrior::reference_code();
    let b = prior.sample_batch(9, 0, 8000, 2, 1).unwrap();
    let noise: Vec<f64> = b
        .hyperparameters
        .iter()
        .map(|h| match h {
            Hyperparameters::Gp(g) => g.noise,
            other => panic!("unexpected record {other:?}"),
        })
        .collect();
    let (m, var) = moments(&noise);
    let k = noise.len() as f64;
    assert!(
        (m - 22.0).abs() < 5.0 * (440.0 / k).sqrt(),
        "noise mean {m}"
    );
    assert!(
        (var - 440.0).abs() < 5.0 * 440.0 * ((2.0 + 6.0 / 1.1) / k).sqrt(),
        "noise var {var}"
    );
}

#[test]
fn hyper_prior_config_is_validated() {
    let mut c = GpHyperPriorConfig::paper();
    c.noise_floor = -1.0;
    assert!(GpHyperPrior::new(c).is_err());
    let mut c = GpHyperPriorConfig::paper();
    c.lengthscale.rate = 0.0;
    assert!(GpHyperPrior::new(c).is_err());
    let mut c = GpHyperPriorConfig::paper();
    c.default_num_features = 0;
    assert!(GpHyperPrior::new(c).is_err());
    let mut c = GpHyperPriorConfig::paper();
    c.ard = false;
    let p = GpHyperPrior::new(c).unwrap();
    let h = p.sample_hyper(&mut dataset_rng(0, 0, 0), 4).unwrap();
    assert_eq!(h.lengthscales.len(), 1);
}

#[test]
fn tied_inputs_snap_a_share_of_datasets_to_grids_and_leave_the_rest_alone() {
    let plain = GpHyperPrior::new(GpHyperPriorConfig::regression()).unwrap();
    let none = plain.clone().with_tied_inputs(0.0).unwrap();
    let all = plain.clone().with_tied_inputs(1.0).unwrap();
    // p = 0 draws the plain prior's datasets.
    assert_eq!(
        none.sample_batch(4, 0, 16, 40, 3).unwrap(),
        plain.sample_batch(4, 0, 16, 40, 3).unwrap()
    );
    // p = 1: every column takes at most 8 distinct values, on an equally spaced grid of [0, 1].
    let b = all.sample_batch(4, 0, 16, 40, 3).unwrap();
    for d in 0..16 {
        let x = b.x_of(d);
        for j in 0..3 {
            let mut col: Vec<f32> = x.iter().skip(j).step_by(3).copied().collect();
            col.sort_by(f32::total_cmp);
            col.dedup();
            assert!(col.len() <= 8, "dataset {d} column {j}: {col:?}");
            assert!(col.iter().all(|v| (0.0..=1.0).contains(v)));
        }
        assert!(b.y_of(d).iter().all(|v| v.is_finite()));
    }
    // About 30 % of datasets tie with p = 0.3 (binomial, 400 datasets: 0.3 ± 0.07 holds with
    // overwhelming probability).
    let some = plain.with_tied_inputs(0.3).unwrap();
    let b = some.sample_batch(4, 0, 400, 40, 1).unwrap();
    let tied = (0..400)
        .filter(|&d| {
            let mut col = b.x_of(d).to_vec();
            col.sort_by(f32::total_cmp);
            col.dedup();
            col.len() < 40
        })
        .count();
    assert!((90..=150).contains(&tied), "{tied} of 400 datasets tied");
    assert!(GpHyperPrior::paper().with_tied_inputs(1.5).is_err());
}

#[test]
fn a_share_of_tied_datasets_can_be_noiseless() {
    let plain = GpHyperPrior::new(GpHyperPriorConfig::regression()).unwrap();
    let floor = plain.config().noise_floor;
    let noises = |q: f64| -> Vec<f64> {
        let prior = plain
            .clone()
            .with_tied_inputs(1.0)
            .unwrap()
            .with_tied_noiseless(q)
            .unwrap();
        let b = prior.sample_batch(6, 0, 200, 30, 1).unwrap();
        b.hyperparameters
            .iter()
            .map(|h| match h {
                pfn_prior::Hyperparameters::Gp(g) => g.noise,
                other => panic!("not GP hyperparameters: {other:?}"),
            })
            .collect()
    };
    // q = 1: every tied dataset at the floor; q = 0: the hyper-prior's draws (almost never the
    // floor); q = 0.5: about half.
    assert!(noises(1.0).iter().all(|&n| n == floor));
    let at_floor = |v: Vec<f64>| v.iter().filter(|&&n| n == floor).count();
    assert!(at_floor(noises(0.0)) < 10);
    let half = at_floor(noises(0.5));
    assert!((70..=130).contains(&half), "{half} of 200");
    // The untied datasets keep their noise: with no ties, q changes nothing.
    let untied = plain.clone().with_tied_noiseless(1.0).unwrap();
    assert_eq!(
        untied.sample_batch(6, 0, 20, 30, 1).unwrap(),
        plain.sample_batch(6, 0, 20, 30, 1).unwrap()
    );
    assert!(plain.with_tied_noiseless(-0.1).is_err());
}

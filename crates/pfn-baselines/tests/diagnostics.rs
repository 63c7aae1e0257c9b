//! Split R-hat and ESS on chains with known answers.

use pfn_baselines::diagnostics::{effective_sample_size, split_rhat};
use pfn_baselines::BaselineError;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

fn iid(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.sample(StandardNormal)).collect()
}

/// Stationary AR(1): x_t = phi x_{t-1} + sqrt(1 - phi^2) e_t, started from the stationary law.
fn ar1(n: usize, phi: f64, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x: f64 = rng.sample(StandardNormal);
    let s = (1.0 - phi * phi).sqrt();
    (0..n)
        .map(|_| {
            let e: f64 = rng.sample(StandardNormal);
            x = phi * x + s * e;
            x
        })
        .collect()
}

#[test]
fn iid_chains_have_ess_near_n_and_rhat_near_one() {
    for seed in 0..4 {
        let n = 4000;
        let c1 = iid(n, seed);
        let c2 = iid(n, 100 + seed);
        let ess = effective_sample_size(&[&c1, &c2]).unwrap();
        // For iid draws the estimator's relative spread is a few percent at this size.
        assert!(
            (ess / (2 * n) as f64 - 1.0).abs() < 0.1,
            "seed {seed}: ESS {ess} for {} iid draws",
            2 * n
        );
        let rhat = split_rhat(&[&c1, &c2]).unwrap();
        assert!((rhat - 1.0).abs() < 0.01, "seed {seed}: R-hat {rhat}");
        let single = effective_sample_size(&[&c1]).unwrap();
        assert!(
            (single / n as f64 - 1.0).abs() < 0.15,
            "single chain ESS {single}"
        );
    }
}

#[test]
fn ar1_chains_have_the_known_ess() {
    for (phi, seed) in [(0.9, 1u64), (0.9, 2), (0.5, 3), (0.97, 4)] {
        let n = 40_000;
        let chain = ar1(n, phi, seed);
        let ess = effective_sample_size(&[&chain]).unwrap();
        // Integrated autocorrelation time of AR(1): (1 + phi) / (1 - phi).
        let expected = n as f64 * (1.0 - phi) / (1.0 + phi);
        assert!(
            (ess / expected - 1.0).abs() < 0.1,
            "phi {phi}: ESS {ess}, expected {expected}"
        );
        assert!(ess < 0.4 * n as f64);
        let rhat = split_rhat(&[&chain]).unwrap();
        assert!(rhat < 1.02, "phi {phi}: stationary chain has R-hat {rhat}");
    }
}

#[test]
fn rhat_detects_chains_that_disagree_and_a_drifting_chain() {
    let a = iid(2000, 7);
    let b: Vec<f64> = iid(2000, 8).iter().map(|v| v + 1.0).collect();
    let rhat = split_rhat(&[&a, &b]).unwrap();
    assert!(rhat > 1.1, "shifted chains: R-hat {rhat}");
    // One chain whose second half sits elsewhere: only splitting can see it.
    let drift: Vec<f64> = a
        .iter()
        .enumerate()
        .map(|(i, v)| if i < 1000 { *v } else { v + 2.0 })
        .collect();
    assert!(split_rhat(&[&drift]).unwrap() > 1.3);
}

#[test]
fn anticorrelated_chain_ess_is_capped() {
    let n = 10_000;
    let chain = ar1(n, -0.9, 5);
    let ess = effective_sample_size(&[&chain]).unwrap();
    let cap = n as f64 * (n as f64).log10();
    assert!(ess > n as f64 && ess <= cap * (1.0 + 1e-12), "ESS {ess}");
}

#[test]
fn bad_chains_are_errors() {
    let ok = iid(10, 0);
    let short = [1.0, 2.0, 3.0];
    let nan = [1.0, f64::NAN, 0.0, 2.0, 3.0];
    assert!(matches!(split_rhat(&[]), Err(BaselineError::Empty { .. })));
    assert!(matches!(
        effective_sample_size(&[&ok, &ok[..9]]),
        Err(BaselineError::Shape { .. })
    ));
    assert!(matches!(
        split_rhat(&[&short]),
        Err(BaselineError::Shape { .. })
    ));
    assert!(matches!(
        effective_sample_size(&[&nan]),
        Err(BaselineError::NotFinite { index: 1, .. })
    ));
    // A constant chain has no spread: NaN, not a number that looks fine.
    let constant = [2.0; 8];
    assert!(split_rhat(&[&constant]).unwrap().is_nan());
    assert!(effective_sample_size(&[&constant]).unwrap().is_nan());
}

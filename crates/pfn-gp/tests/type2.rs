//! Type-II maximum likelihood: recovery of known hyperparameters, optimality versus the truth,
//! MAP with a hyper-prior, seeded reproducibility.

mod common;

use common::sample_gp;
use pfn_gp::{
    fit_type2, log_marginal_likelihood, log_marginal_likelihood_grad, GpHyper, HyperPrior,
    KernelKind, StartDistribution, Type2Options,
};

fn ratio(a: f64, b: f64) -> f64 {
    (a / b).max(b / a)
}

#[test]
fn recovers_rbf_hyperparameters_in_1d() {
    let truth = GpHyper::new(KernelKind::Rbf, vec![0.2], 1.0, 0.01).unwrap();
    for seed in [1u64, 2] {
        let (x, y) = sample_gp(200, 1, &truth, seed);
        let fit = fit_type2(&x, &y, 1, KernelKind::Rbf, false, &Type2Options::default()).unwrap();
        let lml_true = log_marginal_likelihood(&x, &y, 1, &truth).unwrap();
        println!("seed {seed}: {fit:?}, lml at truth {lml_true}");
        assert!(fit.converged, "{fit:?}");
        assert!(
            fit.log_marginal_likelihood >= lml_true,
            "{fit:?} vs {lml_true}"
        );
        assert!(ratio(fit.hyper.lengthscales[0], 0.2) < 1.5, "{fit:?}");
        assert!(ratio(fit.hyper.noise, 0.01) < 1.5, "{fit:?}");
        // The outputscale is weakly identified from one function on [0, 1].
        assert!(ratio(fit.hyper.outputscale, 1.0) < 3.0, "{fit:?}");
        assert_eq!(fit.starts_run, 5);
        // Stationary: the LML gradient at the reported optimum is small.
        let (_, g) = log_marginal_likelihood_grad(&x, &y, 1, &fit.hyper, None).unwrap();
        println!("gradient at optimum {g:?}");
        assert!(g.iter().all(|t| t.abs() < 1e-3), "gradient {g:?}");
        assert_eq!(fit.log_prior, 0.0);
    }
}

#[test]
fn matern_ard_finds_the_irrelevant_dimension() {
    // Dimension 0 matters (lengthscale 0.3), dimension 1 barely (lengthscale 5).
    let truth = GpHyper::new(KernelKind::Matern52, vec![0.3, 5.0], 1.0, 0.01).unwrap();
    let (x, y) = sample_gp(150, 2, &truth, 11);
    let fit = fit_type2(
        &x,
        &y,
        2,
        KernelKind::Matern52,
        true,
        &Type2Options::default(),
    )
    .unwrap();
    let lml_true = log_marginal_likelihood(&x, &y, 2, &truth).unwrap();
    println!("{fit:?}, lml at truth {lml_true}");
    assert!(fit.log_marginal_likelihood >= lml_true);
    assert!(ratio(fit.hyper.lengthscales[0], 0.3) < 1.5, "{fit:?}");
    assert!(
        fit.hyper.lengthscales[1] > 5.0 * fit.hyper.lengthscales[0],
        "{fit:?}"
    );
}

#[test]
fn map_with_hyper_prior_beats_truth_on_its_objective() {
    let truth = GpHyper::new(KernelKind::Matern52, vec![0.4], 2.0, 0.05).unwrap();
    let (x, y) = sample_gp(40, 1, &truth, 5);
    let prior = HyperPrior::reference_code();
    let opts = Type2Options {
        prior: Some(prior),
        starts: StartDistribution::Prior(prior),
        seed: 3,
        ..Default::default()
    };
    let fit = fit_type2(&x, &y, 1, KernelKind::Matern52, false, &opts).unwrap();
    let at_truth =
        log_marginal_likelihood(&x, &y, 1, &truth).unwrap() + prior.log_density(&truth).unwrap();
    println!("{fit:?}, objective at truth {at_truth}");
    assert!(fit.log_marginal_likelihood + fit.log_prior >= at_truth);
    assert!((fit.log_prior - prior.log_density(&fit.hyper).unwrap()).abs() < 1e-12);
    // The MAP objective is not the likelihood alone: a pure type-II fit has higher likelihood.
    let ml = fit_type2(
        &x,
        &y,
        1,
        KernelKind::Matern52,
        false,
        &Type2Options::default(),
    )
    .unwrap();
    assert!(ml.log_marginal_likelihood >= fit.log_marginal_likelihood - 1e-9);
}

#[test]
fn seeded_and_reproducible_and_respects_noise_floor() {
    // Noise-free smooth data: the likelihood wants noise -> 0, the floor must hold.
    let x: Vec<f64> = (0..30).map(|i| i as f64 / 29.0).collect();
    let y: Vec<f64> = x.iter().map(|t| (3.0 * t).sin()).collect();
    let opts = Type2Options {
        seed: 42,
        ..Default::default()
    };
    let a = fit_type2(&x, &y, 1, KernelKind::Rbf, false, &opts).unwrap();
    let b = fit_type2(&x, &y, 1, KernelKind::Rbf, false, &opts).unwrap();
    assert_eq!(a, b);
    assert!(a.hyper.noise >= 1e-6 * (1.0 - 1e-12), "{a:?}");
    assert!(
        a.hyper.noise < 1e-4,
        "noise should be driven to the floor: {a:?}"
    );
    let c = fit_type2(
        &x,
        &y,
        1,
        KernelKind::Rbf,
        false,
        &Type2Options {
            seed: 43,
            ..Default::default()
        },
    )
    .unwrap();
    // A different seed gives different starting points, hence (slightly) different output.
    assert!(a.hyper != c.hyper || a.total_iterations != c.total_iterations);
}

//! NUTS over GP hyperparameters: the target density, its predictive against exact answers, and
//! input validation.

use pfn_baselines::{
    exact_gp_baseline, fit_gp_nuts, sample_gp_posterior, BaselineError, GpHyperDensity,
    GpMixturePredictive, GpNutsOptions, LogDensity, NoiseModel, NutsOptions,
};
use pfn_gp::{ExactGp, GammaPrior, GpHyper, HyperPrior, KernelKind, LmlEvaluator, PriorSpace};
use pfn_prior::{GpHyperPrior, Hyperparameters, Prior};

/// A deterministic 1-D dataset: a smooth function plus small pseudo-noise.
fn toy_data(n: usize, d: usize) -> (Vec<f64>, Vec<f64>) {
    let x: Vec<f64> = (0..n * d)
        .map(|i| ((i * 7 + 3) % 23) as f64 / 23.0)
        .collect();
    let y = x
        .chunks_exact(d)
        .enumerate()
        .map(|(i, r)| {
            (4.0 * r[0]).sin() + 0.3 * r.iter().sum::<f64>() + 0.05 * ((i % 5) as f64 - 2.0)
        })
        .collect();
    (x, y)
}

fn gamma(concentration: f64, rate: f64) -> Option<GammaPrior> {
    Some(GammaPrior {
        concentration,
        rate,
    })
}

#[test]
fn density_gradient_matches_finite_differences() {
    let (x, y) = toy_data(9, 2);
    let noises = [
        NoiseModel::ShiftedGamma { floor: 1e-4 },
        NoiseModel::TruncatedGamma { floor: 1e-4 },
        NoiseModel::Fixed { noise: 0.01 },
    ];
    // The paper's noise prior (alpha < 1: bounded transform) and the reference code's (alpha >= 1:
    // log transform of the excess).
    for (noise, prior) in noises.iter().flat_map(|n| {
        [
            (*n, HyperPrior::paper()),
            (*n, HyperPrior::reference_code()),
        ]
    }) {
        for ard in [true, false] {
            let opts = GpNutsOptions {
                noise,
                ard,
                prior,
                ..GpNutsOptions::default()
            };
            let mut density = GpHyperDensity::new(&x, &y, 2, &opts).unwrap();
            let dim = density.dim();
            // For the paper's bounded transform t = 7 gives an excess of about 4e-5, where the
            // noise still moves the likelihood.
            let theta: Vec<f64> = (0..dim)
                .map(|j| {
                    if j + 1 == dim && dim > 2 {
                        7.0
                    } else {
                        -0.7 + 0.4 * j as f64
                    }
                })
                .collect();
            let mut grad = vec![0.0; dim];
            density.log_density_and_grad(&theta, &mut grad).unwrap();
            for j in 0..dim {
                let h = 1e-5;
                let mut tp = theta.clone();
                let mut tm = theta.clone();
                tp[j] += h;
                tm[j] -= h;
                let mut g = vec![0.0; dim];
                let fp = density.log_density_and_grad(&tp, &mut g).unwrap();
                let fm = density.log_density_and_grad(&tm, &mut g).unwrap();
                let fd = (fp - fm) / (2.0 * h);
                assert!(
                    (fd - grad[j]).abs() < 1e-5 * (1.0 + fd.abs()),
                    "{noise:?} {prior:?} ard {ard} param {j}: analytic {} vs finite difference {fd}",
                    grad[j]
                );
            }
        }
    }
}

#[test]
fn density_value_is_lml_plus_gamma_priors_plus_jacobians() {
    let (x, y) = toy_data(7, 1);
    let floor = 1e-3;
    let opts = GpNutsOptions {
        noise: NoiseModel::TruncatedGamma { floor },
        ..GpNutsOptions::default()
    };
    let mut density = GpHyperDensity::new(&x, &y, 1, &opts).unwrap();
    let theta = [-0.5, 0.3, -3.0];
    let hyper = density.hyper_from_unconstrained(&theta).unwrap();
    assert!((hyper.noise - (floor + (-3.0f64).exp())).abs() < 1e-15);
    assert_eq!(density.unconstrained_from_hyper(&hyper).unwrap().len(), 3);
    let lml = LmlEvaluator::new(&x, &y, 1).unwrap().value(&hyper).unwrap();
    let p = HyperPrior::paper();
    let expected = lml
        + p.lengthscale.unwrap().log_pdf(hyper.lengthscales[0])
        + theta[0]
        + p.outputscale.unwrap().log_pdf(hyper.outputscale)
        + theta[1]
        + p.noise.unwrap().log_pdf(hyper.noise)
        + theta[2];
    let mut g = [0.0; 3];
    let got = density.log_density_and_grad(&theta, &mut g).unwrap();
    assert!((got - expected).abs() < 1e-10, "{got} vs {expected}");
}

/// The shifted-Gamma noise: the excess over the floor has the Gamma prior; in the sampled
/// coordinate the density must be `log Gamma(s) + log |ds/dt|`, checked with a numerical
/// Jacobian, for the bounded (alpha < 1) and the log (alpha >= 1) transform.
#[test]
fn shifted_gamma_noise_density_is_the_gamma_of_the_excess() {
    let (x, y) = toy_data(7, 1);
    let floor = 1e-3;
    for (prior, t) in [
        (HyperPrior::paper(), 6.5),
        (HyperPrior::reference_code(), 1.2),
    ] {
        let opts = GpNutsOptions {
            noise: NoiseModel::ShiftedGamma { floor },
            prior,
            ..GpNutsOptions::default()
        };
        let mut density = GpHyperDensity::new(&x, &y, 1, &opts).unwrap();
        let theta = [-0.5, 0.3, t];
        let hyper = density.hyper_from_unconstrained(&theta).unwrap();
        let excess = |t: f64| {
            density
                .hyper_from_unconstrained(&[-0.5, 0.3, t])
                .unwrap()
                .noise
                - floor
        };
        let s = excess(t);
        assert!(s > 1e-9, "excess {s}");
        let h = 1e-6;
        let ds_dt = (excess(t + h) - excess(t - h)) / (2.0 * h);
        let back = density.unconstrained_from_hyper(&hyper).unwrap();
        assert!((back[2] - t).abs() < 1e-6, "round trip {} vs {t}", back[2]);
        let lml = LmlEvaluator::new(&x, &y, 1).unwrap().value(&hyper).unwrap();
        let expected = lml
            + prior.lengthscale.unwrap().log_pdf(hyper.lengthscales[0])
            + theta[0]
            + prior.outputscale.unwrap().log_pdf(hyper.outputscale)
            + theta[1]
            + prior.noise.unwrap().log_pdf(s)
            + ds_dt.ln();
        let mut g = [0.0; 3];
        let got = density.log_density_and_grad(&theta, &mut g).unwrap();
        assert!(
            (got - expected).abs() < 1e-6,
            "{prior:?}: {got} vs {expected}"
        );
    }
}

/// With hyper-priors concentrated (relative sd 1%) around the true values, the NUTS mixture must
/// reproduce the exact GP predictive with those values.
#[test]
fn near_point_mass_prior_gives_the_exact_gp_predictive() {
    // ARD lengthscales share one Gamma prior, so both true lengthscales are equal.
    let truth = GpHyper::new(KernelKind::Matern52, vec![0.45, 0.45], 1.5, 0.02).unwrap();
    let (x, y) = toy_data(12, 2);
    let x_test: Vec<f64> = (0..10).map(|i| (i as f64 * 0.37) % 1.0).collect();
    let y_test: Vec<f64> = (0..5).map(|i| 0.4 * i as f64 - 0.5).collect();
    let c = 1e4;
    let floor = 1e-4;
    let opts = GpNutsOptions {
        nuts: NutsOptions {
            warmup: 200,
            draws: 200,
            seed: 1,
            ..NutsOptions::default()
        },
        kernel: KernelKind::Matern52,
        ard: true,
        prior: HyperPrior {
            lengthscale: gamma(c, c / truth.lengthscales[0]),
            outputscale: gamma(c, c / truth.outputscale),
            noise: gamma(c, c / (truth.noise - floor)),
            space: PriorSpace::Hyperparameter,
        },
        noise: NoiseModel::ShiftedGamma { floor },
    };
    let result = fit_gp_nuts(&x, &y, 2, &x_test, &opts).unwrap();
    let exact = ExactGp::fit(&x, &y, 2, &truth)
        .unwrap()
        .predict(&x_test)
        .unwrap();
    let nuts = &result.predictive;
    for i in 0..5 {
        assert!(
            (nuts.mean[i] - exact.mean[i]).abs() < 0.02 * exact.var_y[i].sqrt(),
            "mean {i}: {} vs {}",
            nuts.mean[i],
            exact.mean[i]
        );
        assert!(
            (nuts.var_y[i] / exact.var_y[i] - 1.0).abs() < 0.03,
            "variance {i}: {} vs {}",
            nuts.var_y[i],
            exact.var_y[i]
        );
    }
    let ld_nuts = nuts.log_density(&y_test).unwrap();
    let ld_exact = exact.log_predictive_density(&y_test).unwrap();
    for (a, b) in ld_nuts.iter().zip(&ld_exact) {
        assert!((a - b).abs() < 0.02, "log density {a} vs {b}");
    }
    // The samples sit where the prior put them.
    let mean_ls: f64 = result
        .posterior
        .samples
        .iter()
        .map(|h| h.lengthscales[0])
        .sum::<f64>()
        / result.posterior.samples.len() as f64;
    assert!((mean_ls / 0.45 - 1.0).abs() < 0.01, "{mean_ls}");
    assert_eq!(result.posterior.run.diagnostics.divergences, 0);
}

/// Against the exact Bayesian answer: with a fixed noise and d = 1 the posterior lives on two
/// log-hyperparameters, which a fine grid integrates to high accuracy.
#[test]
fn predictive_matches_grid_quadrature_of_the_hyperparameter_posterior() {
    let (x, y) = toy_data(8, 1);
    let x_test = [0.05, 0.5, 1.3];
    let y_test = [0.1, 1.2, -0.4];
    let noise = 0.01;
    let prior = HyperPrior::paper();
    let opts = GpNutsOptions {
        nuts: NutsOptions {
            warmup: 500,
            draws: 1000,
            chains: 4,
            seed: 9,
            ..NutsOptions::default()
        },
        kernel: KernelKind::Matern52,
        ard: true,
        prior,
        noise: NoiseModel::Fixed { noise },
    };
    let posterior = sample_gp_posterior(&x, &y, 1, &opts).unwrap();
    let diag = &posterior.run.diagnostics;
    assert!(diag.max_rhat() < 1.02, "R-hat {:?}", diag.rhat);
    let ld_nuts = posterior
        .predictive(&x_test)
        .unwrap()
        .log_density(&y_test)
        .unwrap();

    // Quadrature over (log l, log o) on [-6, 3] x [-5, 6] with step 0.05.
    let mut density = GpHyperDensity::new(&x, &y, 1, &opts).unwrap();
    let step = 0.05;
    let mut grid = Vec::new();
    let mut g = [0.0; 2];
    for i in 0..=180 {
        for j in 0..=220 {
            let t = [-6.0 + step * i as f64, -5.0 + step * j as f64];
            grid.push((t, density.log_density_and_grad(&t, &mut g).unwrap()));
        }
    }
    let max = grid
        .iter()
        .map(|(_, v)| *v)
        .fold(f64::NEG_INFINITY, f64::max);
    let z: f64 = grid.iter().map(|(_, v)| (v - max).exp()).sum();
    // The grid edges must carry no mass.
    let edge = grid
        .iter()
        .filter(|(t, _)| t[0] <= -5.9 || t[0] >= 2.9 || t[1] <= -4.9 || t[1] >= 5.9)
        .map(|(_, v)| (v - max).exp())
        .sum::<f64>();
    assert!(edge / z < 1e-6, "grid too small: edge mass {}", edge / z);
    let mut dens = [0.0; 3];
    let mut mean_log_l = 0.0;
    for (t, v) in &grid {
        let w = (v - max).exp() / z;
        if w < 1e-14 {
            continue;
        }
        mean_log_l += w * t[0];
        let hyper =
            GpHyper::new(KernelKind::Matern52, vec![t[0].exp()], t[1].exp(), noise).unwrap();
        let ld = ExactGp::fit(&x, &y, 1, &hyper)
            .unwrap()
            .log_predictive_density(&x_test, &y_test)
            .unwrap();
        for k in 0..3 {
            dens[k] += w * ld[k].exp();
        }
    }
    for k in 0..3 {
        let exact = dens[k].ln();
        assert!(
            (ld_nuts[k] - exact).abs() < 0.03,
            "test point {k}: NUTS {} vs quadrature {exact}",
            ld_nuts[k]
        );
    }
    let draws = posterior.run.all_draws();
    let nuts_mean_log_l = draws.iter().step_by(2).sum::<f64>() / (draws.len() / 2) as f64;
    let sd_log_l = (draws
        .iter()
        .step_by(2)
        .map(|v| (v - nuts_mean_log_l).powi(2))
        .sum::<f64>()
        / (draws.len() / 2) as f64)
        .sqrt();
    let se = sd_log_l / diag.ess[0].sqrt();
    assert!(
        (nuts_mean_log_l - mean_log_l).abs() < 4.0 * se,
        "posterior mean of log l: NUTS {nuts_mean_log_l} vs quadrature {mean_log_l} (se {se})"
    );
}

/// Data from the paper's hyper-prior (noise Gamma(1e-4, 1), clamped at 1e-4): with the noise floor
/// the sampler barely diverges (the reference without a floor diverged on ~58% of transitions).
#[test]
fn paper_prior_data_samples_without_many_divergences() {
    let prior = GpHyperPrior::paper();
    let (n, m, d) = (10, 5, 2);
    let batch = prior.sample_batch(3, 0, 4, n + m, d).unwrap();
    let mut divergences = 0;
    let mut transitions = 0;
    for b in 0..4 {
        let x: Vec<f64> = batch.x_of(b).iter().map(|&v| v as f64).collect();
        let y: Vec<f64> = batch.y_of(b).iter().map(|&v| v as f64).collect();
        let opts = GpNutsOptions {
            nuts: NutsOptions::steps(64, b as u64),
            ..GpNutsOptions::from_prior_config(prior.config(), NutsOptions::default())
        };
        let r = fit_gp_nuts(&x[..n * d], &y[..n], d, &x[n * d..], &opts).unwrap();
        divergences += r.posterior.run.diagnostics.divergences;
        transitions += 64;
        assert!(r.posterior.samples.iter().all(|h| h.noise >= 1e-4));
        // The data's noise sits at the floor and so does the shifted-Gamma prior's mass.
        let near_floor = r
            .posterior
            .samples
            .iter()
            .filter(|h| h.noise < 2e-4)
            .count();
        assert!(
            near_floor * 10 >= 9 * r.posterior.samples.len(),
            "{near_floor} of 64 near the floor"
        );
        let Hyperparameters::Gp(truth) = &batch.hyperparameters[b] else {
            panic!("GP prior records GP hyperparameters")
        };
        let oracle = exact_gp_baseline(&x[..n * d], &y[..n], d, &x[n * d..], truth).unwrap();
        assert!(r.predictive.nll(&y[n..]).unwrap().is_finite());
        assert!(oracle.predictive.nll(&y[n..]).unwrap().is_finite());
    }
    let rate = divergences as f64 / transitions as f64;
    assert!(rate < 0.05, "divergence rate {rate}");
}

#[test]
fn bad_inputs_are_errors() {
    let (x, y) = toy_data(6, 1);
    let opts = GpNutsOptions {
        nuts: NutsOptions::steps(8, 0),
        ..GpNutsOptions::default()
    };
    let err = |r: Result<_, BaselineError>| r.map(|_: pfn_baselines::GpNutsResult| ()).unwrap_err();
    assert!(matches!(
        err(fit_gp_nuts(&[], &[], 1, &[0.5], &opts)),
        BaselineError::Empty { .. }
    ));
    let mut y_nan = y.clone();
    y_nan[2] = f64::NAN;
    assert!(matches!(
        err(fit_gp_nuts(&x, &y_nan, 1, &[0.5], &opts)),
        BaselineError::NotFinite { index: 2, .. }
    ));
    let mut x_inf = x.clone();
    x_inf[0] = f64::INFINITY;
    assert!(matches!(
        err(fit_gp_nuts(&x_inf, &y, 1, &[0.5], &opts)),
        BaselineError::NotFinite { .. }
    ));
    assert!(matches!(
        err(fit_gp_nuts(&x, &y[..5], 1, &[0.5], &opts)),
        BaselineError::Shape { .. }
    ));
    assert!(matches!(
        err(fit_gp_nuts(&x, &y, 0, &[0.5], &opts)),
        BaselineError::InvalidOption { .. }
    ));
    assert!(matches!(
        err(fit_gp_nuts(&x[..6], &y[..3], 2, &[0.5, 0.1, 0.2], &opts)),
        BaselineError::Shape { .. }
    ));
    assert!(matches!(
        err(fit_gp_nuts(&x, &y, 1, &[f64::NAN], &opts)),
        BaselineError::NotFinite { .. }
    ));
    for bad in [
        GpNutsOptions {
            noise: NoiseModel::ShiftedGamma { floor: 0.0 },
            ..opts.clone()
        },
        GpNutsOptions {
            noise: NoiseModel::Fixed { noise: -1.0 },
            ..opts.clone()
        },
        GpNutsOptions {
            prior: HyperPrior {
                lengthscale: None,
                ..HyperPrior::paper()
            },
            ..opts.clone()
        },
        GpNutsOptions {
            nuts: NutsOptions {
                draws: 0,
                ..opts.nuts
            },
            ..opts.clone()
        },
    ] {
        assert!(matches!(
            err(fit_gp_nuts(&x, &y, 1, &[0.5], &bad)),
            BaselineError::InvalidOption { .. } | BaselineError::Gp(_)
        ));
    }
    assert!(matches!(
        GpMixturePredictive::from_hypers(&x, &y, 1, &[], &[0.5]),
        Err(BaselineError::Empty { .. })
    ));
}

//! NUTS recovers known posteriors, within Monte-Carlo error measured by its own ESS.

use pfn_baselines::{run_nuts, BaselineError, DensityError, LogDensity, NutsOptions};

/// Posterior of a Gaussian mean `mu` with known noise variance `s2` and prior `N(m0, v0)` on
/// data `y`: the log density `log N(mu; m0, v0) + sum_i log N(y_i; mu, s2)` up to a constant.
#[derive(Clone)]
struct GaussianMean {
    y: Vec<f64>,
    s2: f64,
    m0: f64,
    v0: f64,
}

impl GaussianMean {
    fn exact(&self) -> (f64, f64) {
        let prec = 1.0 / self.v0 + self.y.len() as f64 / self.s2;
        let mean = (self.m0 / self.v0 + self.y.iter().sum::<f64>() / self.s2) / prec;
        (mean, 1.0 / prec)
    }
}

impl LogDensity for GaussianMean {
    fn dim(&self) -> usize {
        1
    }
    fn log_density_and_grad(&mut self, t: &[f64], g: &mut [f64]) -> Result<f64, DensityError> {
        let mu = t[0];
        let mut v = -0.5 * (mu - self.m0).powi(2) / self.v0;
        g[0] = -(mu - self.m0) / self.v0;
        for y in &self.y {
            v -= 0.5 * (y - mu).powi(2) / self.s2;
            g[0] += (y - mu) / self.s2;
        }
        Ok(v)
    }
}

/// Independent Gaussians with very different scales (the mass matrix must adapt).
#[derive(Clone)]
struct ScaledGaussian {
    means: Vec<f64>,
    sds: Vec<f64>,
}

impl LogDensity for ScaledGaussian {
    fn dim(&self) -> usize {
        self.means.len()
    }
    fn log_density_and_grad(&mut self, t: &[f64], g: &mut [f64]) -> Result<f64, DensityError> {
        let mut v = 0.0;
        for j in 0..t.len() {
            let z = (t[j] - self.means[j]) / self.sds[j];
            v -= 0.5 * z * z;
            g[j] = -z / self.sds[j];
        }
        Ok(v)
    }
}

fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    (
        m,
        x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0),
    )
}

#[test]
fn gaussian_mean_posterior_is_recovered() {
    let y: Vec<f64> = (0..20)
        .map(|i| 1.5 + ((i * 37) % 11) as f64 / 5.0 - 1.0)
        .collect();
    let model = GaussianMean {
        y,
        s2: 0.5,
        m0: -1.0,
        v0: 4.0,
    };
    let (exact_mean, exact_var) = model.exact();
    let opts = NutsOptions {
        warmup: 500,
        draws: 2000,
        chains: 2,
        seed: 11,
        ..NutsOptions::default()
    };
    let run = run_nuts(&model, &["mu".to_string()], &[0.0], &opts).unwrap();
    assert_eq!(run.num_draws(), 4000);
    let draws = run.all_draws();
    let (m, v) = mean_var(&draws);
    let ess = run.diagnostics.ess[0];
    assert!(ess > 500.0, "ESS {ess}");
    // Monte-Carlo standard errors: sd / sqrt(ESS) for the mean, var * sqrt(2 / ESS) for the
    // variance (Gaussian posterior).
    let se_mean = exact_var.sqrt() / ess.sqrt();
    let se_var = exact_var * (2.0 / ess).sqrt();
    assert!(
        (m - exact_mean).abs() < 4.0 * se_mean,
        "mean {m} vs exact {exact_mean} (se {se_mean})"
    );
    assert!(
        (v - exact_var).abs() < 4.0 * se_var,
        "variance {v} vs exact {exact_var} (se {se_var})"
    );
    assert!(
        run.diagnostics.rhat[0] < 1.02,
        "R-hat {}",
        run.diagnostics.rhat[0]
    );
    assert_eq!(run.diagnostics.divergences, 0);
}

#[test]
fn badly_scaled_gaussian_is_recovered_in_every_coordinate() {
    let model = ScaledGaussian {
        means: vec![3.0, -2.0, 100.0],
        sds: vec![0.01, 1.0, 50.0],
    };
    let names: Vec<String> = (0..3).map(|j| format!("t{j}")).collect();
    let opts = NutsOptions {
        warmup: 1000,
        draws: 2000,
        seed: 3,
        ..NutsOptions::default()
    };
    let run = run_nuts(&model, &names, &[0.0; 3], &opts).unwrap();
    for j in 0..3 {
        let (m, v) = mean_var(&run.chains[0].parameter(j));
        let ess = run.diagnostics.ess[j];
        let sd = model.sds[j];
        assert!(ess > 300.0, "coordinate {j}: ESS {ess}");
        assert!(
            (m - model.means[j]).abs() < 4.0 * sd / ess.sqrt(),
            "coordinate {j}: mean {m}"
        );
        assert!(
            (v / (sd * sd) - 1.0).abs() < 4.0 * (2.0 / ess).sqrt(),
            "coordinate {j}: variance {v} vs {}",
            sd * sd
        );
    }
}

#[test]
fn runs_are_reproducible_and_seeds_matter() {
    let model = ScaledGaussian {
        means: vec![0.0, 1.0],
        sds: vec![1.0, 2.0],
    };
    let names = vec!["a".to_string(), "b".to_string()];
    let opts = NutsOptions::steps(32, 5);
    let a = run_nuts(&model, &names, &[0.0; 2], &opts).unwrap();
    let b = run_nuts(&model, &names, &[0.0; 2], &opts).unwrap();
    assert_eq!(a.all_draws(), b.all_draws());
    let c = run_nuts(&model, &names, &[0.0; 2], &NutsOptions::steps(32, 6)).unwrap();
    assert_ne!(a.all_draws(), c.all_draws());
    assert_eq!(a.num_draws(), 32);
}

#[test]
fn invalid_options_and_arguments_are_errors() {
    let model = ScaledGaussian {
        means: vec![0.0],
        sds: vec![1.0],
    };
    let names = vec!["a".to_string()];
    let bad = |o: NutsOptions| run_nuts(&model, &names, &[0.0], &o).unwrap_err();
    for o in [
        NutsOptions {
            draws: 0,
            ..NutsOptions::default()
        },
        NutsOptions {
            chains: 0,
            ..NutsOptions::default()
        },
        NutsOptions {
            target_accept: 1.0,
            ..NutsOptions::default()
        },
        NutsOptions {
            max_depth: 0,
            ..NutsOptions::default()
        },
        NutsOptions {
            init_radius: f64::NAN,
            ..NutsOptions::default()
        },
    ] {
        assert!(
            matches!(bad(o), BaselineError::InvalidOption { .. }),
            "{o:?}"
        );
    }
    let opts = NutsOptions::steps(8, 0);
    assert!(matches!(
        run_nuts(&model, &[], &[0.0], &opts),
        Err(BaselineError::Shape { .. })
    ));
    assert!(matches!(
        run_nuts(&model, &names, &[f64::NAN], &opts),
        Err(BaselineError::NotFinite { .. })
    ));
}

/// A density that is nowhere finite cannot be started.
#[derive(Clone)]
struct Nowhere;

impl LogDensity for Nowhere {
    fn dim(&self) -> usize {
        1
    }
    fn log_density_and_grad(&mut self, _: &[f64], g: &mut [f64]) -> Result<f64, DensityError> {
        g[0] = 0.0;
        Ok(f64::NAN)
    }
}

#[test]
fn a_density_without_finite_points_is_an_error() {
    let err = run_nuts(&Nowhere, &["a".into()], &[0.0], &NutsOptions::steps(4, 0)).unwrap_err();
    assert!(matches!(err, BaselineError::Sampler(_)), "{err}");
}

//! Log marginal likelihood gradient against central finite differences in log space.

mod common;

use common::random_data;
use pfn_gp::{
    log_marginal_likelihood_grad, GammaPrior, GpHyper, HyperPrior, KernelKind, LmlEvaluator,
    PriorSpace,
};

fn objective(
    ev: &mut LmlEvaluator,
    kind: KernelKind,
    theta: &[f64],
    prior: Option<&HyperPrior>,
) -> f64 {
    let h = GpHyper::from_log_params(kind, theta).unwrap();
    let mut g = vec![0.0; theta.len()];
    ev.value_and_grad(&h, prior, &mut g).unwrap()
}

fn check_gradient(n: usize, d: usize, kind: KernelKind, ard: bool, prior: Option<&HyperPrior>) {
    let (x, y) = random_data(n, d, 7 + n as u64);
    let ls = if ard {
        (0..d).map(|j| 0.25 + 0.15 * j as f64).collect()
    } else {
        vec![0.4]
    };
    let h = GpHyper::new(kind, ls, 1.4, 0.05).unwrap();
    let (value, grad) = log_marginal_likelihood_grad(&x, &y, d, &h, prior).unwrap();
    let mut ev = LmlEvaluator::new(&x, &y, d).unwrap();
    let theta = h.log_params();
    assert!((objective(&mut ev, kind, &theta, prior) - value).abs() < 1e-10);
    let step = 1e-5;
    for i in 0..theta.len() {
        let mut tp = theta.clone();
        tp[i] += step;
        let mut tm = theta.clone();
        tm[i] -= step;
        let fd = (objective(&mut ev, kind, &tp, prior) - objective(&mut ev, kind, &tm, prior))
            / (2.0 * step);
        // Relative error 1e-5, with an absolute floor of 1e-5 for components near zero.
        let err = (grad[i] - fd).abs();
        assert!(
            err <= 1e-5 * fd.abs().max(1.0),
            "n={n} d={d} {kind:?} ard={ard} prior={} param {i}: analytic {} vs fd {fd}",
            prior.is_some(),
            grad[i]
        );
    }
}

#[test]
fn gradient_matches_finite_differences() {
    let paper = HyperPrior::paper();
    let jacobian = HyperPrior {
        space: PriorSpace::LogHyperparameter,
        ..HyperPrior::reference_code()
    };
    let priors: [Option<&HyperPrior>; 3] = [None, Some(&paper), Some(&jacobian)];
    // n = 10: naive Cholesky and inverse; n = 30: faer Cholesky, naive inverse; n = 70: faer.
    for &(n, d) in &[(10usize, 1usize), (10, 3), (30, 2), (70, 2)] {
        for kind in [KernelKind::Rbf, KernelKind::Matern52] {
            for ard in [false, true] {
                for prior in priors {
                    check_gradient(n, d, kind, ard, prior);
                }
            }
        }
    }
}

#[test]
fn without_data_only_the_prior_contributes() {
    let h = GpHyper::new(KernelKind::Rbf, vec![0.5, 0.5], 1.0, 0.1).unwrap();
    let (v, g) = log_marginal_likelihood_grad(&[], &[], 2, &h, None).unwrap();
    assert_eq!(v, 0.0);
    assert!(g.iter().all(|t| *t == 0.0));
    let prior = HyperPrior::paper();
    let (v, g) = log_marginal_likelihood_grad(&[], &[], 2, &h, Some(&prior)).unwrap();
    assert!((v - prior.log_density(&h).unwrap()).abs() < 1e-15);
    // d/dlog l of log Gamma(l; 3, 6) = (3 - 1) - 6 l = -1 at l = 0.5.
    assert!((g[0] + 1.0).abs() < 1e-12 && (g[1] + 1.0).abs() < 1e-12);
}

#[test]
fn gamma_log_density_matches_closed_forms() {
    // Exponential: alpha = 1 -> log pdf = ln(beta) - beta h.
    let e = GammaPrior::new(1.0, 2.5).unwrap();
    assert!((e.log_pdf(0.7) - (2.5f64.ln() - 2.5 * 0.7)).abs() < 1e-13);
    // alpha = 3: beta^3 h^2 e^{-beta h} / 2.
    let g = GammaPrior::new(3.0, 6.0).unwrap();
    let h = 0.4f64;
    let expect = (6f64.powi(3) * h * h * (-6.0 * h).exp() / 2.0).ln();
    assert!((g.log_pdf(h) - expect).abs() < 1e-12);
    // The log-space convention adds the Jacobian log h.
    let hyp = GpHyper::new(KernelKind::Rbf, vec![h], 1.0, 0.1).unwrap();
    let only_ls = |space| HyperPrior {
        lengthscale: Some(g),
        outputscale: None,
        noise: None,
        space,
    };
    let a = only_ls(PriorSpace::Hyperparameter)
        .log_density(&hyp)
        .unwrap();
    let b = only_ls(PriorSpace::LogHyperparameter)
        .log_density(&hyp)
        .unwrap();
    assert!((a - expect).abs() < 1e-12 && (b - (expect + h.ln())).abs() < 1e-12);
    assert!(GammaPrior::new(0.0, 1.0).is_err() && GammaPrior::new(1.0, f64::NAN).is_err());
}

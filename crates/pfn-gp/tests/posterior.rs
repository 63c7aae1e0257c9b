//! Exact posterior: closed forms, agreement with an explicit-inverse implementation, the prior
//! at n = 0, one-step-ahead predictives, and jitter on singular covariances.

mod common;

use common::{assert_close, naive_kernel, naive_posterior, random_data};
use pfn_gp::{posterior, sequential_predictive, ExactGp, GpHyper, KernelKind};

const LN_2PI: f64 = 1.837_877_066_409_345_5;

#[test]
fn single_observation_matches_closed_form() {
    for kind in [KernelKind::Rbf, KernelKind::Matern52] {
        let h = GpHyper::new(kind, vec![0.3, 0.7], 1.7, 0.05).unwrap();
        let x1 = [0.2, 0.9];
        let y1 = -0.8;
        let xt = [0.25, 0.6, 0.9, 0.1, 0.2, 0.9];
        let yt = [0.1, -0.5, 0.3];
        let gp = ExactGp::fit(&x1, &[y1], 2, &h).unwrap();
        let p = gp.predict_with_cov(&xt).unwrap();
        let o = h.outputscale;
        let denom = o + h.noise;
        for i in 0..3 {
            let xi = &xt[2 * i..2 * i + 2];
            let k = naive_kernel(&h, xi, &x1);
            let mean = k * y1 / denom;
            let var = o - k * k / denom;
            assert!((p.mean[i] - mean).abs() <= 1e-12, "{kind:?} mean[{i}]");
            assert!((p.var_f[i] - var).abs() <= 1e-12, "{kind:?} var_f[{i}]");
            assert!(
                (p.var_y[i] - (var + h.noise)).abs() <= 1e-12,
                "{kind:?} var_y[{i}]"
            );
            for j in 0..3 {
                let kj = naive_kernel(&h, &xt[2 * j..2 * j + 2], &x1);
                let c = naive_kernel(&h, xi, &xt[2 * j..2 * j + 2]) - k * kj / denom;
                let got = p.cov_f.as_ref().unwrap()[i * 3 + j];
                assert!((got - c).abs() <= 1e-12, "{kind:?} cov[{i},{j}]");
            }
            let v = var + h.noise;
            let lpd = -0.5 * (LN_2PI + v.ln()) - 0.5 * (yt[i] - mean).powi(2) / v;
            let got = gp.log_predictive_density(&xt, &yt).unwrap()[i];
            assert!((got - lpd).abs() <= 1e-12, "{kind:?} lpd[{i}]");
        }
        let lml = -0.5 * (LN_2PI + denom.ln()) - 0.5 * y1 * y1 / denom;
        assert!((gp.log_marginal_likelihood() - lml).abs() <= 1e-12);
        assert_eq!(gp.jitter(), 0.0);
    }
}

#[test]
fn agrees_with_explicit_inverse_implementation() {
    // n < 12 uses the naive Cholesky, larger n faer (n = 130 also faer's solves and inverse).
    for kind in [KernelKind::Rbf, KernelKind::Matern52] {
        for &(n, d) in &[(1, 1), (7, 1), (25, 3), (64, 2), (130, 1), (130, 4)] {
            let ls: Vec<f64> = (0..d).map(|j| 0.3 + 0.2 * j as f64).collect();
            let h = GpHyper::new(kind, ls, 1.3, 0.02).unwrap();
            let (x, y) = random_data(n, d, 10 + n as u64 + d as u64);
            let (xt, yt) = random_data(9, d, 99);
            let gp = ExactGp::fit(&x, &y, d, &h).unwrap();
            assert_eq!(gp.jitter(), 0.0);
            let p = gp.predict_with_cov(&xt).unwrap();
            let p_diag = gp.predict(&xt).unwrap();
            let (mean, cov, lml) = naive_posterior(&x, &y, d, &h, &xt);
            let tag = format!("{kind:?} n={n} d={d}");
            for i in 0..9 {
                assert_close(p.mean[i], mean[i], 1e-9, &format!("{tag} mean[{i}]"));
                assert_close(p_diag.mean[i], mean[i], 1e-9, &format!("{tag} mean[{i}]"));
                assert_close(p.var_f[i], cov[i * 9 + i], 1e-9, &format!("{tag} var[{i}]"));
                assert_close(
                    p_diag.var_f[i],
                    cov[i * 9 + i],
                    1e-9,
                    &format!("{tag} var[{i}]"),
                );
                for j in 0..9 {
                    let got = p.cov_f.as_ref().unwrap()[i * 9 + j];
                    assert_close(got, cov[i * 9 + j], 1e-9, &format!("{tag} cov[{i},{j}]"));
                }
            }
            assert_close(
                gp.log_marginal_likelihood(),
                lml,
                1e-9,
                &format!("{tag} lml"),
            );
            let lml2 = pfn_gp::log_marginal_likelihood(&x, &y, d, &h).unwrap();
            assert_close(lml2, lml, 1e-9, &format!("{tag} lml (evaluator)"));
            let lpd = p_diag.log_predictive_density(&yt).unwrap();
            for i in 0..9 {
                let v = cov[i * 9 + i] + h.noise;
                let expect = -0.5 * (LN_2PI + v.ln()) - 0.5 * (yt[i] - mean[i]).powi(2) / v;
                assert_close(lpd[i], expect, 1e-9, &format!("{tag} lpd[{i}]"));
            }
        }
    }
}

#[test]
fn no_context_returns_the_prior() {
    let h = GpHyper::new(KernelKind::Matern52, vec![0.4], 2.5, 0.1).unwrap();
    let xt = [0.1, 0.5, 0.55];
    let gp = ExactGp::fit(&[], &[], 1, &h).unwrap();
    assert_eq!(gp.n(), 0);
    assert_eq!(gp.log_marginal_likelihood(), 0.0);
    let p = gp.predict_with_cov(&xt).unwrap();
    assert_eq!(p.mean, vec![0.0; 3]);
    assert_eq!(p.var_f, vec![2.5; 3]);
    assert_eq!(p.var_y, vec![2.6; 3]);
    let cov = p.cov_f.unwrap();
    for i in 0..3 {
        for j in 0..3 {
            let k = naive_kernel(&h, &xt[i..i + 1], &xt[j..j + 1]);
            assert!((cov[i * 3 + j] - k).abs() < 1e-15);
        }
    }
    let p2 = posterior(&[], &[], 1, &h, &xt, false).unwrap();
    assert_eq!(p2.var_f, vec![2.5; 3]);
    assert!(p2.cov_f.is_none());
    // Empty test set is fine too.
    assert!(gp.predict(&[]).unwrap().is_empty());
}

#[test]
fn sequential_predictive_matches_prefix_fits() {
    // The prefixes cross the sizes at which the factorisation and the solves switch to faer.
    let (x, y) = random_data(90, 3, 5);
    for kind in [KernelKind::Rbf, KernelKind::Matern52] {
        let h = GpHyper::new(kind, vec![0.5, 0.8, 0.6], 1.1, 1e-3).unwrap();
        let seq = sequential_predictive(&x, &y, 3, &h).unwrap();
        assert_eq!(seq.jitter, 0.0);
        for t in [0usize, 1, 2, 17, 47, 48, 49, 89] {
            let gp = ExactGp::fit(&x[..3 * t], &y[..t], 3, &h).unwrap();
            let xt = &x[3 * t..3 * t + 3];
            let p = gp.predict(xt).unwrap();
            let lpd = gp.log_predictive_density(xt, &y[t..t + 1]).unwrap();
            let tag = format!("{kind:?} t={t}");
            assert_close(seq.mean[t], p.mean[0], 1e-9, &format!("{tag} mean"));
            assert_close(seq.var_y[t], p.var_y[0], 1e-9, &format!("{tag} var"));
            assert_close(seq.log_density[t], lpd[0], 1e-9, &format!("{tag} lpd"));
        }
    }
}

#[test]
fn duplicated_inputs_without_noise_use_jitter() {
    // n = 10 (naive Cholesky) and n = 120 (faer) with every input repeated twice, noise 0.
    for &half in &[5usize, 60] {
        let (xh, yh) = random_data(half, 2, 3);
        let mut x = xh.clone();
        x.extend_from_slice(&xh);
        let mut y = yh.clone();
        y.extend_from_slice(&yh);
        let n = 2 * half;
        for kind in [KernelKind::Rbf, KernelKind::Matern52] {
            let h = GpHyper::new(kind, vec![0.3], 1.0, 0.0).unwrap();
            let gp = ExactGp::fit(&x, &y, 2, &h).unwrap();
            assert!(gp.jitter() > 0.0, "n={n} {kind:?}: no jitter recorded");
            assert!(gp.jitter() <= 1e-4, "jitter {} too large", gp.jitter());
            assert!(gp.log_marginal_likelihood().is_finite());
            // Usable: at the training points the posterior mean reproduces the data and the
            // variance is small; far away it reverts towards the prior.
            let p = gp.predict(&x[..2 * 3]).unwrap();
            for ((mean, var), yi) in p.mean.iter().zip(&p.var_f).zip(&y) {
                assert!(
                    (mean - yi).abs() < 1e-2,
                    "n={n} {kind:?}: mean {mean} vs y {yi}"
                );
                assert!(*var >= 0.0 && *var < 1e-2, "var {var}");
            }
            let far = gp.predict(&[50.0, 50.0]).unwrap();
            assert!(far.mean[0].abs() < 1e-6 && (far.var_f[0] - 1.0).abs() < 1e-6);
        }
    }
}

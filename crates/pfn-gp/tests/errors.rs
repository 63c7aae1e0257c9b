//! Bad arguments return errors naming the problem instead of panicking.

use pfn_gp::{
    fit_type2, log_marginal_likelihood, log_marginal_likelihood_grad, sequential_predictive,
    Cholesky, ExactGp, GammaPrior, GpError, GpHyper, HyperBounds, HyperPrior, KernelKind,
    LmlEvaluator, StartDistribution, Type2Options,
};

fn rbf(ls: Vec<f64>) -> GpHyper {
    GpHyper {
        kind: KernelKind::Rbf,
        lengthscales: ls,
        outputscale: 1.0,
        noise: 0.1,
    }
}

fn msg<T: std::fmt::Debug>(r: Result<T, GpError>) -> (GpError, String) {
    let e = r.expect_err("expected an error");
    let s = e.to_string();
    (e, s)
}

#[test]
fn bad_hyperparameters() {
    let x = [0.1, 0.2];
    let y = [1.0, 2.0];
    let (e, s) = msg(ExactGp::fit(&x, &y, 1, &rbf(vec![-0.5])));
    assert!(
        matches!(e, GpError::InvalidHyper(_)) && s.contains("lengthscale[0]"),
        "{s}"
    );
    let mut h = rbf(vec![0.5]);
    h.outputscale = f64::NAN;
    assert!(matches!(
        ExactGp::fit(&x, &y, 1, &h),
        Err(GpError::InvalidHyper(_))
    ));
    let mut h = rbf(vec![0.5]);
    h.noise = -1e-3;
    assert!(matches!(
        log_marginal_likelihood(&x, &y, 1, &h),
        Err(GpError::InvalidHyper(_))
    ));
    assert!(GpHyper::new(KernelKind::Matern52, vec![], 1.0, 0.1).is_err());
    // Three ARD lengthscales for 2-D inputs.
    let (e, s) = msg(ExactGp::fit(&[0.0; 4], &[0.0; 2], 2, &rbf(vec![1.0; 3])));
    assert!(
        matches!(e, GpError::Shape(_)) && s.contains("3 lengthscales"),
        "{s}"
    );
    assert!(GpHyper::from_log_params(KernelKind::Rbf, &[0.0, 0.0]).is_err());
}

#[test]
fn non_finite_data() {
    let h = rbf(vec![0.5]);
    let (e, s) = msg(ExactGp::fit(&[0.1, 0.2], &[1.0, f64::NAN], 1, &h));
    assert!(
        matches!(e, GpError::NotFinite(_)) && s.contains("y[1]"),
        "{s}"
    );
    let (e, s) = msg(ExactGp::fit(
        &[0.1, 0.2, f64::INFINITY, 0.0],
        &[1.0, 2.0],
        2,
        &h,
    ));
    assert!(
        matches!(e, GpError::NotFinite(_)) && s.contains("row 1, column 0"),
        "{s}"
    );
    let gp = ExactGp::fit(&[0.1, 0.2], &[1.0, 2.0], 1, &h).unwrap();
    assert!(matches!(
        gp.predict(&[f64::NAN]),
        Err(GpError::NotFinite(_))
    ));
    assert!(matches!(
        gp.log_predictive_density(&[0.3], &[f64::NEG_INFINITY]),
        Err(GpError::NotFinite(_))
    ));
    assert!(matches!(
        Cholesky::factor(&[1.0, f64::NAN, f64::NAN, 1.0], 2),
        Err(GpError::NotFinite(_))
    ));
}

#[test]
fn mismatched_shapes() {
    let h = rbf(vec![0.5]);
    let (e, s) = msg(ExactGp::fit(&[0.1, 0.2, 0.3], &[1.0, 2.0], 1, &h));
    assert!(
        matches!(e, GpError::Shape(_)) && s.contains("expected 3"),
        "{s}"
    );
    let (e, s) = msg(ExactGp::fit(&[0.1, 0.2, 0.3], &[1.0], 2, &h));
    assert!(
        matches!(e, GpError::Shape(_)) && s.contains("not a multiple of d = 2"),
        "{s}"
    );
    assert!(matches!(
        ExactGp::fit(&[], &[], 0, &h),
        Err(GpError::Shape(_))
    ));
    let gp = ExactGp::fit(&[0.1, 0.2, 0.3, 0.4], &[1.0, 2.0], 2, &h).unwrap();
    assert!(matches!(
        gp.predict(&[0.1, 0.2, 0.3]),
        Err(GpError::Shape(_))
    ));
    assert!(matches!(
        gp.log_predictive_density(&[0.1, 0.2], &[1.0, 2.0]),
        Err(GpError::Shape(_))
    ));
    let p = gp.predict(&[0.1, 0.2]).unwrap();
    assert!(matches!(
        p.log_predictive_density(&[]),
        Err(GpError::Shape(_))
    ));
    assert!(matches!(
        sequential_predictive(&[0.1], &[1.0, 2.0], 1, &h),
        Err(GpError::Shape(_))
    ));
    let mut ev = LmlEvaluator::new(&[0.1, 0.2], &[1.0, 2.0], 1).unwrap();
    let mut g = vec![0.0; 2];
    assert!(matches!(
        ev.value_and_grad(&h, None, &mut g),
        Err(GpError::Shape(_))
    ));
    assert!(matches!(
        Cholesky::factor(&[1.0, 0.0, 0.0], 2),
        Err(GpError::Shape(_))
    ));
    let c = Cholesky::factor(&[4.0, 0.0, 0.0, 9.0], 2).unwrap();
    assert!(matches!(
        c.solve_lower_many_in_place(&mut [1.0; 5], 2),
        Err(GpError::Shape(_))
    ));
}

#[test]
fn not_positive_definite_even_with_jitter() {
    // Negative definite: no jitter up to 1e-4 x mean diagonal helps.
    let (e, s) = msg(Cholesky::factor(&[-1.0, 0.0, 0.0, -2.0], 2));
    assert!(
        matches!(e, GpError::NotPositiveDefinite { n: 2, .. }),
        "{s}"
    );
    // Strongly indefinite 100 x 100 (faer path).
    let n = 100;
    let mut a = vec![0.5; n * n];
    for i in 0..n {
        a[i * n + i] = if i == 50 { -3.0 } else { 1.0 };
    }
    assert!(matches!(
        Cholesky::factor(&a, n),
        Err(GpError::NotPositiveDefinite { n: 100, .. })
    ));
}

#[test]
fn bad_options_and_priors() {
    let x = [0.1, 0.5, 0.9];
    let y = [0.0, 1.0, 0.5];
    let prior = HyperPrior {
        noise: Some(GammaPrior {
            concentration: -1.0,
            rate: 1.0,
        }),
        ..HyperPrior::paper()
    };
    assert!(matches!(
        log_marginal_likelihood_grad(&x, &y, 1, &rbf(vec![0.5]), Some(&prior)),
        Err(GpError::InvalidOption(_))
    ));
    let mut zero_noise = rbf(vec![0.5]);
    zero_noise.noise = 0.0;
    assert!(matches!(
        log_marginal_likelihood_grad(&x, &y, 1, &zero_noise, Some(&HyperPrior::paper())),
        Err(GpError::InvalidHyper(_))
    ));
    let run = |o: Type2Options| fit_type2(&x, &y, 1, KernelKind::Rbf, false, &o);
    assert!(matches!(
        run(Type2Options {
            restarts: 0,
            ..Default::default()
        }),
        Err(GpError::InvalidOption(_))
    ));
    assert!(matches!(
        run(Type2Options {
            bounds: HyperBounds {
                noise: (0.0, 1.0),
                ..Default::default()
            },
            ..Default::default()
        }),
        Err(GpError::InvalidOption(_))
    ));
    assert!(matches!(
        run(Type2Options {
            starts: StartDistribution::Prior(HyperPrior {
                noise: None,
                ..HyperPrior::paper()
            }),
            ..Default::default()
        }),
        Err(GpError::InvalidOption(_))
    ));
    // Initial hyperparameters with the wrong number of lengthscales.
    assert!(matches!(
        run(Type2Options {
            initial: Some(rbf(vec![0.5, 0.5])),
            ..Default::default()
        }),
        Err(GpError::Shape(_))
    ));
    assert!(matches!(
        fit_type2(
            &x,
            &[0.0, f64::NAN, 1.0],
            1,
            KernelKind::Rbf,
            false,
            &Default::default()
        ),
        Err(GpError::NotFinite(_))
    ));
}

#[test]
fn kernels_vanish_instead_of_nan_at_huge_distances() {
    use pfn_gp::kernel::{unit_kernel, unit_kernel_d_r2};
    // A sampler may propose lengthscales so small that scaled distances are astronomically large:
    // the kernel is 0 there, never inf * 0 = NaN.
    for kind in [KernelKind::Rbf, KernelKind::Matern52] {
        for r2 in [1e6, 1e300, f64::MAX, f64::INFINITY] {
            assert_eq!(unit_kernel(kind, r2), 0.0, "{kind:?} r2 = {r2}");
            assert_eq!(unit_kernel_d_r2(kind, r2), 0.0, "{kind:?} r2 = {r2}");
        }
        // Continuity at the Matérn cut-off: the value just below it is already below 1e-300.
        let below = (744.0f64 / 5f64.sqrt()).powi(2);
        assert!(unit_kernel(kind, below) < 1e-300);
    }
}

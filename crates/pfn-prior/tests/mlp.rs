//! The random-MLP prior.

use pfn_prior::{Activation, Hyperparameters, MlpConfig, MlpPrior, Prior};

fn mean_std(v: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = v.clone().count() as f64;
    let m = v.clone().sum::<f64>() / n;
    (
        m,
        (v.map(|a| (a - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt(),
    )
}

#[test]
fn outputs_and_inputs_are_z_normalised_per_dataset() {
    let prior = MlpPrior::new(MlpConfig::default()).unwrap();
    let b = prior.sample_batch(0, 0, 16, 80, 3).unwrap();
    for i in 0..16 {
        let (m, s) = mean_std(b.y_of(i).iter().map(|&v| v as f64));
        assert!(
            m.abs() < 1e-5 && (s - 1.0).abs() < 1e-4,
            "y mean {m} std {s}"
        );
        for j in 0..3 {
            let col = b.x_of(i).iter().skip(j).step_by(3).map(|&v| v as f64);
            let (m, s) = mean_std(col);
            assert!(
                m.abs() < 1e-5 && (s - 1.0).abs() < 1e-4,
                "x[{j}] mean {m} std {s}"
            );
        }
        let Hyperparameters::Mlp(d) = &b.hyperparameters[i] else {
            panic!()
        };
        assert_eq!(d.x_normalization.as_ref().unwrap().len(), 3);
        assert!(d.y_normalization.is_some());
    }
}

#[test]
fn identity_activation_without_noise_is_affine() {
    // With no nonlinearity and no noise, y is an affine function of x: in 1-D every slope between
    // pairs of points is the same. With tanh it is not.
    for (activation, affine) in [(Activation::Identity, true), (Activation::Tanh, false)] {
        let prior = MlpPrior::new(MlpConfig {
            activation,
            noise_std: 0.0,
            normalize_x: false,
            normalize_y: false,
            weight_std: 1.0,
            bias_std: 1.0,
            ..MlpConfig::default()
        })
        .unwrap();
        let b = prior.sample_batch(6, 0, 8, 40, 1).unwrap();
        let mut max_dev: f64 = 0.0;
        for i in 0..8 {
            let (x, y) = (b.x_of(i), b.y_of(i));
            let slope = |a: usize, c: usize| (y[c] - y[a]) as f64 / (x[c] - x[a]) as f64;
            let s0 = slope(0, 1);
            for k in 2..40 {
                max_dev = max_dev.max((slope(0, k) - s0).abs() / s0.abs().max(1.0));
            }
        }
        if affine {
            assert!(max_dev < 1e-3, "identity MLP not affine: {max_dev}");
        } else {
            assert!(max_dev > 1e-2, "tanh MLP looked affine: {max_dev}");
        }
    }
}

#[test]
fn relu_and_noise_change_the_output() {
    let base = MlpConfig {
        normalize_x: false,
        normalize_y: false,
        ..MlpConfig::default()
    };
    let plain = MlpPrior::new(MlpConfig {
        noise_std: 0.0,
        ..base.clone()
    })
    .unwrap();
    let noisy = MlpPrior::new(MlpConfig {
        noise_std: 0.5,
        ..base.clone()
    })
    .unwrap();
    let relu = MlpPrior::new(MlpConfig {
        activation: Activation::Relu,
        noise_std: 0.0,
        ..base
    })
    .unwrap();
    let a = plain.sample_batch(1, 0, 2, 30, 2).unwrap();
    let b = noisy.sample_batch(1, 0, 2, 30, 2).unwrap();
    let c = relu.sample_batch(1, 0, 2, 30, 2).unwrap();
    // Same stream: same weights and inputs, so x agrees and y differs only by the noise/activation.
    assert_eq!(a.x, b.x);
    assert_eq!(a.x, c.x);
    assert_ne!(a.y, b.y);
    assert_ne!(a.y, c.y);
}

#[test]
fn invalid_mlp_settings_are_errors() {
    for bad in [
        MlpConfig {
            layers: 0,
            ..MlpConfig::default()
        },
        MlpConfig {
            width: 0,
            ..MlpConfig::default()
        },
        MlpConfig {
            weight_std: -1.0,
            ..MlpConfig::default()
        },
        MlpConfig {
            noise_std: f64::NAN,
            ..MlpConfig::default()
        },
        MlpConfig {
            default_num_features: 0,
            ..MlpConfig::default()
        },
    ] {
        assert!(MlpPrior::new(bad).is_err());
    }
    // A single linear layer is allowed (a linear model).
    let lin = MlpPrior::new(MlpConfig {
        layers: 1,
        ..MlpConfig::default()
    })
    .unwrap();
    assert!(lin.sample_batch(0, 0, 2, 10, 4).is_ok());
    // A single point: the std is 0, so normalised values are 0 (no NaN).
    let p = MlpPrior::new(MlpConfig::default()).unwrap();
    let b = p.sample_batch(0, 0, 2, 1, 3).unwrap();
    assert!(b.y.iter().chain(&b.x).all(|&v| v == 0.0));
}

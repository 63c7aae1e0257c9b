//! Linear priors: weight and noise moments, noiseless targets.

use pfn_prior::{Hyperparameters, LinearPrior, Prior};

#[test]
fn ridge_weights_noise_and_targets() {
    let prior = LinearPrior::ridge();
    let (batch, s, f) = (2000, 50, 5);
    let b = prior.sample_batch(4, 0, batch, s, f).unwrap();
    let mut weights = Vec::new();
    let mut residuals = Vec::new();
    for i in 0..batch {
        let Hyperparameters::Linear(draw) = &b.hyperparameters[i] else {
            panic!("unexpected record");
        };
        assert_eq!(draw.weights.len(), f);
        assert_eq!(draw.bias, 0.0);
        weights.extend(&draw.weights);
        for (t, row) in b.x_of(i).chunks_exact(f).enumerate() {
            assert!(row.iter().all(|v| (0.0..1.0).contains(v)));
            let fx: f64 = row
                .iter()
                .zip(&draw.weights)
                .map(|(&a, w)| a as f64 * w)
                .sum();
            // target_y is the noiseless x w (up to f32 rounding).
            assert!((b.target_y_of(i)[t] as f64 - fx).abs() < 1e-6);
            residuals.push(b.y_of(i)[t] as f64 - b.target_y_of(i)[t] as f64);
        }
    }
    // Var of N(0, 0.1^2) is 0.01; a Gaussian sample variance has SE 0.01 sqrt(2/k). Bands: 5 SE.
    for (name, v) in [("weights", &weights), ("noise", &residuals)] {
        let k = v.len() as f64;
        let m = v.iter().sum::<f64>() / k;
        let var = v.iter().map(|a| (a - m).powi(2)).sum::<f64>() / (k - 1.0);
        assert!(m.abs() < 5.0 * (0.01 / k).sqrt(), "{name} mean {m}");
        assert!(
            (var - 0.01).abs() < 5.0 * 0.01 * (2.0 / k).sqrt(),
            "{name} variance {var}"
        );
    }
}

#[test]
fn linear_1d_slope_and_intercept_are_standard_normal() {
    let prior = LinearPrior::linear_1d();
    let b = prior.sample_batch(2, 0, 4000, 10, 1).unwrap();
    let (mut a, mut c) = (Vec::new(), Vec::new());
    for (i, h) in b.hyperparameters.iter().enumerate() {
        let Hyperparameters::Linear(d) = h else {
            panic!()
        };
        a.push(d.weights[0]);
        c.push(d.bias);
        assert_eq!(
            b.y_of(i),
            b.target_y_of(i),
            "linear-1d targets are the observations"
        );
    }
    for v in [&a, &c] {
        let k = v.len() as f64;
        let m = v.iter().sum::<f64>() / k;
        let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (k - 1.0);
        assert!(m.abs() < 5.0 / k.sqrt(), "mean {m}");
        assert!((var - 1.0).abs() < 5.0 * (2.0 / k).sqrt(), "variance {var}");
    }
}

#[test]
fn invalid_linear_settings_are_errors() {
    assert!(LinearPrior::new(-0.1, 0.0, 0.1, true, 1, 10).is_err());
    assert!(LinearPrior::new(0.1, f64::NAN, 0.1, true, 1, 10).is_err());
    assert!(LinearPrior::new(0.1, 0.0, -1.0, true, 1, 10).is_err());
    assert!(LinearPrior::new(0.1, 0.0, 0.1, true, 11, 10).is_err());
    assert!(LinearPrior::new(0.1, 0.0, 0.1, true, 0, 10).is_err());
}

//! The registered BNN classification priors (paper Fig. 5) as `pfn train` builds them.

use pfn_prior::{
    prior_by_name, BnnArchitecture, BnnClassificationPrior, ContextNormalization, Hyperparameters,
    Prior, PriorError, PRIORS,
};

const REGISTERED: [(&str, BnnArchitecture); 2] = [
    ("bnn-classification-small", BnnArchitecture::SMALL),
    ("bnn-classification-big", BnnArchitecture::BIG),
];

#[test]
fn both_names_resolve_to_binary_datasets_with_the_paper_feature_counts() {
    for (name, arch) in REGISTERED {
        assert!(PRIORS.iter().any(|e| e.name == name), "{name} not listed");
        let prior = prior_by_name(name).unwrap();
        let f = arch.features;
        assert_eq!(prior.default_num_features(), f, "{name}");
        assert_eq!(prior.feature_range(), (f, f), "{name}");
        let (batch, seq) = (16, 300);
        let b = prior.sample_batch(3, 1, batch, seq, f).unwrap();
        assert_eq!(b.num_features, f);
        assert_eq!(b.x.len(), batch * seq * f);
        assert_eq!(b.features_used, vec![f; batch]);
        assert_eq!(b.y, b.target_y, "{name}: targets are the shown labels");
        assert!(
            b.y.iter().all(|v| *v == 0.0 || *v == 1.0),
            "{name}: labels must be 0 or 1"
        );
        let ones = b.y.iter().filter(|v| **v == 1.0).count();
        assert!(
            ones > 0 && ones < b.y.len(),
            "{name}: {ones} of {} labels are 1",
            b.y.len()
        );
        for (i, h) in b.hyperparameters.iter().enumerate() {
            let Hyperparameters::Custom { value } = h else {
                panic!("{name}: dataset {i} records no weights")
            };
            assert_eq!(value["features"], f);
            assert_eq!(value["hidden"], arch.hidden);
            assert_eq!(
                value["weights"].as_array().unwrap().len(),
                arch.num_params()
            );
            let json = serde_json::to_string(h).unwrap();
            let back: Hyperparameters = serde_json::from_str(&json).unwrap();
            assert_eq!(&back, h, "{name}: the record survives a JSON round trip");
        }
        assert!(matches!(
            prior.sample_batch(3, 1, 2, 30, f + 1),
            Err(PriorError::FeatureCount { requested, .. }) if requested == f + 1
        ));
    }
}

/// The registered priors are the baselines' raw prior with x z-normalised over each sequence:
/// same weights and labels, and x equal to the raw x after `ContextNormalization` on all rows.
#[test]
fn registered_priors_are_the_raw_prior_with_sequence_normalised_x() {
    for (name, arch) in REGISTERED {
        let registered = prior_by_name(name).unwrap();
        let raw = BnnClassificationPrior::new(arch).unwrap();
        let f = arch.features;
        let seq = 120;
        let norm = registered.sample_batch(11, 4, 3, seq, f).unwrap();
        let plain = raw.sample_batch(11, 4, 3, seq, f).unwrap();
        assert_eq!(norm.y, plain.y, "{name}");
        assert_eq!(norm.hyperparameters, plain.hyperparameters, "{name}");
        for d in 0..3 {
            let mut x: Vec<f64> = plain.x_of(d).iter().map(|&v| f64::from(v)).collect();
            // The raw f32 x is a rounding of the f64 draw, so compare with a tolerance.
            ContextNormalization::fit(&x, f)
                .unwrap()
                .apply(&mut x)
                .unwrap();
            for (k, (a, b)) in norm.x_of(d).iter().zip(&x).enumerate() {
                assert!(
                    (f64::from(*a) - b).abs() < 1e-5,
                    "{name} dataset {d} value {k}: {a} vs {b}"
                );
            }
            for c in 0..f {
                let col: Vec<f64> = norm
                    .x_of(d)
                    .iter()
                    .skip(c)
                    .step_by(f)
                    .map(|&v| f64::from(v))
                    .collect();
                let mean = col.iter().sum::<f64>() / seq as f64;
                let sd = (col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (seq as f64 - 1.0))
                    .sqrt();
                assert!(mean.abs() < 1e-5 && (sd - 1.0).abs() < 1e-4, "{name}");
            }
        }
        // Raw x is not normalised (the test above would pass trivially otherwise).
        assert_ne!(norm.x, plain.x, "{name}");
    }
}

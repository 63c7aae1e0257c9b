//! Batch layout, reproducibility across thread counts, argument checking, the registry.

use pfn_prior::{prior_by_name, Batch, Hyperparameters, Prior, PriorEntry, PriorError, PRIORS};

fn with_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn same_seed_same_batch_for_any_thread_count() {
    for &PriorEntry { name, .. } in PRIORS {
        let prior = prior_by_name(name).unwrap();
        let f = prior.default_num_features();
        let one = with_threads(1, || prior.sample_batch(17, 5, 12, 40, f).unwrap());
        let four = with_threads(4, || prior.sample_batch(17, 5, 12, 40, f).unwrap());
        assert_eq!(one, four, "{name}");
        let other_seed = prior.sample_batch(18, 5, 12, 40, f).unwrap();
        let other_batch = prior.sample_batch(17, 6, 12, 40, f).unwrap();
        assert_ne!(
            one.x, other_seed.x,
            "{name}: seeds 17 and 18 gave the same x"
        );
        assert_ne!(
            one.x, other_batch.x,
            "{name}: batch indices 5 and 6 gave the same x"
        );
        // Datasets within a batch differ from each other.
        assert_ne!(one.x_of(0), one.x_of(1), "{name}");
    }
}

#[test]
fn large_gp_draws_are_identical_across_thread_counts() {
    // Blocked, SIMD Cholesky sizes (and an odd n) where a kernel split by buffer alignment could
    // otherwise change the last bits from one thread's buffer to another's.
    for (name, f, n) in [("gp-5d", 5, 257), ("gp-hyper", 3, 130)] {
        let prior = prior_by_name(name).unwrap();
        let one = with_threads(1, || prior.sample_batch(2, 0, 6, n, f).unwrap());
        let three = with_threads(3, || prior.sample_batch(2, 0, 6, n, f).unwrap());
        assert_eq!(one, three, "{name}");
    }
}

#[test]
fn a_dataset_does_not_depend_on_the_batch_size() {
    // Dataset i only uses the stream (seed, batch_index, i).
    let prior = prior_by_name("gp-hyper").unwrap();
    let small = prior.sample_batch(1, 2, 3, 25, 2).unwrap();
    let large = prior.sample_batch(1, 2, 9, 25, 2).unwrap();
    for i in 0..3 {
        assert_eq!(small.x_of(i), large.x_of(i));
        assert_eq!(small.y_of(i), large.y_of(i));
        assert_eq!(small.hyperparameters[i], large.hyperparameters[i]);
    }
}

#[test]
fn every_registered_prior_samples_with_its_default_features() {
    for &PriorEntry {
        name,
        description,
        normalisation,
        ..
    } in PRIORS
    {
        assert!(!description.is_empty());
        let prior = prior_by_name(name).unwrap();
        let f = prior.default_num_features();
        let b = prior.sample_batch(0, 0, 4, 30, f).unwrap();
        assert_eq!((b.batch_size, b.seq_len, b.num_features), (4, 30, f));
        assert_eq!(b.x.len(), 4 * 30 * f);
        assert_eq!(b.y.len(), 120);
        assert_eq!(b.target_y.len(), 120);
        // Priors with a variable number of used features (those with a padding rule) draw it in
        // their range; the others use every column.
        let (lo, _) = prior.feature_range();
        if normalisation.feature_padding.is_some() {
            assert!(
                b.features_used.iter().all(|&u| (lo..=f).contains(&u)),
                "{name}"
            );
            // Unused columns are zero.
            for (d, &u) in b.features_used.iter().enumerate() {
                let x = b.x_of(d);
                assert!(x.chunks(f).all(|row| row[u..].iter().all(|&v| v == 0.0)));
            }
        } else {
            assert_eq!(b.features_used, vec![f; 4], "{name}");
        }
        assert_eq!(b.hyperparameters.len(), 4);
        assert!(b
            .x
            .iter()
            .chain(&b.y)
            .chain(&b.target_y)
            .all(|v| v.is_finite()));
        // The record survives a JSON round trip, so a baseline can reload it.
        for h in &b.hyperparameters {
            let json = serde_json::to_string(h).unwrap();
            let back: Hyperparameters = serde_json::from_str(&json).unwrap();
            assert_eq!(&back, h, "{name}: {json}");
        }
    }
    let expected = [
        ("gp-1d", 1),
        ("gp-5d", 5),
        ("gp-hyper", 1),
        ("gp-hyper-5d", 5),
        ("linear-1d", 1),
        ("bnn", 3),
        ("tabular-bnn", 60),
        ("tabular-gp", 60),
    ];
    for (name, f) in expected {
        assert_eq!(
            prior_by_name(name).unwrap().default_num_features(),
            f,
            "{name}"
        );
    }
}

#[test]
fn unknown_names_list_the_available_priors() {
    match prior_by_name("gp-2d") {
        Err(PriorError::UnknownPrior { name, available }) => {
            assert_eq!(name, "gp-2d");
            for e in PRIORS {
                assert!(available.contains(e.name));
            }
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("gp-2d should not exist"),
    }
}

#[test]
fn bad_requests_are_errors() {
    let gp = prior_by_name("gp-1d").unwrap();
    assert!(matches!(
        gp.sample_batch(0, 0, 4, 0, 1),
        Err(PriorError::InvalidArgument { name, .. }) if name == "seq_len"
    ));
    assert!(matches!(
        gp.sample_batch(0, 0, 0, 10, 1),
        Err(PriorError::InvalidArgument { name, .. }) if name == "batch"
    ));
    assert!(matches!(
        gp.sample_batch(0, 0, 4, 10, 0),
        Err(PriorError::FeatureCount { requested: 0, .. })
    ));
    let lin = prior_by_name("linear-1d").unwrap();
    assert!(matches!(
        lin.sample_batch(0, 0, 4, 10, 2),
        Err(PriorError::FeatureCount {
            requested: 2,
            max: 1,
            ..
        })
    ));
    assert!(gp.sample_batch(0, 0, usize::MAX, usize::MAX, 2).is_err());
}

#[test]
fn sample_batch_into_reuses_and_overwrites() {
    let prior = prior_by_name("ridge").unwrap();
    let mut out = Batch::default();
    prior.sample_batch_into(0, 0, 8, 50, 6, &mut out).unwrap();
    let first = out.clone();
    prior.sample_batch_into(0, 1, 3, 20, 2, &mut out).unwrap();
    assert_eq!(out, prior.sample_batch(0, 1, 3, 20, 2).unwrap());
    prior.sample_batch_into(0, 0, 8, 50, 6, &mut out).unwrap();
    assert_eq!(out, first);
}

//! The variable-number-of-features wrapper: zero padding, rescaling, recorded counts.

use pfn_prior::rng::PriorRng;
use pfn_prior::{
    prior_by_name, DatasetInfo, DatasetMut, DatasetPosition, FeatureDraw, FeatureScaling, GpPrior,
    Hyperparameters, Prior, PriorError, VariableFeatures,
};

/// Writes `x[t, j] = 100 t + j + 1` so every value says where it came from.
struct Labelled;

impl Prior for Labelled {
    fn default_num_features(&self) -> usize {
        1
    }
    fn sample_dataset(
        &self,
        _rng: &mut PriorRng,
        _position: &DatasetPosition,
        mut data: DatasetMut<'_>,
    ) -> Result<DatasetInfo, PriorError> {
        let f = data.num_features();
        let (x, y, t) = data.parts();
        for (k, v) in x.iter_mut().enumerate() {
            *v = (100 * (k / f) + k % f + 1) as f32;
        }
        y.fill(0.0);
        t.fill(0.0);
        Ok(DatasetInfo {
            features_used: f,
            hyperparameters: Hyperparameters::None,
        })
    }
}

#[test]
fn padding_moves_rows_zeroes_the_rest_and_scales() {
    let f_max = 7;
    for (scaling, expect) in [
        (
            FeatureScaling::Sqrt,
            (|u: usize| (7.0 / u as f64).sqrt()) as fn(usize) -> f64,
        ),
        (FeatureScaling::Linear, |u| 7.0 / u as f64),
        (FeatureScaling::None, |_| 1.0),
    ] {
        let prior = VariableFeatures::new(Labelled, 1, FeatureDraw::PerDataset, scaling).unwrap();
        let b = prior.sample_batch(2, 0, 40, 9, f_max).unwrap();
        for i in 0..40 {
            let used = b.features_used[i];
            assert!((1..=f_max).contains(&used));
            let scale = expect(used);
            let Hyperparameters::FeaturePadding {
                features_used,
                scale: s,
                ..
            } = b.hyperparameters[i]
            else {
                panic!("unexpected record");
            };
            assert_eq!(features_used, used);
            assert!((s - scale).abs() < 1e-12);
            for (t, row) in b.x_of(i).chunks_exact(f_max).enumerate() {
                for (j, &v) in row.iter().enumerate() {
                    let want = if j < used {
                        ((100 * t + j + 1) as f64 * scale) as f32
                    } else {
                        0.0
                    };
                    assert_eq!(
                        v, want,
                        "{scaling:?} dataset {i} row {t} col {j} (used {used})"
                    );
                }
            }
        }
    }
}

#[test]
fn used_feature_counts_are_uniform_and_recorded() {
    // 6000 draws on 1..=5: chi-square with 4 dof, 0.999 quantile 18.5.
    let prior = VariableFeatures::with_defaults(prior_by_name("ridge").unwrap()).unwrap();
    let b = prior.sample_batch(0, 0, 6000, 3, 5).unwrap();
    let mut counts = [0usize; 5];
    for (i, &u) in b.features_used.iter().enumerate() {
        counts[u - 1] += 1;
        // Ridge inputs lie in [0, 1) before scaling by sqrt(5 / u); padding is exactly zero.
        let scale = (5.0 / u as f64).sqrt() as f32;
        for row in b.x_of(i).chunks_exact(5) {
            assert!(row[..u].iter().all(|&v| (0.0..scale * 1.0001).contains(&v)));
            assert!(row[u..].iter().all(|&v| v == 0.0));
        }
    }
    let e = 6000.0 / 5.0;
    let chi2: f64 = counts.iter().map(|&c| (c as f64 - e).powi(2) / e).sum();
    assert!(chi2 < 18.5, "counts {counts:?}");
}

#[test]
fn per_batch_draw_is_shared_within_a_batch() {
    let prior = VariableFeatures::new(
        GpPrior::paper_1d(),
        2,
        FeatureDraw::PerBatch,
        FeatureScaling::Linear,
    )
    .unwrap();
    let mut seen = std::collections::HashSet::new();
    for batch_index in 0..20 {
        let b = prior.sample_batch(1, batch_index, 6, 10, 8).unwrap();
        assert!(b.features_used.iter().all(|&u| u == b.features_used[0]));
        assert!((2..=8).contains(&b.features_used[0]));
        seen.insert(b.features_used[0]);
    }
    assert!(seen.len() > 2, "per-batch draws never changed: {seen:?}");
}

#[test]
fn invalid_wrapper_settings_are_errors() {
    assert!(
        VariableFeatures::new(Labelled, 0, FeatureDraw::PerDataset, FeatureScaling::Sqrt).is_err()
    );
    let linear = prior_by_name("linear-1d").unwrap();
    // linear-1d supports only 1 feature, so it cannot be padded to 3.
    let wrapped = VariableFeatures::with_defaults(linear).unwrap();
    assert!(matches!(
        wrapped.sample_batch(0, 0, 2, 5, 3),
        Err(PriorError::FeatureCount { requested: 3, .. })
    ));
    let p =
        VariableFeatures::new(Labelled, 3, FeatureDraw::PerDataset, FeatureScaling::Sqrt).unwrap();
    assert!(p.sample_batch(0, 0, 2, 5, 2).is_err());
}

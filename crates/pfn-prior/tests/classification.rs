//! Classification wrappers, with a small user-defined prior as the inner regression prior.

use pfn_prior::rng::PriorRng;
use pfn_prior::{
    prior_by_name, BinarizeRule, Binarized, DatasetInfo, DatasetMut, DatasetPosition,
    Hyperparameters, Prior, PriorError,
};

/// A custom prior: every y equals a constant `c`; x is the point index.
struct Constant(f32);

impl Prior for Constant {
    fn default_num_features(&self) -> usize {
        1
    }
    fn sample_dataset(
        &self,
        _rng: &mut PriorRng,
        _position: &DatasetPosition,
        mut data: DatasetMut<'_>,
    ) -> Result<DatasetInfo, PriorError> {
        let (x, y, t) = data.parts();
        for (i, v) in x.iter_mut().enumerate() {
            *v = i as f32;
        }
        y.fill(self.0);
        t.fill(self.0);
        Ok(DatasetInfo {
            features_used: data.num_features(),
            hyperparameters: Hyperparameters::None,
        })
    }
}

#[test]
fn median_binarisation_gives_half_ones() {
    for (name, s) in [
        ("gp-1d-binary", 100),
        ("gp-1d-binary", 101),
        ("bnn-binary", 64),
    ] {
        let prior = prior_by_name(name).unwrap();
        let f = prior.default_num_features();
        let b = prior.sample_batch(5, 0, 32, s, f).unwrap();
        assert_eq!(b.y, b.target_y);
        for i in 0..32 {
            let y = b.y_of(i);
            assert!(y.iter().all(|&v| v == 0.0 || v == 1.0), "{name}: {y:?}");
            // Continuous values are distinct, so exactly floor(s/2) exceed the lower median.
            let ones = y.iter().filter(|&&v| v == 1.0).count();
            assert_eq!(ones, s / 2, "{name} dataset {i}");
            let Hyperparameters::Classification {
                rule, threshold, ..
            } = &b.hyperparameters[i]
            else {
                panic!("unexpected record");
            };
            assert_eq!(*rule, BinarizeRule::Median);
            assert!(threshold.is_some());
        }
    }
}

#[test]
fn median_labels_follow_the_regression_values() {
    // Same stream, so the wrapped prior's values are exactly those of the plain prior.
    let plain = prior_by_name("gp-1d")
        .unwrap()
        .sample_batch(8, 1, 4, 51, 1)
        .unwrap();
    let binary = prior_by_name("gp-1d-binary")
        .unwrap()
        .sample_batch(8, 1, 4, 51, 1)
        .unwrap();
    assert_eq!(plain.x, binary.x);
    for i in 0..4 {
        let mut sorted = plain.y_of(i).to_vec();
        sorted.sort_by(f32::total_cmp);
        let median = sorted[25];
        for (&v, &label) in plain.y_of(i).iter().zip(binary.y_of(i)) {
            assert_eq!(label, if v > median { 1.0 } else { 0.0 });
        }
    }
}

#[test]
fn bernoulli_labels_have_sigmoid_frequency() {
    // y = 2 everywhere: labels ~ Bernoulli(sigmoid(2) = 0.8808). 20000 labels: SE 0.0023, band 5 SE.
    // y = -1: sigmoid = 0.2689.
    for (c, p) in [(2.0f32, 0.880_797), (-1.0, 0.268_941)] {
        let prior = Binarized::new(Constant(c), BinarizeRule::Bernoulli);
        let b = prior.sample_batch(3, 0, 200, 100, 1).unwrap();
        assert!(b.y.iter().all(|&v| v == 0.0 || v == 1.0));
        assert_eq!(b.y, b.target_y);
        let freq = b.y.iter().filter(|&&v| v == 1.0).count() as f64 / b.y.len() as f64;
        let se = (p * (1.0 - p) / b.y.len() as f64).sqrt();
        assert!(
            (freq - p).abs() < 5.0 * se,
            "c = {c}: frequency {freq}, expected {p}"
        );
    }
    // On gp-1d the labels are 0/1 with about half ones (the GP is symmetric around 0).
    let b = prior_by_name("gp-1d-bernoulli")
        .unwrap()
        .sample_batch(1, 0, 64, 100, 1)
        .unwrap();
    assert!(b.y.iter().all(|&v| v == 0.0 || v == 1.0));
    let freq = b.y.iter().filter(|&&v| v == 1.0).count() as f64 / b.y.len() as f64;
    assert!((freq - 0.5).abs() < 0.1, "frequency {freq}");
}

//! Batched inference across datasets equals one-at-a-time inference.

use std::path::PathBuf;

use pfn_infer::{PredictError, Predictor, Task};
use rand::{Rng, SeedableRng};

fn shipped(name: &str) -> Predictor {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../models")
        .join(format!("{name}.pfn"));
    Predictor::load(&path).unwrap()
}

/// A random dataset of `n` context rows and `m` queries with `d` features, targets on a scale
/// far from the model's (so the per-dataset normalisation matters).
fn dataset(rng: &mut rand_chacha::ChaCha8Rng, n: usize, m: usize, d: usize) -> [Vec<f64>; 3] {
    let x: Vec<f64> = (0..n * d)
        .map(|_| rng.random::<f64>() * 10.0 - 3.0)
        .collect();
    let y: Vec<f64> = (0..n).map(|_| 100.0 + 20.0 * rng.random::<f64>()).collect();
    let q: Vec<f64> = (0..m * d)
        .map(|_| rng.random::<f64>() * 10.0 - 3.0)
        .collect();
    [x, y, q]
}

fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
        "{what}: batched {a} vs single {b}"
    );
}

#[test]
fn batched_answers_equal_single_dataset_answers() {
    // gp-hyper: context-normalised, 1..=5 features with padding; mixed context sizes, query counts
    // and feature counts in one call, passes split by context size.
    let p = shipped("gp-hyper");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let shapes = [
        (3, 2, 1),
        (5, 4, 3),
        (3, 5, 2),
        (1, 1, 5),
        (12, 3, 1),
        (5, 1, 5),
        (3, 0, 1),
    ];
    let data: Vec<[Vec<f64>; 3]> = shapes
        .iter()
        .map(|&(n, m, d)| dataset(&mut rng, n, m, d))
        .collect();
    let tasks: Vec<Task<'_>> = data
        .iter()
        .zip(&shapes)
        .map(|([x, y, q], &(_, _, d))| Task {
            x,
            y,
            x_query: q,
            features: d,
        })
        .collect();
    let batched = p.predict_many(&tasks).unwrap();
    assert_eq!(batched.len(), tasks.len());
    for (i, t) in tasks.iter().enumerate() {
        let single = p
            .context_with_features(t.x, t.y, t.features)
            .unwrap()
            .predict(t.x_query)
            .unwrap();
        assert_eq!(batched[i].len(), shapes[i].1, "task {i}");
        for (b, s) in batched[i].iter().zip(&single) {
            let (b, s) = (b.as_regression().unwrap(), s.as_regression().unwrap());
            close(b.mean(), s.mean(), "mean");
            close(b.std(), s.std(), "std");
            for y in [90.0, 105.0, 118.0] {
                close(b.nll(y), s.nll(y), "nll");
            }
        }
    }
}

#[test]
fn a_bad_dataset_in_a_batch_is_named() {
    let p = shipped("gp-1d");
    let good = Task {
        x: &[0.1, 0.5],
        y: &[0.3, -0.2],
        x_query: &[0.7],
        features: 1,
    };
    let bad = Task { y: &[0.3], ..good };
    let e = p.predict_many(&[good, bad]).unwrap_err();
    assert!(matches!(e, PredictError::Task { task: 1, .. }), "{e}");
    assert!(e.to_string().starts_with("dataset 1: "), "{e}");
    assert!(p.predict_many(&[]).unwrap().is_empty());
}

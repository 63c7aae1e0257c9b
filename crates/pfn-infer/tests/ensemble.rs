//! Class-probability ensembles over feature orders and class renamings.

use std::path::PathBuf;
use std::sync::OnceLock;

use pfn_infer::{ClassEnsemble, Predictor};

/// A tiny tabular classifier (up to 4 features, 10 classes), trained for a few steps once.
fn classifier() -> &'static PathBuf {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| {
        let path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/tiny-classifier.toml");
        let config = pfn_train::RunConfig::load(&path).unwrap();
        let mut trainer = pfn_train::Trainer::new(config).unwrap();
        trainer
            .run(&pfn_train::RunOptions::default(), &mut ())
            .unwrap();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("pfn-infer-ensemble-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tiny-classifier.pfn");
        trainer.save_model(&path).unwrap();
        path
    })
}

/// 12 context rows and 5 queries of 3 features, 3 classes.
fn data() -> (Vec<f64>, Vec<usize>, Vec<f64>) {
    let x: Vec<f64> = (0..36).map(|i| ((i * 7) % 11) as f64 - 5.0).collect();
    let y: Vec<usize> = (0..12).map(|i| i % 3).collect();
    let q: Vec<f64> = (0..15).map(|i| ((i * 5) % 9) as f64 - 4.0).collect();
    (x, y, q)
}

#[test]
fn one_member_is_the_plain_prediction() {
    let p = Predictor::load(classifier()).unwrap();
    let (x, y, q) = data();
    let yf: Vec<f64> = y.iter().map(|&l| l as f64).collect();
    let plain = p
        .context_with_features(&x, &yf, 3)
        .unwrap()
        .class_probabilities(&q, 3)
        .unwrap();
    let one = p
        .ensemble_class_probabilities(&x, &y, 3, &q, 3, ClassEnsemble::default())
        .unwrap();
    assert_eq!(plain, one);
}

#[test]
fn members_average_permuted_views_and_are_reproducible() {
    let p = Predictor::load(classifier()).unwrap();
    let (x, y, q) = data();
    let e = ClassEnsemble {
        members: 4,
        seed: 9,
    };
    let a = p.ensemble_class_probabilities(&x, &y, 3, &q, 3, e).unwrap();
    assert_eq!(a.len(), 15);
    for row in a.chunks_exact(3) {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{row:?}");
    }
    assert_eq!(
        a,
        p.ensemble_class_probabilities(&x, &y, 3, &q, 3, e).unwrap()
    );
    let plain = p
        .ensemble_class_probabilities(&x, &y, 3, &q, 3, ClassEnsemble::default())
        .unwrap();
    assert_ne!(a, plain, "the other members see other orders");
    // Labels outside 0..K and an empty ensemble are errors.
    assert!(p
        .ensemble_class_probabilities(&x, &[0, 1, 3, 0, 1, 2, 0, 1, 2, 0, 1, 2], 3, &q, 3, e)
        .is_err());
    assert!(p
        .ensemble_class_probabilities(
            &x,
            &y,
            3,
            &q,
            3,
            ClassEnsemble {
                members: 0,
                seed: 0
            }
        )
        .is_err());
}

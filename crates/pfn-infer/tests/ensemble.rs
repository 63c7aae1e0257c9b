//! Class-probability ensembles over feature orders and class renamings.

use std::path::PathBuf;
use std::sync::OnceLock;

mod common;

use common::split_fold;
use pfn_infer::calibration::{fit_inverse_temperature, stratified_folds, temper};
use pfn_infer::{ClassEnsemble, ClassTask, ContextCalibration, Predictor};
use rand::{Rng, SeedableRng};

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
    // The ensemble answers through the batched full forward pass, the plain prediction through the
    // cached context: equal up to float rounding in the products.
    for (a, b) in plain.iter().zip(&one) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    assert_eq!(plain.len(), one.len());
}

#[test]
fn members_average_permuted_views_and_are_reproducible() {
    let p = Predictor::load(classifier()).unwrap();
    let (x, y, q) = data();
    let e = ClassEnsemble::new(4, 9);
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
        .ensemble_class_probabilities(&x, &y, 3, &q, 3, ClassEnsemble::new(0, 0))
        .is_err());
}

/// `n` context rows of `d` features with labels in `0..k`, and `m` queries, from a seeded stream.
fn task_data(
    seed: u64,
    n: usize,
    m: usize,
    d: usize,
    k: usize,
) -> (Vec<f64>, Vec<usize>, Vec<f64>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let x: Vec<f64> = (0..n * d)
        .map(|_| rng.random::<f64>() * 4.0 - 2.0)
        .collect();
    let y: Vec<usize> = (0..n).map(|i| i % k).collect();
    let q: Vec<f64> = (0..m * d)
        .map(|_| rng.random::<f64>() * 4.0 - 2.0)
        .collect();
    (x, y, q)
}

#[test]
fn many_tasks_at_once_equal_one_task_at_a_time() {
    // Tasks of different context sizes, query counts and feature counts; 70 tasks of 600 queries
    // are cut into units of 512 and 88 queries and their passes split by the row cap
    // (64 × 515 rows > MAX_PASS_TOKENS).
    let p = Predictor::load(classifier()).unwrap();
    let mut shapes = vec![(12, 5, 3), (4, 1, 2), (12, 0, 3), (7, 9, 4)];
    shapes.extend(std::iter::repeat_n((3, 600, 2), 70));
    assert!(64 * (3 + p.query_batch()) > pfn_infer::MAX_PASS_TOKENS);
    let data: Vec<_> = shapes
        .iter()
        .enumerate()
        .map(|(i, &(n, m, d))| task_data(i as u64, n, m, d, 3))
        .collect();
    let tasks: Vec<ClassTask<'_>> = data
        .iter()
        .zip(&shapes)
        .map(|((x, y, q), &(_, _, d))| ClassTask {
            x,
            labels: y,
            x_query: q,
            features: d,
        })
        .collect();
    for e in [ClassEnsemble::default(), ClassEnsemble::new(3, 5)] {
        let many = p.ensemble_class_probabilities_many(&tasks, 3, e).unwrap();
        assert_eq!(many.len(), tasks.len());
        for (i, t) in tasks.iter().enumerate() {
            let one = p
                .ensemble_class_probabilities(t.x, t.labels, t.features, t.x_query, 3, e)
                .unwrap();
            assert_eq!(many[i].len(), shapes[i].1 * 3, "task {i}");
            for (a, b) in many[i].iter().zip(&one) {
                assert!((a - b).abs() < 1e-5, "task {i}: {a} vs {b}");
            }
            if e.members == 1 && !t.x_query.is_empty() {
                // The plain cached path, query batches of 512.
                let yf: Vec<f64> = t.labels.iter().map(|&l| l as f64).collect();
                let plain = p
                    .context_with_features(t.x, &yf, t.features)
                    .unwrap()
                    .class_probabilities(t.x_query, 3)
                    .unwrap();
                for (a, b) in many[i].iter().zip(&plain) {
                    assert!((a - b).abs() < 1e-5, "task {i}: {a} vs {b}");
                }
            }
        }
    }
    // A bad label names its task.
    let bad = ClassTask {
        labels: &[0, 1, 5],
        x: &[0.0; 6],
        ..tasks[1]
    };
    let e = p
        .ensemble_class_probabilities_many(&[tasks[0], bad], 3, ClassEnsemble::new(2, 0))
        .unwrap_err();
    assert!(
        matches!(e, pfn_infer::PredictError::Task { task: 1, .. }),
        "{e}"
    );
}

#[test]
fn calibration_tempers_by_a_temperature_fitted_on_the_context_folds() {
    let p = Predictor::load(classifier()).unwrap();
    let e = ClassEnsemble::new(2, 1);
    // 60 context rows whose class is the sign of the first feature, and 20 rows (too few).
    let (x, _, q) = task_data(11, 60, 7, 3, 2);
    let y: Vec<usize> = x.chunks_exact(3).map(|r| usize::from(r[0] > 0.0)).collect();
    let (xs, ys, qs) = task_data(12, 20, 4, 3, 2);
    let tasks = [
        ClassTask {
            x: &x,
            labels: &y,
            x_query: &q,
            features: 3,
        },
        ClassTask {
            x: &xs,
            labels: &ys,
            x_query: &qs,
            features: 3,
        },
    ];
    let c = ContextCalibration {
        folds: 5,
        min_rows: 50,
        seed: 3,
        select_view: true,
    };
    let out = p
        .calibrated_class_probabilities_many(&tasks, 2, e, c)
        .unwrap();
    assert_eq!(
        out,
        p.calibrated_class_probabilities_many(&tasks, 2, e, c)
            .unwrap()
    );
    let plain = p.ensemble_class_probabilities_many(&tasks, 2, e).unwrap();
    // Too few rows: untouched.
    assert_eq!(out[1].beta, 1.0);
    for (a, b) in out[1].probabilities.iter().zip(&plain[1]) {
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    }
    // The temperature, recomputed from each fold answered on its own.
    let folds = stratified_folds(&y, 5, 3);
    let (mut held_out, mut labels) = (Vec::new(), Vec::new());
    for f in 0..5 {
        let (xc, yc, xq, yq) = split_fold(&x, 3, &y, &folds, f);
        labels.extend(yq);
        held_out.extend(
            p.ensemble_class_probabilities(&xc, &yc, 3, &xq, 2, e)
                .unwrap(),
        );
    }
    let beta = fit_inverse_temperature(&held_out, &labels, 2);
    assert!(
        (out[0].beta - beta).abs() < 1e-3 * beta,
        "{} vs {beta}",
        out[0].beta
    );
    let mut expected = plain[0].clone();
    temper(&mut expected, 2, out[0].beta);
    for (a, b) in out[0].probabilities.iter().zip(&expected) {
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    }
    // Fewer than two folds is refused.
    let one = ContextCalibration { folds: 1, ..c };
    assert!(p
        .calibrated_class_probabilities_many(&tasks, 2, e, one)
        .is_err());
}

#[test]
fn a_table_wider_than_the_model_is_answered_through_principal_components_fitted_per_fold() {
    use pfn_infer::{InputView, PrincipalComponents};
    let p = Predictor::load(classifier()).unwrap();
    assert_eq!(p.num_features(), 4);
    let e = ClassEnsemble::new(2, 5);
    // 60 rows of 6 features (more than the model's 4); the class is the sign of their sum.
    let (x, _, q) = task_data(21, 60, 9, 6, 2);
    let y: Vec<usize> = x
        .chunks_exact(6)
        .map(|r| usize::from(r.iter().sum::<f64>() > 0.0))
        .collect();
    let task = ClassTask {
        x: &x,
        labels: &y,
        x_query: &q,
        features: 6,
    };
    let c = ContextCalibration {
        folds: 5,
        min_rows: 50,
        seed: 2,
        select_view: true,
    };
    let out = p.calibrated_class_probabilities(task, 2, e, c).unwrap();
    // The only candidate: as many components as the model takes.
    assert_eq!(out.view, InputView::PrincipalComponents(4));
    // By hand: each fold projected on its own context rows' components.
    let folds = stratified_folds(&y, 5, 2);
    let (mut held_out, mut labels) = (Vec::new(), Vec::new());
    for f in 0..5 {
        let (xc, yc, xq, yq) = split_fold(&x, 6, &y, &folds, f);
        labels.extend(yq);
        let pc = PrincipalComponents::fit(&xc, 6, 4);
        held_out.extend(
            p.ensemble_class_probabilities(&pc.project(&xc), &yc, 4, &pc.project(&xq), 2, e)
                .unwrap(),
        );
    }
    let beta = fit_inverse_temperature(&held_out, &labels, 2);
    assert!(
        (out.beta - beta).abs() < 1e-3 * beta,
        "{} vs {beta}",
        out.beta
    );
    let pc = PrincipalComponents::fit(&x, 6, 4);
    let mut expected = p
        .ensemble_class_probabilities(&pc.project(&x), &y, 4, &pc.project(&q), 2, e)
        .unwrap();
    temper(&mut expected, 2, out.beta);
    for (a, b) in out.probabilities.iter().zip(&expected) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    // Without view selection, or with too few rows to calibrate, the table is too wide.
    let off = ContextCalibration {
        select_view: false,
        ..c
    };
    assert!(p.calibrated_class_probabilities(task, 2, e, off).is_err());
    let few = ContextCalibration { min_rows: 61, ..c };
    assert!(p.calibrated_class_probabilities(task, 2, e, few).is_err());
}

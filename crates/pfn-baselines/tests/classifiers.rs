//! The classical classifiers of the tabular experiment: accuracy on easy problems, chance level on
//! random labels, probability rows, absent and single classes, reproducibility, and the numerical
//! pieces (logistic-regression gradient, Laplace GP classifier).

use std::time::Instant;

use pfn_baselines::classifiers::gp_classifier::LaplaceFit;
use pfn_baselines::classifiers::logistic_regression::penalised_loss;
use pfn_baselines::classifiers::{
    ClassData, Classifier, GpClassifier, GpSelection, Knn, LogisticRegression, XgBoost,
};
use pfn_distribution::class_metrics::roc_auc_ovr;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// A task: train x, train labels, test x, test labels.
struct Task {
    f: usize,
    k: usize,
    x: Vec<f64>,
    y: Vec<usize>,
    xt: Vec<f64>,
    yt: Vec<usize>,
}

impl Task {
    fn data(&self) -> ClassData<'_> {
        ClassData {
            x: &self.x,
            n_features: self.f,
            labels: &self.y,
            num_classes: self.k,
        }
    }
}

/// Gaussian blobs: class c has mean `sep * e_{c mod f}` (plus noise features); `sep = 0` with
/// random labels gives a problem with nothing to learn.
fn blobs(n: usize, m: usize, f: usize, k: usize, sep: f64, seed: u64) -> Task {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut draw = |rows: usize| {
        let mut x = Vec::with_capacity(rows * f);
        let mut y = Vec::with_capacity(rows);
        for i in 0..rows {
            let c = if sep == 0.0 {
                rng.random_range(0..k)
            } else {
                i % k
            };
            for j in 0..f {
                let z: f64 = StandardNormal.sample(&mut rng);
                x.push(z + if j == c % f { sep } else { 0.0 });
            }
            y.push(c);
        }
        (x, y)
    };
    let (x, y) = draw(n);
    let (xt, yt) = draw(m);
    Task { f, k, x, y, xt, yt }
}

fn local() -> Vec<Box<dyn Classifier>> {
    vec![
        Box::new(LogisticRegression::default()),
        Box::new(Knn::default()),
        Box::new(GpClassifier::default()),
        Box::new(GpClassifier {
            selection: GpSelection::CrossValidation,
            ..GpClassifier::default()
        }),
    ]
}

fn check_rows(probs: &[f64], rows: usize, k: usize, who: &str) {
    assert_eq!(probs.len(), rows * k, "{who}: shape");
    for (i, row) in probs.chunks_exact(k).enumerate() {
        assert!(
            row.iter().all(|p| p.is_finite() && (0.0..=1.0).contains(p)),
            "{who}: row {i} = {row:?}"
        );
        let s: f64 = row.iter().sum();
        assert!((s - 1.0).abs() < 1e-9, "{who}: row {i} sums to {s}");
    }
}

fn auc(task: &Task, probs: &[f64]) -> f64 {
    roc_auc_ovr(probs, &task.yt, task.k).unwrap().unwrap()
}

#[test]
fn easy_problems_are_learned_and_random_labels_are_not() {
    let easy2 = blobs(40, 200, 4, 2, 3.0, 1);
    let easy3 = blobs(60, 200, 5, 3, 3.0, 2);
    let random = blobs(100, 600, 5, 2, 0.0, 3);
    for clf in local() {
        for (task, name) in [(&easy2, "binary"), (&easy3, "3-class")] {
            let p = clf.fit_predict(&task.data(), &task.xt, 0).unwrap();
            check_rows(&p, task.yt.len(), task.k, clf.name());
            let a = auc(task, &p);
            assert!(
                a > 0.95,
                "{} on the easy {name} problem: AUC {a}",
                clf.name()
            );
        }
        let p = clf.fit_predict(&random.data(), &random.xt, 0).unwrap();
        check_rows(&p, random.yt.len(), 2, clf.name());
        let a = auc(&random, &p);
        assert!(
            (0.4..0.6).contains(&a),
            "{} on random labels: AUC {a}",
            clf.name()
        );
    }
}

#[test]
fn single_and_absent_classes() {
    let task = blobs(12, 5, 3, 2, 2.0, 4);
    for clf in local() {
        // One class present out of 3: probability 1.
        let only = vec![2; 12];
        let data = ClassData {
            x: &task.x,
            n_features: 3,
            labels: &only,
            num_classes: 3,
        };
        let p = clf.fit_predict(&data, &task.xt, 1).unwrap();
        for row in p.chunks_exact(3) {
            assert_eq!(row, &[0.0, 0.0, 1.0], "{}", clf.name());
        }
        // Classes 0 and 3 present out of 5 (and class 3 with a single row, fewer than the folds).
        let labels: Vec<usize> = (0..12).map(|i| if i == 7 { 3 } else { 0 }).collect();
        let data = ClassData {
            x: &task.x,
            n_features: 3,
            labels: &labels,
            num_classes: 5,
        };
        let p = clf.fit_predict(&data, &task.xt, 1).unwrap();
        check_rows(&p, 5, 5, clf.name());
        for row in p.chunks_exact(5) {
            assert_eq!([row[1], row[2], row[4]], [0.0; 3], "{}", clf.name());
        }
    }
}

#[test]
fn thirty_rows_with_tiny_classes_and_reproducibility() {
    let mut task = blobs(30, 70, 6, 4, 1.5, 5);
    task.y[0] = 3; // make class 3 rare: rows 3, 7, ... reassigned below
    for (i, y) in task.y.iter_mut().enumerate() {
        if *y == 3 && i > 3 {
            *y = 0;
        }
    }
    for clf in local() {
        let a = clf.fit_predict(&task.data(), &task.xt, 9).unwrap();
        let b = clf.fit_predict(&task.data(), &task.xt, 9).unwrap();
        check_rows(&a, 70, 4, clf.name());
        assert_eq!(a, b, "{}: same seed, same result", clf.name());
    }
}

#[test]
fn invalid_inputs_are_clear_errors() {
    let clf = Knn::default();
    let x = [0.0, 1.0, f64::NAN, 2.0];
    let labels = [0, 1];
    let data = ClassData {
        x: &x,
        n_features: 2,
        labels: &labels,
        num_classes: 2,
    };
    let e = clf
        .fit_predict(&data, &[0.0, 0.0], 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("row 1, feature 0"), "{e}");
    let data = ClassData {
        labels: &[0, 2],
        x: &[0.0; 4],
        ..data
    };
    let e = clf
        .fit_predict(&data, &[0.0, 0.0], 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("label 2"), "{e}");
}

#[test]
fn logistic_gradient_matches_finite_differences() {
    let task = blobs(15, 1, 3, 3, 1.0, 6);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let p = 3 * 4;
    let params: Vec<f64> = (0..p).map(|_| rng.random_range(-1.0..1.0)).collect();
    for c in [0.01, 1.0, f64::INFINITY] {
        let mut grad = vec![0.0; p];
        penalised_loss(&params, &task.x, 3, &task.y, 3, c, &mut grad);
        let mut scratch = vec![0.0; p];
        for i in 0..p {
            let h = 1e-6;
            let mut plus = params.clone();
            plus[i] += h;
            let mut minus = params.clone();
            minus[i] -= h;
            let fd = (penalised_loss(&plus, &task.x, 3, &task.y, 3, c, &mut scratch)
                - penalised_loss(&minus, &task.x, 3, &task.y, 3, c, &mut scratch))
                / (2.0 * h);
            assert!(
                (fd - grad[i]).abs() < 1e-7 * (1.0 + fd.abs()),
                "C = {c}, parameter {i}: analytic {} vs finite difference {fd}",
                grad[i]
            );
        }
    }
}

#[test]
fn laplace_hand_cases() {
    // One positive point with prior variance v: the mode solves f = v (1 - sigmoid(f)).
    let v = 2.0;
    let fit = LaplaceFit::fit(&[v], &[true]).unwrap();
    let f = fit.mode()[0];
    let s = 1.0 / (1.0 + (-f).exp());
    assert!((f - v * (1.0 - s)).abs() < 1e-9, "mode {f}");
    // Its marginal likelihood: log sigmoid(f) - f^2/(2v) - log(1 + v W)/2.
    let w = s * (1.0 - s);
    let lml = s.ln() - f * f / (2.0 * v) - 0.5 * (1.0 + v * w).ln();
    assert!((fit.log_marginal_likelihood() - lml).abs() < 1e-9);

    // Symmetric data: x = -2, -1 negative, 1, 2 positive; the midpoint gets exactly 1/2 and
    // mirrored points mirrored probabilities.
    let xs = [-2.0f64, -1.0, 1.0, 2.0];
    let kern = |a: f64, b: f64| 1.5 * (-(a - b) * (a - b) / 2.0).exp();
    let kmat: Vec<f64> = xs
        .iter()
        .flat_map(|&a| xs.iter().map(move |&b| kern(a, b)))
        .collect();
    let fit = LaplaceFit::fit(&kmat, &[false, false, true, true]).unwrap();
    let tests = [0.0, 0.7, -0.7];
    let kstar: Vec<f64> = tests
        .iter()
        .flat_map(|&t| xs.iter().map(move |&b| kern(t, b)))
        .collect();
    let p = fit.predict(&kstar, 1.5).unwrap();
    assert!((p[0] - 0.5).abs() < 1e-12, "{p:?}");
    assert!(p[1] > 0.6 && (p[1] + p[2] - 1.0).abs() < 1e-9, "{p:?}");
    assert!((fit.mode()[0] + fit.mode()[3]).abs() < 1e-9);
}

#[test]
fn xgboost_when_installed() {
    if !XgBoost::available() {
        println!("skipped: XGBoost is not installed (run scripts/install-xgboost.sh)");
        return;
    }
    let xgb = XgBoost::default();
    let easy = blobs(60, 200, 5, 3, 3.0, 8);
    let random = blobs(100, 400, 5, 2, 0.0, 9);
    let labels: Vec<usize> = (0..12).map(|i| if i < 9 { 1 } else { 3 }).collect();
    let absent = blobs(12, 5, 3, 2, 2.0, 10);
    let only = vec![1usize; 12];
    let tasks = [
        (easy.data(), easy.xt.as_slice()),
        (random.data(), random.xt.as_slice()),
        (
            ClassData {
                x: &absent.x,
                n_features: 3,
                labels: &labels,
                num_classes: 4,
            },
            absent.xt.as_slice(),
        ),
        (
            ClassData {
                x: &absent.x,
                n_features: 3,
                labels: &only,
                num_classes: 2,
            },
            absent.xt.as_slice(),
        ),
    ];
    let out = xgb.fit_predict_many(&tasks, 3).unwrap();
    let again = xgb.fit_predict_many(&tasks, 3).unwrap();
    assert_eq!(out, again, "same seed, same result");
    check_rows(&out[0], 200, 3, "XGBoost");
    assert!(auc(&easy, &out[0]) > 0.95, "easy: {}", auc(&easy, &out[0]));
    let a = auc(&random, &out[1]);
    assert!((0.4..0.6).contains(&a), "random labels: {a}");
    check_rows(&out[2], 5, 4, "XGBoost");
    for row in out[2].chunks_exact(4) {
        assert_eq!([row[0], row[2]], [0.0, 0.0]);
    }
    for row in out[3].chunks_exact(2) {
        assert_eq!(row, &[0.0, 1.0]);
    }
    // The single-task path agrees with the batch.
    let one = xgb.fit_predict(&easy.data(), &easy.xt, 3).unwrap();
    assert_eq!(one, out[0]);
}

/// Each local classifier with a label for timing reports.
fn labelled() -> Vec<(String, Box<dyn Classifier>)> {
    let mut all: Vec<(String, Box<dyn Classifier>)> = local()
        .into_iter()
        .zip(["", "", " (marginal likelihood)", " (5-fold CV)"])
        .map(|(c, suffix)| (format!("{}{suffix}", c.name()), c))
        .collect();
    if XgBoost::available() {
        all.push(("XGBoost".into(), Box::new(XgBoost::default())));
    }
    all
}

fn time_all(n: usize, f: usize, k: usize) {
    let task = blobs(n, 100, f, k, 1.5, 11);
    println!("{n} rows x {f} features, {k} classes, 100 test rows:");
    for (label, clf) in labelled() {
        let start = Instant::now();
        let p = clf.fit_predict(&task.data(), &task.xt, 0).unwrap();
        let secs = start.elapsed().as_secs_f64();
        check_rows(&p, 100, k, &label);
        let a = auc(&task, &p);
        println!("  {label:<36} {secs:8.3} s  test AUC {a:.3}");
        assert!(a > 0.6, "{label}: AUC {a}");
    }
}

/// Wall time of each classifier on a 200-row, 20-feature, 3-class problem (printed; run with
/// `--nocapture` to see it).
#[test]
fn timing_200_rows_20_features_3_classes() {
    time_all(200, 20, 3);
}

/// The larger-context protocol's size (500 context rows, 10 classes); slow, run on demand with
/// `cargo test --release -p pfn-baselines --test classifiers -- --ignored --nocapture`.
#[test]
#[ignore = "timing only; about a minute"]
fn timing_500_rows_20_features_10_classes() {
    time_all(500, 20, 10);
}

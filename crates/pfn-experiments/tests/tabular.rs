//! `pfn reproduce tabular --quick` end to end on the repository's data: a tiny random PFN (3
//! input features, so the wider datasets go through the PFN's feature subset) against the tuned
//! baselines, checked for scores in range, consistent ranks and wins, the skipped dataset of the
//! paper protocol, reproducibility and the written files; and the run without a model.

use std::path::{Path, PathBuf};

use pfn_artifact::weights::{named_views, pfn_config};
use pfn_artifact::{save_model, OutputHead, TrainingSpent};
use pfn_experiments::tabular::{MethodKind, ProtocolResult, TabularResult};
use pfn_experiments::{run_experiment, Experiment, ExperimentOptions, ExperimentResult, NO_MODEL};
use pfn_model::PfnModel;
use pfn_train::{architecture_of, model_metadata, normalisation_for_prior, RunConfig};

fn tmp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "pfn-experiments-tabular-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

/// An untrained tiny classifier on the tabular prior: `features` inputs (zero-padded), 10 classes,
/// contexts up to `seq_len - 1`.
fn random_classifier(path: &Path, features: usize, seq_len: usize, seed: u64) {
    let toml = format!(
        "[prior]\nname = \"tabular-bnn\"\nnum_features = {features}\nseq_len = {seq_len}\n\n\
         [model]\nemsize = 16\nnlayers = 1\nnhead = 2\nnhid = 32\nn_out = 10\n\n\
         [budget]\nsteps = 1\nbatch_size = 4\n\n[run]\nseed = {seed}\n"
    );
    let config = RunConfig::from_toml_str(&toml, "test.toml").unwrap();
    let arch = architecture_of(&config);
    let model = PfnModel::new(pfn_config(&arch), seed).unwrap();
    let meta = model_metadata(
        &config,
        OutputHead::Classes { n_out: 10 },
        normalisation_for_prior("tabular-bnn"),
        TrainingSpent {
            steps: 0,
            datasets: 0,
            seconds: 0.0,
        },
        None,
    );
    save_model(path, &meta, &named_views(&model, model.params())).unwrap();
}

fn is_png(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.starts_with(b"\x89PNG\r\n\x1a\n") && b.len() > 1000)
}

fn tabular(outcome: &pfn_experiments::Outcome) -> &TabularResult {
    match &outcome.result {
        ExperimentResult::Tabular(r) => r,
        _ => panic!("wrong result kind"),
    }
}

/// Scores in range, ranks summing to m(m+1)/2 per dataset, wins/ties/losses adding up.
fn check_protocol(p: &ProtocolResult) {
    for m in &p.methods {
        for (d, c) in m.cells.iter().enumerate() {
            let Some(c) = c else { continue };
            assert!(p.datasets[d].skipped.is_none());
            if let Some(auc) = c.auc {
                assert!((0.0..=1.0).contains(&auc), "{} {}: {auc}", m.method, d);
            }
            assert!((0.0..=1.0).contains(&c.ece), "{}: ece {}", m.method, c.ece);
            assert!((0.0..=1.0).contains(&c.accuracy));
            assert!(c.log_loss >= 0.0 && c.log_loss < 40.0);
            assert!(c.seconds > 0.0);
            assert_eq!(
                c.predictions,
                p.datasets[d].queries * p.datasets[d].repeats,
                "{}",
                p.datasets[d].name
            );
        }
    }
    let ranked: Vec<_> = p.summary.iter().filter(|s| s.mean_rank.is_some()).collect();
    assert_eq!(ranked.len(), p.ranked_methods.len());
    assert!(!p.ranked_datasets.is_empty());
    let m = ranked.len() as f64;
    let sum: f64 = ranked.iter().map(|s| s.mean_rank.unwrap()).sum();
    assert!(
        (sum - m * (m + 1.0) / 2.0).abs() < 1e-9,
        "ranks sum to {sum}"
    );
    for s in &ranked {
        let r = s.mean_rank.unwrap();
        assert!((1.0..=m).contains(&r), "{}: {r}", s.method);
    }
    let pfn = p.methods.iter().position(|m| m.kind == MethodKind::Pfn);
    for (i, s) in p.summary.iter().enumerate() {
        match (pfn, s.vs_pfn) {
            (Some(k), Some(w)) => {
                assert_ne!(i, k);
                let both = (0..p.datasets.len())
                    .filter(|&d| {
                        p.methods[k].cells[d].and_then(|c| c.auc).is_some()
                            && p.methods[i].cells[d].and_then(|c| c.auc).is_some()
                    })
                    .count();
                assert_eq!(w.pfn_better + w.ties + w.method_better, both);
            }
            (Some(k), None) => assert_eq!(i, k),
            (None, w) => assert!(w.is_none()),
        }
        let bins: usize = s.reliability.iter().map(|b| b.count).sum();
        let preds: usize = p.methods[i]
            .cells
            .iter()
            .flatten()
            .map(|c| c.predictions)
            .sum();
        assert_eq!(bins, preds, "{}", s.method);
    }
}

#[test]
fn quick_run_scores_a_pfn_and_the_baselines_on_both_protocols() {
    let dir = tmp_dir("quick");
    let model = dir.join("tiny-tab.pfn");
    random_classifier(&model, 3, 64, 1);
    let out = dir.join("out");
    let mut opts = ExperimentOptions::new(Experiment::Tabular, &out);
    opts.quick = true;
    opts.models = vec![model.clone()];
    opts.data_dir = Some(data_dir());
    let outcome = run_experiment(&opts).unwrap();
    let r = tabular(&outcome);
    assert_eq!(r.models.len(), 1);
    assert_eq!(
        r.datasets
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>(),
        ["fourclass", "iris", "breast-w", "balance-scale"]
    );
    // The 3-input model sees a subset of the wider datasets.
    let pfn_features: Vec<usize> = r.datasets.iter().map(|d| d.pfn_features).collect();
    assert_eq!(pfn_features, vec![2, 3, 3, 3]);
    assert!(r.datasets[2].missing_cells > 0);

    // Protocol A: balance-scale's first two classes (B: 49 rows, L) balance to 98 < 100 rows.
    let a = &r.paper;
    assert_eq!(a.datasets.len(), 4);
    let skipped: Vec<&str> = a
        .datasets
        .iter()
        .filter(|d| d.skipped.is_some())
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(skipped, ["balance-scale"]);
    for d in a.datasets.iter().filter(|d| d.skipped.is_none()) {
        assert_eq!((d.classes, d.context, d.queries, d.repeats), (2, 30, 70, 3));
    }
    check_protocol(a);
    // Setosa against versicolor is linearly separable: the tuned baselines get it right.
    let lr = a
        .methods
        .iter()
        .find(|m| m.method.to_lowercase().contains("logistic"))
        .unwrap();
    assert!(lr.cells[1].unwrap().auc.unwrap() > 0.95);
    assert!(lr.cells[1].unwrap().accuracy > 0.9);

    // Protocol B: every class, contexts of min(63, rows / 2, 100) rows.
    let b = &r.larger;
    assert!(b.datasets.iter().all(|d| d.skipped.is_none()));
    assert_eq!(b.datasets[3].classes, 3);
    assert_eq!(b.datasets[1].context, 63);
    assert_eq!(b.datasets[1].queries, 87);
    assert_eq!(b.datasets[0].queries, 200);
    check_protocol(b);
    for m in &b.methods {
        if m.kind == MethodKind::Baseline && m.errors.iter().all(Option::is_none) {
            // Every baseline beats chance on iris with 63 context rows.
            assert!(m.cells[1].unwrap().auc.unwrap() > 0.8, "{}", m.method);
        }
    }

    // Files.
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert_eq!(md, outcome.markdown);
    for needle in [
        "`pfn reproduce tabular --out",
        "Protocol A",
        "Protocol B",
        "skipped: the balanced binary set",
        "mean ROC AUC rank",
        "impute_with_context_means",
        "install-xgboost.sh",
        "PFN tiny-tab",
    ] {
        assert!(md.contains(needle), "missing {needle:?}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["paper"]["datasets"].as_array().unwrap().len(), 4);
    assert!(outcome.plots.len() >= 4);
    for p in &outcome.plots {
        assert!(is_png(p), "{}", p.display());
    }

    // The same seed gives the same scores (checked on the first dataset alone, whose windows
    // and splits do not depend on the others).
    let mut first = opts.clone();
    first.datasets = Some(1);
    first.out = dir.join("out-first");
    let again = run_experiment(&first).unwrap();
    let r2 = tabular(&again);
    for (p, q) in [(&r.paper, &r2.paper), (&r.larger, &r2.larger)] {
        assert_eq!(q.datasets.len(), 1);
        for (m, n) in p.methods.iter().zip(&q.methods) {
            assert_eq!(m.method, n.method);
            let scores = |c: &Option<pfn_experiments::tabular::Cell>| {
                c.map(|c| (c.auc, c.log_loss, c.accuracy, c.ece))
            };
            assert_eq!(scores(&m.cells[0]), scores(&n.cells[0]), "{}", m.method);
        }
    }
}

#[test]
fn without_a_model_the_baselines_run_alone() {
    let out = tmp_dir("no-model");
    let mut opts = ExperimentOptions::new(Experiment::Tabular, &out);
    opts.quick = true;
    opts.datasets = Some(1);
    opts.models_dir = None;
    opts.data_dir = Some(data_dir());
    let outcome = run_experiment(&opts).unwrap();
    let r = tabular(&outcome);
    assert!(r.models.is_empty());
    assert_eq!(r.datasets.len(), 1);
    assert!(r
        .paper
        .methods
        .iter()
        .all(|m| m.kind == MethodKind::Baseline));
    assert!(r.paper.summary.iter().all(|s| s.vs_pfn.is_none()));
    assert!(outcome.markdown.contains(NO_MODEL));
    // Without a model, protocol B uses the shipped model's context size (capped in a quick run).
    assert_eq!(r.larger.datasets[0].context, 100);
}

#[test]
fn a_regression_model_or_missing_data_is_a_clear_error() {
    let out = tmp_dir("errors");
    let mut opts = ExperimentOptions::new(Experiment::Tabular, out.join("r"));
    opts.quick = true;
    opts.models = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/gp-1d.pfn")];
    opts.data_dir = Some(data_dir());
    let e = run_experiment(&opts).unwrap_err().to_string();
    assert!(e.contains("regression model"), "{e}");
    let mut opts = ExperimentOptions::new(Experiment::Tabular, out.join("r2"));
    opts.quick = true;
    opts.models_dir = None;
    opts.data_dir = Some(out.clone());
    let e = run_experiment(&opts).unwrap_err().to_string();
    assert!(e.contains("fourclass.txt"), "{e}");
}

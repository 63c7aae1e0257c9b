//! `pfn reproduce strokes --quick` end to end on the repository's Omniglot archives: a tiny PFN
//! trained here for a few steps on the stroke prior (784 pixels, 5 classes, label embedding,
//! exactly 25 context images) against the baselines, checked for accuracies in range, baselines
//! clearly above chance on real characters, the PFN not applicable to the 20-way runs, the
//! written report, results and figures, and reproducibility; and clear errors for missing data.

use std::path::{Path, PathBuf};

use pfn_experiments::strokes::{MethodKind, ProtocolResult, StrokesResult};
use pfn_experiments::{run_experiment, Experiment, ExperimentOptions, ExperimentResult, NO_MODEL};
use pfn_train::{RunConfig, RunOptions, Trainer};

fn tmp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "pfn-experiments-strokes-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/omniglot")
}

/// A tiny PFN trained for a few steps on the stroke prior, as `configs/strokes.toml` but small.
fn train_tiny_strokes_model(path: &Path) {
    let toml = "[prior]\nname = \"strokes\"\nnum_features = 784\nseq_len = 30\n\
                split = \"uniform\"\nmin_context = 25\nmax_context = 25\n\n\
                [model]\nemsize = 32\nnlayers = 1\nnhead = 2\nnhid = 64\nn_out = 5\n\
                y_encoding = \"embedding\"\nquery_self_attention = false\n\n\
                [optimizer]\nlr = 3e-3\nwarmup_steps = 10\n\n\
                [budget]\nsteps = 60\nbatch_size = 16\nvalidation_every = 1000\n\
                validation_datasets = 16\n\n[run]\nseed = 3\nthreads = 1\n";
    let config = RunConfig::from_toml_str(toml, "tiny-strokes.toml").unwrap();
    let mut trainer = Trainer::new(config).unwrap();
    trainer.run(&RunOptions::default(), &mut ()).unwrap();
    trainer.save_model(path).unwrap();
}

fn strokes(outcome: &pfn_experiments::Outcome) -> &StrokesResult {
    match &outcome.result {
        ExperimentResult::Strokes(r) => r,
        _ => panic!("wrong result kind"),
    }
}

fn is_png(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.starts_with(b"\x89PNG\r\n\x1a\n") && b.len() > 1000)
}

fn check_protocol(p: &ProtocolResult, queries_per_episode: usize) {
    for m in p.methods.iter().filter(|m| m.episodes > 0) {
        assert!(m.error.is_none(), "{}: {:?}", m.method, m.error);
        assert_eq!(m.episodes, p.episodes, "{}", m.method);
        assert_eq!(m.predictions, p.episodes * queries_per_episode);
        assert!(
            (0.0..=1.0).contains(&m.accuracy),
            "{}: {}",
            m.method,
            m.accuracy
        );
        let s = &m.accuracy_over_episodes;
        assert!(
            (s.mean - m.accuracy).abs() < 1e-12,
            "equal queries per episode"
        );
        assert!(m.wilson95.0 <= m.accuracy && m.accuracy <= m.wilson95.1);
        assert!(m.seconds_per_episode.mean > 0.0);
        assert_eq!(m.episode_accuracy.len(), p.episodes);
    }
}

#[test]
fn quick_run_scores_a_tiny_pfn_and_the_baselines_on_real_characters() {
    let dir = tmp_dir("quick");
    let model = dir.join("tiny-strokes.pfn");
    train_tiny_strokes_model(&model);
    let out = dir.join("out");
    let mut opts = ExperimentOptions::new(Experiment::Strokes, &out);
    opts.quick = true;
    opts.datasets = Some(12);
    opts.models = vec![model.clone()];
    opts.data_dir = Some(data_dir());
    let outcome = run_experiment(&opts).unwrap();
    let r = strokes(&outcome);
    assert_eq!(r.models.len(), 1);
    assert_eq!(r.alphabets.len(), 8);

    let a = &r.paper;
    assert_eq!((a.n_way, a.shots, a.episodes), (5, 5, 12));
    check_protocol(a, 25);
    assert_eq!(a.methods.len(), 5);
    assert_eq!(a.methods[0].kind, MethodKind::Pfn);
    assert!(a.methods[0].not_applicable.is_none());
    assert!(a.methods[0]
        .log_loss
        .is_some_and(|l| l.is_finite() && l > 0.0));
    for m in &a.methods[1..] {
        assert_eq!(m.kind, MethodKind::Baseline);
        // Real characters: every baseline is far above chance (0.2).
        assert!(m.accuracy > 0.4, "{}: {}", m.method, m.accuracy);
        assert!(m.pfn_minus_method.is_some());
    }
    assert_eq!(a.examples.len(), 3);
    assert_eq!(a.group_episodes.iter().sum::<usize>(), 12);

    let b = &r.one_shot;
    assert_eq!((b.n_way, b.shots, b.episodes), (20, 1, 4));
    check_protocol(b, 20);
    let pfn = &b.methods[0];
    assert_eq!(pfn.episodes, 0);
    assert!(
        pfn.not_applicable
            .as_deref()
            .is_some_and(|w| w.contains("5 class outputs") && w.contains("20 classes")),
        "{:?}",
        pfn.not_applicable
    );
    for m in &b.methods[1..] {
        assert!(
            m.accuracy > 0.1,
            "{}: {} (chance 0.05)",
            m.method,
            m.accuracy
        );
    }

    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for needle in [
        "PFN tiny-strokes",
        "1-NN, pixels",
        "1-NN, distance transform",
        "logistic regression",
        "0.865",
        "not applicable",
        "Differences in setup",
        "strokes-examples.png",
    ] {
        assert!(md.contains(needle), "report lacks {needle:?}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["paper"]["episodes"], 12);
    for f in [
        "strokes-examples.png",
        "strokes-paper-accuracy.png",
        "strokes-one-shot-accuracy.png",
    ] {
        assert!(is_png(&out.join(f)), "{f}");
    }

    // The same seed gives the same episodes and predictions.
    let mut again = opts.clone();
    again.out = dir.join("again");
    let r2 = run_experiment(&again).unwrap();
    let r2 = strokes(&r2);
    for (x, y) in r.paper.methods.iter().zip(&r2.paper.methods) {
        assert_eq!(x.episode_accuracy, y.episode_accuracy, "{}", x.method);
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn without_a_model_the_baselines_run_alone_and_missing_data_is_named() {
    let dir = tmp_dir("nomodel");
    let mut opts = ExperimentOptions::new(Experiment::Strokes, dir.join("out"));
    opts.quick = true;
    opts.datasets = Some(3);
    opts.models_dir = None;
    opts.data_dir = Some(data_dir());
    let outcome = run_experiment(&opts).unwrap();
    let r = strokes(&outcome);
    assert!(r.models.is_empty());
    assert!(r
        .paper
        .methods
        .iter()
        .all(|m| m.kind == MethodKind::Baseline));
    assert!(outcome.markdown.contains(NO_MODEL));
    assert!(is_png(&dir.join("out").join("strokes-examples.png")));

    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let mut bad = opts.clone();
    bad.data_dir = Some(empty);
    let e = run_experiment(&bad).unwrap_err().to_string();
    assert!(e.contains("images_background_small1.zip"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

//! `pfn reproduce` end to end: the `--quick` runs of gp-hyper and bnn without a PFN (the CI
//! smoke test), gp-fit with tiny random PFN artifacts checked against `pfn_infer`'s evaluation,
//! the PFN paths of gp-hyper and bnn, and clean errors for bad options and unusable models.

use std::path::{Path, PathBuf};

use pfn_artifact::weights::{named_views, pfn_config};
use pfn_artifact::{save_model, OutputHead, TrainingSpent};
use pfn_experiments::bnn::BnnResult;
use pfn_experiments::datasets::HeldOut;
use pfn_experiments::gp_fit::GpFitResult;
use pfn_experiments::gp_hyper::{GpHyperResult, MethodKind};
use pfn_experiments::prior_nll::{evaluate, pfn_scores, PriorNllOptions};
use pfn_experiments::{
    run_experiment, Experiment, ExperimentError, ExperimentOptions, ExperimentResult, NO_MODEL,
};
use pfn_infer::Predictor;
use pfn_model::PfnModel;
use pfn_train::{
    architecture_of, estimate_borders, model_metadata, normalisation_for_prior, HeadKind, RunConfig,
};

/// A fresh directory for one test.
fn tmp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("pfn-experiments-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves an untrained (randomly initialised) tiny model for `prior` at `path`: `features` inputs,
/// sequences of `seq_len` points, a 30-bucket Riemann head or a class head with `n_out` classes.
fn random_model(
    path: &Path,
    prior: &str,
    features: usize,
    seq_len: usize,
    n_out: Option<usize>,
    seed: u64,
) {
    let head_line = match n_out {
        Some(n) => format!("n_out = {n}"),
        None => "buckets = 30".to_string(),
    };
    let toml = format!(
        "[prior]\nname = \"{prior}\"\nnum_features = {features}\nseq_len = {seq_len}\n\n\
         [model]\nemsize = 16\nnlayers = 1\nnhead = 2\nnhid = 32\n{head_line}\n\n\
         [borders]\nsamples = 3000\n\n[budget]\nsteps = 1\nbatch_size = 4\n\n[run]\nseed = {seed}\n"
    );
    let config = RunConfig::from_toml_str(&toml, "test.toml").unwrap();
    let arch = architecture_of(&config);
    let head = match config.model.head() {
        HeadKind::Riemann { buckets } => {
            let p = pfn_prior::prior_by_name(prior).unwrap();
            OutputHead::Riemann {
                borders: estimate_borders(p.as_ref(), seed, 3000, buckets, seq_len, features)
                    .unwrap(),
                full_support: true,
                tail: Default::default(),
            }
        }
        HeadKind::Classes { n_out } => OutputHead::Classes { n_out },
    };
    let model = PfnModel::new(pfn_config(&arch), seed).unwrap();
    let meta = model_metadata(
        &config,
        head,
        normalisation_for_prior(prior),
        TrainingSpent {
            steps: 0,
            datasets: 1000 * (seed + 1),
            seconds: 0.0,
        },
        None,
    );
    save_model(path, &meta, &named_views(&model, model.params())).unwrap();
}

fn is_png(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.starts_with(b"\x89PNG\r\n\x1a\n") && b.len() > 1000)
}

fn quick(experiment: Experiment, out: &Path) -> ExperimentOptions {
    let mut o = ExperimentOptions::new(experiment, out);
    o.quick = true;
    o.models_dir = None;
    o
}

#[test]
fn gp_hyper_quick_without_a_model_reports_the_baselines() {
    let out = tmp_dir("gp-hyper-quick");
    let empty_models = tmp_dir("gp-hyper-no-models");
    let mut opts = quick(Experiment::GpHyper, &out);
    opts.models_dir = Some(empty_models.clone());
    let outcome = run_experiment(&opts).unwrap();
    let ExperimentResult::GpHyper(r) = &outcome.result else {
        panic!("wrong result kind")
    };
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert_eq!(md, outcome.markdown);
    assert!(md.contains(NO_MODEL), "{md}");
    assert!(md.contains(&empty_models.display().to_string()));
    assert!(md.contains("`pfn reproduce gp-hyper --out"));
    assert!(md.contains("seed: 0; 8 datasets"));
    let names = [
        "exact GP (true hyperparameters)",
        "ML-II (MAP, 1 start)",
        "NUTS 32+32",
        "NUTS 256+256",
    ];
    assert_eq!(
        r.methods
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>(),
        names
    );
    for name in names {
        // In the NLL table header and in the per-method table.
        assert!(md.matches(name).count() >= 2, "{name} missing from\n{md}");
    }
    // One table row per context size, every cell from 8 datasets.
    assert_eq!(r.sizes, vec![1, 2, 3, 5, 10, 20, 30]);
    for &n in &r.sizes {
        assert!(md.contains(&format!("\n| {n} | ")), "row {n} missing");
    }
    for m in &r.methods {
        assert_eq!(m.nll.len(), 7);
        assert!(m.nll.iter().all(|s| s.count == 8 && s.mean.is_finite()));
        assert!(m.seconds.iter().all(|s| s.median > 0.0));
    }
    // The oracle's gap to itself is exactly zero; with 30 points it predicts better than with 1.
    let oracle = &r.methods[0];
    assert_eq!(oracle.kind, MethodKind::Oracle);
    assert!(oracle.gap.iter().all(|g| g.mean == 0.0));
    assert!(
        oracle.nll[6].mean < oracle.nll[0].mean - 0.5,
        "{:?}",
        oracle.nll
    );
    assert!(r.methods[2].divergences.is_some() && r.methods[1].divergences.is_none());
    assert!(r.speed_ups.is_empty());
    for p in [
        "gp-hyper-nll.png",
        "gp-hyper-gap-median.png",
        "gp-hyper-time.png",
    ] {
        assert!(is_png(&out.join(p)), "{p}");
        assert!(md.contains(&format!("![{p}]({p})")));
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["methods"].as_array().unwrap().len(), 4);
    assert_eq!(json["run"]["seed"], 0);

    // Same seed: the same NLLs (times differ); another seed: other datasets.
    let again = run_experiment(&opts).unwrap();
    let ExperimentResult::GpHyper(r2) = &again.result else {
        panic!()
    };
    for (a, b) in r.methods.iter().zip(&r2.methods) {
        assert_eq!(a.nll, b.nll, "{}", a.name);
    }
    let mut other = opts.clone();
    other.out = tmp_dir("gp-hyper-seed-1");
    other.seed = 1;
    other.sizes = Some(vec![3]);
    other.datasets = Some(1);
    let ExperimentResult::GpHyper(r3) = run_experiment(&other).unwrap().result else {
        panic!()
    };
    assert_ne!(r3.methods[0].nll[0].mean, r.methods[0].nll[2].mean);
}

#[test]
fn bnn_quick_without_a_model_reports_svi_and_nuts() {
    let out = tmp_dir("bnn-quick");
    let outcome = run_experiment(&quick(Experiment::Bnn, &out)).unwrap();
    let ExperimentResult::Bnn(r) = &outcome.result else {
        panic!("wrong result kind")
    };
    let md = &outcome.markdown;
    assert_eq!(md.matches(&format!("**{NO_MODEL}**")).count(), 2, "{md}");
    assert_eq!(r.budgets, vec![8, 32, 128]);
    assert_eq!(r.sections.len(), 2);
    for sec in &r.sections {
        assert_eq!(sec.svi.len(), 3);
        assert_eq!(sec.nuts.len(), 3);
        assert!(sec.pfn.is_empty() && sec.speed_ups.is_empty());
        for p in sec.svi.iter().chain(&sec.nuts) {
            assert_eq!(p.bce.count, 4);
            assert!(p.bce.mean.is_finite() && p.bce.mean > 0.0);
            assert!(p.seconds.median > 0.0);
            let row = format!("| {} | {} | ", p.method, p.budget.unwrap());
            assert!(md.contains(&row), "missing row {row}");
        }
        assert!(sec.nuts.iter().all(|p| p.mean_max_rhat.is_some()));
        // The true weights score below chance (ln 2) on average.
        assert!(sec.truth.mean < std::f64::consts::LN_2, "{:?}", sec.truth);
        let plot = sec.plot.as_ref().unwrap();
        assert!(is_png(&out.join(plot)));
    }
    assert!(md.contains("true weights (reference)"));
}

#[test]
fn gp_fit_with_random_models_matches_pfn_eval() {
    let models = tmp_dir("gp-fit-models");
    let (a, b) = (models.join("tiny-a.pfn"), models.join("tiny-b.pfn"));
    random_model(&a, "gp-1d", 1, 20, None, 1);
    random_model(&b, "gp-1d", 1, 20, None, 2);
    let out = tmp_dir("gp-fit");
    let mut opts = ExperimentOptions::new(Experiment::GpFit, &out);
    opts.models = vec![a.clone(), b.clone()];
    opts.datasets = Some(40);
    opts.seed = 7;
    let outcome = run_experiment(&opts).unwrap();
    let ExperimentResult::GpFit(r) = &outcome.result else {
        panic!("wrong result kind")
    };
    assert_eq!(r.sections.len(), 1);
    let sec = &r.sections[0];
    assert_eq!(sec.prior, "gp-1d");
    // Default sizes follow the reference protocol up to the trained context (19).
    assert_eq!(sec.sizes, vec![0, 1, 2, 3, 5, 10, 19]);
    assert_eq!(sec.models.len(), 2);
    let md = &outcome.markdown;
    assert!(!md.contains(NO_MODEL));
    assert!(md.contains("| n | exact GP NLL | tiny-a NLL | tiny-a gap | tiny-b NLL | tiny-b gap |"));
    for &n in &sec.sizes {
        assert!(md.contains(&format!("\n| {n} | ")), "row {n} missing");
    }
    for p in &sec.plots {
        assert!(is_png(&out.join(p)), "{p}");
    }
    assert_eq!(sec.plots.len(), 2);

    // `pfn eval` (the same evaluator) gives the same numbers on the same datasets, and its batched
    // passes agree with asking the predictor one dataset at a time.
    let q = *sec.sizes.last().unwrap();
    let prior = pfn_prior::prior_by_name("gp-1d").unwrap();
    let held = HeldOut::sample(prior.as_ref(), "gp-1d", r.dataset_seed, 40, q + 1, 1).unwrap();
    for (m, path) in sec.models.iter().zip([&a, &b]) {
        let predictor = Predictor::load(path).unwrap();
        let reference = evaluate(
            &predictor,
            "reference",
            &PriorNllOptions {
                datasets: 40,
                context_sizes: sec.sizes.clone(),
                seed: r.dataset_seed,

                prior: None,
            },
        )
        .unwrap();
        for (si, row) in reference.rows.iter().enumerate() {
            let gp = row.gp.unwrap().mean;
            assert!(
                (sec.exact_gp[si].mean - gp).abs() < 1e-9,
                "GP n = {}",
                row.n
            );
            let pfn = row.pfn.mean;
            assert!(
                (m.nll[si].mean - pfn).abs() < 1e-9 * (1.0 + pfn.abs()),
                "PFN n = {}: {} vs {}",
                row.n,
                m.nll[si].mean,
                pfn
            );
            assert!((m.gap[si].mean - (m.nll[si].mean - sec.exact_gp[si].mean)).abs() < 1e-9);
        }
        let batched = pfn_scores(&predictor, "batched", &held, &sec.sizes, q).unwrap();
        for i in 0..5usize {
            let d = held.get(i).unwrap();
            for (si, &n) in sec.sizes.iter().enumerate() {
                let single = predictor
                    .context(&d.x[..n], &d.y[..n])
                    .unwrap()
                    .predict(&d.x[q..q + 1])
                    .unwrap()[0]
                    .nll(d.target_y[q]);
                let got = batched[si].get(i).copied().unwrap();
                assert!(
                    (got - single).abs() < 1e-4 * (1.0 + single.abs()),
                    "dataset {i}, n = {n}: batched {got} vs single {single}"
                );
            }
        }
        // An untrained network is far from the posterior predictive: the gap (a KL) is large.
        assert!(m.mean_gap > 0.1, "{}", m.mean_gap);
        assert!(md.contains(&format!("Mean gap of `{}`", m.model.label)));
    }

    // Discovery in a models directory finds the same two models.
    let mut found = ExperimentOptions::new(Experiment::GpFit, tmp_dir("gp-fit-found"));
    found.models_dir = Some(models.clone());
    found.datasets = Some(3);
    found.sizes = Some(vec![0, 4]);
    let ExperimentResult::GpFit(f) = run_experiment(&found).unwrap().result else {
        panic!()
    };
    let labels: Vec<&str> = f.sections[0]
        .models
        .iter()
        .map(|m| m.model.label.as_str())
        .collect();
    assert_eq!(labels, ["tiny-a", "tiny-b"]);
    assert_eq!(f.sections[0].sizes, vec![0, 4]);
}

#[test]
fn gp_fit_without_a_model_reports_the_exact_gp() {
    let out = tmp_dir("gp-fit-none");
    let mut opts = quick(Experiment::GpFit, &out);
    opts.datasets = Some(10);
    let outcome = run_experiment(&opts).unwrap();
    let r: &GpFitResult = match &outcome.result {
        ExperimentResult::GpFit(r) => r,
        _ => panic!(),
    };
    let priors: Vec<&str> = r.sections.iter().map(|s| s.prior.as_str()).collect();
    assert_eq!(priors, ["gp-1d", "gp-5d"]);
    assert_eq!(outcome.markdown.matches(NO_MODEL).count(), 2);
    for s in &r.sections {
        assert_eq!(s.sizes.len(), 10);
        assert!(s
            .exact_gp
            .iter()
            .all(|g| g.mean.is_finite() && g.count == 10));
        assert_eq!(s.plots.len(), 1);
    }
}

#[test]
fn pfn_paths_of_gp_hyper_and_bnn() {
    let dir = tmp_dir("pfn-paths");
    let hyper = dir.join("hyper.pfn");
    random_model(&hyper, "gp-hyper", 1, 12, None, 3);
    let mut opts = quick(Experiment::GpHyper, &dir.join("gp-hyper"));
    opts.models = vec![hyper.clone()];
    opts.datasets = Some(2);
    opts.sizes = Some(vec![1, 4]);
    let outcome = run_experiment(&opts).unwrap();
    let r: &GpHyperResult = match &outcome.result {
        ExperimentResult::GpHyper(r) => r,
        _ => panic!(),
    };
    assert_eq!(r.methods[0].name, "PFN hyper");
    assert!(r.methods[0].nll.iter().all(|s| s.mean.is_finite()));
    // The batched row answers the same datasets with the same model: the same NLL.
    assert_eq!(r.methods[1].name, "PFN hyper batched");
    for (a, b) in r.methods[0].nll.iter().zip(&r.methods[1].nll) {
        assert!(
            (a.mean - b.mean).abs() < 1e-4 * (1.0 + a.mean.abs()),
            "{a:?} {b:?}"
        );
    }
    assert_eq!(r.speed_ups.len(), 6);
    assert!(r.speed_ups.iter().all(|u| u.median_ratio > 0.0));
    assert!(!outcome.markdown.contains(NO_MODEL));
    assert!(outcome.markdown.contains("| PFN hyper | NUTS 256+256 | "));
    assert!(outcome
        .markdown
        .contains("| PFN hyper batched | NUTS 256+256 | "));

    let clf = dir.join("clf3.pfn");
    random_model(&clf, "bnn-binary", 3, 120, Some(2), 4);
    let mut opts = quick(Experiment::Bnn, &dir.join("bnn"));
    opts.models = vec![clf];
    opts.datasets = Some(2);
    opts.budgets = Some(vec![4]);
    let outcome = run_experiment(&opts).unwrap();
    let r: &BnnResult = match &outcome.result {
        ExperimentResult::Bnn(r) => r,
        _ => panic!(),
    };
    let (small, big) = (&r.sections[0], &r.sections[1]);
    assert_eq!(small.pfn.len(), 2);
    assert!(small.pfn[0].bce.mean.is_finite() && small.pfn[0].bce.mean > 0.0);
    // The batched row answers the same datasets in shared passes: the same BCE up to rounding.
    assert!(
        small.pfn[1].method.ends_with(" batched"),
        "{}",
        small.pfn[1].method
    );
    assert!(
        (small.pfn[0].bce.mean - small.pfn[1].bce.mean).abs() < 1e-5,
        "{} vs {}",
        small.pfn[0].bce.mean,
        small.pfn[1].bce.mean
    );
    assert_eq!(small.speed_ups.len(), 4);
    assert!(big.pfn.is_empty());
    assert_eq!(
        outcome.markdown.matches(&format!("**{NO_MODEL}**")).count(),
        1
    );
    assert!(outcome
        .markdown
        .contains("not on this experiment's BNN classification prior"));
}

#[test]
fn bad_options_and_unusable_models_error_cleanly() {
    let dir = tmp_dir("errors");
    let gp1 = dir.join("gp1.pfn");
    random_model(&gp1, "gp-1d", 1, 20, None, 5);
    let msg = |o: &ExperimentOptions| run_experiment(o).unwrap_err().to_string();

    let mut o = quick(Experiment::GpHyper, &dir.join("a"));
    o.models = vec![gp1.clone()];
    let e = msg(&o);
    assert!(
        e.contains("gp1.pfn") && e.contains("'gp-1d'") && e.contains("gp-hyper"),
        "{e}"
    );

    let mut o = quick(Experiment::Bnn, &dir.join("b"));
    o.models = vec![gp1.clone()];
    let e = msg(&o);
    assert!(
        e.contains("gp1.pfn") && e.contains("regression model"),
        "{e}"
    );

    let mut o = quick(Experiment::GpFit, &dir.join("c"));
    o.models = vec![gp1.clone()];
    o.sizes = Some(vec![5, 30]);
    let e = msg(&o);
    assert!(
        e.contains("context size 30") && e.contains("at most 19"),
        "{e}"
    );

    // A model trained with prior parameters is refused: gp-fit's datasets come from the
    // registry's default prior.
    let mut o = quick(Experiment::GpFit, &dir.join("c2"));
    o.models = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/results/gp-hyper/ties-light/gp-hyper-ties08-harmonic.pfn")];
    let e = msg(&o);
    assert!(
        e.contains(r#"[prior.params] {"tied_inputs":0.08}"#) && e.contains("pfn eval"),
        "{e}"
    );

    let junk = dir.join("junk.pfn");
    std::fs::write(&junk, b"not a model").unwrap();
    let mut o = quick(Experiment::GpFit, &dir.join("d"));
    o.models = vec![junk.clone()];
    let e = run_experiment(&o).unwrap_err();
    assert!(matches!(e, ExperimentError::LoadModel { .. }), "{e}");
    assert!(e.to_string().contains("junk.pfn"));

    // In a models directory, unusable files are skipped with the reason instead.
    let mut o = quick(Experiment::GpHyper, &dir.join("e"));
    o.models_dir = Some(dir.clone());
    o.datasets = Some(1);
    o.sizes = Some(vec![2]);
    let out = run_experiment(&o).unwrap();
    assert!(out.markdown.contains(NO_MODEL));
    assert!(out.markdown.contains("skipped") && out.markdown.contains("junk.pfn"));

    let mut o = quick(Experiment::Bnn, &dir.join("f"));
    o.datasets = Some(0);
    assert!(msg(&o).contains("--datasets"));

    let mut o = quick(Experiment::Bnn, &junk);
    o.datasets = Some(1);
    let e = msg(&o);
    assert!(e.contains("--out") && e.contains("is a file"), "{e}");

    let mut o = quick(Experiment::GpFit, &dir.join("g"));
    o.budgets = Some(vec![8]);
    assert!(msg(&o).contains("--budgets"));
}

#[test]
fn gp_hyper_runs_on_the_requested_number_of_features() {
    let dir = tmp_dir("gp-hyper-features");
    let model = dir.join("hyper5.pfn");
    random_model(&model, "gp-hyper-5d", 5, 12, None, 4);
    let mut o = quick(Experiment::GpHyper, &dir.join("three"));
    o.models = vec![model.clone()];
    o.datasets = Some(2);
    o.sizes = Some(vec![2, 5]);
    o.features = Some(3);
    let outcome = run_experiment(&o).unwrap();
    let ExperimentResult::GpHyper(r) = &outcome.result else {
        panic!("a gp-hyper result")
    };
    assert_eq!(r.num_features, 3);
    for m in &r.methods {
        assert!(
            m.nll.iter().all(|s| s.mean.is_finite()),
            "{}: {:?}",
            m.name,
            m.nll
        );
    }
    assert!(
        outcome.markdown.contains("3 features"),
        "{}",
        outcome.markdown
    );
    assert!(outcome.markdown.contains("--features 3"));
    // More features than the model takes: refused, naming the model.
    o.features = Some(6);
    o.out = dir.join("six");
    let e = run_experiment(&o).unwrap_err().to_string();
    assert!(e.contains("hyper5.pfn") && e.contains("--features"), "{e}");
}

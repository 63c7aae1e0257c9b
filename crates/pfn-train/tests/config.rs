//! Run configuration: defaults, round trips, unknown-key and bad-value messages, validation.

use pfn_train::{ConfigError, HeadKind, RunConfig, ScheduleKind, SplitDistribution};

const FULL: &str = r#"
[prior]
name = "gp-1d"
num_features = 3
seq_len = 50
split = "uniform"
min_context = 2
max_context = 40

[prior.params]
lengthscale = 0.25
kernel = "rbf"

[model]
emsize = 64
nlayers = 2
nhead = 4
nhid = 128
buckets = 100
query_self_attention = true

[borders]
samples = 5000
full_support = false

[optimizer]
lr = 3e-4
betas = [0.8, 0.99]
eps = 1e-7
weight_decay = 0.01
warmup_steps = 10
schedule = "constant"
min_lr = 0.1
grad_clip = 0.5
accumulation_steps = 4

[budget]
steps = 200
batch_size = 16
max_minutes = 2.5
checkpoint_every = 50
validation_every = 25
validation_datasets = 64

[run]
seed = 42
threads = 2
"#;

fn parse(text: &str) -> Result<RunConfig, ConfigError> {
    RunConfig::from_toml_str(text, "config.toml")
}

fn err(text: &str) -> String {
    let e = parse(text).unwrap_err().to_string();
    assert!(!e.contains('\n'), "error is not one line: {e}");
    assert!(
        e.starts_with("config.toml: "),
        "error does not name the file: {e}"
    );
    e
}

#[test]
fn every_key_is_read() {
    let c = parse(FULL).unwrap();
    assert_eq!(c.prior.name, "gp-1d");
    assert_eq!(c.prior.num_features, 3);
    assert_eq!(c.prior.seq_len, 50);
    assert_eq!(c.prior.split, SplitDistribution::Uniform);
    assert_eq!((c.prior.min_context, c.prior.max_context()), (2, 40));
    assert_eq!(c.prior.params["lengthscale"], serde_json::json!(0.25));
    assert_eq!(c.prior.params["kernel"], serde_json::json!("rbf"));
    assert_eq!(
        (c.model.emsize, c.model.nlayers, c.model.nhead, c.model.nhid),
        (64, 2, 4, 128)
    );
    assert_eq!(c.model.head(), HeadKind::Riemann { buckets: 100 });
    assert!(c.model.query_self_attention);
    assert_eq!((c.borders.samples, c.borders.full_support), (5000, false));
    let o = &c.optimizer;
    assert_eq!(
        (o.lr, o.betas, o.eps, o.weight_decay),
        (3e-4, [0.8, 0.99], 1e-7, 0.01)
    );
    assert_eq!(
        (o.warmup_steps, o.schedule),
        (Some(10), ScheduleKind::Constant)
    );
    assert_eq!((o.min_lr, o.grad_clip, o.accumulation_steps), (0.1, 0.5, 4));
    let b = &c.budget;
    assert_eq!(
        (b.steps, b.batch_size, b.max_minutes),
        (Some(200), 16, Some(2.5))
    );
    assert_eq!(
        (
            b.checkpoint_every,
            b.validation_every,
            b.validation_datasets
        ),
        (Some(50), Some(25), 64)
    );
    assert_eq!((c.run.seed, c.run.threads), (42, Some(2)));
    assert_eq!(c.datasets_per_step(), 64);
    assert_eq!(c.budget.validation_batches(), 4);
    let split = c.split_sampler().unwrap();
    assert_eq!(split.support(), 2..=40);
    assert_eq!(split.kind(), pfn_prior::split::SplitKind::Uniform);
}

#[test]
fn minimal_config_gets_the_documented_defaults() {
    let c = parse("[prior]\nname = \"gp-1d\"\n").unwrap();
    assert_eq!(c, RunConfig::new("gp-1d"));
    assert_eq!((c.prior.num_features, c.prior.seq_len), (1, 100));
    assert_eq!(c.prior.split, SplitDistribution::Weighted);
    assert_eq!(c.prior.max_context(), 99);
    assert_eq!(
        (c.model.emsize, c.model.nlayers, c.model.nhead, c.model.nhid),
        (512, 6, 4, 1024)
    );
    assert_eq!(c.model.head(), HeadKind::Riemann { buckets: 1000 });
    assert!(!c.model.query_self_attention);
    assert_eq!(
        (c.borders.samples, c.borders.full_support),
        (1_000_000, true)
    );
    assert_eq!(c.optimizer.lr, 1e-4);
    assert_eq!(c.optimizer.betas, [0.9, 0.999]);
    assert_eq!(c.optimizer.schedule, ScheduleKind::Cosine);
    assert_eq!(c.optimizer.grad_clip, 1.0);
    assert_eq!(c.optimizer.accumulation_steps, 1);
    assert_eq!(c.budget.steps, Some(1000));
    assert_eq!(c.budget.batch_size, 32);
    assert_eq!(c.budget.validation_batches(), 8);
    // Warm-up defaults to a quarter of the steps.
    assert_eq!(c.warmup_steps(), 250);
    let s = c.lr_schedule();
    assert_eq!(
        (s.warmup_steps, s.total_steps, s.peak_lr),
        (250, 1000, 1e-4)
    );
    // Weighted split: P(n) ∝ 1/(N − n) on 0..=N−1.
    let split = c.split_sampler().unwrap();
    assert_eq!(split.support(), 0..=99);
    let ratio = split.probability(99) / split.probability(0);
    assert!((ratio - 100.0).abs() < 1e-9, "{ratio}");
}

#[test]
fn budget_table_without_a_limit_still_defaults_to_1000_steps() {
    let c = parse("[prior]\nname = \"gp-1d\"\n[budget]\nbatch_size = 8\n").unwrap();
    assert_eq!((c.budget.steps, c.budget.batch_size), (Some(1000), 8));
}

#[test]
fn class_head_from_n_out() {
    let c = parse("[prior]\nname = \"gp-1d-binary\"\n[model]\nn_out = 2\n").unwrap();
    assert_eq!(c.model.head(), HeadKind::Classes { n_out: 2 });
    assert_eq!(c.model.output_width(), 2);
}

#[test]
fn toml_and_json_round_trips() {
    for text in [
        FULL,
        "[prior]\nname = \"gp-5d\"\n[budget]\nmax_minutes = 3.0\nsteps = 7\n",
    ] {
        let c = parse(text).unwrap();
        let toml_text = c.to_toml_string().unwrap();
        assert_eq!(parse(&toml_text).unwrap(), c, "TOML:\n{toml_text}");
        let json = c.to_json_string().unwrap();
        assert_eq!(RunConfig::from_json_str(&json, "meta.json").unwrap(), c);
    }
}

#[test]
fn unknown_key_names_key_table_and_line() {
    let text = "[prior]\nname = \"gp-1d\"\n\n[optimizer]\nlr = 1e-4\n\nlrr = 3e-4\n";
    let e = err(text);
    assert!(
        e.starts_with("config.toml: unknown key 'lrr' in [optimizer] (line 7)"),
        "{e}"
    );
    assert!(e.contains("expected one of lr, betas"), "{e}");
}

#[test]
fn unknown_keys_elsewhere() {
    let e = err("[prior]\nname = \"gp-1d\"\n[model]\ndropout = 0.1\n");
    assert!(
        e.starts_with("config.toml: unknown key 'dropout' in [model] (line 4)"),
        "{e}"
    );
    let e = err("seed = 1\n[prior]\nname = \"gp-1d\"\n");
    assert!(
        e.starts_with("config.toml: unknown key 'seed' in the top level (line 1)"),
        "{e}"
    );
    let e = err("[prior]\nname = \"gp-1d\"\n[optimiser]\nlr = 1.0\n");
    assert!(
        e.starts_with("config.toml: unknown key 'optimiser' in the top level (line 3)"),
        "{e}"
    );
    let e = err("[prior]\nname = \"gp-1d\"\nsplits = \"uniform\"\n");
    assert!(
        e.starts_with("config.toml: unknown key 'splits' in [prior] (line 3)"),
        "{e}"
    );
    let e = err("[prior]\nname = \"gp-1d\"\n[budget]\nsteps = 5\nbatch = 3\n");
    assert!(
        e.starts_with("config.toml: unknown key 'batch' in [budget] (line 5)"),
        "{e}"
    );
    let e = err("[prior]\nname = \"gp-1d\"\n[run]\nthread = 3\n");
    assert!(
        e.starts_with("config.toml: unknown key 'thread' in [run] (line 4)"),
        "{e}"
    );
    let e = err("[prior]\nname = \"gp-1d\"\n[borders]\nfull = true\n");
    assert!(
        e.starts_with("config.toml: unknown key 'full' in [borders] (line 4)"),
        "{e}"
    );
}

#[test]
fn bad_values_and_syntax_name_the_line() {
    let e = err("[prior]\nname = \"gp-1d\"\n[model]\nemsize = -3\n");
    assert!(
        e.starts_with("config.toml: bad value for 'emsize' in [model] (line 4): "),
        "{e}"
    );
    let e = err("[prior]\nname = \"gp-1d\"\n[model]\nemsize = \"big\"\n");
    assert!(
        e.starts_with("config.toml: bad value for 'emsize' in [model] (line 4): "),
        "{e}"
    );
    let e = err("[prior]\nname = \"gp-1d\"\nsplit = \"wighted\"\n");
    assert!(
        e.contains("'split' in [prior] (line 3)") && e.contains("wighted"),
        "{e}"
    );
    let e = err("[prior]\nname = \"gp-1d\"\n[optimizer]\nbetas = [0.9]\n");
    assert!(e.contains("'betas' in [optimizer] (line 4)"), "{e}");
    let e = err("[prior]\nname = \"gp-1d\"\n[model\nemsize = 3\n");
    assert!(
        e.starts_with("config.toml: TOML syntax error (line 3)"),
        "{e}"
    );
    let e = err("[prior]\nname = \"gp-1d\"\nname = \"x\"\n");
    assert!(
        e.starts_with("config.toml: TOML syntax error (line 3)"),
        "{e}"
    );
}

#[test]
fn missing_required_keys() {
    assert_eq!(
        err("[prior]\nseq_len = 3\n"),
        "config.toml: missing key 'name' in [prior]"
    );
    assert_eq!(
        err("[model]\nemsize = 8\n"),
        "config.toml: missing key 'prior' in the top level"
    );
    assert_eq!(err(""), "config.toml: missing key 'prior' in the top level");
}

#[test]
fn invalid_values_are_rejected_with_the_key_and_the_reason() {
    let base = "[prior]\nname = \"gp-1d\"\n";
    let cases: &[(&str, &str)] = &[
        (
            "[model]\nemsize = 100\nnhead = 3\n",
            "invalid model.emsize: must be divisible by nhead = 3, got 100",
        ),
        (
            "[model]\nnlayers = 0\n",
            "invalid model.nlayers: must be at least 1",
        ),
        ("[model]\nnhid = 0\n", "invalid model.nhid"),
        (
            "[model]\nbuckets = 10\nn_out = 3\n",
            "invalid model.n_out: give either buckets",
        ),
        (
            "[model]\nbuckets = 1\n",
            "invalid model.buckets: must be at least 2",
        ),
        (
            "[model]\nn_out = 1\n",
            "invalid model.n_out: must be at least 2",
        ),
        (
            "[borders]\nsamples = 999\n",
            "invalid borders.samples: must be at least the number of buckets (1000)",
        ),
        (
            "[optimizer]\nlr = 0.0\n",
            "invalid optimizer.lr: must be a finite number > 0, got 0",
        ),
        ("[optimizer]\nlr = -1e-3\n", "invalid optimizer.lr"),
        (
            "[optimizer]\nlr = nan\n",
            "invalid optimizer.lr: must be a finite number > 0, got NaN",
        ),
        ("[optimizer]\nlr = inf\n", "invalid optimizer.lr"),
        (
            "[optimizer]\nbetas = [0.9, 1.0]\n",
            "invalid optimizer.betas: beta2 must be in [0, 1), got 1",
        ),
        ("[optimizer]\neps = 0.0\n", "invalid optimizer.eps"),
        (
            "[optimizer]\nweight_decay = -0.1\n",
            "invalid optimizer.weight_decay",
        ),
        ("[optimizer]\nmin_lr = 1.5\n", "invalid optimizer.min_lr"),
        (
            "[optimizer]\ngrad_clip = 0.0\n",
            "invalid optimizer.grad_clip",
        ),
        (
            "[optimizer]\naccumulation_steps = 0\n",
            "invalid optimizer.accumulation_steps",
        ),
        (
            "[optimizer]\nwarmup_steps = 2000\n",
            "invalid optimizer.warmup_steps: must not exceed budget.steps = 1000",
        ),
        (
            "[budget]\nsteps = 0\n",
            "invalid budget.steps: must be at least 1",
        ),
        ("[budget]\nbatch_size = 0\n", "invalid budget.batch_size"),
        (
            "[budget]\nmax_minutes = 0.0\n",
            "invalid budget.max_minutes",
        ),
        (
            "[budget]\ncheckpoint_every = 0\n",
            "invalid budget.checkpoint_every",
        ),
        (
            "[budget]\nvalidation_every = 0\n",
            "invalid budget.validation_every",
        ),
        (
            "[budget]\nvalidation_datasets = 0\n",
            "invalid budget.validation_datasets",
        ),
        ("[run]\nthreads = 0\n", "invalid run.threads"),
    ];
    for (extra, want) in cases {
        let e = err(&format!("{base}{extra}"));
        assert!(
            e.starts_with(&format!("config.toml: {want}")),
            "for {extra:?}: {e}"
        );
    }
    let prior_cases: &[(&str, &str)] = &[
        ("name = \" \"\n", "invalid prior.name"),
        (
            "name = \"gp-1d\"\nnum_features = 0\n",
            "invalid prior.num_features",
        ),
        (
            "name = \"gp-1d\"\nseq_len = 1\n",
            "invalid prior.seq_len: must be at least 2",
        ),
        (
            "name = \"gp-1d\"\nseq_len = 10\nmax_context = 10\n",
            "invalid prior.max_context: must be below seq_len = 10",
        ),
        (
            "name = \"gp-1d\"\nsplit = \"uniform\"\nmin_context = 5\nmax_context = 4\n",
            "invalid prior.min_context: must not exceed max_context = 4",
        ),
        (
            "name = \"gp-1d\"\nmin_context = 3\n",
            "invalid prior.min_context: the weighted split sampler always starts at 0",
        ),
        (
            "name = \"gp-1d\"\nsplit = \"harmonic\"\n",
            "invalid prior.min_context: the harmonic split sampler (P(n) ∝ 1/n) needs min_context of at least 1",
        ),
    ];
    for (body, want) in prior_cases {
        let e = err(&format!("[prior]\n{body}"));
        assert!(
            e.starts_with(&format!("config.toml: {want}")),
            "for {body:?}: {e}"
        );
    }
}

#[test]
fn budget_needs_steps_for_cosine_and_some_limit() {
    // Time-only budget: fine with a constant schedule, an error with cosine.
    let ok = "[prior]\nname = \"gp-1d\"\n[optimizer]\nschedule = \"constant\"\n[budget]\nmax_minutes = 5.0\n";
    let c = parse(ok).unwrap();
    assert_eq!(c.budget.steps, None);
    assert_eq!(c.warmup_steps(), 0);
    let e = err("[prior]\nname = \"gp-1d\"\n[budget]\nmax_minutes = 5.0\n");
    assert!(
        e.starts_with("config.toml: invalid optimizer.schedule: \"cosine\" needs budget.steps"),
        "{e}"
    );
    // Programmatic config without any budget.
    let mut c = RunConfig::new("gp-1d");
    c.budget.steps = None;
    let e = c.validate().unwrap_err().to_string();
    assert!(
        e.starts_with("<config>: invalid budget.steps: give budget.steps, budget.max_minutes"),
        "{e}"
    );
}

#[test]
fn load_reads_a_file_and_names_it_in_errors() {
    let dir = std::env::temp_dir().join(format!("pfn-train-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(&good, FULL).unwrap();
    assert_eq!(RunConfig::load(&good).unwrap(), parse(FULL).unwrap());

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[prior]\nname = \"gp-1d\"\n[optimizer]\nlrr = 1\n").unwrap();
    let e = RunConfig::load(&bad).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "{}: unknown key 'lrr' in [optimizer] (line 4)",
            bad.display()
        )),
        "{e}"
    );

    let missing = dir.join("missing.toml");
    let e = RunConfig::load(&missing).unwrap_err();
    assert!(matches!(e, ConfigError::Io { .. }));
    assert!(e
        .to_string()
        .starts_with(&format!("{}: cannot read", missing.display())));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_documented_example_parses() {
    // The TOML example in the `config` module documentation must stay a valid configuration.
    let source = include_str!("../src/config.rs");
    let start = source.find("//! ```toml\n").expect("example present") + "//! ```toml\n".len();
    let end = start + source[start..].find("//! ```").expect("example closed");
    let text: String = source[start..end]
        .lines()
        .map(|l| {
            l.strip_prefix("//! ")
                .or_else(|| l.strip_prefix("//!"))
                .unwrap_or(l)
        })
        .collect::<Vec<_>>()
        .join("\n");
    let c = parse(&text).unwrap();
    assert_eq!(c.prior.name, "gp-1d");
    assert_eq!(c.optimizer.warmup_steps, Some(250));
    assert_eq!(c.run.threads, Some(2));
}

#[test]
fn training_precision_is_optional_and_resumable() {
    let base = parse("[prior]\nname = \"gp-1d\"\n").unwrap();
    assert_eq!(base.run.precision, pfn_model::Precision::F32);
    // The default is not written, so configurations and artifacts from before stay identical.
    assert!(!base.to_toml_string().unwrap().contains("precision"));
    let bf16 = parse("[prior]\nname = \"gp-1d\"\n[run]\nprecision = \"bf16\"\n").unwrap();
    assert_eq!(bf16.run.precision, pfn_model::Precision::Bf16);
    let text = bf16.to_toml_string().unwrap();
    assert!(text.contains("precision = \"bf16\""), "{text}");
    assert_eq!(RunConfig::from_toml_str(&text, "x").unwrap(), bf16);
    // a checkpoint may be resumed in the other precision
    let (a, b) = (&base, &bf16);
    assert!(pfn_train::config_difference(a, b, &[]).is_some());
    assert_eq!(
        pfn_train::config_difference(a, b, pfn_train::RESUMABLE_CHANGES),
        None
    );
    let e = err("[prior]\nname = \"gp-1d\"\n[run]\nprecision = \"fp16\"\n");
    assert!(e.contains("fp16") && e.contains("bf16"), "{e}");
}

#[test]
fn constant_fraction_and_border_edges_parse_and_validate() {
    let base = "[prior]\nname = \"gp-hyper-5d\"\nnum_features = 5\nseq_len = 20\nsplit = \"uniform\"\nmin_context = 1\n";
    let c = RunConfig::from_toml_str(
        &format!("{base}constant_fraction = 0.02\n[borders]\nedges = \"neighbour_width\"\n"),
        "c.toml",
    )
    .unwrap();
    assert_eq!(c.prior.constant_fraction, 0.02);
    assert_eq!(c.borders.edges, pfn_train::BorderEdges::NeighbourWidth);
    let d = RunConfig::from_toml_str(base, "d.toml").unwrap();
    assert_eq!(d.prior.constant_fraction, 0.0);
    assert_eq!(d.borders.edges, pfn_train::BorderEdges::SampleRange);
    for bad in ["1.0", "-0.1"] {
        let e = RunConfig::from_toml_str(&format!("{base}constant_fraction = {bad}\n"), "e.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("prior.constant_fraction"), "{e}");
    }
    let e = RunConfig::from_toml_str(&format!("{base}[borders]\nedges = \"wide\"\n"), "e.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("edges"), "{e}");
}

#[test]
fn pareto_tails_parse_and_validate() {
    let base = "[prior]\nname = \"gp-hyper-5d\"\nnum_features = 5\nseq_len = 20\nsplit = \"uniform\"\nmin_context = 1\n[borders]\n";
    let c = RunConfig::from_toml_str(&format!("{base}tails = \"pareto\"\n"), "c.toml").unwrap();
    assert_eq!(c.borders.tails, pfn_train::TailKind::Pareto);
    assert_eq!(
        c.borders.tail_shape(),
        pfn_distribution::TailShape::Pareto {
            index: pfn_train::DEFAULT_PARETO_TAIL_INDEX
        }
    );
    let c = RunConfig::from_toml_str(
        &format!("{base}tails = \"pareto\"\ntail_index = 4.5\n"),
        "c.toml",
    )
    .unwrap();
    assert_eq!(
        c.borders.tail_shape(),
        pfn_distribution::TailShape::Pareto { index: 4.5 }
    );
    // The default serialises as before (no new keys), so older run configurations compare equal.
    let d = RunConfig::from_toml_str(base, "d.toml").unwrap();
    assert_eq!(d.borders.tails, pfn_train::TailKind::HalfNormal);
    assert!(!d.to_toml_string().unwrap().contains("tail"));
    for (extra, key) in [
        (
            "tails = \"pareto\"\ntail_index = 2.0\n",
            "borders.tail_index",
        ),
        (
            "tails = \"pareto\"\ntail_index = -1.0\n",
            "borders.tail_index",
        ),
        ("tail_index = 3.0\n", "borders.tail_index"),
        (
            "tails = \"pareto\"\nfull_support = false\n",
            "borders.tails",
        ),
        ("tails = \"cauchy\"\n", "tails"),
    ] {
        let e = RunConfig::from_toml_str(&format!("{base}{extra}"), "e.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains(key), "{extra}: {e}");
    }
}

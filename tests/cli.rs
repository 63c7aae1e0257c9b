//! The `pfn train`, `predict` and `eval` subcommands end to end on the built binary: they work on
//! good input, and every bad input gives a one-line error naming the problem and a non-zero exit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn pfn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pfn"))
        .args(args)
        .output()
        .expect("the pfn binary runs")
}

fn dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(name: &str, text: &str) -> PathBuf {
    let p = dir().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Asserts a failed run with exactly one stderr line that starts with `error:` and contains every
/// `needle`; returns that line.
fn one_line_error(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "expected failure, stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    for n in needles {
        assert!(lines[0].contains(n), "'{n}' not in: {}", lines[0]);
    }
    lines[0].to_string()
}

/// A configuration that trains in well under a second.
const SMALL: &str = r#"
[prior]
name = "gp-1d"
seq_len = 12

[model]
emsize = 16
nlayers = 1
nhead = 2
nhid = 32
buckets = 20

[borders]
samples = 4000

[optimizer]
lr = 3e-3

[budget]
steps = 30
batch_size = 8
checkpoint_every = 10
validation_every = 15
validation_datasets = 16

[run]
seed = 3
threads = 2
"#;

/// A model trained once per test binary with `pfn train`.
fn model() -> &'static PathBuf {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| {
        let cfg = write("small.toml", SMALL);
        let out = dir().join("small.pfn");
        let o = pfn(&["train", "--config", s(&cfg), "--out", s(&out)]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out
    })
}

/// The shared training file, written once per test binary: tests run in parallel, and rewriting
/// it while another test reads it would hand that test an empty file.
fn train_csv() -> PathBuf {
    static TRAIN: OnceLock<PathBuf> = OnceLock::new();
    TRAIN
        .get_or_init(|| {
            write(
                "train.csv",
                "x,y\n0.1,0.5\n0.3,0.9\n0.5,-0.2\n0.7,-0.8\n0.9,0.1\n",
            )
        })
        .clone()
}

/// The shared query file, written once per test binary (see [`train_csv`]).
fn test_csv() -> PathBuf {
    static TEST: OnceLock<PathBuf> = OnceLock::new();
    TEST.get_or_init(|| write("test.csv", "x\n0.2\n0.6\n0.95\n"))
        .clone()
}

#[test]
fn train_predict_and_eval_work() {
    let model = model();
    assert!(model.exists());
    let ckpt = PathBuf::from(format!("{}.ckpt", model.display()));
    assert!(ckpt.exists(), "checkpoint next to the model");

    let o = pfn(&[
        "predict",
        "--model",
        s(model),
        "--train",
        s(&train_csv()),
        "--test",
        s(&test_csv()),
        "--format",
        "csv",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "row,mean,median,std,q0.05,q0.5,q0.95");
    assert_eq!(lines.len(), 4);
    for l in &lines[1..] {
        let v: Vec<f64> = l.split(',').map(|c| c.parse().unwrap()).collect();
        assert_eq!(v.len(), 7);
        // q0.05 <= median = q0.5 <= q0.95, std > 0
        assert!(v[4] <= v[5] && v[5] <= v[6] && v[3] > 0.0, "{l}");
        assert!((v[2] - v[5]).abs() < 1e-12, "{l}");
    }

    // JSON to a file, with the test target present: NLL per row.
    let test_y = write("test_y.csv", "y,x\n0.3,0.2\n-0.5,0.6\n");
    let json = dir().join("pred.json");
    let o = pfn(&[
        "predict",
        "--model",
        s(model),
        "--train",
        s(&train_csv()),
        "--test",
        s(&test_y),
        "--quantiles",
        "0.25,0.75",
        "--out",
        s(&json),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let preds = doc["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 2);
    assert!(preds[0]["nll"].as_f64().unwrap().is_finite());
    assert!(preds[0]["q0.25"].as_f64().unwrap() <= preds[0]["q0.75"].as_f64().unwrap());
    assert_eq!(preds[1]["y"].as_f64().unwrap(), -0.5);

    // A readable table by default.
    let o = pfn(&[
        "predict",
        "--model",
        s(model),
        "--train",
        s(&train_csv()),
        "--test",
        s(&test_csv()),
    ]);
    assert!(o.status.success());
    let table = String::from_utf8(o.stdout).unwrap();
    let (header, body) = table_of(&table);
    assert_eq!(
        header,
        ["row", "x", "mean", "std", "q0.05", "q0.95"],
        "{table}"
    );
    assert_eq!(body.len(), 3, "{table}");
    for (k, cells) in body.iter().enumerate() {
        assert_eq!(cells[0], (k + 1).to_string());
        let v: Vec<f64> = cells[1..].iter().map(|c| c.parse().unwrap()).collect();
        // q0.05 < mean-ish < q0.95 and std > 0: a real predictive per query.
        assert!(v[3] < v[4] && v[2] > 0.0, "{table}");
    }
    assert_eq!(body[2][1], "0.95", "the query's feature value");
    assert!(!table.contains("predictions:") && !table.contains("plot:"));

    let report = dir().join("report.md");
    let plot = dir().join("nll.svg");
    let o = pfn(&[
        "eval",
        "--model",
        s(model),
        "--datasets",
        "40",
        "--out",
        s(&report),
        "--plot",
        s(&plot),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(
        md.contains("| n | PFN NLL | exact GP NLL | gap (nats) |"),
        "{md}"
    );
    // Default sizes up to the trained maximum (seq_len 12 -> 11).
    for n in ["| 0 |", "| 5 |", "| 10 |", "| 11 |", "| mean |"] {
        assert!(md.contains(n), "{n} missing in {md}");
    }
    assert!(std::fs::metadata(&plot).unwrap().len() > 1000);
}

#[test]
fn resume_continues_from_the_checkpoint_and_checks_the_configuration() {
    let cfg = write("resume.toml", SMALL);
    let out = dir().join("resume.pfn");
    // No checkpoint yet.
    one_line_error(
        &pfn(&["train", "--config", s(&cfg), "--out", s(&out), "--resume"]),
        &["--resume", "no checkpoint", "resume.pfn.ckpt"],
    );
    let o = pfn(&["train", "--config", s(&cfg), "--out", s(&out), "--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let first = std::fs::read(&out).unwrap();
    // Resuming a finished run trains nothing more and writes the same weights.
    let o = pfn(&[
        "train",
        "--config",
        s(&cfg),
        "--out",
        s(&out),
        "--resume",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("trained 0 steps"));
    let art_a = pfn_weights(&first);
    let art_b = pfn_weights(&std::fs::read(&out).unwrap());
    assert_eq!(art_a, art_b);
    // A changed learning rate is refused, naming the key.
    let changed = write("resume2.toml", &SMALL.replace("lr = 3e-3", "lr = 1e-3"));
    one_line_error(
        &pfn(&[
            "train",
            "--config",
            s(&changed),
            "--out",
            s(&out),
            "--resume",
        ]),
        &["optimizer.lr"],
    );
}

/// The tensor section of a safetensors file (everything after the header).
fn pfn_weights(bytes: &[u8]) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    bytes[8 + n..].to_vec()
}

#[test]
fn csv_errors_are_one_line_and_name_the_place() {
    let model = model();
    let run = |train: &Path, test: &Path| {
        pfn(&[
            "predict",
            "--model",
            s(model),
            "--train",
            s(train),
            "--test",
            s(test),
        ])
    };
    let missing = write("missing.csv", "x,y\n0.1,0.5\n0.3,\n");
    one_line_error(
        &run(&missing, &test_csv()),
        &[
            "missing.csv",
            "line 3",
            "data row 2",
            "'y'",
            "missing value",
        ],
    );
    let text = write("text.csv", "x,y\n0.1,0.5\nabc,0.2\n");
    one_line_error(
        &run(&text, &test_csv()),
        &["text.csv", "line 3", "'x'", "not a number", "abc"],
    );
    let other = write("other.csv", "z\n0.2\n");
    one_line_error(
        &run(&train_csv(), &other),
        &[
            "other.csv",
            "feature columns differ",
            "missing 'x'",
            "unexpected 'z'",
        ],
    );
    let wide_train = write("wide_train.csv", "a,b,y\n0.1,0.2,0.5\n0.3,0.4,0.1\n");
    let wide_test = write("wide_test.csv", "a,b\n0.1,0.2\n");
    one_line_error(
        &run(&wide_train, &wide_test),
        &[
            "wide_train.csv",
            "2 feature columns",
            "takes 1",
            "more features than the model supports",
        ],
    );
    let empty = write("empty.csv", "");
    one_line_error(&run(&empty, &test_csv()), &["empty.csv", "empty"]);
    one_line_error(
        &pfn(&[
            "predict",
            "--model",
            s(model),
            "--train",
            s(&train_csv()),
            "--test",
            s(&test_csv()),
            "--quantiles",
            "0.5,2",
        ]),
        &["--quantiles", "between 0 and 1"],
    );
}

#[test]
fn a_file_that_is_not_a_model_is_refused() {
    let fake = write("fake.pfn", "x,y\n1,2\n");
    for cmd in [
        vec![
            "predict",
            "--model",
            s(&fake),
            "--train",
            s(&train_csv()),
            "--test",
            s(&test_csv()),
        ],
        vec!["eval", "--model", s(&fake)],
    ] {
        one_line_error(&pfn(&cmd), &["fake.pfn", "not a pfn model file"]);
    }
    let absent = dir().join("absent.pfn");
    one_line_error(
        &pfn(&["eval", "--model", s(&absent)]),
        &["absent.pfn", "cannot read"],
    );
    // A checkpoint is not a model.
    let ckpt = format!("{}.ckpt", model().display());
    one_line_error(
        &pfn(&["eval", "--model", &ckpt]),
        &["pfn-checkpoint", "expected a pfn-model"],
    );
}

#[test]
fn config_errors_are_one_line() {
    let unknown = write(
        "unknown.toml",
        &SMALL.replace("lr = 3e-3", "lr = 3e-3\nlrr = 1"),
    );
    one_line_error(
        &pfn(&["train", "--config", s(&unknown)]),
        &["unknown.toml", "unknown key 'lrr'", "[optimizer]"],
    );
    let bad_prior = write("bad_prior.toml", &SMALL.replace("\"gp-1d\"", "\"gp-7d\""));
    one_line_error(
        &pfn(&[
            "train",
            "--config",
            s(&bad_prior),
            "--out",
            s(&dir().join("x.pfn")),
        ]),
        &["gp-7d"],
    );
    let absent = dir().join("absent.toml");
    one_line_error(
        &pfn(&["train", "--config", s(&absent)]),
        &["absent.toml", "cannot read"],
    );
}

/// `pfn import` turns the golden fixture's PyTorch state_dict into an artifact whose predictions are
/// the fixture's (checked through `predict` on the fixture's first case is the golden test's job; here:
/// the import works, the artifact loads, and wrong architectures name the tensor and both shapes).
#[test]
fn import_converts_a_torch_state_dict_and_reports_shape_errors() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden/paper-pfn-1d");
    let out_model = dir().join("imported.pfn");
    let ok = pfn(&[
        "import",
        "--state-dict",
        s(&root.join("model.safetensors")),
        "--arch",
        s(&root.join("fixture.json")),
        "--borders",
        s(&root.join("cases.safetensors")),
        "--out",
        s(&out_model),
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let loaded = pfn::artifact::load_model(&out_model).expect("imported artifact loads");
    assert_eq!(loaded.metadata.head.width(), 100);

    let fixture = std::fs::read_to_string(root.join("fixture.json")).unwrap();
    let wrong = write(
        "wrong-arch.json",
        &fixture.replace("\"nhid\": 64", "\"nhid\": 48"),
    );
    let bad = pfn(&[
        "import",
        "--state-dict",
        s(&root.join("model.safetensors")),
        "--arch",
        s(&wrong),
        "--borders",
        s(&root.join("cases.safetensors")),
        "--out",
        s(&dir().join("never.pfn")),
    ]);
    one_line_error(&bad, &["linear1.weight", "48", "64"]);
    assert!(!dir().join("never.pfn").exists());
}

/// The README's main command on the shipped model, with `--plot`, writes a PNG.
#[test]
fn predict_plots_the_shipped_model() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let png = dir().join("predict.png");
    let out = pfn(&[
        "predict",
        "--model",
        s(&root.join("models/gp-1d.pfn")),
        "--train",
        s(&root.join("examples/data/gp1d-train.csv")),
        "--test",
        s(&root.join("examples/data/gp1d-test.csv")),
        "--plot",
        s(&png),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png).expect("plot written");
    assert_eq!(&bytes[1..4], b"PNG");
    let table = String::from_utf8_lossy(&out.stdout);
    let (header, body) = table_of(&table);
    assert_eq!(
        header,
        ["row", "x", "mean", "std", "q0.05", "q0.95", "y", "nll"],
        "{table}"
    );
    assert_eq!(body.len(), 15, "15 test rows: {table}");
    assert!(table.contains("mean test NLL: "), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l == format!("plot: {}", png.display())),
        "{table}"
    );
}

/// The header and body cells of the table `pfn predict` prints: the header is the line that starts
/// with `row`, the body the lines after it up to the first blank line.
fn table_of(stdout: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let lines: Vec<&str> = stdout.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.split_whitespace().next() == Some("row"))
        .unwrap_or_else(|| panic!("no table header in: {stdout}"));
    let cells = |l: &str| l.split_whitespace().map(String::from).collect::<Vec<_>>();
    let body = lines[start + 1..]
        .iter()
        .take_while(|l| !l.trim().is_empty())
        .map(|l| cells(l))
        .collect();
    (cells(lines[start]), body)
}

/// `pfn` with `PFN_MODELS` set to `models` (or removed) and the given working directory.
fn pfn_in(args: &[&str], models: Option<&Path>, cwd: &Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pfn"));
    cmd.args(args).current_dir(cwd);
    match models {
        Some(m) => cmd.env("PFN_MODELS", m),
        None => cmd.env_remove("PFN_MODELS"),
    };
    cmd.output().expect("the pfn binary runs")
}

fn fresh(name: &str) -> PathBuf {
    let d = dir().join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A model trained with `pfn train` on `gp-hyper-5d` with at most 3 features (the shipped
/// general-purpose model's prior and normalisation, at toy size).
fn variable_feature_model() -> &'static PathBuf {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| {
        let cfg = write(
            "hyper.toml",
            &SMALL.replace(
                "name = \"gp-1d\"",
                "name = \"gp-hyper-5d\"\nnum_features = 3",
            ),
        );
        let out = dir().join("hyper.pfn");
        let o = pfn(&["train", "--config", s(&cfg), "--out", s(&out), "--quiet"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out
    })
}

#[test]
fn predict_takes_fewer_features_than_a_variable_feature_model_has() {
    let model = variable_feature_model();
    let train = write(
        "two_train.csv",
        "a,b,t\n0.1,3,0.5\n0.4,1,0.9\n0.5,2,-0.2\n0.8,5,-0.8\n0.9,4,0.1\n0.3,2.5,0.3\n",
    );
    let test = write(
        "two_test.csv",
        "a,b,t\n0.2,2,0.4\n0.6,3,-0.1\n0.95,4.5,0.0\n",
    );
    let csv = dir().join("two.csv");
    let png = dir().join("two.png");
    let o = pfn(&[
        "predict",
        "--model",
        s(model),
        "--train",
        s(&train),
        "--test",
        s(&test),
        "--out",
        s(&csv),
        "--plot",
        s(&png),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8(o.stdout).unwrap();
    let (header, body) = table_of(&stdout);
    assert_eq!(
        header,
        ["row", "a", "b", "mean", "std", "q0.05", "q0.95", "t", "nll"],
        "{stdout}"
    );
    assert_eq!(body.len(), 3);
    assert_eq!(body[1][1..3], ["0.6", "3"], "{stdout}");
    assert!(stdout.contains("takes 1 to 3 features"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l == format!("predictions: {}", csv.display())),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l == format!("plot: {}", png.display())),
        "{stdout}"
    );
    let file = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = file.lines().collect();
    assert_eq!(lines[0], "row,mean,median,std,q0.05,q0.5,q0.95,t,nll");
    assert_eq!(lines.len(), 4);
    // The file and the table report the same mean.
    let file_mean: f64 = lines[2].split(',').nth(1).unwrap().parse().unwrap();
    let table_mean: f64 = body[1][3].parse().unwrap();
    assert!(
        (file_mean - table_mean).abs() <= 5e-5,
        "{file_mean} vs {table_mean}"
    );
    let bytes = std::fs::read(&png).expect("plot written");
    assert_eq!(&bytes[1..4], b"PNG");

    // One feature: the 1-D plot (an SVG here).
    let one_train = write("one_train.csv", "a,t\n0.1,0.5\n0.4,0.9\n0.8,-0.8\n");
    let one_test = write("one_test.csv", "a\n0.2\n0.6\n");
    let svg = dir().join("one.svg");
    let o = pfn(&[
        "predict",
        "--model",
        s(model),
        "--train",
        s(&one_train),
        "--test",
        s(&one_test),
        "--plot",
        s(&svg),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));

    // Four features are more than the model takes.
    let wide = write(
        "four_train.csv",
        "a,b,c,e,t\n0.1,0.2,0.3,0.4,1\n0.5,0.6,0.7,0.8,2\n",
    );
    let wide_test = write("four_test.csv", "a,b,c,e\n0.1,0.2,0.3,0.4\n");
    one_line_error(
        &pfn(&[
            "predict",
            "--model",
            s(model),
            "--train",
            s(&wide),
            "--test",
            s(&wide_test),
        ]),
        &[
            "four_train.csv",
            "4 feature columns",
            "takes 1 to 3",
            "more features",
        ],
    );
    // A plot file name that is neither .png nor .svg is refused before any work.
    one_line_error(
        &pfn(&[
            "predict",
            "--model",
            s(model),
            "--train",
            s(&train),
            "--test",
            s(&test),
            "--plot",
            s(&dir().join("plot.jpg")),
        ]),
        &["--plot", "plot.jpg", ".png or .svg"],
    );
}

#[test]
fn predict_defaults_to_gp_hyper_and_resolves_model_names() {
    let models = fresh("named-models");
    std::fs::copy(model(), models.join("gp-hyper.pfn")).unwrap();
    std::fs::copy(model(), models.join("tiny.pfn")).unwrap();
    let cwd = fresh("named-cwd");
    let (train, test) = (train_csv(), test_csv());
    let o = pfn_in(
        &["predict", "--train", s(&train), "--test", s(&test)],
        Some(&models),
        &cwd,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8(o.stdout).unwrap();
    let first = stdout.lines().next().unwrap();
    assert!(
        first.starts_with(&format!("model: {}", models.join("gp-hyper.pfn").display())),
        "{stdout}"
    );
    assert_eq!(table_of(&stdout).1.len(), 3);

    let o = pfn_in(
        &[
            "predict",
            "--model",
            "tiny",
            "--train",
            s(&train),
            "--test",
            s(&test),
        ],
        Some(&models),
        &cwd,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout)
        .starts_with(&format!("model: {}", models.join("tiny.pfn").display())));

    // Without PFN_MODELS, ./models of the working directory is searched.
    std::fs::create_dir_all(cwd.join("models")).unwrap();
    std::fs::copy(model(), cwd.join("models/gp-hyper.pfn")).unwrap();
    let o = pfn_in(
        &["predict", "--train", s(&train), "--test", s(&test)],
        None,
        &cwd,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("model: models/gp-hyper.pfn"));

    // Nothing found: one line naming the model and where pfn looked.
    let empty = fresh("no-models");
    let err = one_line_error(
        &pfn_in(
            &["predict", "--train", s(&train), "--test", s(&test)],
            Some(&empty),
            &cwd,
        ),
        &["no model 'gp-hyper' found", "PFN_MODELS"],
    );
    assert!(err.contains(&empty.display().to_string()), "{err}");
    one_line_error(
        &pfn_in(
            &[
                "predict",
                "--model",
                "gp-7d",
                "--train",
                s(&train),
                "--test",
                s(&test),
            ],
            Some(&models),
            &cwd,
        ),
        &["no model 'gp-7d' found", "gp-7d.pfn"],
    );
}

#[test]
fn models_lists_the_models_directory() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shipped = root.join("models");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&shipped)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pfn"))
        .collect();
    files.sort();
    let o = pfn(&["models", "--dir", s(&shipped), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let models = doc["models"].as_array().unwrap();
    assert_eq!(models.len(), files.len(), "{doc}");
    assert_eq!(doc["invalid"], serde_json::json!([]));
    for (m, f) in models.iter().zip(&files) {
        assert_eq!(m["file"].as_str().unwrap(), s(f));
        assert_eq!(
            m["bytes"].as_u64().unwrap(),
            std::fs::metadata(f).unwrap().len()
        );
        let digest = m["sha256"].as_str().unwrap();
        assert!(
            digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit()),
            "{digest}"
        );
        assert!(m["parameters"].as_u64().unwrap() > 1000);
    }
    let gp = models
        .iter()
        .find(|m| m["name"] == "gp-1d")
        .expect("models/gp-1d.pfn is listed");
    assert_eq!(gp["prior"], "gp-1d");
    assert_eq!(gp["feature_range"], serde_json::json!([1, 1]));
    assert_eq!(gp["max_context"], 50);
    assert!(gp["training"]["datasets"].as_u64().unwrap() > 0);
    assert!(gp["final_validation_loss"].as_f64().is_some());

    // The table, found through ./models of the working directory.
    let o = pfn_in(&["models"], None, &root);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = String::from_utf8(o.stdout).unwrap();
    assert!(table.starts_with("models directory: models\n"), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with("gp-1d "))
        .unwrap_or_else(|| panic!("no gp-1d row: {table}"));
    let short: String = gp["sha256"].as_str().unwrap().chars().take(16).collect();
    assert!(row.contains(&short) && row.contains(" gp-1d "), "{row}");
    // gp-1d was trained from scratch (and resumed) in one run. A model trained in stages counts
    // every run its file records; where the oldest recorded run started from a file of unknown
    // training, the row names that file.
    assert!(gp["training"]["started_from"].is_null());
    assert_eq!(gp["training"]["in_all"]["runs"], 1);
    assert_eq!(gp["training"]["in_all"]["complete"], true);
    assert_eq!(
        gp["training"]["in_all"]["datasets"],
        gp["training"]["datasets"]
    );
    for m in models {
        let name = m["name"].as_str().unwrap();
        let row = table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} row: {table}"));
        let all = &m["training"]["in_all"];
        let runs = all["runs"].as_u64().unwrap();
        assert!(all["datasets"].as_u64() >= m["training"]["datasets"].as_u64());
        assert_eq!(runs > 1, row.contains(&format!(" in {runs} runs")), "{row}");
        match all["unknown_start"].as_str() {
            Some(start) if all["complete"] == false => {
                let file = std::path::Path::new(start)
                    .file_name()
                    .unwrap()
                    .to_string_lossy();
                assert!(row.contains(&format!("after {file}")), "{row}");
            }
            _ => assert!(!row.contains(" after "), "{row}"),
        }
    }

    // An empty directory lists nothing and succeeds.
    let empty = fresh("models-empty");
    let o = pfn(&["models", "--dir", s(&empty)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("no loadable model files"));
    let o = pfn(&["models", "--dir", s(&empty), "--json"]);
    assert!(o.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["models"], serde_json::json!([]));

    // A model whose weights were altered fails its digest check: listed, and the run fails.
    let bad = fresh("models-bad");
    let mut bytes = std::fs::read(model()).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x40;
    std::fs::write(bad.join("altered.pfn"), &bytes).unwrap();
    std::fs::copy(model(), bad.join("good.pfn")).unwrap();
    let o = pfn(&["models", "--dir", s(&bad)]);
    one_line_error(&o, &["altered.pfn", "digest mismatch"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.lines().any(|l| l.starts_with("good ")), "{stdout}");
    assert!(stdout.contains("cannot load: "), "{stdout}");

    one_line_error(
        &pfn(&["models", "--dir", s(&dir().join("no-such-dir"))]),
        &["cannot read the models directory", "no-such-dir"],
    );
}

#[test]
fn a_closed_output_pipe_ends_predict_quietly() {
    // `pfn predict --format csv | head -0`: the reader is gone before pfn writes.
    let mut child = Command::new(env!("CARGO_BIN_EXE_pfn"))
        .args([
            "predict",
            "--model",
            s(model()),
            "--train",
            s(&train_csv()),
            "--test",
            s(&test_csv()),
            "--format",
            "csv",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
}

#[test]
fn a_semicolon_separated_file_gets_a_delimiter_hint() {
    let train = write("semicolon.csv", "x;y\n0.1;0.5\n0.3;0.9\n");
    let o = pfn(&[
        "predict",
        "--model",
        s(model()),
        "--train",
        s(&train),
        "--test",
        s(&test_csv()),
    ]);
    one_line_error(&o, &["semicolon.csv", "semicolon", "tr ';' ','"]);
}

#[test]
fn values_that_overflow_the_scaling_name_the_column_and_the_cause() {
    // The shipped default model scales features by the context's min/max and standardises targets.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gp-hyper.pfn");
    let query = write("overflow-query.csv", "size,weight,y\n0.5,1,2\n");
    let wide = write(
        "overflow-feature.csv",
        "size,weight,y\n1e308,1,2\n-1e308,2,3\n0,3,4\n",
    );
    let args = |train: &Path| {
        pfn(&[
            "predict",
            "--model",
            s(&shipped),
            "--train",
            s(train),
            "--test",
            s(&query),
        ])
    };
    one_line_error(
        &args(&wide),
        &["overflow-feature.csv", "column 'size'", "too wide to scale"],
    );
    let huge_y = write(
        "overflow-target.csv",
        "size,weight,y\n0.1,1,1e200\n0.2,2,-1e200\n0.3,3,4\n",
    );
    one_line_error(
        &args(&huge_y),
        &[
            "overflow-target.csv",
            "column 'y'",
            "rescale the target column",
        ],
    );
    // A query far outside a narrow context range overflows f32 after scaling.
    let narrow = write(
        "overflow-narrow.csv",
        "size,weight,y\n0,1,2\n1e-300,2,3\n0,3,4\n",
    );
    let far = write("overflow-far.csv", "size,weight,y\n1e10,1,2\n");
    let o = pfn(&[
        "predict",
        "--model",
        s(&shipped),
        "--train",
        s(&narrow),
        "--test",
        s(&far),
    ]);
    one_line_error(&o, &["overflow-far.csv", "32-bit float range"]);
}

#[test]
fn more_context_rows_than_trained_are_all_used_with_a_note() {
    // The small model is trained with contexts of at most 11 points; give it 30 rows.
    let rows: String = (0..30)
        .map(|i| format!("{},{}\n", i as f64 / 30.0, (i as f64 / 5.0).sin()))
        .collect();
    let train = write("long-context.csv", &format!("x,y\n{rows}"));
    let out = dir().join("long-context.json");
    let o = pfn(&[
        "predict",
        "--model",
        s(model()),
        "--train",
        s(&train),
        "--test",
        s(&test_csv()),
        "--format",
        "json",
        "--out",
        s(&out),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("30 rows") && stderr.contains("at most 11") && stderr.contains("all rows"),
        "{stderr}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let preds = doc["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 3);
    for p in preds {
        for key in ["mean", "std"] {
            assert!(p[key].as_f64().unwrap().is_finite(), "{p}");
        }
    }
}

#[test]
fn set_tails_keeps_the_weights_and_changes_only_the_far_tails() {
    let pareto = dir().join("small-pareto.pfn");
    let o = pfn(&[
        "set-tails",
        "--model",
        s(model()),
        "--out",
        s(&pareto),
        "--tails",
        "pareto",
        "--tail-index",
        "4",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let before = pfn_artifact::load_model(model()).unwrap();
    let after = pfn_artifact::load_model(&pareto).unwrap();
    assert_eq!(before.tensors, after.tensors, "the weights must not change");
    let dist = after.metadata.head.bar_distribution().unwrap().unwrap();
    assert_eq!(
        dist.tail_shape(),
        pfn_distribution::TailShape::Pareto { index: 4.0 }
    );
    let config = pfn_train::run_config_of(&after.metadata).unwrap();
    assert_eq!(config.borders.tails, pfn_train::TailKind::Pareto);
    assert_eq!(config.borders.tail_index, Some(4.0));
    // The medians (interior buckets) agree; the files differ.
    let predict = |m: &Path, out: &str| {
        let out = dir().join(out);
        let o = pfn(&[
            "predict",
            "--model",
            s(m),
            "--train",
            s(&train_csv()),
            "--test",
            s(&test_csv()),
            "--out",
            s(&out),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read_to_string(out).unwrap()
    };
    let (a, b) = (predict(model(), "hn.csv"), predict(&pareto, "pa.csv"));
    let column = |text: &str, name: &str| -> Vec<f64> {
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let j = header.iter().position(|h| *h == name).unwrap();
        lines
            .map(|l| l.split(',').nth(j).unwrap().parse().unwrap())
            .collect()
    };
    assert_eq!(column(&a, "median"), column(&b, "median"));
    // A bad index is a one-line error; an unknown shape is clap's usage error naming the choices.
    let o = pfn(&[
        "set-tails",
        "--model",
        s(model()),
        "--out",
        s(&pareto),
        "--tails",
        "pareto",
        "--tail-index",
        "2",
    ]);
    one_line_error(&o, &["above 2"]);
    let o = pfn(&[
        "set-tails",
        "--model",
        s(model()),
        "--out",
        s(&pareto),
        "--tails",
        "cauchy",
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && stderr.contains("half-normal, pareto"),
        "{stderr}"
    );
}

/// A black-on-white `side x side` PNG with a bar through the middle: vertical or horizontal, its
/// position shifted by `shift` pixels.
fn bar_png(path: &Path, side: usize, vertical: bool, shift: isize) {
    let mut pixels = vec![255u8; side * side];
    let mid = (side / 2) as isize + shift;
    for i in side / 6..side - side / 6 {
        for d in -2..=2isize {
            let j = (mid + d) as usize;
            let (r, c) = if vertical { (i, j) } else { (j, i) };
            pixels[r * side + c] = 0;
        }
    }
    let file = std::fs::File::create(path).unwrap();
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), side as u32, side as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .unwrap()
        .write_image_data(&pixels)
        .unwrap();
}

#[test]
fn classify_images_tells_bars_apart_with_the_shipped_strokes_model() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let base = dir().join("images");
    let _ = std::fs::remove_dir_all(&base);
    for (split, shifts) in [
        ("train", [-6isize, -3, 0, 3, 6]),
        ("test", [-5, -2, 1, 4, 7]),
    ] {
        for (class, vertical) in [("horizontal", false), ("vertical", true)] {
            let folder = base.join(split).join(class);
            std::fs::create_dir_all(&folder).unwrap();
            for (i, shift) in shifts.iter().enumerate() {
                bar_png(&folder.join(format!("{i}.png")), 105, vertical, *shift);
            }
        }
    }
    let out = base.join("predictions.csv");
    let o = pfn(&[
        "classify-images",
        "--model",
        s(&root.join("models/strokes.pfn")),
        "--train",
        s(&base.join("train")),
        "--test",
        s(&base.join("test")),
        "--out",
        s(&out),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    // 10 examples where the model was trained with 25: said, not hidden.
    assert!(stderr.contains("note: 10 example images"), "{stderr}");
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "file,p_horizontal,p_vertical,predicted"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 10);
    for row in &rows {
        let cells: Vec<&str> = row.split(',').collect();
        let (p0, p1): (f64, f64) = (cells[1].parse().unwrap(), cells[2].parse().unwrap());
        assert!((p0 + p1 - 1.0).abs() < 1e-4, "{row}");
        let want = if cells[0].contains("/vertical/") {
            "vertical"
        } else {
            "horizontal"
        };
        assert_eq!(cells[3], want, "{row}");
    }
    assert!(
        stderr.contains("accuracy on the labelled test images: 1.000"),
        "{stderr}"
    );

    // A regression model and an unknown class are clear errors.
    let o = pfn(&[
        "classify-images",
        "--model",
        s(&root.join("models/gp-1d.pfn")),
        "--train",
        s(&base.join("train")),
        "--test",
        s(&base.join("test")),
    ]);
    one_line_error(&o, &["a regression model"]);
    std::fs::create_dir_all(base.join("test/diagonal")).unwrap();
    let o = pfn(&[
        "classify-images",
        "--model",
        s(&root.join("models/strokes.pfn")),
        "--train",
        s(&base.join("train")),
        "--test",
        s(&base.join("test")),
    ]);
    one_line_error(&o, &["class 'diagonal' has no examples"]);
}

#[test]
fn a_model_trained_in_stages_records_its_lineage_and_set_lineage_rewrites_it() {
    let work = fresh("lineage");
    // Stage 2 starts from the shared model, stage 3 from stage 2: each file records the runs
    // before it.
    let stage = |name: &str, start: &Path| -> PathBuf {
        let config = SMALL.replace("[run]\n", &format!("[run]\ninit_from = {:?}\n", s(start)));
        let cfg = work.join(format!("{name}.toml"));
        std::fs::write(&cfg, config).unwrap();
        let out = work.join(format!("{name}.pfn"));
        let o = pfn(&["train", "--config", s(&cfg), "--out", s(&out), "--quiet"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out
    };
    let second = stage("second", model());
    let third = stage("third", &second);
    let listed = |dir: &Path| -> serde_json::Value {
        let o = pfn(&["models", "--dir", s(dir), "--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let doc = listed(&work);
    let third_row = doc["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "third")
        .unwrap()
        .clone();
    let all = &third_row["training"]["in_all"];
    assert_eq!(all["runs"], 3, "{third_row}");
    assert_eq!(all["steps"], 90);
    assert_eq!(all["complete"], true);

    // The start files move; set-lineage records the chain from where they are now.
    let moved = work.join("moved");
    std::fs::create_dir_all(&moved).unwrap();
    std::fs::copy(&second, moved.join("second-kept.pfn")).unwrap();
    let out = moved.join("third.pfn");
    let o = pfn(&[
        "set-lineage",
        "--model",
        s(&third),
        "--out",
        s(&out),
        "--start",
        s(&moved.join("second-kept.pfn")),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("weights unchanged") && text.contains("second-kept.pfn"),
        "{text}"
    );
    assert!(text.contains("in all: 3 runs, 90 steps"), "{text}");
    let (before, after) = (
        pfn_artifact::load_model(&third).unwrap(),
        pfn_artifact::load_model(&out).unwrap(),
    );
    assert_eq!(before.tensors, after.tensors);
    assert_eq!(after.metadata.lineage.len(), 2);
    assert!(after.metadata.lineage[1].file.ends_with("second-kept.pfn"));
    assert_eq!(after.metadata.training_in_all().steps, 90);

    // A model trained from scratch has nothing to record; a start of another shape is refused.
    one_line_error(
        &pfn(&[
            "set-lineage",
            "--model",
            s(model()),
            "--out",
            s(&work.join("x.pfn")),
            "--start",
            s(&second),
        ]),
        &["small.pfn", "from scratch"],
    );
    let wide = SMALL.replace("emsize = 16", "emsize = 32");
    let cfg = work.join("wide.toml");
    std::fs::write(&cfg, wide).unwrap();
    let wide_model = work.join("wide.pfn");
    let o = pfn(&[
        "train",
        "--config",
        s(&cfg),
        "--out",
        s(&wide_model),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    one_line_error(
        &pfn(&[
            "set-lineage",
            "--model",
            s(&third),
            "--out",
            s(&work.join("x.pfn")),
            "--start",
            s(&wide_model),
        ]),
        &["wide.pfn", "architecture"],
    );
}

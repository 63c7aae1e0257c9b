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

fn train_csv() -> PathBuf {
    write(
        "train.csv",
        "x,y\n0.1,0.5\n0.3,0.9\n0.5,-0.2\n0.7,-0.8\n0.9,0.1\n",
    )
}

fn test_csv() -> PathBuf {
    write("test.csv", "x\n0.2\n0.6\n0.95\n")
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
    assert!(table
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .eq(["row", "mean", "median", "std", "q0.05", "q0.5", "q0.95"]));

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
    let loaded = pfn::train::artifact::load_model(&out_model).expect("imported artifact loads");
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
    assert_eq!(table.lines().count(), 16, "header + 15 test rows: {table}");
}

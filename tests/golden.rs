//! Golden parity with the PyTorch reference implementation.
//!
//! Every folder under `$PFN_GOLDEN_DIR` (default `tests/fixtures/golden/`) that holds a
//! `fixture.json` is one fixture (see the README there): a PyTorch state dict of the paper's PFN
//! (`model.safetensors`), cases with inputs and expected outputs (`cases.safetensors`) and the
//! gradient of the mean full-support NLL of `case1` (`grads.safetensors`). For each fixture this test
//! imports the weights, runs every case and checks
//! - the logits to 1e-4 absolute,
//! - the bar-distribution NLL, mean, median, variance and icdf values to 1e-4 relative,
//! - the loss and the gradient of every parameter to 1e-4 relative plus 1e-6 absolute.
//!
//! It prints the largest deviation per fixture and quantity, and fails when no fixture is found.
//!
//! Run: `PFN_GOLDEN_DIR=DIR cargo test --release --workspace --test golden -- --nocapture`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pfn::distribution::BarDistribution;
use pfn::engine::Engine;
use pfn::model::io::torch_name;
use pfn::model::{Batch, PfnConfig, PfnModel, Workspace};
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use serde_json::Value;

const LOGITS_ABS_TOL: f64 = 1e-4;
const STAT_REL_TOL: f64 = 1e-4;
const GRAD_REL_TOL: f64 = 1e-4;
const GRAD_ABS_TOL: f64 = 1e-6;
/// The icdf probabilities of the fixtures (used when fixture.json does not list its own).
const DEFAULT_ICDF_PROBS: [f64; 5] = [0.05, 0.159, 0.5, 0.841, 0.95];

fn fixture_root() -> PathBuf {
    match std::env::var_os("PFN_GOLDEN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden"),
    }
}

fn fixture_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("cannot read fixture directory {}: {e}", root.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.join("fixture.json").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// A tensor from a safetensors file as f32 values and its shape.
fn tensor(st: &SafeTensors<'_>, name: &str, file: &str) -> (Vec<f32>, Vec<usize>) {
    let view = st
        .tensor(name)
        .unwrap_or_else(|_| panic!("{file}: tensor {name} is missing"));
    assert_eq!(view.dtype(), Dtype::F32, "{file}: tensor {name} is not F32");
    let data = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (data, view.shape().to_vec())
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn usize_field(json: &Value, key: &str) -> usize {
    json[key]
        .as_u64()
        .unwrap_or_else(|| panic!("fixture.json: {key} missing or not an integer")) as usize
}

/// Largest deviation of one quantity, and whether it stayed within tolerance.
#[derive(Default)]
struct Deviation {
    worst: f64,
    worst_at: String,
    failures: usize,
}

impl Deviation {
    /// Records `got` vs `want`; `excess` is the deviation in units of the tolerance (<= 1 passes).
    fn record(&mut self, deviation: f64, excess: f64, at: impl FnOnce() -> String) {
        if excess > 1.0 || excess.is_nan() {
            self.failures += 1;
        }
        if deviation > self.worst || deviation.is_nan() {
            self.worst = deviation;
            self.worst_at = at();
        }
    }
}

fn abs_check(dev: &mut Deviation, got: f64, want: f64, tol: f64, at: impl FnOnce() -> String) {
    let d = (got - want).abs();
    dev.record(d, d / tol, at);
}

/// Relative deviation, with `abs_floor` as the tolerance floor for entries near zero.
fn rel_check(
    dev: &mut Deviation,
    got: f64,
    want: f64,
    rel: f64,
    abs_floor: f64,
    at: impl FnOnce() -> String,
) {
    let d = (got - want).abs();
    let tol = rel * want.abs() + abs_floor;
    dev.record(d / want.abs().max(abs_floor / rel), d / tol, at);
}

/// Sequence-first (T, B, W) to batch-first (B, T, W).
fn to_batch_first(data: &[f32], t: usize, b: usize, w: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for ti in 0..t {
        for bi in 0..b {
            let src = (ti * b + bi) * w;
            let dst = (bi * t + ti) * w;
            out[dst..dst + w].copy_from_slice(&data[src..src + w]);
        }
    }
    out
}

fn check_fixture(dir: &Path, engine: &Engine) -> BTreeMap<&'static str, Deviation> {
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    let json: Value = serde_json::from_slice(&read(&dir.join("fixture.json")))
        .unwrap_or_else(|e| panic!("{name}/fixture.json: {e}"));
    let config = PfnConfig {
        num_features: usize_field(&json, "num_features"),
        emsize: usize_field(&json, "emsize"),
        nhead: usize_field(&json, "nhead"),
        nhid: usize_field(&json, "nhid"),
        nlayers: usize_field(&json, "nlayers"),
        n_out: usize_field(&json, "buckets"),
        // The paper's code lets queries attend to themselves; a fixture may say otherwise.
        query_self_attention: json["query_self_attention"].as_bool().unwrap_or(true),
        layer_norm_eps: json["layer_norm_eps"].as_f64().unwrap_or(1e-5) as f32,
    };
    let icdf_probs: Vec<f64> = match json["icdf_probabilities"].as_array() {
        Some(a) => a
            .iter()
            .map(|v| v.as_f64().expect("icdf_probabilities"))
            .collect(),
        None => DEFAULT_ICDF_PROBS.to_vec(),
    };
    let model = PfnModel::import_torch_file(dir.join("model.safetensors"), config.clone())
        .unwrap_or_else(|e| panic!("{name}: import failed: {e}"));
    let cases_bytes = read(&dir.join("cases.safetensors"));
    let cases = SafeTensors::deserialize(&cases_bytes).expect("cases.safetensors");
    let (borders, _) = tensor(&cases, "borders", "cases");
    let dist = BarDistribution::full_support(borders.iter().map(|&v| v as f64).collect())
        .unwrap_or_else(|e| panic!("{name}: borders: {e}"));
    let k = config.n_out;
    let f = config.num_features;

    let mut devs: BTreeMap<&'static str, Deviation> = BTreeMap::new();
    let case_list = json["cases"].as_array().expect("fixture.json: cases");
    assert!(!case_list.is_empty(), "{name}: no cases");
    for case in case_list {
        let cname = case["name"].as_str().expect("case name").to_string();
        let (t, b, n) = (
            usize_field(case, "seq_len"),
            usize_field(case, "batch"),
            usize_field(case, "single_eval_pos"),
        );
        let m = t - n;
        let (x, xs) = tensor(&cases, &format!("{cname}_x"), "cases");
        let (y, _) = tensor(&cases, &format!("{cname}_y"), "cases");
        assert_eq!(xs, vec![t, b, f], "{name}/{cname}: x shape");
        let x = to_batch_first(&x, t, b, f);
        let y = to_batch_first(&y, t, b, 1);
        let batch = Batch {
            x: &x,
            y: &y,
            batch: b,
            seq_len: t,
            single_eval_pos: n,
        };
        let mut ws = Workspace::inference();
        let logits = model
            .forward(engine, &mut ws, &batch)
            .unwrap_or_else(|e| panic!("{name}/{cname}: forward: {e}"))
            .to_vec();
        let (want_logits, ls) = tensor(&cases, &format!("{cname}_logits"), "cases");
        assert_eq!(ls, vec![m, b, k], "{name}/{cname}: logits shape");
        let (targets, _) = tensor(&cases, &format!("{cname}_target"), "cases");
        let stat = |s: &str| tensor(&cases, &format!("{cname}_{s}"), "cases").0;
        let (want_nll, want_mean, want_median, want_var, want_icdf) = (
            stat("nll"),
            stat("mean"),
            stat("median"),
            stat("variance"),
            stat("icdf"),
        );
        assert_eq!(
            want_icdf.len(),
            m * b * icdf_probs.len(),
            "{name}/{cname}: icdf shape"
        );
        for j in 0..m {
            for bi in 0..b {
                let ours = &logits[(bi * m + j) * k..(bi * m + j + 1) * k];
                let theirs = &want_logits[(j * b + bi) * k..(j * b + bi + 1) * k];
                let dl = devs.entry("logits").or_default();
                for c in 0..k {
                    abs_check(dl, ours[c] as f64, theirs[c] as f64, LOGITS_ABS_TOL, || {
                        format!("{cname} query {j} batch {bi} bucket {c}")
                    });
                }
                let r = j * b + bi;
                let at = || format!("{cname} query {j} batch {bi}");
                let pred = dist.predict(ours).expect("predict");
                let nll = dist.nll(ours, targets[r] as f64).expect("nll");
                // f32 reference statistics: allow their own rounding (1e-7 relative) beside 1e-4.
                let floor = 1e-6;
                rel_check(
                    devs.entry("nll").or_default(),
                    nll,
                    want_nll[r] as f64,
                    STAT_REL_TOL,
                    floor,
                    at,
                );
                rel_check(
                    devs.entry("mean").or_default(),
                    pred.mean(),
                    want_mean[r] as f64,
                    STAT_REL_TOL,
                    floor,
                    at,
                );
                rel_check(
                    devs.entry("median").or_default(),
                    pred.median(),
                    want_median[r] as f64,
                    STAT_REL_TOL,
                    floor,
                    at,
                );
                rel_check(
                    devs.entry("variance").or_default(),
                    pred.variance(),
                    want_var[r] as f64,
                    STAT_REL_TOL,
                    floor,
                    at,
                );
                for (qi, &q) in icdf_probs.iter().enumerate() {
                    let want = want_icdf[r * icdf_probs.len() + qi] as f64;
                    let got = pred.icdf(q).expect("icdf");
                    rel_check(
                        devs.entry("icdf").or_default(),
                        got,
                        want,
                        STAT_REL_TOL,
                        floor,
                        || format!("{cname} query {j} batch {bi} p {q}"),
                    );
                }
            }
        }
    }

    // Gradient of the mean NLL of case1 for every parameter.
    let grads_bytes = read(&dir.join("grads.safetensors"));
    let grads = SafeTensors::deserialize(&grads_bytes).expect("grads.safetensors");
    let case = case_list
        .iter()
        .find(|c| c["name"] == "case1")
        .unwrap_or_else(|| panic!("{name}: no case1 for the gradient check"));
    let (t, b, n) = (
        usize_field(case, "seq_len"),
        usize_field(case, "batch"),
        usize_field(case, "single_eval_pos"),
    );
    let m = t - n;
    let x = to_batch_first(&tensor(&cases, "case1_x", "cases").0, t, b, f);
    let y = to_batch_first(&tensor(&cases, "case1_y", "cases").0, t, b, 1);
    let targets = to_batch_first(&tensor(&cases, "case1_target", "cases").0, m, b, 1);
    let batch = Batch {
        x: &x,
        y: &y,
        batch: b,
        seq_len: t,
        single_eval_pos: n,
    };
    let mut model = model;
    let mut ws = Workspace::training();
    let logits = model
        .forward(engine, &mut ws, &batch)
        .expect("forward")
        .to_vec();
    let mut d_logits = vec![0.0f32; logits.len()];
    let rows = targets.len();
    let loss_sum = dist
        .nll_and_grad(&logits, &targets, &mut d_logits, 1.0 / rows as f32)
        .expect("nll_and_grad");
    let loss = loss_sum / rows as f64;
    let want_loss = tensor(&grads, "loss", "grads").0[0] as f64;
    rel_check(
        devs.entry("loss").or_default(),
        loss,
        want_loss,
        GRAD_REL_TOL,
        GRAD_ABS_TOL,
        || "case1".into(),
    );
    model.zero_grad();
    model
        .backward(engine, &mut ws, &d_logits)
        .expect("backward");
    let mut seen = 0;
    for info in model.layout().entries().to_vec() {
        let tname = format!("grad.{}", torch_name(&info.name));
        let (want, shape) = tensor(&grads, &tname, "grads");
        assert_eq!(shape, info.shape, "{name}: {tname} shape");
        let got = model.grad(&info.name).unwrap();
        let dg = devs.entry("gradients").or_default();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            rel_check(dg, *g as f64, *w as f64, GRAD_REL_TOL, GRAD_ABS_TOL, || {
                format!("{tname}[{i}]")
            });
        }
        seen += 1;
    }
    let grad_tensors = grads
        .names()
        .iter()
        .filter(|n| n.starts_with("grad."))
        .count();
    assert_eq!(
        seen, grad_tensors,
        "{name}: grads.safetensors has gradients of unknown parameters"
    );
    devs
}

#[test]
fn golden_fixtures_match_pytorch() {
    let root = fixture_root();
    let dirs = fixture_dirs(&root);
    assert!(
        !dirs.is_empty(),
        "no golden fixture (folder with fixture.json) found in {}",
        root.display()
    );
    let engine = Engine::new(2).expect("engine");
    let mut failed = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let devs = check_fixture(dir, &engine);
        println!("fixture {name}:");
        for (quantity, d) in &devs {
            let kind = if *quantity == "logits" { "abs" } else { "rel" };
            println!(
                "  {quantity:<10} max {kind} deviation {:.3e} at {}{}",
                d.worst,
                d.worst_at,
                if d.failures > 0 {
                    format!("  -- {} entries out of tolerance", d.failures)
                } else {
                    String::new()
                }
            );
            if d.failures > 0 {
                failed.push(format!("{name}: {quantity} ({} entries)", d.failures));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "golden deviations beyond tolerance: {failed:?}"
    );
}

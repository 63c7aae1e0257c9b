//! Golden parity with the PyTorch reference implementation.
//!
//! Every folder under `$PFN_GOLDEN_DIR` (default `tests/fixtures/golden/`) that holds a
//! `fixture.json` is one fixture (see the README there): a PyTorch state dict of the paper's PFN
//! (`model.safetensors`), cases with inputs and expected outputs (`cases.safetensors`) and the
//! gradient of the mean full-support NLL of `case1` (`grads.safetensors`). For each fixture this test
//! imports the weights, runs every case and checks
//! - the logits to 1e-4 absolute,
//! - the bar-distribution NLL, mean, median, variance and icdf values to 1e-4 relative,
//! - the loss to 1e-4 relative plus 1e-6 absolute, and the gradient of every parameter tensor
//!   normwise: max |g - g_ref| <= 1e-4 max |g_ref| + 1e-6 over the tensor (entry by entry was the
//!   wrong criterion: an entry 80x below its tensor's largest one deviated 2.1e-4 of itself on an
//!   AVX2 CPU, 2.7e-6 of the tensor's scale, through the reassociated sums of other kernels).
//!
//! `PFN_SIMD_LEVEL=avx2` (or `base`) runs the engine's kernels as on a CPU without AVX-512 (CI does).
//!
//! It prints the largest deviation per fixture and quantity, and fails when no fixture is found.
//!
//! A second test trains in bf16 mixed precision on the same fixtures (case1) and checks every
//! gradient tensor against the f32 gradients within the bf16 bound (see [`BF16_GRAD_C`]), on the
//! native AVX-512 BF16 kernel where the CPU has it and on the emulated path.
//!
//! Run: `PFN_GOLDEN_DIR=DIR cargo test --release --workspace --test golden -- --nocapture`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pfn::distribution::BarDistribution;
use pfn::engine::Engine;
use pfn::model::io::torch_name;
use pfn::model::{Batch, PfnConfig, PfnModel, Precision, Workspace};
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use serde_json::Value;

const LOGITS_ABS_TOL: f64 = 1e-4;
const STAT_REL_TOL: f64 = 1e-4;
const GRAD_REL_TOL: f64 = 1e-4;
const GRAD_ABS_TOL: f64 = 1e-6;
/// bf16 training: each gradient tensor g must satisfy max|g_bf16 - g_f32| <= C max|g_f32|.
///
/// Rounding an operand to bf16 moves it by at most u = 2^-8 relative, so one product term moves by
/// at most 2u and a dot product by at most 2u sum|a_i b_i|; with independent roundings of random
/// sign the deviation of a length-n dot product is about 2u sqrt(n) rms|a_i b_i|, i.e. about 2u of
/// the result's normwise scale (whose own size is about sqrt(n) rms|a_i b_i|): the reduction length
/// cancels in the expected case and enters only the worst case, 2u sum|a_i b_i| <= 2u sqrt(n) x the
/// scale (n <= 128 inner products, 90 token rows in case1's weight gradients: a factor <= 11).
/// A gradient tensor is reached through a chain of such products: for the 5-D fixture's 3 layers, the
/// decoder's 2 and 4 per layer forward, the same backward, and its own weight-gradient product,
/// D = 2 (2 + 4 x 3) + 1 = 29; independent relative errors add in quadrature, so the expected
/// normwise deviation is about 2u sqrt(D) = 0.042, and the realistic worst case (aligned
/// roundings in one long reduction) 2u sqrt(D) sqrt(n) ~ 0.45. C = 2^-3 = 0.125 is 3x the expected
/// deviation and well below the worst case; an operand bug (a transposed, stale or unrounded-where-
/// it-matters weight) moves gradients by O(1) and fails. Measured (native and emulated alike):
/// median 1.2-1.5e-2, largest 2.6-3.1e-2 (`encoder.y.weight`, `decoder.output.weight`).
const BF16_GRAD_C: f64 = 1.0 / 8.0;
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

/// The architecture of a fixture (`fixture.json`).
fn fixture_config(json: &Value) -> PfnConfig {
    PfnConfig {
        num_features: usize_field(json, "num_features"),
        emsize: usize_field(json, "emsize"),
        nhead: usize_field(json, "nhead"),
        nhid: usize_field(json, "nhid"),
        nlayers: usize_field(json, "nlayers"),
        n_out: usize_field(json, "buckets"),
        // The paper's code lets queries attend to themselves; a fixture may say otherwise.
        query_self_attention: json["query_self_attention"].as_bool().unwrap_or(true),
        layer_norm_eps: json["layer_norm_eps"].as_f64().unwrap_or(1e-5) as f32,
        y_classes: None,
    }
}

/// The mean NLL of `case1` and its gradient (left in the model's gradient buffer, and returned
/// flat), from a training-mode forward and backward pass.
fn case1_loss_and_grads(
    model: &mut PfnModel,
    engine: &Engine,
    dist: &BarDistribution,
    cases: &SafeTensors<'_>,
    json: &Value,
) -> (f64, Vec<f32>) {
    let case = json["cases"]
        .as_array()
        .expect("fixture.json: cases")
        .iter()
        .find(|c| c["name"] == "case1")
        .expect("no case1 for the gradient check");
    let (t, b, n) = (
        usize_field(case, "seq_len"),
        usize_field(case, "batch"),
        usize_field(case, "single_eval_pos"),
    );
    let (m, f) = (t - n, model.config().num_features);
    let x = to_batch_first(&tensor(cases, "case1_x", "cases").0, t, b, f);
    let y = to_batch_first(&tensor(cases, "case1_y", "cases").0, t, b, 1);
    let targets = to_batch_first(&tensor(cases, "case1_target", "cases").0, m, b, 1);
    let batch = Batch {
        x: &x,
        y: &y,
        batch: b,
        seq_len: t,
        single_eval_pos: n,
    };
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
    model.zero_grad();
    model
        .backward(engine, &mut ws, &d_logits)
        .expect("backward");
    (loss_sum / rows as f64, model.grads().to_vec())
}

fn check_fixture(dir: &Path, engine: &Engine) -> BTreeMap<&'static str, Deviation> {
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    let json: Value = serde_json::from_slice(&read(&dir.join("fixture.json")))
        .unwrap_or_else(|e| panic!("{name}/fixture.json: {e}"));
    let config = fixture_config(&json);
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
    let mut model = model;
    let (loss, _) = case1_loss_and_grads(&mut model, engine, &dist, &cases, &json);
    let want_loss = tensor(&grads, "loss", "grads").0[0] as f64;
    rel_check(
        devs.entry("loss").or_default(),
        loss,
        want_loss,
        GRAD_REL_TOL,
        GRAD_ABS_TOL,
        || "case1".into(),
    );
    let mut seen = 0;
    for info in model.layout().entries().to_vec() {
        let tname = format!("grad.{}", torch_name(&info.name));
        let (want, shape) = tensor(&grads, &tname, "grads");
        assert_eq!(shape, info.shape, "{name}: {tname} shape");
        let got = model.grad(&info.name).unwrap();
        let dg = devs.entry("gradients").or_default();
        // Normwise per tensor: the largest deviation against the tensor's largest entry. An entry
        // far below the tensor's scale carries the rounding of the large ones it is summed with
        // (reassociated differently by each CPU's kernels), so it cannot be held to 1e-4 of itself.
        let scale = want.iter().fold(0.0f64, |m, &w| m.max(f64::from(w).abs()));
        let (worst, at) = got
            .iter()
            .zip(&want)
            .map(|(g, w)| (f64::from(*g) - f64::from(*w)).abs())
            .enumerate()
            .fold(
                (0.0f64, 0),
                |(m, k), (i, d)| if d > m { (d, i) } else { (m, k) },
            );
        let tol = GRAD_REL_TOL * scale + GRAD_ABS_TOL;
        dg.record(
            worst / scale.max(GRAD_ABS_TOL / GRAD_REL_TOL),
            worst / tol,
            || format!("{tname}[{at}] (tensor scale {scale:.3e})"),
        );
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

/// Per gradient tensor of one fixture: max|g_bf16 - g_f32| / max|g_f32| and the tensor's name.
fn bf16_gradient_ratios(dir: &Path, engine: &Engine) -> Vec<(String, f64)> {
    let json: Value = serde_json::from_slice(&read(&dir.join("fixture.json"))).expect("json");
    let config = fixture_config(&json);
    let mut model =
        PfnModel::import_torch_file(dir.join("model.safetensors"), config).expect("import");
    let cases_bytes = read(&dir.join("cases.safetensors"));
    let cases = SafeTensors::deserialize(&cases_bytes).expect("cases.safetensors");
    let (borders, _) = tensor(&cases, "borders", "cases");
    let dist = BarDistribution::full_support(borders.iter().map(|&v| v as f64).collect())
        .expect("borders");
    let (loss32, g32) = case1_loss_and_grads(&mut model, engine, &dist, &cases, &json);
    model.set_training_precision(Precision::Bf16);
    let (loss16, g16) = case1_loss_and_grads(&mut model, engine, &dist, &cases, &json);
    assert!(
        ((loss16 - loss32) / loss32).abs() < BF16_GRAD_C,
        "bf16 loss {loss16} vs f32 {loss32}"
    );
    model
        .layout()
        .entries()
        .iter()
        .map(|info| {
            let r = info.range();
            let scale = g32[r.clone()]
                .iter()
                .fold(0.0f64, |m, v| m.max(v.abs() as f64));
            let dev = g16[r.clone()]
                .iter()
                .zip(&g32[r])
                .fold(0.0f64, |m, (a, b)| m.max((a - b).abs() as f64));
            (info.name.clone(), dev / scale.max(f64::MIN_POSITIVE))
        })
        .collect()
}

#[test]
fn golden_bf16_training_gradients_within_the_bf16_bound() {
    let root = fixture_root();
    let dirs = fixture_dirs(&root);
    assert!(!dirs.is_empty(), "no golden fixture in {}", root.display());
    let engine = Engine::new(2).expect("engine");
    // The native kernel where the CPU has it, then the emulated path (the switch is process-wide;
    // the other test of this file runs in f32 only and never reads it).
    let mut paths = vec![("emulated", true)];
    if pfn::engine::bf16::hardware_available() {
        paths.insert(0, ("native", false));
    }
    let mut failed = Vec::new();
    for (path, emulate) in paths {
        pfn::engine::bf16::set_force_emulation(emulate);
        for dir in &dirs {
            let name = dir.file_name().unwrap().to_string_lossy().to_string();
            let ratios = bf16_gradient_ratios(dir, &engine);
            let (worst, worst_ratio) = ratios
                .iter()
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .cloned()
                .unwrap();
            let median = {
                let mut r: Vec<f64> = ratios.iter().map(|x| x.1).collect();
                r.sort_by(f64::total_cmp);
                r[r.len() / 2]
            };
            println!(
                "fixture {name} ({path} bf16): gradient deviation / scale: median {median:.2e}, \
                 max {worst_ratio:.2e} at {worst} (bound {BF16_GRAD_C:.2e})"
            );
            // The bf16 path must actually round: identical gradients would mean f32 products.
            assert!(
                ratios.iter().any(|r| r.1 > 0.0),
                "{name} ({path}): bf16 gradients equal the f32 ones"
            );
            for (tensor_name, r) in &ratios {
                if *r > BF16_GRAD_C {
                    failed.push(format!("{name} ({path}): {tensor_name} {r:.3e}"));
                }
            }
        }
    }
    pfn::engine::bf16::set_force_emulation(false);
    assert!(
        failed.is_empty(),
        "bf16 gradients beyond the bound: {failed:?}"
    );
}

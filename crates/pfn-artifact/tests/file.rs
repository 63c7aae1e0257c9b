//! Model artifact and training checkpoint: bit-identical round trips, determinism, atomic
//! writes, and one-line errors for foreign, truncated, corrupted and edited files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use pfn_artifact::{
    load_checkpoint, load_model, save_checkpoint, save_model, Architecture, ArtifactProblem,
    FeaturePadding, InputNormalisation, ModelMetadata, NamedTensor, OutputHead, TensorRef,
    TrainState, TrainingSpent, XNormalisation, YNormalisation,
};

static DIRS: AtomicUsize = AtomicUsize::new(0);

/// A fresh temporary directory, removed when dropped.
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch_dir() -> Scratch {
    let dir = std::env::temp_dir().join(format!(
        "pfn-artifact-file-{}-{}",
        std::process::id(),
        DIRS.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A run configuration as `pfn-train` stores it (the file keeps it as uninterpreted JSON).
fn config() -> serde_json::Value {
    serde_json::json!({
        "prior": {"name": "gp-1d", "seq_len": 20, "num_features": 1},
        "model": {"emsize": 8, "nlayers": 1, "nhead": 2, "nhid": 16, "buckets": 4},
        "borders": {"samples": 100},
        "optimizer": {"lr": 3.0000000000000004e-4, "weight_decay": 2.225_073_858_507_201e-308},
        "budget": {"steps": 7},
        "run": {"seed": 3}
    })
}

fn architecture() -> Architecture {
    Architecture {
        emsize: 8,
        nlayers: 1,
        nhead: 2,
        nhid: 16,
        num_features: 1,
        seq_len: 20,
        n_out: 4,
        query_self_attention: false,
        y_classes: None,
    }
}

/// Awkward f64 borders that a lossy JSON float parser would not reproduce bit for bit.
fn borders() -> Vec<f64> {
    vec![
        -std::f64::consts::PI,
        -0.1 - 0.2,
        2.225_073_858_507_201e-308,
        1.0 / 3.0,
        17.000_000_000_000_004,
    ]
}

fn metadata() -> ModelMetadata {
    ModelMetadata::new(
        architecture(),
        OutputHead::Riemann {
            borders: borders(),
            full_support: true,
            tail: Default::default(),
        },
        config(),
        "gp-1d",
        InputNormalisation {
            x: XNormalisation::ContextMinMax,
            y: YNormalisation::ContextStandardise,
            feature_padding: Some(FeaturePadding::Sqrt),
        },
        TrainingSpent {
            steps: 7,
            datasets: 224,
            seconds: 1.25,
        },
        Some(-0.123_456_789_012_345_67),
    )
}

/// Tensors including values whose bits must survive: NaN payloads, -0, infinities, subnormals.
fn tensors() -> Vec<NamedTensor> {
    let special = vec![
        f32::from_bits(0x7fc0_1234),
        f32::from_bits(0xffa0_0001),
        -0.0,
        0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::from_bits(1),
        f32::MAX,
        -1.5e-20,
    ];
    let weights: Vec<f32> = (0..24).map(|i| (i as f32 * 0.37).sin()).collect();
    vec![
        NamedTensor {
            name: "layers.0.attn.w_q".into(),
            shape: vec![4, 6],
            data: weights,
        },
        NamedTensor {
            name: "bias".into(),
            shape: vec![9],
            data: special,
        },
        NamedTensor {
            name: "scalar".into(),
            shape: vec![],
            data: vec![2.5],
        },
    ]
}

fn refs(t: &[NamedTensor]) -> Vec<TensorRef<'_>> {
    t.iter().map(NamedTensor::as_ref).collect()
}

fn bits(t: &NamedTensor) -> Vec<u32> {
    t.data.iter().map(|v| v.to_bits()).collect()
}

fn save_good_model(dir: &Path) -> PathBuf {
    let path = dir.join("model.pfn");
    save_model(&path, &metadata(), &refs(&tensors())).unwrap();
    path
}

fn load_err(path: &Path) -> String {
    let e = load_model(path).unwrap_err();
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "multi-line error: {msg}");
    assert!(
        msg.starts_with(&format!("{}: ", path.display())),
        "error does not name the file: {msg}"
    );
    msg
}

#[test]
fn model_round_trip_is_bit_identical() {
    let dir = scratch_dir();
    let path = save_good_model(&dir);
    let loaded = load_model(&path).unwrap();
    assert_eq!(loaded.metadata, metadata());
    assert_eq!(loaded.metadata.config, config());
    assert_eq!(loaded.metadata.max_context(), 19);
    assert_eq!(loaded.metadata.run_seed(), Some(3));
    let OutputHead::Riemann { borders: b, .. } = &loaded.metadata.head else {
        panic!("head kind changed")
    };
    let want: Vec<u64> = borders().iter().map(|v| v.to_bits()).collect();
    let got: Vec<u64> = b.iter().map(|v| v.to_bits()).collect();
    assert_eq!(got, want);
    assert_eq!(
        loaded.metadata.final_validation_loss.map(f64::to_bits),
        Some((-0.123_456_789_012_345_67f64).to_bits())
    );
    // Tensors come back in name order with identical shapes and bits.
    let mut original = tensors();
    original.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(loaded.tensors.len(), original.len());
    for (l, o) in loaded.tensors.iter().zip(&original) {
        assert_eq!((&l.name, &l.shape), (&o.name, &o.shape));
        assert_eq!(bits(l), bits(o), "tensor {}", o.name);
    }
    assert_eq!(bits(loaded.tensor("bias").unwrap()), bits(&tensors()[1]));
    assert!(loaded.tensor("nope").is_none());
    assert_eq!(loaded.digest.len(), 64);
    assert_eq!(file_names(&dir), vec!["model.pfn".to_string()]);
}

#[test]
fn files_are_deterministic_and_standard_safetensors() {
    let dir = scratch_dir();
    let a = dir.join("a.pfn");
    let b = dir.join("b.pfn");
    let t = tensors();
    save_model(&a, &metadata(), &refs(&t)).unwrap();
    let mut reversed = refs(&t);
    reversed.reverse();
    save_model(&b, &metadata(), &reversed).unwrap();
    let bytes = std::fs::read(&a).unwrap();
    assert_eq!(
        bytes,
        std::fs::read(&b).unwrap(),
        "input order changed the file"
    );

    // A generic safetensors reader sees the tensors and the metadata keys.
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let view = st.tensor("layers.0.attn.w_q").unwrap();
    assert_eq!(view.shape(), &[4, 6]);
    assert_eq!(view.dtype(), safetensors::Dtype::F32);
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().unwrap();
    assert_eq!(meta["format"], "pfn-model");
    assert_eq!(meta["format_version"], "1");
    let json: serde_json::Value = serde_json::from_str(&meta["pfn"]).unwrap();
    assert_eq!(json["prior"], "gp-1d");
    assert_eq!(json["training"]["steps"], 7);
    assert_eq!(json["architecture"]["n_out"], 4);
    assert_eq!(json["config"]["model"]["buckets"], 4);
    assert_eq!(json["normalisation"]["y"]["kind"], "context_standardise");
    assert_eq!(json["normalisation"]["feature_padding"], "sqrt");

    // Saving the loaded model again gives the same bytes.
    let c = dir.join("c.pfn");
    let loaded = load_model(&a).unwrap();
    save_model(&c, &loaded.metadata, &refs(&loaded.tensors)).unwrap();
    assert_eq!(
        std::fs::read(&c).unwrap(),
        bytes,
        "a round trip changed the file"
    );
}

#[test]
fn overwriting_keeps_no_temp_files_and_replaces_content() {
    let dir = scratch_dir();
    let path = save_good_model(&dir);
    let mut meta = metadata();
    meta.training.steps = 8;
    save_model(&path, &meta, &refs(&tensors())).unwrap();
    assert_eq!(load_model(&path).unwrap().metadata.training.steps, 8);
    assert_eq!(file_names(&dir), vec!["model.pfn".to_string()]);
}

#[test]
fn failed_write_leaves_no_temp_and_the_target_intact() {
    let dir = scratch_dir();
    // The target is an existing non-empty directory: the rename must fail.
    let target = dir.join("model.pfn");
    std::fs::create_dir_all(target.join("keep")).unwrap();
    let e = save_model(&target, &metadata(), &refs(&tensors())).unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with(&format!("{}: ", target.display())), "{msg}");
    assert!(matches!(e.problem, ArtifactProblem::Write(_)));
    assert!(msg.contains(": cannot write: "), "{msg}");
    assert_eq!(file_names(&dir), vec!["model.pfn".to_string()]);
    assert!(target.join("keep").is_dir());

    // A directory that does not exist.
    let missing = dir.join("no-such-dir").join("m.pfn");
    let e = save_model(&missing, &metadata(), &refs(&tensors())).unwrap_err();
    assert!(e.to_string().starts_with(&missing.display().to_string()));

    // A rejected save does not touch an existing good file.
    let good = dir.join("good.pfn");
    save_model(&good, &metadata(), &refs(&tensors())).unwrap();
    let before = std::fs::read(&good).unwrap();
    let mut bad = metadata();
    bad.final_validation_loss = Some(f64::NAN);
    let e = save_model(&good, &bad, &refs(&tensors()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("final validation loss is not finite"), "{e}");
    assert_eq!(std::fs::read(&good).unwrap(), before);
}

#[test]
fn invalid_inputs_are_rejected_before_writing() {
    let dir = scratch_dir();
    let path = dir.join("m.pfn");
    let data = [1.0f32, 2.0, 3.0];
    let dup = [
        TensorRef {
            name: "a",
            shape: &[3],
            data: &data,
        },
        TensorRef {
            name: "a",
            shape: &[3],
            data: &data,
        },
    ];
    let e = save_model(&path, &metadata(), &dup)
        .unwrap_err()
        .to_string();
    assert!(e.contains("duplicate tensor name 'a'"), "{e}");
    let wrong = [TensorRef {
        name: "a",
        shape: &[2, 2],
        data: &data,
    }];
    let e = save_model(&path, &metadata(), &wrong)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tensor 'a': shape [2, 2] holds 4 values but 3 were given"),
        "{e}"
    );
    let mut m = metadata();
    m.head = OutputHead::Riemann {
        borders: vec![0.0, 2.0, 1.0, 3.0, 4.0],
        full_support: true,
        tail: Default::default(),
    };
    let e = save_model(&path, &m, &[]).unwrap_err().to_string();
    assert!(e.contains("borders must be non-decreasing"), "{e}");
    let mut m = metadata();
    m.head = OutputHead::Riemann {
        borders: vec![0.0, 1.0, 2.0],
        full_support: true,
        tail: Default::default(),
    };
    let e = save_model(&path, &m, &[]).unwrap_err().to_string();
    assert!(
        e.contains("head has 2 outputs but the architecture says n_out = 4"),
        "{e}"
    );
    assert!(file_names(&dir).is_empty());
}

#[test]
fn foreign_files_are_not_models() {
    let dir = scratch_dir();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.pfn", vec![], "not a pfn model file: only 0 bytes"),
        (
            "short.pfn",
            b"abc".to_vec(),
            "not a pfn model file: only 3 bytes",
        ),
        (
            "config.json",
            br#"{"prior": {"name": "gp-1d"}, "model": {"emsize": 8}}"#.to_vec(),
            "not a pfn model file",
        ),
        (
            "random.bin",
            (0..4096u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect(),
            "not a pfn model file",
        ),
    ];
    for (name, bytes, want) in cases {
        let path = dir.join(name);
        std::fs::write(&path, &bytes).unwrap();
        let e = load_err(&path);
        assert!(e.contains(want), "{name}: {e}");
    }
    let e = load_err(&dir.join("missing.pfn"));
    assert!(e.contains(": cannot read: No such file"), "{e}");
}

#[test]
fn plain_safetensors_without_pfn_metadata() {
    let dir = scratch_dir();
    let path = dir.join("plain.safetensors");
    let data: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2], &data).unwrap();
    let bytes = safetensors::serialize([("w", view.clone())], None).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let e = load_err(&path);
    assert!(
        e.ends_with("not a pfn model file: safetensors file without 'format' in its __metadata__"),
        "{e}"
    );

    let mut meta = HashMap::new();
    meta.insert("format".to_string(), "pfn-model".to_string());
    meta.insert("format_version".to_string(), "99".to_string());
    let bytes = safetensors::serialize([("w", view)], Some(meta)).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let e = load_err(&path);
    assert!(
        e.ends_with("format version 99 is not supported (this build reads version 1)"),
        "{e}"
    );
}

#[test]
fn truncated_and_padded_files() {
    let dir = scratch_dir();
    let path = save_good_model(&dir);
    let bytes = std::fs::read(&path).unwrap();
    for cut in [bytes.len() - 1, bytes.len() - 30, 200, 9] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let e = load_err(&path);
        assert!(e.contains("truncated"), "cut at {cut}: {e}");
    }
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0, 0, 0]);
    std::fs::write(&path, &longer).unwrap();
    let e = load_err(&path);
    assert!(
        e.ends_with("3 unexpected trailing bytes after the tensor data"),
        "{e}"
    );
}

#[test]
fn corrupted_weights_and_edited_metadata_fail_the_digest() {
    let dir = scratch_dir();
    let path = save_good_model(&dir);
    let bytes = std::fs::read(&path).unwrap();
    // Flip one bit in the last tensor byte.
    let mut corrupt = bytes.clone();
    *corrupt.last_mut().unwrap() ^= 0x10;
    std::fs::write(&path, &corrupt).unwrap();
    let e = load_err(&path);
    assert!(e.contains("content digest mismatch"), "{e}");

    // Edit the metadata without breaking the JSON: 7 steps -> 9 steps (same length).
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let needle = "\\\"steps\\\":7";
    assert_eq!(
        text.matches(needle).count(),
        2,
        "steps appear in training and config"
    );
    let edited = bytes_replace_first(&bytes, needle.as_bytes(), b"\\\"steps\\\":9");
    std::fs::write(&path, &edited).unwrap();
    let e = load_err(&path);
    assert!(e.contains("content digest mismatch"), "{e}");

    // Rename a tensor in the header (same length): also detected.
    let edited = bytes_replace_first(&bytes, b"\"scalar\"", b"\"scaler\"");
    std::fs::write(&path, &edited).unwrap();
    let e = load_err(&path);
    assert!(e.contains("content digest mismatch"), "{e}");
}

fn bytes_replace_first(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let pos = hay
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern present");
    let mut out = hay.to_vec();
    out[pos..pos + to.len()].copy_from_slice(to);
    out
}

fn moments(t: &[NamedTensor], scale: f32) -> Vec<NamedTensor> {
    t.iter()
        .map(|x| NamedTensor {
            name: x.name.clone(),
            shape: x.shape.clone(),
            data: x
                .data
                .iter()
                .enumerate()
                .map(|(i, _)| scale * i as f32)
                .collect(),
        })
        .collect()
}

#[test]
fn checkpoint_round_trip_and_kind_checks() {
    let dir = scratch_dir();
    let path = dir.join("ckpt.pfn");
    let params = tensors();
    let m = moments(&params, 0.5);
    let v = moments(&params, 1e-6);
    let mut state = TrainState {
        step: 7,
        adam_step: 7,
        datasets: 224,
        seconds: 1.25,
        best_validation_loss: Some(0.5),
        ..TrainState::default()
    };
    state
        .extra
        .insert("losses".into(), serde_json::json!([1.5, 1.25, 1.0]));
    save_checkpoint(
        &path,
        &metadata(),
        &state,
        &refs(&params),
        &refs(&m),
        &refs(&v),
    )
    .unwrap();
    let c = load_checkpoint(&path).unwrap();
    assert_eq!(c.state, state);
    assert_eq!(c.metadata, metadata());
    let sorted = |mut x: Vec<NamedTensor>| {
        x.sort_by(|a, b| a.name.cmp(&b.name));
        x
    };
    for (got, want) in [
        (&c.params, sorted(params.clone())),
        (&c.adam_m, sorted(m)),
        (&c.adam_v, sorted(v)),
    ] {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!((&g.name, &g.shape, bits(g)), (&w.name, &w.shape, bits(w)));
        }
    }
    assert_eq!(file_names(&dir), vec!["ckpt.pfn".to_string()]);

    // A checkpoint is not a model and vice versa.
    let e = load_err(&path);
    assert!(
        e.ends_with("is a pfn-checkpoint file, expected a pfn-model file"),
        "{e}"
    );
    let model = save_good_model(&dir);
    let e = load_checkpoint(&model).unwrap_err().to_string();
    assert!(
        e.ends_with("is a pfn-model file, expected a pfn-checkpoint file"),
        "{e}"
    );

    // Corrupting a moment is detected.
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 2] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let e = load_checkpoint(&path).unwrap_err().to_string();
    assert!(e.contains("content digest mismatch"), "{e}");
}

#[test]
fn checkpoint_moments_must_match_parameters() {
    let dir = scratch_dir();
    let path = dir.join("ckpt.pfn");
    let params = tensors();
    let m = moments(&params, 1.0);
    let short = &m[..2];
    let e = save_checkpoint(
        &path,
        &metadata(),
        &TrainState::default(),
        &refs(&params),
        &refs(short),
        &refs(&m),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("adam_m must have exactly the parameters' names and shapes"),
        "{e}"
    );
    let mut renamed = m.clone();
    renamed[0].name = "other".into();
    let e = save_checkpoint(
        &path,
        &metadata(),
        &TrainState::default(),
        &refs(&params),
        &refs(&m),
        &refs(&renamed),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("adam_v must have exactly"), "{e}");
    assert!(file_names(&dir).is_empty());
}

/// Found by the `model_file` fuzz target: a file holding only an 8-byte header length (no header)
/// indexed past its end. It is a one-line "not a model" error now.
#[test]
fn a_file_of_only_a_header_length_is_an_error_not_a_panic() {
    let bytes = 0x455u64.to_le_bytes();
    let err = pfn_artifact::parse_model("eight.pfn", &bytes).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("eight.pfn") && msg.contains("safetensors"),
        "{msg}"
    );
}

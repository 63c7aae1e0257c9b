//! The model artifact and the training checkpoint: single, self-describing safetensors files.
//!
//! # File layout
//!
//! A standard safetensors file (any safetensors reader can list and load the tensors):
//! 8-byte little-endian header length, a JSON header, then the raw little-endian tensor bytes.
//! All tensors are `F32`, stored in name order. The header's `__metadata__` map holds:
//!
//! | key              | value                                                          |
//! |------------------|----------------------------------------------------------------|
//! | `format`         | `pfn-model` or `pfn-checkpoint`                                |
//! | `format_version` | `1` ([`FORMAT_VERSION`])                                       |
//! | `pfn`            | the [`ModelMetadata`] as JSON                                  |
//! | `train_state`    | the [`TrainState`] as JSON (checkpoints only)                  |
//! | `sha256`         | hex SHA-256 of the content, checked on load (see below)        |
//!
//! The digest covers, in order, each of `format`, `format_version`, `pfn`, `train_state` (empty
//! for a model) as a u64-LE byte length followed by the bytes, then the tensor count (u64 LE) and
//! for every tensor in name order: name length and bytes, rank and each dimension (u64 LE), data
//! length and the data bytes. Any change to a weight, a shape, a name or the metadata is detected.
//! The digest is over the stored metadata text, so a file verifies however a later build would
//! serialise the same metadata; the run configuration inside it ([`ModelMetadata::config`]) is
//! read back as plain JSON, so files stay readable when the training configuration changes.
//!
//! A checkpoint stores the model parameters under `param/<name>` and the AdamW moments under
//! `adam_m/<name>` and `adam_v/<name>`, plus the [`TrainState`] (step, budget spent, …). The
//! trainer's data position is a function of the step, so these are all a resumed run needs.
//!
//! Writes go through [`crate::atomic::write_atomically`]. The same inputs always give the same
//! file bytes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use safetensors::{Dtype, SafeTensorError, SafeTensors};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::atomic::write_atomically;
use crate::metadata::ModelMetadata;

/// Version of the file layout and metadata schema written by this build.
pub const FORMAT_VERSION: u32 = 1;
/// `format` value of a model artifact.
pub const MODEL_FORMAT: &str = "pfn-model";
/// `format` value of a training checkpoint.
pub const CHECKPOINT_FORMAT: &str = "pfn-checkpoint";

const KEY_FORMAT: &str = "format";
const KEY_VERSION: &str = "format_version";
const KEY_METADATA: &str = "pfn";
const KEY_STATE: &str = "train_state";
const KEY_DIGEST: &str = "sha256";
/// Largest header safetensors accepts (100 MB); a larger length means "not a safetensors file".
const MAX_HEADER: u64 = 100_000_000;

const PARAM_PREFIX: &str = "param/";
const ADAM_M_PREFIX: &str = "adam_m/";
const ADAM_V_PREFIX: &str = "adam_v/";

/// A problem with an artifact or checkpoint file; see [`ArtifactError`].
#[derive(Debug, thiserror::Error)]
pub enum ArtifactProblem {
    /// Reading the file failed.
    #[error("cannot read: {0}")]
    Read(std::io::Error),
    /// Writing the file failed (the previous file, if any, is unchanged).
    #[error("cannot write: {0}")]
    Write(std::io::Error),
    /// Shorter than a safetensors length prefix.
    #[error("not a pfn model file: only {len} bytes")]
    TooShort {
        /// File size.
        len: usize,
    },
    /// The bytes are not a safetensors file at all.
    #[error("not a pfn model file: {0}")]
    NotSafetensors(String),
    /// The file ends before the data its header describes.
    #[error("truncated: the header describes {expected} bytes but the file has {actual}")]
    Truncated {
        /// Bytes the header promises (including the prefix and header).
        expected: u64,
        /// Actual file size.
        actual: u64,
    },
    /// Extra bytes after the described data.
    #[error("{extra} unexpected trailing bytes after the tensor data")]
    TrailingBytes {
        /// Number of extra bytes.
        extra: u64,
    },
    /// A safetensors file without the pfn metadata.
    #[error("not a pfn model file: safetensors file without '{key}' in its __metadata__")]
    MissingMetadata {
        /// The missing key.
        key: &'static str,
    },
    /// A pfn file of the other kind (model vs checkpoint).
    #[error("is a {found} file, expected a {expected} file")]
    WrongFormat {
        /// The format found.
        found: String,
        /// The format asked for.
        expected: &'static str,
    },
    /// Written by a newer (or unknown) format version.
    #[error("format version {found} is not supported (this build reads version {supported})")]
    UnsupportedVersion {
        /// The version string found.
        found: String,
        /// The supported version.
        supported: u32,
    },
    /// A tensor with a dtype other than F32.
    #[error("tensor '{tensor}' has dtype {dtype}; pfn files store F32 only")]
    BadDtype {
        /// Tensor name.
        tensor: String,
        /// Its dtype.
        dtype: String,
    },
    /// The content does not match the stored digest.
    #[error("content digest mismatch, the file was modified or corrupted (stored sha256 {stored}, computed {computed})")]
    DigestMismatch {
        /// Digest in the header.
        stored: String,
        /// Digest of the content.
        computed: String,
    },
    /// The metadata JSON does not parse or is inconsistent.
    #[error("invalid metadata: {0}")]
    BadMetadata(String),
    /// The caller asked to save something inconsistent (duplicate names, wrong data length, …).
    #[error("cannot save: {0}")]
    InvalidInput(String),
}

/// An error about one file: displays as `<file>: <problem>` on one line.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {problem}")]
pub struct ArtifactError {
    /// The file.
    pub file: String,
    /// What is wrong.
    pub problem: ArtifactProblem,
}

/// A borrowed f32 tensor to save: a name, a shape (row-major) and its data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TensorRef<'a> {
    /// Unique name within the file.
    pub name: &'a str,
    /// Shape; the product must equal `data.len()` (empty shape: a scalar of one value).
    pub shape: &'a [usize],
    /// Row-major values.
    pub data: &'a [f32],
}

/// An owned f32 tensor read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    /// Name.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Row-major values, bit-identical to what was saved.
    pub data: Vec<f32>,
}

impl NamedTensor {
    /// A borrowed view for saving.
    pub fn as_ref(&self) -> TensorRef<'_> {
        TensorRef {
            name: &self.name,
            shape: &self.shape,
            data: &self.data,
        }
    }
}

/// A loaded model artifact.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelArtifact {
    /// The metadata.
    pub metadata: ModelMetadata,
    /// The weights, in name order.
    pub tensors: Vec<NamedTensor>,
    /// The verified SHA-256 content digest (hex), usable as a model identifier.
    pub digest: String,
}

impl ModelArtifact {
    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Option<&NamedTensor> {
        self.tensors
            .binary_search_by(|t| t.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.tensors[i])
    }
}

/// The training progress stored in a checkpoint, beside the model metadata.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimizer steps completed; the run resumes at this step (loader index
    /// `step · accumulation_steps`).
    pub step: u64,
    /// AdamW's bias-correction step counter (normally equal to `step`).
    pub adam_step: u64,
    /// Datasets consumed so far.
    pub datasets: u64,
    /// Training wall-clock seconds so far (excluding time between interruption and resume).
    pub seconds: f64,
    /// Best validation loss so far, if any.
    pub best_validation_loss: Option<f64>,
    /// Free-form extra state of the trainer (loss curve, …); must be finite JSON.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// A loaded training checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Model metadata (contains the run configuration; `training` is the budget at this point).
    pub metadata: ModelMetadata,
    /// Training progress.
    pub state: TrainState,
    /// Model parameters (names without the `param/` prefix), in name order.
    pub params: Vec<NamedTensor>,
    /// AdamW first moments, same names and shapes as `params`.
    pub adam_m: Vec<NamedTensor>,
    /// AdamW second moments, same names and shapes as `params`.
    pub adam_v: Vec<NamedTensor>,
    /// The verified SHA-256 content digest (hex).
    pub digest: String,
}

fn fail(path: &Path, problem: ArtifactProblem) -> ArtifactError {
    ArtifactError {
        file: path.display().to_string(),
        problem,
    }
}

/// Saves a model artifact atomically.
pub fn save_model(
    path: impl AsRef<Path>,
    metadata: &ModelMetadata,
    tensors: &[TensorRef<'_>],
) -> Result<(), ArtifactError> {
    let path = path.as_ref();
    metadata
        .validate()
        .map_err(|e| fail(path, ArtifactProblem::InvalidInput(e)))?;
    let meta_json = serde_json::to_string(metadata)
        .map_err(|e| fail(path, ArtifactProblem::InvalidInput(e.to_string())))?;
    write_file(path, MODEL_FORMAT, &meta_json, "", tensors.to_vec())
}

/// Loads and verifies a model artifact. Errors are one line naming the file.
pub fn load_model(path: impl AsRef<Path>) -> Result<ModelArtifact, ArtifactError> {
    let path = path.as_ref();
    let raw = read_file(path, MODEL_FORMAT)?;
    model_from_raw(path, raw)
}

/// Parses and verifies a model artifact held in memory, exactly as [`load_model`] does after
/// reading the file; `path` only names the source in errors (the fuzz target's entry point).
pub fn parse_model(path: impl AsRef<Path>, bytes: &[u8]) -> Result<ModelArtifact, ArtifactError> {
    let path = path.as_ref();
    let raw = parse_file(path, bytes, MODEL_FORMAT)?;
    model_from_raw(path, raw)
}

fn model_from_raw(path: &Path, raw: RawFile) -> Result<ModelArtifact, ArtifactError> {
    let metadata = parse_metadata(path, &raw.metadata_json)?;
    Ok(ModelArtifact {
        metadata,
        tensors: raw.tensors,
        digest: raw.digest,
    })
}

/// Saves a training checkpoint atomically: metadata, state, parameters and the AdamW moments
/// (which must have exactly the parameters' names and shapes).
pub fn save_checkpoint(
    path: impl AsRef<Path>,
    metadata: &ModelMetadata,
    state: &TrainState,
    params: &[TensorRef<'_>],
    adam_m: &[TensorRef<'_>],
    adam_v: &[TensorRef<'_>],
) -> Result<(), ArtifactError> {
    let path = path.as_ref();
    let invalid = |e: String| fail(path, ArtifactProblem::InvalidInput(e));
    metadata.validate().map_err(invalid)?;
    if !(state.seconds.is_finite() && state.seconds >= 0.0) {
        return Err(invalid(format!(
            "train state seconds must be finite and >= 0, got {}",
            state.seconds
        )));
    }
    if state.best_validation_loss.is_some_and(|l| !l.is_finite()) {
        return Err(invalid("best validation loss is not finite".into()));
    }
    for (label, moments) in [("adam_m", adam_m), ("adam_v", adam_v)] {
        let expected: BTreeMap<&str, &[usize]> = params.iter().map(|t| (t.name, t.shape)).collect();
        let got: BTreeMap<&str, &[usize]> = moments.iter().map(|t| (t.name, t.shape)).collect();
        if expected != got || moments.len() != params.len() {
            return Err(invalid(format!(
                "{label} must have exactly the parameters' names and shapes ({} parameters, {} {label} tensors)",
                params.len(),
                moments.len()
            )));
        }
    }
    let meta_json = serde_json::to_string(metadata).map_err(|e| invalid(e.to_string()))?;
    let state_json = serde_json::to_string(state).map_err(|e| invalid(e.to_string()))?;
    let mut names = Vec::with_capacity(3 * params.len());
    for (prefix, list) in [
        (PARAM_PREFIX, params),
        (ADAM_M_PREFIX, adam_m),
        (ADAM_V_PREFIX, adam_v),
    ] {
        for t in list {
            names.push((format!("{prefix}{}", t.name), *t));
        }
    }
    let tensors: Vec<TensorRef<'_>> = names
        .iter()
        .map(|(name, t)| TensorRef {
            name,
            shape: t.shape,
            data: t.data,
        })
        .collect();
    write_file(path, CHECKPOINT_FORMAT, &meta_json, &state_json, tensors)
}

/// Loads and verifies a training checkpoint.
pub fn load_checkpoint(path: impl AsRef<Path>) -> Result<Checkpoint, ArtifactError> {
    let path = path.as_ref();
    let raw = read_file(path, CHECKPOINT_FORMAT)?;
    let metadata = parse_metadata(path, &raw.metadata_json)?;
    let state: TrainState = serde_json::from_str(&raw.state_json).map_err(|e| {
        fail(
            path,
            ArtifactProblem::BadMetadata(format!("train state: {e}")),
        )
    })?;
    let mut params = Vec::new();
    let mut adam_m = Vec::new();
    let mut adam_v = Vec::new();
    for mut t in raw.tensors {
        let (list, prefix) = if t.name.starts_with(PARAM_PREFIX) {
            (&mut params, PARAM_PREFIX)
        } else if t.name.starts_with(ADAM_M_PREFIX) {
            (&mut adam_m, ADAM_M_PREFIX)
        } else if t.name.starts_with(ADAM_V_PREFIX) {
            (&mut adam_v, ADAM_V_PREFIX)
        } else {
            return Err(fail(
                path,
                ArtifactProblem::BadMetadata(format!(
                    "unexpected tensor '{}' in a checkpoint",
                    t.name
                )),
            ));
        };
        t.name = t.name[prefix.len()..].to_string();
        list.push(t);
    }
    let shapes = |l: &[NamedTensor]| -> Vec<(String, Vec<usize>)> {
        l.iter()
            .map(|t| (t.name.clone(), t.shape.clone()))
            .collect()
    };
    if shapes(&params) != shapes(&adam_m) || shapes(&params) != shapes(&adam_v) {
        return Err(fail(
            path,
            ArtifactProblem::BadMetadata(
                "optimizer moments do not match the parameters' names and shapes".into(),
            ),
        ));
    }
    Ok(Checkpoint {
        metadata,
        state,
        params,
        adam_m,
        adam_v,
        digest: raw.digest,
    })
}

fn parse_metadata(path: &Path, json: &str) -> Result<ModelMetadata, ArtifactError> {
    let metadata: ModelMetadata = serde_json::from_str(json)
        .map_err(|e| fail(path, ArtifactProblem::BadMetadata(e.to_string())))?;
    metadata
        .validate()
        .map_err(|e| fail(path, ArtifactProblem::BadMetadata(e)))?;
    Ok(metadata)
}

/// Where a tensor's little-endian bytes come from: a borrowed f32 slice (converted in chunks, no
/// full copy) or bytes already in file order.
#[derive(Clone, Copy)]
enum TensorBytes<'a> {
    F32(&'a [f32]),
    Raw(&'a [u8]),
}

impl TensorBytes<'_> {
    fn len(&self) -> usize {
        match self {
            TensorBytes::F32(d) => d.len() * 4,
            TensorBytes::Raw(b) => b.len(),
        }
    }

    /// Calls `f` with consecutive chunks of the little-endian bytes.
    fn for_each_chunk<E>(&self, mut f: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        match self {
            TensorBytes::Raw(b) => f(b),
            TensorBytes::F32(d) => {
                let mut buf = Vec::with_capacity(CHUNK_VALUES * 4);
                for chunk in d.chunks(CHUNK_VALUES) {
                    buf.clear();
                    for v in chunk {
                        buf.extend_from_slice(&v.to_le_bytes());
                    }
                    f(&buf)?;
                }
                Ok(())
            }
        }
    }
}

/// Values converted per chunk when hashing or writing.
const CHUNK_VALUES: usize = 1 << 16;

/// SHA-256 of the content as described in the module documentation.
fn content_digest(
    format: &str,
    version: &str,
    meta_json: &str,
    state_json: &str,
    tensors: &[(&str, &[usize], TensorBytes<'_>)],
) -> String {
    let mut h = Sha256::new();
    for s in [format, version, meta_json, state_json] {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    }
    h.update((tensors.len() as u64).to_le_bytes());
    for (name, shape, bytes) in tensors {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((shape.len() as u64).to_le_bytes());
        for &d in *shape {
            h.update((d as u64).to_le_bytes());
        }
        h.update((bytes.len() as u64).to_le_bytes());
        let _ = bytes.for_each_chunk(|c| {
            h.update(c);
            Ok::<(), ()>(())
        });
    }
    h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

fn write_file(
    path: &Path,
    format: &str,
    meta_json: &str,
    state_json: &str,
    mut tensors: Vec<TensorRef<'_>>,
) -> Result<(), ArtifactError> {
    let invalid = |e: String| fail(path, ArtifactProblem::InvalidInput(e));
    tensors.sort_by(|a, b| a.name.cmp(b.name));
    for w in tensors.windows(2) {
        if w[0].name == w[1].name {
            return Err(invalid(format!("duplicate tensor name '{}'", w[0].name)));
        }
    }
    for t in &tensors {
        if t.name.is_empty() || t.name == "__metadata__" {
            return Err(invalid(format!("invalid tensor name '{}'", t.name)));
        }
        let n = t
            .shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| invalid(format!("tensor '{}': shape overflows", t.name)))?;
        if n != t.data.len() {
            return Err(invalid(format!(
                "tensor '{}': shape {:?} holds {n} values but {} were given",
                t.name,
                t.shape,
                t.data.len()
            )));
        }
    }
    let version = FORMAT_VERSION.to_string();
    let described: Vec<(&str, &[usize], TensorBytes<'_>)> = tensors
        .iter()
        .map(|t| (t.name, t.shape, TensorBytes::F32(t.data)))
        .collect();
    let digest = content_digest(format, &version, meta_json, state_json, &described);

    // The header, built by hand so that key order (and thus the file) is deterministic.
    let js = |s: &str| serde_json::to_string(s).expect("strings always serialise");
    let mut meta_entries = vec![
        (KEY_DIGEST, digest.as_str()),
        (KEY_FORMAT, format),
        (KEY_VERSION, version.as_str()),
        (KEY_METADATA, meta_json),
    ];
    if !state_json.is_empty() {
        meta_entries.push((KEY_STATE, state_json));
    }
    meta_entries.sort_by(|a, b| a.0.cmp(b.0));
    let mut header = String::from("{\"__metadata__\":{");
    for (i, (k, v)) in meta_entries.iter().enumerate() {
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!("{}:{}", js(k), js(v)));
    }
    header.push('}');
    let mut offset = 0usize;
    for (name, shape, bytes) in &described {
        let shape: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        header.push_str(&format!(
            ",{}:{{\"dtype\":\"F32\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
            js(name),
            shape.join(","),
            offset,
            offset + bytes.len()
        ));
        offset += bytes.len();
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    write_atomically(path, |w| {
        w.write_all(&(header.len() as u64).to_le_bytes())?;
        w.write_all(header.as_bytes())?;
        for (_, _, bytes) in &described {
            bytes.for_each_chunk(|c| w.write_all(c))?;
        }
        Ok(())
    })
    .map_err(|e| fail(path, ArtifactProblem::Write(e)))
}

/// The verified content of a file, before interpretation of the metadata JSON.
struct RawFile {
    metadata_json: String,
    state_json: String,
    tensors: Vec<NamedTensor>,
    digest: String,
}

fn read_file(path: &Path, expected_format: &'static str) -> Result<RawFile, ArtifactError> {
    let bytes = std::fs::read(path).map_err(|e| fail(path, ArtifactProblem::Read(e)))?;
    parse_file(path, &bytes, expected_format)
}

/// Parses the bytes of a file (`path` names it in errors).
fn parse_file(
    path: &Path,
    bytes: &[u8],
    expected_format: &'static str,
) -> Result<RawFile, ArtifactError> {
    let err = |p| fail(path, p);
    if bytes.len() < 8 {
        return Err(err(ArtifactProblem::TooShort { len: bytes.len() }));
    }
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&bytes[..8]);
    let header_len = u64::from_le_bytes(prefix);
    if !(2..=MAX_HEADER).contains(&header_len) {
        return Err(err(ArtifactProblem::NotSafetensors(
            "no safetensors header (the first 8 bytes are not a plausible header length)".into(),
        )));
    }
    let file_len = bytes.len() as u64;
    if 8 + header_len > file_len {
        // Either a truncated file or not a safetensors file at all: only the former starts with
        // a JSON object right after the prefix.
        if bytes.get(8) == Some(&b'{') {
            return Err(err(ArtifactProblem::Truncated {
                expected: 8 + header_len,
                actual: file_len,
            }));
        }
        return Err(err(ArtifactProblem::NotSafetensors(
            "no safetensors header".into(),
        )));
    }
    let parsed = match SafeTensors::deserialize(bytes) {
        Ok(p) => p,
        Err(SafeTensorError::MetadataIncompleteBuffer) => {
            let expected = described_size(&bytes[8..8 + header_len as usize])
                .map(|d| 8 + header_len + d)
                .unwrap_or(0);
            return Err(err(if expected > file_len {
                ArtifactProblem::Truncated {
                    expected,
                    actual: file_len,
                }
            } else {
                ArtifactProblem::TrailingBytes {
                    extra: file_len - expected,
                }
            }));
        }
        Err(e) => {
            return Err(err(ArtifactProblem::NotSafetensors(format!(
                "invalid safetensors header: {e}"
            ))))
        }
    };
    // The metadata map, via the header (SafeTensors keeps it private).
    let (_, st_meta) = SafeTensors::read_metadata(bytes).map_err(|e| {
        err(ArtifactProblem::NotSafetensors(format!(
            "invalid safetensors header: {e}"
        )))
    })?;
    let meta = st_meta.metadata().clone().unwrap_or_default();
    let get = |key: &'static str| -> Result<&String, ArtifactError> {
        meta.get(key)
            .ok_or_else(|| err(ArtifactProblem::MissingMetadata { key }))
    };
    let format = get(KEY_FORMAT)?;
    if format != MODEL_FORMAT && format != CHECKPOINT_FORMAT {
        return Err(err(ArtifactProblem::NotSafetensors(format!(
            "unknown format '{format}'"
        ))));
    }
    if format != expected_format {
        return Err(err(ArtifactProblem::WrongFormat {
            found: format.clone(),
            expected: expected_format,
        }));
    }
    let version = get(KEY_VERSION)?;
    if version.parse::<u32>().ok() != Some(FORMAT_VERSION) {
        return Err(err(ArtifactProblem::UnsupportedVersion {
            found: version.clone(),
            supported: FORMAT_VERSION,
        }));
    }
    let metadata_json = get(KEY_METADATA)?.clone();
    let state_json = if expected_format == CHECKPOINT_FORMAT {
        get(KEY_STATE)?.clone()
    } else {
        String::new()
    };
    let stored = get(KEY_DIGEST)?.clone();

    let mut views: Vec<(String, safetensors::tensor::TensorView<'_>)> = parsed.tensors();
    views.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, view) in &views {
        if view.dtype() != Dtype::F32 {
            return Err(err(ArtifactProblem::BadDtype {
                tensor: name.clone(),
                dtype: format!("{:?}", view.dtype()),
            }));
        }
    }
    let described: Vec<(&str, &[usize], TensorBytes<'_>)> = views
        .iter()
        .map(|(n, v)| (n.as_str(), v.shape(), TensorBytes::Raw(v.data())))
        .collect();
    let computed = content_digest(format, version, &metadata_json, &state_json, &described);
    if computed != stored {
        return Err(err(ArtifactProblem::DigestMismatch { stored, computed }));
    }
    let tensors = views
        .iter()
        .map(|(name, v)| NamedTensor {
            name: name.clone(),
            shape: v.shape().to_vec(),
            data: v
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        })
        .collect();
    Ok(RawFile {
        metadata_json,
        state_json,
        tensors,
        digest: computed,
    })
}

/// Total data bytes a safetensors header describes (largest end offset), if it parses.
fn described_size(header: &[u8]) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_slice(header).ok()?;
    let mut end = 0u64;
    for (k, v) in value.as_object()? {
        if k == "__metadata__" {
            continue;
        }
        let e = v.get("data_offsets")?.get(1)?.as_u64()?;
        end = end.max(e);
    }
    Some(end)
}

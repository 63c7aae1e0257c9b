//! `pfn models`: the model files (`*.pfn`, `*.safetensors`) of the models directory, each loaded
//! and its sha256 content digest verified, with prior, feature range, context limit, size and
//! training budget.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use pfn_artifact::OutputHead;
use pfn_infer::Predictor;
use serde::Serialize;

use crate::model_search::{has_model_extension, ModelSearch};

/// Arguments of `pfn models`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Models directory (default: $PFN_MODELS when set, else ./models, else a models/ directory
    /// next to the executable or one of its parent directories).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Training budget spent on a model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainingSummary {
    /// Optimizer steps.
    pub steps: u64,
    /// Prior datasets consumed.
    pub datasets: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// What `pfn models` reports about one loadable model file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    /// Name (file stem), usable as `pfn predict --model NAME`.
    pub name: String,
    /// The file.
    pub file: String,
    /// Registry name of the training prior.
    pub prior: String,
    /// Input features of the network.
    pub num_features: usize,
    /// Smallest and largest number of features the model accepts.
    pub feature_range: [usize; 2],
    /// Largest context size seen in training.
    pub max_context: usize,
    /// `regression` (Riemann head) or `classification`.
    pub task: String,
    /// Buckets of the Riemann head, or classes.
    pub outputs: usize,
    /// Number of weights.
    pub parameters: usize,
    /// Training budget.
    pub training: TrainingSummary,
    /// Final validation loss (mean NLL on held-out prior datasets), if measured.
    pub final_validation_loss: Option<f64>,
    /// The SHA-256 content digest (hex), verified when the file was loaded.
    pub sha256: String,
    /// File size in bytes.
    pub bytes: u64,
}

/// A model file that could not be loaded or failed verification.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvalidModel {
    /// The file.
    pub file: String,
    /// Why (a one-line message that names the file).
    pub error: String,
}

/// The models of one directory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listing {
    /// The directory.
    pub dir: String,
    /// Loadable models, by name.
    pub models: Vec<ModelSummary>,
    /// Files that failed to load.
    pub invalid: Vec<InvalidModel>,
}

/// Loads and verifies one model file.
pub fn summarise(path: &Path) -> Result<ModelSummary> {
    let artifact = pfn_artifact::load_model(path)?;
    let predictor = Predictor::with_threads(&artifact, 1)?;
    let meta = &artifact.metadata;
    let (lo, hi) = predictor.feature_range();
    let (task, outputs) = match &meta.head {
        OutputHead::Riemann { .. } => ("regression", meta.head.width()),
        OutputHead::Classes { n_out } => ("classification", *n_out),
    };
    let bytes = std::fs::metadata(path)
        .with_context(|| format!("{}", path.display()))?
        .len();
    Ok(ModelSummary {
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        file: path.display().to_string(),
        prior: meta.prior.clone(),
        num_features: predictor.num_features(),
        feature_range: [lo, hi],
        max_context: predictor.max_trained_context(),
        task: task.into(),
        outputs,
        parameters: artifact.tensors.iter().map(|t| t.data.len()).sum(),
        training: TrainingSummary {
            steps: meta.training.steps,
            datasets: meta.training.datasets,
            seconds: meta.training.seconds,
        },
        final_validation_loss: meta.final_validation_loss,
        sha256: artifact.digest.clone(),
        bytes,
    })
}

/// Every model file of `dir` (not recursive), sorted by name; files that fail to load are listed in
/// [`Listing::invalid`]. An unreadable directory is an error.
pub fn list_models(dir: &Path) -> Result<Listing> {
    let read = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the models directory {}", dir.display()))?;
    let mut files: Vec<PathBuf> = read
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && has_model_extension(p))
        .collect();
    files.sort();
    let mut listing = Listing {
        dir: dir.display().to_string(),
        models: Vec::new(),
        invalid: Vec::new(),
    };
    for file in files {
        match summarise(&file) {
            Ok(m) => listing.models.push(m),
            Err(e) => listing.invalid.push(InvalidModel {
                file: file.display().to_string(),
                error: crate::one_line(&e),
            }),
        }
    }
    Ok(listing)
}

/// `1234567` as `1.23M`, `48000` as `48.0k`.
fn count(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.2}M", n as f64 / 1e6),
    }
}

/// Seconds as `45 s`, `48.2 min` or `2.10 h`.
fn duration(seconds: f64) -> String {
    if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else if seconds < 7200.0 {
        format!("{:.1} min", seconds / 60.0)
    } else {
        format!("{:.2} h", seconds / 3600.0)
    }
}

fn write_table(w: &mut impl Write, listing: &Listing) -> Result<()> {
    writeln!(w, "models directory: {}", listing.dir)?;
    if listing.models.is_empty() {
        writeln!(w, "no loadable model files (*.pfn) in {}", listing.dir)?;
    } else {
        let header = [
            "name",
            "prior",
            "features",
            "max context",
            "head",
            "params",
            "trained on",
            "val loss",
            "sha256 (verified)",
            "size",
        ];
        let rows: Vec<[String; 10]> = listing
            .models
            .iter()
            .map(|m| {
                let [lo, hi] = m.feature_range;
                [
                    m.name.clone(),
                    m.prior.clone(),
                    if lo == hi {
                        lo.to_string()
                    } else {
                        format!("{lo}-{hi}")
                    },
                    m.max_context.to_string(),
                    if m.task == "regression" {
                        format!("{} buckets", m.outputs)
                    } else {
                        format!("{} classes", m.outputs)
                    },
                    count(m.parameters as u64),
                    format!(
                        "{} datasets, {} steps, {}",
                        count(m.training.datasets),
                        m.training.steps,
                        duration(m.training.seconds)
                    ),
                    m.final_validation_loss
                        .map(|l| format!("{l:.4}"))
                        .unwrap_or_else(|| "-".into()),
                    m.sha256.chars().take(16).collect(),
                    format!("{:.1} MB", m.bytes as f64 / 1e6),
                ]
            })
            .collect();
        let widths: Vec<usize> = (0..header.len())
            .map(|c| {
                rows.iter()
                    .map(|r| r[c].chars().count())
                    .chain([header[c].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: Vec<&str>| -> String {
            cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        };
        writeln!(w, "{}", line(header.to_vec()))?;
        for r in &rows {
            writeln!(w, "{}", line(r.iter().map(String::as_str).collect()))?;
        }
        writeln!(
            w,
            "features: how many input columns the model accepts; max context: most context rows seen in training; \
             val loss: mean NLL on held-out prior datasets (nats); sha256: first 16 hex digits of the content digest \
             checked at load (--json for all)"
        )?;
    }
    for bad in &listing.invalid {
        writeln!(w, "cannot load: {}", bad.error)?;
    }
    Ok(())
}

/// Runs the subcommand. Fails (after printing the listing) when a model file does not load.
pub fn run(args: &Args) -> Result<()> {
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => ModelSearch::from_environment().models_dir()?,
    };
    let listing = list_models(&dir)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &listing)?;
        writeln!(out)?;
    } else {
        write_table(&mut out, &listing)?;
    }
    out.flush()?;
    match listing.invalid.len() {
        0 => Ok(()),
        1 => bail!("{}", listing.invalid[0].error),
        n => bail!("{n} model files in {} cannot be loaded", listing.dir),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_durations_read_well() {
        assert_eq!(count(640), "640");
        assert_eq!(count(384_000), "384.0k");
        assert_eq!(count(2_754_024), "2.75M");
        assert_eq!(duration(26.9), "27 s");
        assert_eq!(duration(2890.0), "48.2 min");
        assert_eq!(duration(7560.0), "2.10 h");
    }

    #[test]
    fn an_unreadable_directory_is_an_error_and_bad_files_are_listed() {
        let dir = std::env::temp_dir().join(format!("pfn-models-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(list_models(&dir)
            .unwrap_err()
            .to_string()
            .contains("cannot read the models directory"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("junk.pfn"), b"not a model").unwrap();
        std::fs::write(dir.join("notes.txt"), b"ignored").unwrap();
        let l = list_models(&dir).unwrap();
        assert!(l.models.is_empty());
        assert_eq!(l.invalid.len(), 1);
        assert!(l.invalid[0].file.ends_with("junk.pfn"));
        assert!(
            l.invalid[0].error.contains("not a pfn model file"),
            "{:?}",
            l.invalid
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

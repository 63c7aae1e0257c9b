//! `pfn models`: the model files (`*.pfn`, `*.safetensors`) of the models directory, each loaded
//! and its sha256 content digest verified, with prior, feature range, context limit, size and
//! training budget.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use pfn_infer::model_catalogue::{list_models, Listing, TrainingSummary};
use pfn_infer::ModelSearch;

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

/// A file name without its directories (the whole string when it has none).
fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string())
}

/// The "trained on" cell: every recorded run's budget together, how many runs, and the start
/// file whose training is unknown, if any.
fn training_cell(t: &TrainingSummary) -> String {
    let all = &t.in_all;
    let runs = if all.runs > 1 {
        format!(" in {} runs", all.runs)
    } else {
        String::new()
    };
    let unknown = match &all.unknown_start {
        Some(start) => format!(" after {}", file_name(start)),
        None => String::new(),
    };
    format!(
        "{} datasets, {} steps, {}{runs}{unknown}",
        count(all.datasets),
        all.steps,
        duration(all.seconds)
    )
}

/// Every training run a model file records, together: "N runs, S steps, D datasets, T s", then
/// ", from scratch" or where the unrecorded history begins (`pfn set-lineage`, `pfn eval`).
pub fn runs_in_all(meta: &pfn_artifact::ModelMetadata) -> String {
    let all = meta.training_in_all();
    format!(
        "{} runs, {} steps, {} datasets, {:.0} s{}",
        meta.lineage.len() + 1,
        all.steps,
        all.datasets,
        all.seconds,
        match meta.unknown_start() {
            Some(unknown) => format!(", after {unknown}, whose training is not recorded"),
            None => ", from scratch".to_string(),
        }
    )
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
                    training_cell(&m.training),
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
             trained on: the budget of every training run the file records (a model trained in stages records its earlier runs; \
             \"after F\": the oldest recorded run started from the model file F, whose own training is not known); \
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
}

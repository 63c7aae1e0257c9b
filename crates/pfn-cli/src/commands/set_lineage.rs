//! `pfn set-lineage`: record in a model file the training runs before its own, for a model trained
//! in stages whose file was written before lineage was recorded, or whose start files have moved.
//!
//! A run that starts from another model file (`run.init_from`) records that file's history itself
//! ([`pfn_train::lineage`]). This command does it after the fact: the user names the chain of start
//! files, newest first, and the command records each one's run (budget, loss, digest as read now)
//! in the model's metadata. The weights are unchanged. Every file of the chain must have the
//! model's architecture, as a warm start requires.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use pfn_artifact::load_model;

use super::model_rewrite::{rewrite, RewriteArgs};

/// Arguments of `pfn set-lineage`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model file whose history to record, and where to write it with its lineage.
    #[command(flatten)]
    pub files: RewriteArgs,
    /// A start file of the chain, newest first: the first is the file the model's own run started
    /// from, the second the one that file's run started from, and so on. Where the oldest one
    /// itself started from a file, that file's history is read from the path it records, if found.
    #[arg(long = "start", required = true)]
    pub starts: Vec<PathBuf>,
}

/// Runs the subcommand.
pub fn run(args: &Args) -> Result<()> {
    let artifact = load_model(&args.files.model)?;
    let mut metadata = artifact.metadata.clone();
    if metadata.init_from().is_none() {
        bail!(
            "{}: its run started from scratch (no run.init_from): there is no earlier run to record",
            args.files.model.display()
        );
    }
    let mut chain = Vec::with_capacity(args.starts.len());
    for path in &args.starts {
        let start = load_model(path).with_context(|| format!("--start {}", path.display()))?;
        if start.metadata.architecture != metadata.architecture {
            bail!(
                "--start {}: its architecture {:?} is not the model's {:?}, so the model cannot have started from it",
                path.display(),
                start.metadata.architecture,
                metadata.architecture
            );
        }
        chain.push((path.to_string_lossy().into_owned(), start));
    }
    metadata.lineage = pfn_train::lineage::lineage_of_chain(&chain);
    let written = rewrite(&artifact, &metadata, &args.files.out)?;
    let meta = &written.metadata;
    println!(
        "{}: weights unchanged, sha256 {}",
        args.files.out.display(),
        written.digest
    );
    for run in &meta.lineage {
        println!(
            "  earlier run: {} ({} steps, {} datasets, {:.0} s; sha256 {})",
            run.file,
            run.training.steps,
            run.training.datasets,
            run.training.seconds,
            run.sha256.chars().take(16).collect::<String>()
        );
    }
    println!("  in all: {}", super::models::runs_in_all(meta));
    Ok(())
}

//! `pfn export`: the model file of a training checkpoint, so that a run still in progress (or
//! stopped before its budget) can be evaluated and used like a finished one.
//!
//! The model file holds the checkpoint's metadata (architecture, head, normalisation, the run
//! configuration and the training done so far) and its parameters; the AdamW moments stay behind.
//! Training from the checkpoint goes on unaffected.

use std::path::PathBuf;

use anyhow::Result;
use pfn_artifact::{load_checkpoint, load_model, save_model};

/// Arguments of `pfn export`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The training checkpoint to read (`<model>.pfn.ckpt`).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Where to write the model file (written atomically).
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs the subcommand.
pub fn run(args: &Args) -> Result<()> {
    let checkpoint = load_checkpoint(&args.checkpoint)?;
    let tensors: Vec<_> = checkpoint.params.iter().map(|t| t.as_ref()).collect();
    save_model(&args.out, &checkpoint.metadata, &tensors)?;
    let written = load_model(&args.out)?;
    let best = checkpoint
        .state
        .best_validation_loss
        .map_or("none".to_string(), |v| format!("{v:.4}"));
    println!(
        "{}: the model at step {} ({} datasets, best validation loss so far {best}), sha256 {}",
        args.out.display(),
        checkpoint.state.step,
        checkpoint.state.datasets,
        written.digest
    );
    Ok(())
}

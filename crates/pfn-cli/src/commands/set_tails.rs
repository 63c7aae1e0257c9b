//! `pfn set-tails`: give a regression model's Riemann head other tails (half-normal or generalised
//! Pareto), keeping its weights.
//!
//! The tail shape never enters training: the gradient of the bar-distribution loss with respect to
//! the logits is `softmax(z) − onehot(bucket(y))` for a sampled target and `softmax(z) − P` for a
//! posterior target, where only the bucket of `y` (or the Gaussian's bucket masses `P`) matters,
//! not how the edge buckets spread their mass beyond the borders. A run trained with one tail shape
//! therefore produces bit for bit the weights of the same run with another
//! (`crates/pfn-train/tests/trainer.rs`, `tail_shape_does_not_change_training`). The tails decide
//! only the density, quantiles and moments the model reports beyond its outer borders, and the
//! loss values written in the log. The file's run configuration is updated to match.

use anyhow::{bail, Context, Result};
use pfn_artifact::{load_model, OutputHead};
use pfn_distribution::TailShape;
use pfn_train::TailKind;

use super::model_rewrite::{rewrite, RewriteArgs};

/// Arguments of `pfn set-tails`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model file to read and where to write it with its new tails.
    #[command(flatten)]
    pub files: RewriteArgs,
    /// The tail shape: `half-normal` or `pareto`.
    #[arg(long, value_parser = ["half-normal", "pareto"])]
    pub tails: String,
    /// The tail index of Pareto tails (above 2).
    #[arg(long, default_value_t = pfn_train::DEFAULT_PARETO_TAIL_INDEX)]
    pub tail_index: f64,
}

/// Runs the subcommand.
pub fn run(args: &Args) -> Result<()> {
    let artifact = load_model(&args.files.model)?;
    let mut metadata = artifact.metadata.clone();
    let (kind, shape) = match args.tails.as_str() {
        "pareto" => (
            TailKind::Pareto,
            TailShape::Pareto {
                index: args.tail_index,
            },
        ),
        _ => (TailKind::HalfNormal, TailShape::HalfNormal),
    };
    shape
        .validate()
        .with_context(|| format!("--tail-index {}", args.tail_index))?;
    match &mut metadata.head {
        OutputHead::Riemann {
            full_support: true,
            tail,
            ..
        } => *tail = shape,
        OutputHead::Riemann { .. } => bail!(
            "{}: its head has bounded support (no tails to change)",
            args.files.model.display()
        ),
        OutputHead::Classes { .. } => bail!(
            "{}: a classification model has no tails",
            args.files.model.display()
        ),
    }
    if !metadata.config.is_null() {
        let mut config = pfn_train::run_config_of(&metadata)
            .with_context(|| format!("{}: its run configuration", args.files.model.display()))?;
        config.borders.tails = kind;
        config.borders.tail_index = (kind == TailKind::Pareto).then_some(args.tail_index);
        metadata.config = serde_json::to_value(&config)?;
    }
    let written = rewrite(&artifact, &metadata, &args.files.out)?;
    println!(
        "{}: tails {} (weights unchanged), sha256 {}",
        args.files.out.display(),
        match shape {
            TailShape::HalfNormal => "half-normal".to_string(),
            TailShape::Pareto { index } => format!("pareto, index {index}"),
        },
        written.digest
    );
    Ok(())
}

//! The subcommands of the `pfn` tool. Each subcommand lives in its own module under [`commands`];
//! this module parses the command line and turns any error into one line on stderr and exit code 1.
#![warn(missing_docs)]

pub mod commands;
pub mod distributed;
/// Where models are found (moved to `pfn-infer`, shared with the Python package).
pub use pfn_infer::model_search;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Prior-Data Fitted Networks: Bayesian inference by in-context learning.
#[derive(Debug, Parser)]
#[command(name = "pfn", version, about, long_about = None)]
pub struct Cli {
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Draw datasets from a prior and write them as CSV (plus drawn hyperparameters as JSON).
    SamplePrior(commands::sample_prior::Args),
    /// Train a model from a TOML run configuration (checkpoints next to the model; --resume).
    Train(commands::train::Args),
    /// Predict the test rows of a CSV file given the training rows as context (default model:
    /// gp-hyper).
    Predict(commands::predict::Args),
    /// List the model files of the models directory with their prior, sizes, training and digest.
    Models(commands::models::Args),
    /// Prior-Data NLL on held-out prior datasets per context size, beside the exact GP.
    Eval(commands::eval::Args),
    /// Time training steps and inference (same flags and JSON keys as the PyTorch reference script).
    Bench(commands::bench::Args),
    /// Convert a PyTorch state_dict of the paper's PFN (safetensors) into a model artifact.
    Import(commands::import::Args),
    /// Reproduce a paper experiment (gp-fit, gp-hyper, bnn) as a Markdown report with plots.
    Reproduce(commands::reproduce::Args),
    /// Give a regression model other tails (half-normal or Pareto), keeping its weights.
    SetTails(commands::set_tails::Args),
    /// Record in a model file the training runs before its own (a model trained in stages whose
    /// file predates lineage records, or whose start files have moved), keeping its weights.
    SetLineage(commands::set_lineage::Args),
    /// Classify a folder of images given a few labelled examples per class (image models such as
    /// strokes).
    ClassifyImages(commands::classify_images::Args),
    /// Write the model file of a training checkpoint (a run in progress, or stopped early).
    Export(commands::export::Args),
    /// Serve the interactive web demo and its JSON API (`POST /api/predict`, `GET /api/models`).
    #[cfg(feature = "server")]
    Serve(commands::serve::Args),
}

/// Parses the command line and runs the chosen subcommand; errors print one line and exit non-zero.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::SamplePrior(args) => commands::sample_prior::run(&args),
        Command::Train(args) => commands::train::run(&args),
        Command::Predict(args) => commands::predict::run(&args),
        Command::Models(args) => commands::models::run(&args),
        Command::Eval(args) => commands::eval::run(&args),
        Command::Bench(args) => commands::bench::run(&args),
        Command::Import(args) => commands::import::run(&args),
        Command::Reproduce(args) => commands::reproduce::run(&args),
        Command::SetTails(args) => commands::set_tails::run(&args),
        Command::SetLineage(args) => commands::set_lineage::run(&args),
        Command::ClassifyImages(args) => commands::classify_images::run(&args),
        Command::Export(args) => commands::export::run(&args),
        #[cfg(feature = "server")]
        Command::Serve(args) => commands::serve::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`pfn predict --format csv | head -1`): stop quietly,
        // as other command-line tools do.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// Whether an error comes from writing to a closed pipe.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Joins an error and its causes into one line (`outer: inner: root`).
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}

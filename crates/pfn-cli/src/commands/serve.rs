//! `pfn serve`: the interactive web demo (see the `pfn-server` crate and the README section
//! "pfn serve").

use std::path::PathBuf;

use anyhow::Result;

use crate::model_search::ModelSearch;

/// Arguments of `pfn serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (port 0: any free port; the address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Directory of model artifacts (`*.pfn`, `*.safetensors`), each served under its file stem
    /// (default: $PFN_MODELS when set, else ./models, else a models/ directory next to the
    /// executable or one of its parent directories).
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Also serve a tiny gp-1d model trained at start-up (a few seconds; not paper quality).
    #[arg(long)]
    pub demo: bool,
    /// Training steps of the `--demo` model (about 6 ms each on 2 cores).
    #[arg(long, default_value_t = 1000)]
    pub demo_steps: u64,
    /// Compute threads (0: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// Runs the server until Ctrl-C.
pub fn run(args: &Args) -> Result<()> {
    let models_dir = match &args.models {
        Some(dir) => dir.clone(),
        None => match ModelSearch::from_environment().models_dir() {
            Ok(dir) => dir,
            // With --demo the server runs without a models directory.
            Err(_) if args.demo => PathBuf::from("models"),
            Err(e) => return Err(e.into()),
        },
    };
    pfn_server::run(&pfn_server::ServeConfig {
        addr: args.addr.clone(),
        models_dir,
        demo: args.demo,
        demo_steps: args.demo_steps,
        threads: args.threads,
    })?;
    Ok(())
}

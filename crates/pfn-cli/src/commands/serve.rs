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
    /// Predictions computing at once (0: the number of cores); more wait in the queue.
    #[arg(long, default_value_t = 0)]
    pub max_concurrent: usize,
    /// Predictions that may wait for a compute slot; beyond that, or after waiting --queue-wait
    /// seconds, a request gets 503 with Retry-After.
    #[arg(long, default_value_t = 256)]
    pub queue: usize,
    /// Seconds a prediction may wait for a compute slot.
    #[arg(long, default_value_t = 10.0)]
    pub queue_wait: f64,
    /// Seconds a client has to send its request body (408 after that).
    #[arg(long, default_value_t = 10.0)]
    pub body_timeout: f64,
}

/// Runs the server until Ctrl-C or SIGTERM (which let the requests in flight finish).
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
    let defaults = pfn_server::ServerLimits::default();
    let seconds = |flag: &str, value: f64| {
        if value.is_finite() && value > 0.0 && value <= 86_400.0 {
            Ok(std::time::Duration::from_secs_f64(value))
        } else {
            Err(anyhow::anyhow!(
                "{flag}: expected seconds between 0 and 86400, got {value}"
            ))
        }
    };
    let limits = pfn_server::ServerLimits {
        max_concurrent: if args.max_concurrent == 0 {
            defaults.max_concurrent
        } else {
            args.max_concurrent
        },
        max_queued: args.queue,
        queue_wait: seconds("--queue-wait", args.queue_wait)?,
        body_timeout: seconds("--body-timeout", args.body_timeout)?,
        ..defaults
    };
    pfn_server::run(&pfn_server::ServeConfig {
        addr: args.addr.clone(),
        models_dir,
        demo: args.demo,
        demo_steps: args.demo_steps,
        threads: args.threads,
        limits,
    })?;
    Ok(())
}

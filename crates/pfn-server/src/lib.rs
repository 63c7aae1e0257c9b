//! `pfn serve`: a local web demo of a PFN's posterior predictive, with the exact GP overlaid for
//! GP-prior models, and the JSON API behind it.
//!
//! * [`catalog`]: the models (artifacts from a directory) and their summaries;
//! * [`posterior`]: the [`PosteriorModel`] seam between the server and a network;
//!   [`predictor_model`] implements it with `pfn_infer::Predictor` on a model artifact
//!   (`pfn-artifact`);
//! * [`reference_gp`]: the GP a GP-prior PFN approximates; [`divergence`]: KL and cross-entropy
//!   between a Gaussian and a bar distribution, in closed form;
//! * [`api`]: request and response shapes and validation; [`predict`]: the computation;
//!   [`routes`]: the HTTP routes; [`admission`]: compute slots, queue (503 with `Retry-After`
//!   beyond it) and body timeouts; [`page`]: the embedded HTML, JS and CSS;
//! * [`demo_model`]: a tiny PFN trained in seconds, for `--demo` and tests; [`load`]: a load
//!   generator for the API (valid, malformed, oversized and slow requests).
//!
//! ```no_run
//! use pfn_server::{run, ServeConfig};
//! run(&ServeConfig { addr: "127.0.0.1:8080".into(), models_dir: "models".into(), ..ServeConfig::default() })?;
//! # Ok::<(), pfn_server::ServeError>(())
//! ```
#![warn(missing_docs)]

pub mod admission;
pub mod api;
pub mod catalog;
pub mod demo_model;
pub mod divergence;
pub mod error;
pub mod load;
pub mod page;
pub mod posterior;
pub mod predict;
pub mod predictor_model;
pub mod reference_gp;
pub mod routes;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use admission::ServerLimits;
pub use catalog::{ModelCatalog, ModelEntry, ModelInfo};
pub use error::{ApiError, ServeError};
pub use posterior::{PosteriorError, PosteriorModel, RegressionPredictive};
pub use routes::{router, router_with_limits};

/// Name of the model `--demo` adds.
pub const DEMO_MODEL_NAME: &str = "demo-gp-1d";

/// How to run the server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeConfig {
    /// Address to listen on, e.g. `127.0.0.1:8080` (port 0: any free port; the chosen address is
    /// printed).
    pub addr: String,
    /// Directory of model artifacts (`*.pfn`, `*.safetensors`).
    pub models_dir: PathBuf,
    /// Also serve a tiny gp-1d model trained at start-up (a few seconds).
    pub demo: bool,
    /// Optimizer steps of that demo model.
    pub demo_steps: u64,
    /// Threads of the compute engine (0: all cores).
    pub threads: usize,
    /// Concurrent predictions, queue and timeouts.
    pub limits: ServerLimits,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8080".into(),
            models_dir: PathBuf::from("models"),
            demo: false,
            demo_steps: 1000,
            threads: 0,
            limits: ServerLimits::default(),
        }
    }
}

/// Loads the models `config` asks for. A missing models directory is an error unless `demo` is
/// set; a catalog with no servable model is an error.
pub fn load_catalog(config: &ServeConfig) -> Result<ModelCatalog, ServeError> {
    let hint = "pass --models DIR with model artifacts (*.pfn, *.safetensors), or --demo to serve a tiny model trained at start-up";
    let mut catalog = match ModelCatalog::load_dir(&config.models_dir, config.threads) {
        Ok(c) => c,
        Err(ServeError::ModelsDir { source, .. })
            if config.demo && source.kind() == std::io::ErrorKind::NotFound =>
        {
            ModelCatalog::new()
        }
        Err(ServeError::ModelsDir { dir, source }) => {
            return Err(ServeError::NoModels(format!(
                "cannot read the models directory {dir} ({source}); {hint}"
            )))
        }
        Err(e) => return Err(e),
    };
    for s in catalog.skipped() {
        eprintln!("pfn serve: skipping {}: {}", s.file, s.error);
    }
    if config.demo {
        let spec = demo_model::DemoModelSpec {
            threads: config.threads,
            ..demo_model::DemoModelSpec::gp_1d(config.demo_steps, 0)
        };
        eprintln!(
            "pfn serve: training the demo model '{DEMO_MODEL_NAME}' ({} steps)...",
            spec.steps
        );
        let artifact = demo_model::train_demo_model(&spec)?;
        eprintln!(
            "pfn serve: demo model trained in {:.1} s",
            artifact.metadata.training.seconds
        );
        catalog.add_artifact(DEMO_MODEL_NAME, &artifact, config.threads)?;
    }
    if catalog.supported_count() == 0 {
        let listed: Vec<String> = catalog
            .entries()
            .iter()
            .map(|e| {
                format!(
                    "{} ({})",
                    e.info.name,
                    e.info.unsupported_reason.clone().unwrap_or_default()
                )
            })
            .chain(
                catalog
                    .skipped()
                    .iter()
                    .map(|s| format!("{} ({})", s.file, s.error)),
            )
            .collect();
        let found = if listed.is_empty() {
            format!("no model artifacts in {}", config.models_dir.display())
        } else {
            format!(
                "none of the files in {} can be served: {}",
                config.models_dir.display(),
                listed.join("; ")
            )
        };
        return Err(ServeError::NoModels(format!("{found}; {hint}")));
    }
    Ok(catalog)
}

/// Loads the models, binds `config.addr`, prints `pfn serve: listening on http://ADDR/` on stdout
/// and serves until Ctrl-C or SIGTERM; then it stops accepting connections, lets the requests in
/// flight finish and returns.
pub fn run(config: &ServeConfig) -> Result<(), ServeError> {
    let catalog = Arc::new(load_catalog(config)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&config.addr)
            .await
            .map_err(|source| ServeError::Bind {
                addr: config.addr.clone(),
                source,
            })?;
        let local: SocketAddr = listener.local_addr()?;
        for e in catalog.entries() {
            let state = if e.info.supported {
                format!(
                    "prior {}, up to {} context points",
                    e.info.prior, e.info.max_context
                )
            } else {
                format!(
                    "listed only: {}",
                    e.info.unsupported_reason.clone().unwrap_or_default()
                )
            };
            eprintln!("pfn serve: model '{}' ({state})", e.info.name);
        }
        let mut out = std::io::stdout().lock();
        writeln!(out, "pfn serve: listening on http://{local}/")?;
        out.flush()?;
        drop(out);
        axum::serve(listener, router_with_limits(catalog, config.limits))
            .with_graceful_shutdown(async {
                let signal = shutdown_signal().await;
                eprintln!("pfn serve: {signal}: finishing the requests in flight, then exiting");
            })
            .await?;
        eprintln!("pfn serve: stopped");
        Ok(())
    })
}

/// Waits for Ctrl-C (SIGINT) or, on Unix, SIGTERM; returns which one came.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use std::future::Future;
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
                std::future::poll_fn(|cx| {
                    if ctrl_c.as_mut().poll(cx).is_ready() {
                        std::task::Poll::Ready("interrupted")
                    } else if term.poll_recv(cx).is_ready() {
                        std::task::Poll::Ready("SIGTERM")
                    } else {
                        std::task::Poll::Pending
                    }
                })
                .await
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "interrupted"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "interrupted"
    }
}

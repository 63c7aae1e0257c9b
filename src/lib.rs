//! `pfn`: Prior-Data Fitted Networks (Müller et al., ICLR 2022) in Rust.
//!
//! This facade re-exports the workspace crates so that examples, benches and integration tests can
//! use one path. See `docs/ARCHITECTURE.md` for the map of the crates.

pub use pfn_artifact as artifact;
pub use pfn_baselines as baselines;
pub use pfn_cli as cli;
pub use pfn_distribution as distribution;
pub use pfn_engine as engine;
pub use pfn_gp as gp;
pub use pfn_infer as infer;
pub use pfn_model as model;
pub use pfn_plot as plot;
pub use pfn_prior as prior;
pub use pfn_train as train;

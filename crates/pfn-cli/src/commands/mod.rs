//! One module per subcommand.

pub mod bench;
pub mod classify_images;
pub mod eval;
pub mod export;
pub mod import;
pub mod model_rewrite;
pub mod models;
pub mod predict;
pub mod reproduce;
pub mod sample_prior;
#[cfg(feature = "server")]
pub mod serve;
pub mod set_lineage;
pub mod set_tails;
pub mod train;

//! What the commands that change a model file's metadata and keep its weights share
//! (`pfn set-tails`, `pfn set-lineage`): the file read and the file written, and the atomic write
//! read back for its digest.

use std::path::{Path, PathBuf};

use anyhow::Result;
use pfn_artifact::{load_model, save_model, ModelArtifact, ModelMetadata};

/// The model file to read and where to write it.
#[derive(Debug, clap::Args)]
pub struct RewriteArgs {
    /// The model file to read.
    #[arg(long)]
    pub model: PathBuf,
    /// Where to write the changed model (may be the same file; written atomically).
    #[arg(long)]
    pub out: PathBuf,
}

/// Writes the weights of `artifact` with `metadata` to `out` atomically, and reads the file back
/// (checking its digest): the written model.
pub fn rewrite(
    artifact: &ModelArtifact,
    metadata: &ModelMetadata,
    out: &Path,
) -> Result<ModelArtifact> {
    let tensors: Vec<_> = artifact.tensors.iter().map(|t| t.as_ref()).collect();
    save_model(out, metadata, &tensors)?;
    Ok(load_model(out)?)
}

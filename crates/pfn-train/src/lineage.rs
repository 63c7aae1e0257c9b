//! The history of a model trained in stages: each run that starts from another model file
//! (`run.init_from`) records the runs before it ([`pfn_artifact::EarlierRun`], oldest first) in the
//! file it writes, so that a model continued across sessions and machines still says how much
//! training it has had in all.
//!
//! A start file written with a lineage passes it on as it is. A start file written before lineage
//! was recorded names only its own start file; that file is read back from the recorded path (as
//! far as such files are found, each with the architecture of the run, since a warm start keeps
//! it). Where a file is missing, the history stops there: the oldest entry keeps the name of its
//! unknown start file, and [`pfn_artifact::ModelMetadata::lineage_complete`] says so.

use std::collections::HashSet;

use pfn_artifact::{EarlierRun, ModelArtifact};

/// The longest chain of legacy start files followed (a guard against cycles of named files).
const MAX_LEGACY_DEPTH: usize = 64;

/// The lineage of a run that starts from `start`, read from the path `file`: the start file's own
/// lineage (or, for a file that predates lineage records, the chain of start files it names, as
/// far as they are found), then the start file's run itself.
pub fn lineage_of_start(file: &str, start: &ModelArtifact) -> Vec<EarlierRun> {
    let mut seen = HashSet::from([start.digest.clone()]);
    lineage(file, start, &mut seen, MAX_LEGACY_DEPTH)
}

/// The lineage of a run that started from the file `init_from` but whose saved state holds none (a
/// checkpoint written before lineage was recorded): the lineage of that file if it can still be
/// read and holds a model of the run's architecture, and empty otherwise. Such a checkpoint does
/// not record the start file's digest, so the file found at the path is taken to be the one the
/// run started from; a start file overwritten since (say, by the run's own output) would be
/// recorded in its place.
pub fn lineage_of_named_start(
    init_from: &str,
    architecture: &pfn_artifact::Architecture,
) -> Vec<EarlierRun> {
    match pfn_artifact::load_model(init_from) {
        Ok(start) if start.metadata.architecture == *architecture => {
            lineage_of_start(init_from, &start)
        }
        _ => Vec::new(),
    }
}

fn lineage(
    file: &str,
    start: &ModelArtifact,
    seen: &mut HashSet<String>,
    depth: usize,
) -> Vec<EarlierRun> {
    let meta = &start.metadata;
    let mut runs = if !meta.lineage.is_empty() {
        meta.lineage.clone()
    } else {
        meta.init_from()
            .filter(|_| depth > 0)
            .and_then(|earlier| {
                let artifact = pfn_artifact::load_model(earlier).ok()?;
                let fits = artifact.metadata.architecture == meta.architecture
                    && seen.insert(artifact.digest.clone());
                fits.then(|| lineage(earlier, &artifact, seen, depth - 1))
            })
            .unwrap_or_default()
    };
    runs.push(meta.as_earlier_run(file, start.digest.clone()));
    runs
}

/// The lineage of a run that started from `chain[0]`, which started from `chain[1]`, and so on
/// (newest first; each entry is the path the file was read from and the file): the given runs
/// oldest first, after whatever the oldest file itself records or names (as
/// [`lineage_of_start`]). For recording, after the fact, the history of a model whose start files
/// have moved since they were trained from (`pfn set-lineage`).
pub fn lineage_of_chain(chain: &[(String, ModelArtifact)]) -> Vec<EarlierRun> {
    let Some(((oldest_file, oldest), newer)) = chain.split_last() else {
        return Vec::new();
    };
    let mut runs = lineage_of_start(oldest_file, oldest);
    runs.extend(newer.iter().rev().map(|(file, artifact)| {
        artifact
            .metadata
            .as_earlier_run(file, artifact.digest.clone())
    }));
    runs
}

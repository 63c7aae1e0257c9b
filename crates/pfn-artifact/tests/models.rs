//! The shipped model files (`models/*.pfn`, written before the model file moved out of
//! `pfn-train`) still load: the digest over the stored header verifies, the metadata parses with the
//! run configuration as plain JSON, and the values readers take from it are those of the
//! configuration.

use std::path::{Path, PathBuf};

use pfn_artifact::{load_model, model_from_tensors, MODEL_FORMAT};

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

fn model_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(models_dir())
        .expect("the workspace has a models/ directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pfn"))
        .collect();
    files.sort();
    files
}

/// The `__metadata__` map of a safetensors file, read with the generic reader.
fn header_metadata(bytes: &[u8]) -> std::collections::HashMap<String, String> {
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes).unwrap();
    meta.metadata().clone().unwrap()
}

#[test]
fn every_shipped_model_loads_with_its_digest_and_max_context() {
    let files = model_files();
    assert!(
        !files.is_empty(),
        "no models/*.pfn in {}",
        models_dir().display()
    );
    for path in files {
        let name = path.display();
        let bytes = std::fs::read(&path).unwrap();
        let stored = header_metadata(&bytes);
        assert_eq!(stored["format"], MODEL_FORMAT, "{name}");

        let artifact = load_model(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(artifact.digest, stored["sha256"], "{name}");

        // max_context and the seed, straight from the stored JSON: the configured
        // prior.max_context, else the configuration's seq_len − 1.
        let json: serde_json::Value = serde_json::from_str(&stored["pfn"]).unwrap();
        let prior = &json["config"]["prior"];
        let want = prior["max_context"]
            .as_u64()
            .unwrap_or_else(|| prior["seq_len"].as_u64().unwrap() - 1);
        let meta = &artifact.metadata;
        assert_eq!(meta.max_context() as u64, want, "{name}");
        assert!(meta.max_context() < meta.architecture.seq_len, "{name}");
        assert_eq!(
            meta.run_seed(),
            json["config"]["run"]["seed"].as_u64(),
            "{name}"
        );
        assert_eq!(meta.config, json["config"], "{name}");
        // Every field parsed without loss (normalisation and feature padding included).
        assert_eq!(serde_json::to_value(meta).unwrap(), json, "{name}");
        assert_eq!(
            prior["seq_len"].as_u64(),
            Some(meta.architecture.seq_len as u64),
            "{name}"
        );

        // The weights fit the architecture and the head converts.
        model_from_tensors(&meta.architecture, &artifact.tensors)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let bar = meta.head.bar_distribution().unwrap();
        assert_eq!(
            bar.map(|b| b.num_buckets()).unwrap_or(meta.head.width()),
            meta.architecture.n_out,
            "{name}"
        );
    }
}

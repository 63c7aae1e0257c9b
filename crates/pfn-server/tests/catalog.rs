//! Loading models from a directory: servable artifacts, skipped files, and the start-up errors.

mod common;

use std::path::PathBuf;

use pfn_server::demo_model::save_demo_model;
use pfn_server::{load_catalog, ModelCatalog, ServeConfig, ServeError};

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pfn-server-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_directory_is_loaded_and_bad_files_are_skipped_with_their_reason() {
    let dir = fresh_dir("catalog");
    save_demo_model(common::tiny_artifact(), dir.join("good.safetensors")).unwrap();
    // `pfn train` writes `.pfn` files (the shipped models/*.pfn): served too.
    save_demo_model(common::tiny_artifact(), dir.join("shipped.pfn")).unwrap();
    // Two files with one stem: the first in name order (`.pfn`) is served, the other skipped.
    save_demo_model(common::tiny_artifact(), dir.join("shipped.safetensors")).unwrap();
    std::fs::write(dir.join("broken.safetensors"), b"not a model at all").unwrap();
    std::fs::write(dir.join("notes.txt"), b"ignored").unwrap();
    std::fs::write(dir.join("shipped.pfn.ckpt"), b"a checkpoint, ignored").unwrap();
    let catalog = ModelCatalog::load_dir(&dir, 1).unwrap();
    assert_eq!(catalog.len(), 2);
    let good = catalog.get("good").expect("good model");
    assert!(good.info.supported);
    assert_eq!(good.info.digest.len(), 12);
    let shipped = catalog.get("shipped").expect("the .pfn model");
    assert!(shipped.info.supported);
    assert_eq!(shipped.info.feature_range, [1, 1]);
    assert!(!shipped.info.needs_context);
    let skipped: Vec<(&str, &str)> = catalog
        .skipped()
        .iter()
        .map(|s| (s.file.as_str(), s.error.as_str()))
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(skipped[0].0.ends_with("broken.safetensors"));
    assert!(skipped[0].1.contains("not a pfn model file"), "{skipped:?}");
    assert!(skipped[1].0.ends_with("shipped.safetensors"));
    assert!(skipped[1].1.contains("shipped"), "{skipped:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn start_up_needs_a_servable_model() {
    let missing = ServeConfig {
        models_dir: std::env::temp_dir().join("pfn-server-no-such-dir"),
        ..ServeConfig::default()
    };
    let err = load_catalog(&missing).unwrap_err();
    assert!(matches!(err, ServeError::NoModels(_)));
    let msg = err.to_string();
    assert!(
        msg.contains("cannot read the models directory") && msg.contains("--demo"),
        "{msg}"
    );

    let dir = fresh_dir("empty");
    let empty = ServeConfig {
        models_dir: dir.clone(),
        ..ServeConfig::default()
    };
    let msg = load_catalog(&empty).unwrap_err().to_string();
    assert!(msg.contains("no model artifacts in"), "{msg}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn duplicate_names_are_refused() {
    let mut catalog = common::catalog();
    let err = catalog
        .add_artifact(common::MODEL, common::tiny_artifact(), 1)
        .unwrap_err();
    assert!(matches!(err, ServeError::DuplicateModel(_)), "{err}");
}

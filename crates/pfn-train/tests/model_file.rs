//! The run configurations stored in the shipped model files (`models/*.pfn`) are valid
//! `RunConfig`s that describe the stored architecture and head, and the model file's readings of
//! them (`max_context`, `run_seed`) are the configuration's.

use std::path::Path;

use pfn_train::{architecture_of, load_model, run_config_of};

#[test]
fn shipped_models_carry_their_run_configuration() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "pfn") {
            continue;
        }
        let meta = load_model(&path).unwrap().metadata;
        let config = run_config_of(&meta).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(architecture_of(&config), meta.architecture);
        assert_eq!(meta.max_context(), config.prior.max_context());
        assert_eq!(meta.run_seed(), Some(config.run.seed));
        assert_eq!(meta.prior, config.prior.name);
        n += 1;
    }
    assert!(n > 0, "no models in {}", dir.display());
}

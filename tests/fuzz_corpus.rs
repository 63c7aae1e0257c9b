//! Every input of the fuzz corpora (`fuzz/corpus/<target>/`, and the crash reproductions kept in
//! `fuzz/regressions/<target>/`) through the same parsers as the fuzz targets in `fuzz/`: each must
//! give an answer or an error, never a panic. This runs the fuzzers' findings in the normal suite on
//! the stable toolchain.

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        files.extend(entries.map(|e| e.unwrap().path()));
    }
    files.sort();
    files
}

fn each(target: &str, min_files: usize, check: impl Fn(&[u8])) {
    let files = inputs(target);
    assert!(
        files.len() >= min_files,
        "{target}: expected at least {min_files} corpus files, found {}",
        files.len()
    );
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&bytes)));
        assert!(outcome.is_ok(), "{} panicked", file.display());
    }
}

#[test]
fn csv_table_inputs_never_panic() {
    each("csv_table", 3, |data| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let (train, test) = text.split_once('\u{c}').unwrap_or((text, text));
        if let (Ok(train), Ok(test)) = (
            pfn_infer::parse_csv(train, "train.csv"),
            pfn_infer::parse_csv(test, "test.csv"),
        ) {
            let _ = pfn_infer::match_train_test(&train, &test, None);
        }
    });
}

#[path = "../fuzz/checks/class_labels.rs"]
mod class_labels_check;

#[test]
fn class_labels_inputs_never_panic_and_keep_their_invariants() {
    each("class_labels", 3, class_labels_check::check);
}

#[test]
fn model_file_inputs_never_panic_and_the_seed_model_loads() {
    each("model_file", 1, |data| {
        if let Ok(artifact) = pfn_artifact::parse_model("fuzz.pfn", data) {
            let _ = pfn_infer::Predictor::with_threads(&artifact, 1);
        }
    });
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/model_file/tiny.pfn");
    let artifact = pfn_artifact::parse_model(&seed, &std::fs::read(&seed).unwrap()).unwrap();
    assert!(pfn_infer::Predictor::with_threads(&artifact, 1).is_ok());
}

#[test]
fn run_config_inputs_never_panic() {
    each("run_config", 2, |data| {
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = pfn_train::RunConfig::from_toml_str(text, "fuzz.toml");
        }
    });
}

#[test]
fn api_request_inputs_never_panic() {
    each("api_request", 2, |data| {
        let _ = pfn_server::api::parse_request(data);
    });
}

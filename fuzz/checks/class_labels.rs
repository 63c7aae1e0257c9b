//! The check shared by the `class_labels` fuzz target and its corpus replay in the root package's
//! `tests/fuzz_corpus.rs` (both include this file): reading a classification training/test pair
//! never panics, and what it reads keeps the label invariants.

use pfn_infer::{ReadOptions, TargetKind};

/// Reads `data` as a training and a test CSV (split at the first form feed, else the same text
/// twice) with class labels, and asserts the label encoding's invariants; missing features are
/// allowed when the text starts with `?`.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Split the input into a training and a test file at the first form feed, if any.
    let (train, test) = text.split_once('\u{c}').unwrap_or((text, text));
    let (Ok(train), Ok(test)) = (
        pfn_infer::parse_csv_text(train, "train.csv"),
        pfn_infer::parse_csv_text(test, "test.csv"),
    ) else {
        return;
    };
    let options = ReadOptions {
        target: None,
        target_kind: TargetKind::Classes,
        allow_missing_features: text.starts_with('?'),
    };
    let Ok(mut d) = pfn_infer::match_text_tables(&train, &test, &options) else {
        return;
    };
    let classes = d.classes.clone().expect("class labels");
    assert!(!classes.is_empty());
    for k in 0..classes.len() {
        assert_eq!(classes.encode(classes.name(k)), Some(k));
    }
    if !classes.is_integer() {
        assert!(classes.names().windows(2).all(|w| w[0] < w[1]));
    }
    assert!(d.train_y.iter().all(|&y| (y as usize) < classes.len()));
    for (label, class) in d.test_labels.iter().flatten() {
        assert_eq!(classes.encode(label), *class);
    }
    let f = d.n_features();
    pfn_infer::impute_with_context_means(&mut d.train_x, &mut d.test_x, f);
    assert!(!d.train_x.iter().chain(&d.test_x).any(|v| v.is_nan()));
}

//! CSV tables with a class label column as `pfn predict` reads them for a classification model:
//! any bytes, parsed as a training and a test file, matched with the target read as class labels
//! (integers or words), missing features allowed when the input starts with `?`, then imputed.
//! Errors are fine; panics and broken invariants (classes not sorted and distinct, a class name
//! that does not encode back to its class, a training row outside the classes, a NaN left after
//! imputation) are findings. The checks live in `fuzz/checks/class_labels.rs`, which
//! `tests/fuzz_corpus.rs` includes too to replay the corpus.
#![no_main]

use libfuzzer_sys::fuzz_target;
#[path = "../checks/class_labels.rs"]
mod class_labels_check;

fuzz_target!(|data: &[u8]| class_labels_check::check(data));

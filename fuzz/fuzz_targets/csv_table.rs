//! CSV tables as `pfn predict` reads them: any bytes, parsed as a training file and as a test file,
//! then matched (target column, feature columns). Errors are fine; panics are findings.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Split the input into a training and a test file at the first form feed, if any.
    let (train, test) = text.split_once('\u{c}').unwrap_or((text, text));
    let (Ok(train), Ok(test)) = (
        pfn_infer::parse_csv(train, "train.csv"),
        pfn_infer::parse_csv(test, "test.csv"),
    ) else {
        return;
    };
    let _ = pfn_infer::match_train_test(&train, &test, None);
});

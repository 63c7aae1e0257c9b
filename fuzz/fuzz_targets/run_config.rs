//! Run configurations: any bytes parsed and validated as the TOML of `pfn train --config`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = pfn_train::RunConfig::from_toml_str(text, "fuzz.toml");
    }
});

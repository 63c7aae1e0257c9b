//! Model files: any bytes parsed and verified as a `.pfn` artifact, and a parsed artifact turned into
//! a predictor (weights checked against the architecture the metadata claims).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(artifact) = pfn_artifact::parse_model("fuzz.pfn", data) {
        let _ = pfn_infer::Predictor::with_threads(&artifact, 1);
    }
});

//! JSON bodies of `pfn serve`'s prediction API: any bytes parsed as a request.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pfn_server::api::parse_request(data);
});

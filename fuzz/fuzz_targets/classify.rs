//! Any bytes as a raw HTTP request: parse, then classify. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = airlock::explain::parse_raw(data) {
        let _ = airlock::cloud::aws::classify(&request.view());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(request) = airlock::explain::parse_json(text) {
            let _ = airlock::cloud::aws::classify(&request.view());
        }
    }
});

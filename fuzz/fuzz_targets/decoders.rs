//! Any bytes through every body decoder. Must never panic.
#![no_main]

use airlock::cloud::aws::decode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode::xml_to_json(data);
    let _ = decode::cbor_to_json(data);
    let _ = decode::form_to_json(form_urlencoded::parse(data));
});

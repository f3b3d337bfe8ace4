#![no_main]
//! The endpoint parser on arbitrary strings: never panics, and whatever it
//! accepts prints back to a string that parses to the same endpoint.

use libfuzzer_sys::fuzz_target;
use torsion::Endpoint;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(endpoint) = Endpoint::parse(text) {
        let again = Endpoint::parse(&endpoint.to_string()).expect("display parses");
        assert_eq!(again, endpoint);
    }
});

#![no_main]
//! The netstring codec on arbitrary bytes in arbitrary chunks.

use libfuzzer_sys::fuzz_target;
use torsion_protocols::codec::NetstringCodec;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((limit, chunks, stream)) = common::split(data) else { return };
    let codec = NetstringCodec::new().max_length(limit);
    // Header (digits + colon) + payload + comma.
    let bound = limit + 3 + 2;
    let whole = common::decode_chunks(codec.clone(), &[stream], usize::MAX);
    let chunked = common::decode_chunks(codec, &chunks, bound);
    assert_eq!(whole, chunked);
});

#![no_main]
//! The int8/16/32-prefixed codecs on arbitrary bytes in arbitrary chunks.

use libfuzzer_sys::fuzz_target;
use torsion_protocols::codec::{IntPrefixedCodec, PrefixWidth};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((limit, chunks, stream)) = common::split(data) else { return };
    for width in [PrefixWidth::U8, PrefixWidth::U16, PrefixWidth::U32] {
        let codec = IntPrefixedCodec::new(width).max_length(limit);
        let bound = limit + width.bytes();
        let whole = common::decode_chunks(codec.clone(), &[stream], usize::MAX);
        let chunked = common::decode_chunks(codec, &chunks, bound);
        assert_eq!(whole, chunked);
    }
});

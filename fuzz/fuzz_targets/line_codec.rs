#![no_main]
//! The line codec on arbitrary bytes in arbitrary chunks.

use libfuzzer_sys::fuzz_target;
use torsion_protocols::codec::LineCodec;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((limit, chunks, stream)) = common::split(data) else { return };
    let codecs = [
        LineCodec::new().max_length(limit),
        LineCodec::lf_or_crlf().max_length(limit),
        LineCodec::with_delimiter(b"\0\xff").unwrap().max_length(limit),
    ];
    for codec in codecs {
        let bound = limit + codec.delimiter().len();
        let whole = common::decode_chunks(codec.clone(), &[stream], usize::MAX);
        let chunked = common::decode_chunks(codec, &chunks, bound);
        assert_eq!(whole, chunked);
    }
});

//! Decode throughput of torsion's framing codecs against tokio-util's
//! `LinesCodec`, `AnyDelimiterCodec` and `LengthDelimitedCodec`, on 64 B and
//! 4 KiB frames, in the same run.
//!
//! `cargo bench -p torsion-benches --bench codecs` runs criterion over every
//! case, then measures each torsion/tokio-util pair in interleaved rounds
//! and prints a ratio table (torsion ÷ tokio-util, higher is better).

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput};
use tokio_util::codec::{
    AnyDelimiterCodec, Decoder as TokioDecoder, LengthDelimitedCodec, LinesCodec,
};
use torsion::codec::{Decoder, Encoder, FrameError};
use torsion_benches::{interleaved_throughput, print_table, Comparison};
use torsion_protocols::codec::{IntPrefixedCodec, LineCodec, NetstringCodec, PrefixWidth};

/// About 1 MiB of input per decode run.
const INPUT: usize = 1 << 20;
const MAX: usize = 16384;

fn frames_for(size: usize) -> usize {
    INPUT / size
}

fn line_input(frame: usize) -> BytesMut {
    // `frame` bytes per line including "\r\n"; printable ASCII (valid UTF-8
    // for LinesCodec).
    let mut buf = BytesMut::new();
    let body: Vec<u8> = (0..frame - 2).map(|i| b'a' + (i % 26) as u8).collect();
    for _ in 0..frames_for(frame) {
        buf.extend_from_slice(&body);
        buf.extend_from_slice(b"\r\n");
    }
    buf
}

fn prefixed_input(frame: usize) -> BytesMut {
    let mut buf = BytesMut::new();
    let body = vec![7u8; frame - 4];
    let codec = IntPrefixedCodec::new(PrefixWidth::U32);
    for _ in 0..frames_for(frame) {
        codec.encode(&body, &mut buf).unwrap();
    }
    buf
}

fn netstring_input(frame: usize) -> BytesMut {
    let mut buf = BytesMut::new();
    let digits = frame.to_string().len();
    let body = vec![7u8; frame - digits - 2];
    let codec = NetstringCodec::new();
    for _ in 0..frames_for(frame) {
        codec.encode(&body, &mut buf).unwrap();
    }
    buf
}

fn drain_torsion<D: Decoder<Item = Bytes, Error = FrameError>>(
    mut codec: D,
    mut buf: BytesMut,
) -> usize {
    let mut n = 0;
    while let Some(frame) = codec.decode(&mut buf).unwrap() {
        n += frame.len();
    }
    n
}

fn drain_tokio<D: TokioDecoder>(
    mut codec: D,
    mut buf: BytesMut,
    len: impl Fn(&D::Item) -> usize,
) -> usize
where
    D::Error: std::fmt::Debug,
{
    let mut n = 0;
    while let Some(frame) = codec.decode(&mut buf).unwrap() {
        n += len(&frame);
    }
    n
}

type Run = Box<dyn Fn(BytesMut) -> usize>;

struct Case {
    name: String,
    input: BytesMut,
    torsion: Run,
    peer_name: &'static str,
    peer: Run,
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for frame in [64usize, 4096] {
        cases.push(Case {
            name: format!("line {frame} B"),
            input: line_input(frame),
            torsion: Box::new(|b| drain_torsion(LineCodec::lf_or_crlf().max_length(MAX), b)),
            peer_name: "LinesCodec",
            peer: Box::new(|b| {
                drain_tokio(LinesCodec::new_with_max_length(MAX), b, |s: &String| {
                    s.len()
                })
            }),
        });
        cases.push(Case {
            name: format!("line (bytes) {frame} B"),
            input: line_input(frame),
            torsion: Box::new(|b| drain_torsion(LineCodec::new().max_length(MAX), b)),
            peer_name: "AnyDelimiterCodec",
            peer: Box::new(|b| {
                drain_tokio(
                    AnyDelimiterCodec::new_with_max_length(b"\n".to_vec(), b"\n".to_vec(), MAX),
                    b,
                    |f| f.len(),
                )
            }),
        });
        cases.push(Case {
            name: format!("int32-prefixed {frame} B"),
            input: prefixed_input(frame),
            torsion: Box::new(|b| drain_torsion(IntPrefixedCodec::new(PrefixWidth::U32), b)),
            peer_name: "LengthDelimitedCodec",
            peer: Box::new(|b| drain_tokio(LengthDelimitedCodec::new(), b, |f| f.len())),
        });
    }
    cases
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let all = cases();
    for case in &all {
        let mut group = criterion.benchmark_group(&case.name);
        group.throughput(Throughput::Bytes(case.input.len() as u64));
        group.bench_function("torsion", |b| {
            b.iter_batched(
                || case.input.clone(),
                |buf| (case.torsion)(buf),
                BatchSize::LargeInput,
            )
        });
        group.bench_function(case.peer_name, |b| {
            b.iter_batched(
                || case.input.clone(),
                |buf| (case.peer)(buf),
                BatchSize::LargeInput,
            )
        });
        group.finish();
    }
    {
        let mut group = criterion.benchmark_group("netstring (torsion only)");
        for frame in [64usize, 4096] {
            let input = netstring_input(frame);
            group.throughput(Throughput::Bytes(input.len() as u64));
            group.bench_function(format!("{frame} B"), |b| {
                b.iter_batched(
                    || input.clone(),
                    |buf| drain_torsion(NetstringCodec::new(), buf),
                    BatchSize::LargeInput,
                )
            });
        }
        group.finish();
    }
    criterion.final_summary();

    // The ratio table: each pair in interleaved rounds, same inputs.
    let rows: Vec<Comparison> = all
        .iter()
        .map(|case| {
            let (t, p) = interleaved_throughput(
                case.input.len(),
                41,
                || {
                    std::hint::black_box((case.torsion)(case.input.clone()));
                },
                || {
                    std::hint::black_box((case.peer)(case.input.clone()));
                },
            );
            Comparison {
                case: case.name.clone(),
                torsion: t,
                peer: p,
                peer_name: format!("tokio-util {}", case.peer_name),
            }
        })
        .collect();
    print_table(
        "decode throughput, torsion vs tokio-util (median of 41 interleaved rounds, input copy included for both)",
        &rows,
    );
}

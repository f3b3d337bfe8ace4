//! `torsion load redis`'s side of the wire: commands built from templates,
//! keys drawn from a key space, and RESP replies read back.
//!
//! # Templates
//!
//! A template is a command line, its arguments split at spaces:
//! `SET key:{key} {data}`, `GET key:{key}`, `INCR counter:{key}`. Two
//! placeholders may appear anywhere inside an argument:
//!
//! | placeholder | becomes |
//! |---|---|
//! | `{key}` | a key number in `0..--keys`, drawn by `--distribution` (the same number everywhere in one command) |
//! | `{data}` | `--data-size` bytes of data (`x`…) |
//!
//! Anything else in braces is refused by name. With several templates,
//! `--ratio 1:10` says how many of each (default one each); the mix is
//! deterministic per connection (smooth weighted round-robin over its
//! requests), so `SET`s and `GET`s interleave at the ratio on every
//! connection.
//!
//! # Key distributions
//!
//! `uniform` (every key equally likely), `sequential` (each connection
//! walks the key space from its own offset) or `zipf[:S]` (key *k* with
//! weight 1/(k+1)^S, default S = 0.99, memtier's and YCSB's skew; drawn by
//! `rand_distr`'s rejection-inversion sampler, no table). Each connection
//! has its own generator, seeded from its index: runs repeat.
//!
//! # Replies
//!
//! Every reply is framed (RESP2: simple strings, errors, integers, bulk
//! strings, arrays, nested; RESP3's null `_` too); a top-level `-ERR …`
//! counts as a server error with its text (the report lists the most
//! common texts), a reply that cannot be framed ends the connection's load
//! with its cause.

use bytes::{BufMut, BytesMut};
use rand::{RngExt, SeedableRng};
use rand_distr::Distribution;

/// The longest reply line (simple string, error, length) accepted.
const MAX_LINE: usize = 64 * 1024;
/// The deepest array nesting accepted.
const MAX_DEPTH: usize = 16;
/// The largest bulk string accepted.
const MAX_BULK: usize = 512 * 1024 * 1024;

/// One piece of an argument.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(Vec<u8>),
    Key,
    Data,
}

/// A command template, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// As written: the report's row name.
    pub text: String,
    args: Vec<Vec<Piece>>,
}

impl Template {
    /// Parses `SET key:{key} {data}`.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut args = Vec::new();
        for word in text.split_ascii_whitespace() {
            let mut pieces = Vec::new();
            let mut rest = word;
            while let Some(open) = rest.find('{') {
                if open > 0 {
                    pieces.push(Piece::Text(rest.as_bytes()[..open].to_vec()));
                }
                let Some(close) = rest[open..].find('}') else {
                    return Err(format!(
                        "invalid --command \"{text}\": \"{{\" without \"}}\" in \"{word}\""
                    ));
                };
                match &rest[open + 1..open + close] {
                    "key" => pieces.push(Piece::Key),
                    "data" => pieces.push(Piece::Data),
                    other => {
                        return Err(format!(
                            "invalid --command \"{text}\": unknown placeholder {{{other}}} (known: {{key}}, {{data}})"
                        ))
                    }
                }
                rest = &rest[open + close + 1..];
            }
            if !rest.is_empty() {
                pieces.push(Piece::Text(rest.as_bytes().to_vec()));
            }
            args.push(pieces);
        }
        if args.is_empty() {
            return Err("invalid --command \"\": no command".into());
        }
        Ok(Template {
            text: text.split_ascii_whitespace().collect::<Vec<_>>().join(" "),
            args,
        })
    }

    /// Appends the command for key `key` as a RESP array of bulk strings.
    pub fn encode(&self, key: u64, data: &[u8], dst: &mut BytesMut) {
        let mut digits = itoa::Buffer::new();
        let key = digits.format(key).as_bytes();
        put_len(dst, b'*', self.args.len());
        for arg in &self.args {
            let len: usize = arg
                .iter()
                .map(|p| match p {
                    Piece::Text(t) => t.len(),
                    Piece::Key => key.len(),
                    Piece::Data => data.len(),
                })
                .sum();
            put_len(dst, b'$', len);
            for p in arg {
                dst.put_slice(match p {
                    Piece::Text(t) => t,
                    Piece::Key => key,
                    Piece::Data => data,
                });
            }
            dst.put_slice(b"\r\n");
        }
    }
}

fn put_len(dst: &mut BytesMut, kind: u8, n: usize) {
    let mut digits = itoa::Buffer::new();
    dst.put_u8(kind);
    dst.put_slice(digits.format(n).as_bytes());
    dst.put_slice(b"\r\n");
}

/// How keys are drawn from `0..keys`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyDistribution {
    /// Every key equally likely.
    Uniform,
    /// Each connection walks the key space from its own offset.
    Sequential,
    /// Key k with weight 1/(k+1)^s.
    Zipf(f64),
}

impl std::str::FromStr for KeyDistribution {
    type Err = String;

    fn from_str(s: &str) -> Result<KeyDistribution, String> {
        match s {
            "uniform" => Ok(KeyDistribution::Uniform),
            "sequential" => Ok(KeyDistribution::Sequential),
            "zipf" => Ok(KeyDistribution::Zipf(0.99)),
            _ => match s.strip_prefix("zipf:").map(str::parse::<f64>) {
                Some(Ok(e)) if e.is_finite() && e > 0.0 => Ok(KeyDistribution::Zipf(e)),
                _ => Err(format!(
                    "invalid --distribution \"{s}\" (expected uniform, sequential, zipf or zipf:S with S > 0)"
                )),
            },
        }
    }
}

impl std::fmt::Display for KeyDistribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyDistribution::Uniform => f.write_str("uniform"),
            KeyDistribution::Sequential => f.write_str("sequential"),
            KeyDistribution::Zipf(s) => write!(f, "zipf:{s}"),
        }
    }
}

/// What `load redis` sends.
#[derive(Debug, Clone)]
pub struct RedisLoad {
    /// The templates, in `--command` order.
    pub templates: Vec<Template>,
    /// How many of each (`--ratio`), as many as templates.
    pub ratio: Vec<u32>,
    /// Key space size.
    pub keys: u64,
    /// How keys are drawn.
    pub distribution: KeyDistribution,
    /// What `{data}` becomes.
    pub data: Vec<u8>,
}

impl RedisLoad {
    /// Builds the load from the flags.
    pub fn new(
        commands: &[String],
        ratio: Option<&str>,
        keys: u64,
        distribution: KeyDistribution,
        data_size: usize,
    ) -> Result<RedisLoad, String> {
        let templates = commands
            .iter()
            .map(|c| Template::parse(c))
            .collect::<Result<Vec<_>, _>>()?;
        if templates.is_empty() {
            return Err("give at least one --command".into());
        }
        let ratio = match ratio {
            None => vec![1; templates.len()],
            Some(text) => {
                let r = text
                    .split(':')
                    .map(|w| match w.trim().parse::<u32>() {
                        Ok(n) => Ok(n),
                        Err(_) => Err(format!(
                            "invalid --ratio \"{text}\" (expected counts such as 1:10)"
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if r.len() != templates.len() {
                    return Err(format!(
                        "--ratio \"{text}\" has {} parts for {} commands: give one per --command",
                        r.len(),
                        templates.len()
                    ));
                }
                if r.iter().all(|&n| n == 0) {
                    return Err(format!("--ratio \"{text}\" sends nothing"));
                }
                r
            }
        };
        if keys == 0 {
            return Err("--keys must be at least 1".into());
        }
        Ok(RedisLoad {
            templates,
            ratio,
            keys,
            distribution,
            data: vec![b'x'; data_size],
        })
    }
}

/// One connection's command source: which template next, which key.
pub struct Commands {
    credit: Vec<i64>,
    total: i64,
    keys: KeySource,
}

enum KeySource {
    Uniform(rand::rngs::SmallRng, u64),
    Sequential { next: u64, keys: u64 },
    Zipf(rand::rngs::SmallRng, rand_distr::Zipf<f64>),
}

impl Commands {
    /// Connection `index`'s source (its own seed and offset).
    pub fn new(load: &RedisLoad, index: usize) -> Commands {
        let rng = rand::rngs::SmallRng::seed_from_u64(0x746f7273 ^ (index as u64) << 20);
        let keys = match load.distribution {
            KeyDistribution::Uniform => KeySource::Uniform(rng, load.keys),
            KeyDistribution::Sequential => KeySource::Sequential {
                next: (index as u64).wrapping_mul(7919) % load.keys,
                keys: load.keys,
            },
            KeyDistribution::Zipf(s) => KeySource::Zipf(
                rng,
                rand_distr::Zipf::new(load.keys as f64, s).expect("validated: keys ≥ 1, s > 0"),
            ),
        };
        Commands {
            credit: vec![0; load.ratio.len()],
            total: load.ratio.iter().map(|&r| i64::from(r)).sum(),
            keys,
        }
    }

    /// The next request's template index and key.
    pub fn next(&mut self, ratio: &[u32]) -> (usize, u64) {
        for (c, &r) in self.credit.iter_mut().zip(ratio) {
            *c += i64::from(r);
        }
        let (chosen, _) = self
            .credit
            .iter()
            .enumerate()
            .max_by_key(|&(i, &c)| (c, std::cmp::Reverse(i)))
            .expect("at least one template");
        self.credit[chosen] -= self.total;
        let key = match &mut self.keys {
            KeySource::Uniform(rng, keys) => rng.random_range(0..*keys),
            KeySource::Sequential { next, keys } => {
                let k = *next;
                *next = (*next + 1) % *keys;
                k
            }
            // Zipf's samples are 1..=n as floats.
            KeySource::Zipf(rng, zipf) => zipf.sample(rng) as u64 - 1,
        };
        (chosen, key)
    }
}

/// A whole reply taken off the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Anything but a top-level error.
    Ok,
    /// `-…`: the server refused the command, with its text.
    Error(String),
}

/// The next whole reply at the start of `buf` (consumed), `Ok(None)` when
/// more input is needed, `Err` when the input is not RESP.
pub fn decode_reply(buf: &mut BytesMut) -> Result<Option<Reply>, String> {
    let Some(len) = reply_len(buf, 0, 0)? else {
        return Ok(None);
    };
    let reply = if buf[0] == b'-' {
        let line = &buf[1..len - 2];
        Reply::Error(String::from_utf8_lossy(line).into_owned())
    } else {
        Reply::Ok
    };
    let _ = buf.split_to(len);
    Ok(Some(reply))
}

/// The length of the reply starting at `at`, if it is whole.
fn reply_len(buf: &[u8], at: usize, depth: usize) -> Result<Option<usize>, String> {
    let Some(&kind) = buf.get(at) else {
        return Ok(None);
    };
    let Some(line_end) = find_crlf(buf, at + 1)? else {
        return Ok(None);
    };
    let line = &buf[at + 1..line_end];
    let after = line_end + 2;
    match kind {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Ok(Some(after - at)),
        b'$' => {
            let n = number(line)?;
            if n < 0 {
                return Ok(Some(after - at));
            }
            let n = n as usize;
            if n > MAX_BULK {
                return Err(format!("a bulk string of {n} bytes (over {MAX_BULK})"));
            }
            if buf.len() < after + n + 2 {
                return Ok(None);
            }
            if &buf[after + n..after + n + 2] != b"\r\n" {
                return Err("a bulk string not followed by CRLF".into());
            }
            Ok(Some(after + n + 2 - at))
        }
        b'*' | b'%' | b'~' | b'>' => {
            if depth >= MAX_DEPTH {
                return Err(format!("arrays nested deeper than {MAX_DEPTH}"));
            }
            let n = number(line)?;
            let items = if kind == b'%' { n * 2 } else { n };
            let mut pos = after;
            for _ in 0..items.max(0) {
                match reply_len(buf, pos, depth + 1)? {
                    Some(len) => pos += len,
                    None => return Ok(None),
                }
            }
            Ok(Some(pos - at))
        }
        other => Err(format!(
            "a reply starting with {:?}, which is not RESP",
            char::from(other)
        )),
    }
}

fn find_crlf(buf: &[u8], from: usize) -> Result<Option<usize>, String> {
    match memchr::memchr(b'\r', &buf[from.min(buf.len())..]) {
        Some(i) if from + i + 1 < buf.len() => {
            if buf[from + i + 1] == b'\n' {
                Ok(Some(from + i))
            } else {
                Err("a reply line with CR not followed by LF".into())
            }
        }
        Some(_) => Ok(None),
        None if buf.len() - from.min(buf.len()) > MAX_LINE => {
            Err(format!("a reply line longer than {MAX_LINE} bytes"))
        }
        None => Ok(None),
    }
}

fn number(line: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|&n| n >= -1)
        .ok_or_else(|| format!("a malformed length {:?}", String::from_utf8_lossy(line)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use torsion_protocols::codec::testing::every_chunking;

    #[test]
    fn templates_fill_keys_and_data() {
        let t = Template::parse("SET  key:{key}:x {data}").unwrap();
        assert_eq!(t.text, "SET key:{key}:x {data}");
        let mut out = BytesMut::new();
        t.encode(42, b"abc", &mut out);
        assert_eq!(
            &out[..],
            b"*3\r\n$3\r\nSET\r\n$8\r\nkey:42:x\r\n$3\r\nabc\r\n"
        );
        for (bad, why) in [
            ("GET {name}", "unknown placeholder {name}"),
            ("GET {key", "without"),
            ("   ", "no command"),
        ] {
            let err = Template::parse(bad).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn the_ratio_interleaves_and_bad_ratios_are_refused() {
        let load = RedisLoad::new(
            &["SET k:{key} {data}".into(), "GET k:{key}".into()],
            Some("1:3"),
            10,
            KeyDistribution::Sequential,
            4,
        )
        .unwrap();
        let mut c = Commands::new(&load, 0);
        let picks: Vec<usize> = (0..8).map(|_| c.next(&load.ratio).0).collect();
        assert_eq!(picks.iter().filter(|&&p| p == 0).count(), 2);
        assert_eq!(&picks[..4], [1, 0, 1, 1]);
        for (ratio, why) in [
            ("1", "one per --command"),
            ("0:0", "sends nothing"),
            ("a:1", "1:10"),
        ] {
            let err = RedisLoad::new(
                &["GET a".into(), "GET b".into()],
                Some(ratio),
                1,
                KeyDistribution::Uniform,
                0,
            )
            .unwrap_err();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn keys_stay_in_the_space_and_zipf_is_skewed() {
        for dist in ["uniform", "sequential", "zipf", "zipf:1.2"] {
            let d: KeyDistribution = dist.parse().unwrap();
            let load = RedisLoad::new(&["GET {key}".into()], None, 100, d, 0).unwrap();
            let mut c = Commands::new(&load, 3);
            let mut hits = [0u32; 100];
            for _ in 0..10_000 {
                let (_, k) = c.next(&load.ratio);
                hits[k as usize] += 1;
            }
            if dist.starts_with("zipf") {
                assert!(hits[0] > 10 * hits[50].max(1), "{dist}: {hits:?}");
            } else {
                assert!(hits.iter().all(|&h| h > 0), "{dist}");
            }
        }
        for bad in ["zipf:0", "zipf:x", "normal"] {
            assert!(bad.parse::<KeyDistribution>().is_err(), "{bad}");
        }
    }

    #[test]
    fn replies_are_framed_in_every_chunking() {
        let wire = b"+OK\r\n$5\r\nhello\r\n$-1\r\n:42\r\n-ERR wrong type\r\n*2\r\n$1\r\na\r\n*1\r\n:1\r\n_\r\n";
        every_chunking(wire, |chunks| {
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for c in chunks {
                buf.extend_from_slice(c);
                while let Some(r) = decode_reply(&mut buf).unwrap() {
                    got.push(r);
                }
            }
            assert_eq!(got.len(), 7);
            assert_eq!(got[4], Reply::Error("ERR wrong type".into()));
            assert!(buf.is_empty());
        });
    }

    #[test]
    fn input_that_is_not_resp_is_an_error_with_its_cause() {
        for (bad, why) in [
            (&b"HTTP/1.1 200 OK\r\n"[..], "not RESP"),
            (b"$3\r\nabcd\r\n", "CRLF"),
            (b"$x\r\n", "malformed length"),
            (b"+OK\rX", "CR not followed"),
        ] {
            let err = decode_reply(&mut BytesMut::from(bad)).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
    }
}

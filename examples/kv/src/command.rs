//! From a command's arguments to what to do: which shard does which [`Op`]
//! and how the answers join, or a reply at once (`PING`, errors). The
//! error texts are `redis-server` 7's.

use bytes::{Bytes, BytesMut};
use torsion_protocols::codec::resp::reply;

use crate::store::{parse_i64, Answer, Condition, Op, Ttl};

/// How the answers of a command spread over shards become one reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// Add the integers (`DEL`, `EXISTS`, `DBSIZE`).
    Sum,
    /// `+OK` once every shard said OK (`MSET`, `FLUSHALL`).
    AllOk,
    /// Put each shard's values back at their keys' places (`MGET`).
    Values,
}

/// What a command turns into.
#[derive(Debug)]
pub enum Plan {
    /// Reply with these bytes now.
    Reply(Bytes),
    /// `+OK`, then close.
    Quit,
    /// One op on one shard.
    One(usize, Op),
    /// Ops on several shards; for `Join::Values` each part lists the
    /// places of its keys in the reply.
    Spread(Vec<(usize, Op, Vec<usize>)>, Join, usize),
}

/// The shard that owns `key`: FNV-1a of its bytes, modulo the shard count
/// (fixed, so every shard and every restart agree).
pub fn shard_of(key: &[u8], shards: usize) -> usize {
    if shards == 1 {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % shards as u64) as usize
}

fn error(text: &str) -> Plan {
    let mut out = BytesMut::new();
    reply::error(&mut out, text);
    Plan::Reply(out.freeze())
}

fn arity(name: &str) -> Plan {
    error(&format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";

/// `unknown command 'x', with args beginning with: 'a' 'b' ` as Redis
/// words it (each part cut at 128 bytes, CR and LF as spaces).
fn unknown(args: &[Bytes]) -> Plan {
    let mut rest = String::new();
    for arg in &args[1..] {
        if rest.len() >= 128 {
            break;
        }
        let room = 128 - rest.len();
        let text = String::from_utf8_lossy(&arg[..arg.len().min(room)]);
        rest.push_str(&format!("'{text}' "));
    }
    let name = String::from_utf8_lossy(&args[0][..args[0].len().min(128)]);
    let text = format!("ERR unknown command '{name}', with args beginning with: {rest}");
    error(&text.replace(['\r', '\n'], " "))
}

/// The commands served here, by their lower-case names.
const COMMANDS: [&str; 19] = [
    "get", "set", "del", "exists", "incr", "incrby", "mget", "mset", "expire", "ttl", "dbsize",
    "flushall", "ping", "echo", "quit", "info", "config", "command", "unknown",
];

/// The canonical name of the command `word` names, any case (no
/// allocation: this runs for every command).
fn command_name(word: &[u8]) -> &'static str {
    COMMANDS
        .iter()
        .find(|c| c.as_bytes().eq_ignore_ascii_case(word))
        .copied()
        .unwrap_or("unknown")
}

/// Plans one command (`args` not empty) for `shards` shards.
pub fn plan(args: Vec<Bytes>, shards: usize) -> Plan {
    let name = command_name(&args[0]);
    let n = args.len();
    // Arity as Redis's command table has it: exact when positive, a
    // minimum when negative.
    let want: i32 = match name {
        "get" | "incr" | "ttl" | "echo" => 2,
        "incrby" => 3,
        "dbsize" => 1,
        "set" | "mset" | "expire" => -3,
        "del" | "exists" | "mget" | "config" => -2,
        "ping" | "quit" | "info" | "flushall" | "command" => -1,
        _ => return unknown(&args),
    };
    if (want > 0 && n as i32 != want) || (n as i32) < -want {
        return arity(name);
    }
    let one = |op: Op, key: &Bytes| Plan::One(shard_of(key, shards), op);
    match name {
        "ping" => match n {
            1 => Plan::Reply(Bytes::from_static(b"+PONG\r\n")),
            2 => {
                let mut out = BytesMut::new();
                reply::bulk(&mut out, Some(&args[1]));
                Plan::Reply(out.freeze())
            }
            _ => arity("ping"),
        },
        "quit" => Plan::Quit,
        // redis-cli --pipe ends its input with ECHO <random> to know when
        // every reply is in.
        "echo" => {
            let mut out = BytesMut::new();
            reply::bulk(&mut out, Some(&args[1]));
            Plan::Reply(out.freeze())
        }
        "get" => one(Op::Get(args[1].clone()), &args[1]),
        "set" => plan_set(args, shards),
        "incr" => one(Op::IncrBy(args[1].clone(), 1), &args[1]),
        "incrby" => match parse_i64(&args[2]) {
            Some(d) => one(Op::IncrBy(args[1].clone(), d), &args[1]),
            None => error(NOT_AN_INTEGER),
        },
        "ttl" => one(Op::Ttl(args[1].clone()), &args[1]),
        "expire" => {
            if n > 3 {
                let opt = String::from_utf8_lossy(&args[3]);
                return error(&format!("ERR Unsupported option {opt}"));
            }
            match parse_i64(&args[2]) {
                Some(s) if s > i64::MAX / 1000 => {
                    error("ERR invalid expire time in 'expire' command")
                }
                Some(s) => one(Op::Expire(args[1].clone(), s), &args[1]),
                None => error(NOT_AN_INTEGER),
            }
        }
        "del" | "exists" | "mget" => {
            let mut by_shard: Vec<(Vec<Bytes>, Vec<usize>)> =
                vec![(Vec::new(), Vec::new()); shards];
            for (i, key) in args[1..].iter().enumerate() {
                let part = &mut by_shard[shard_of(key, shards)];
                part.0.push(key.clone());
                part.1.push(i);
            }
            let (make, join): (fn(Vec<Bytes>) -> Op, Join) = match name {
                "del" => (Op::Del, Join::Sum),
                "exists" => (Op::Exists, Join::Sum),
                _ => (Op::MGet, Join::Values),
            };
            spread(
                by_shard
                    .into_iter()
                    .enumerate()
                    .filter(|(_, p)| !p.0.is_empty())
                    .map(|(s, (keys, places))| (s, make(keys), places)),
                join,
                n - 1,
            )
        }
        "mset" => {
            if n % 2 == 0 {
                return arity("mset");
            }
            let mut by_shard: Vec<Vec<(Bytes, Bytes)>> = vec![Vec::new(); shards];
            for pair in args[1..].chunks(2) {
                by_shard[shard_of(&pair[0], shards)].push((pair[0].clone(), pair[1].clone()));
            }
            spread(
                by_shard
                    .into_iter()
                    .enumerate()
                    .filter(|(_, p)| !p.is_empty())
                    .map(|(s, pairs)| (s, Op::MSet(pairs), Vec::new())),
                Join::AllOk,
                0,
            )
        }
        "dbsize" => spread(
            (0..shards).map(|s| (s, Op::DbSize, Vec::new())),
            Join::Sum,
            0,
        ),
        "flushall" => {
            let mode = args.get(1).map(|a| a.to_ascii_lowercase());
            if n > 2 || mode.is_some_and(|m| m != b"async" && m != b"sync") {
                return error("ERR syntax error");
            }
            spread(
                (0..shards).map(|s| (s, Op::FlushAll, Vec::new())),
                Join::AllOk,
                0,
            )
        }
        "info" => {
            let mut out = BytesMut::new();
            let text = format!(
                "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\nserver_name:torsion-kv\r\nshards:{shards}\r\n"
            );
            reply::bulk(&mut out, Some(text.as_bytes()));
            Plan::Reply(out.freeze())
        }
        // redis-benchmark asks CONFIG GET for two settings and redis-cli asks
        // COMMAND DOCS: an empty list says "none here".
        "config" | "command" => Plan::Reply(Bytes::from_static(b"*0\r\n")),
        _ => unknown(&args),
    }
}

fn spread(parts: impl Iterator<Item = (usize, Op, Vec<usize>)>, join: Join, width: usize) -> Plan {
    Plan::Spread(parts.collect(), join, width)
}

/// `SET key value [NX|XX] [EX s|PX ms|KEEPTTL]`, parsed as Redis 7 does.
fn plan_set(args: Vec<Bytes>, shards: usize) -> Plan {
    let mut condition = Condition::Always;
    let mut ttl = Ttl::Clear;
    let mut expire: Option<(&Bytes, u64)> = None;
    let mut j = 3;
    while j < args.len() {
        let opt = args[j].to_ascii_lowercase();
        let next = args.get(j + 1);
        // EX may repeat (the last wins) but not meet PX or KEEPTTL; so PX.
        let unit_free = |unit| ttl != Ttl::Keep && expire.map_or(true, |(_, u)| u == unit);
        match (opt.as_slice(), next) {
            (b"nx", _) if condition != Condition::Present => condition = Condition::Missing,
            (b"xx", _) if condition != Condition::Missing => condition = Condition::Present,
            (b"keepttl", _) if expire.is_none() => ttl = Ttl::Keep,
            (b"ex", Some(v)) if unit_free(1000) => {
                expire = Some((v, 1000));
                j += 1;
            }
            (b"px", Some(v)) if unit_free(1) => {
                expire = Some((v, 1));
                j += 1;
            }
            _ => return error("ERR syntax error"),
        }
        j += 1;
    }
    if let Some((value, unit)) = expire {
        let Some(n) = parse_i64(value) else {
            return error(NOT_AN_INTEGER);
        };
        if n <= 0 || (unit == 1000 && n > i64::MAX / 1000) {
            return error("ERR invalid expire time in 'set' command");
        }
        ttl = Ttl::In(std::time::Duration::from_millis(n as u64 * unit));
    }
    let key = args[1].clone();
    Plan::One(
        shard_of(&key, shards),
        Op::Set(key, args[2].clone(), condition, ttl),
    )
}

/// Writes one shard's whole answer as the reply.
pub fn encode(answer: &Answer, out: &mut BytesMut) {
    match answer {
        Answer::Ok => out.extend_from_slice(b"+OK\r\n"),
        Answer::Int(n) => reply::integer(out, *n),
        Answer::Value(v) => reply::bulk(out, v.as_deref()),
        Answer::Values(values) => {
            reply::array(out, values.len());
            for v in values {
                reply::bulk(out, v.as_deref());
            }
        }
        Answer::Error(text) => reply::error(out, text),
    }
}

//! `torsion-kv` against clients nobody here wrote (`redis-cli`,
//! `redis-benchmark`) and against a real `redis-server` 7: the same command
//! sequences, replies byte for byte. The Redis programs come from Debian's
//! `redis-server`/`redis-tools` (installed when missing and root; skipped
//! with a message only when they cannot be had).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use torsion_tests::{
    ensure_program, read_listening_line, rss_kib, RedisServer, ServerProcess, PATIENCE,
};

fn kv(shards: usize) -> ServerProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_torsion-kv"))
        .env("RUST_LOG", "warn")
        .args(["serve", "kv", "--listen", "tcp:0:interface=127.0.0.1"])
        .args(["--shards", &shards.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn torsion-kv");
    let (addr, n) = read_listening_line(child.stdout.take().unwrap());
    assert_eq!(n, shards);
    ServerProcess {
        child,
        addr,
        shards: n,
    }
}

/// Sends `input` on a fresh connection and reads until the server closes.
fn exchange(addr: SocketAddr, input: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(input).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    out
}

/// The scripts both servers get: commands (RESP and inline), errors,
/// pipelines across keys; each ends in QUIT or a protocol error.
fn scripts() -> Vec<Vec<u8>> {
    let mut pipeline = Vec::new();
    for i in 0..300 {
        pipeline.extend_from_slice(format!("INCR counter:{}\r\n", i % 37).as_bytes());
    }
    for i in 0..37 {
        pipeline.extend_from_slice(format!("GET counter:{i}\r\n").as_bytes());
    }
    pipeline.extend_from_slice(
        b"MGET counter:0 counter:1 nope counter:36\r\nDEL counter:0 counter:5 nope\r\nQUIT\r\n",
    );
    let resp = |args: &[&str]| {
        let mut v = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            v.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        v
    };
    let mut commands = Vec::new();
    for args in [
        &["PING"][..],
        &["ping", "hello world"],
        &["PING", "a", "b"],
        &["SET", "k1", "v1"],
        &["GET", "k1"],
        &["get", "missing"],
        &["SET", "k1", "v2", "NX"],
        &["SET", "k1", "v3", "XX"],
        &["SET", "k2", "v", "XX"],
        &["SET", "k1", "v", "NX", "XX"],
        &["SET", "k1", "v", "EX", "abc"],
        &["SET", "k1", "v", "EX", "0"],
        &["SET", "k1", "v", "PX", "-5"],
        &["SET", "k1", "v", "EX", "10", "PX", "100"],
        &["SET", "k1", "v", "EX"],
        &["SET", "k1", "v", "EX", "100"],
        &["TTL", "k1"],
        &["SET", "k1", "v4", "KEEPTTL"],
        &["TTL", "k1"],
        &["SET", "k1", "v5"],
        &["TTL", "k1"],
        &["TTL", "nope"],
        &["EXPIRE", "k1", "50"],
        &["TTL", "k1"],
        &["EXPIRE", "nope", "50"],
        &["EXPIRE", "k1", "x"],
        &["EXPIRE", "k1", "0"],
        &["EXISTS", "k1"],
        &["INCR", "n"],
        &["INCRBY", "n", "41"],
        &["INCRBY", "n", "x"],
        &["INCRBY", "n", "9223372036854775807"],
        &["SET", "s", "abc"],
        &["INCR", "s"],
        &["SET", "z", " 1"],
        &["INCR", "z"],
        &["MSET", "a", "1", "b", "2", "c", "3"],
        &["MSET", "a", "1", "b"],
        &["MGET", "a", "b", "c", "d"],
        &["EXISTS", "a", "a", "d", "c"],
        &["DEL", "a", "d", "c"],
        &["DBSIZE"],
        &["GET"],
        &["GET", "a", "b"],
        &["NOSUCH", "x", "y\r\nz"],
        &["FLUSHALL"],
        &["DBSIZE"],
        &["FLUSHALL", "BOGUS"],
        &["QUIT"],
    ] {
        commands.extend_from_slice(&resp(args));
    }
    vec![
        commands,
        pipeline,
        b"PING\r\nset  inline \"quoted \\x41 \\n\" \r\nget inline\r\nQUIT\r\n".to_vec(),
        b"*1\r\n$4\r\nPING\r\n*x\r\n".to_vec(),
        b"*1\r\n+PING\r\n".to_vec(),
        b"*1\r\n$-3\r\n".to_vec(),
        b"*1\r\n$536870913\r\n".to_vec(),
        b"get \"unbalanced\r\n".to_vec(),
    ]
}

#[test]
fn replies_are_byte_identical_to_redis_server() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    for shards in [1, 2] {
        let server = kv(shards);
        let _ = exchange(redis.addr, b"FLUSHALL\r\nQUIT\r\n");
        for (i, script) in scripts().iter().enumerate() {
            let theirs = exchange(redis.addr, script);
            let ours = exchange(server.addr, script);
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs),
                "script {i} with {shards} shard(s): {}",
                String::from_utf8_lossy(script)
            );
        }
    }
}

#[test]
fn an_array_of_over_a_million_elements_is_refused_before_anything_is_allocated() {
    // Redis 6's limit, the issue's rule (Redis 7.0 lets an array announce up
    // to 2^31 - 1 elements and waits for them).
    let server = kv(1);
    assert_eq!(
        exchange(server.addr, b"*1048577\r\n"),
        b"-ERR Protocol error: invalid multibulk length\r\n"
    );
    // At the limit it waits for the elements, and a bulk string announced
    // at 512 MB is not reserved either: the connection answers PING after.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(b"*1048576\r\n$536870912\r\nabc").unwrap();
    drop(s);
    assert_eq!(
        exchange(server.addr, b"PING\r\nQUIT\r\n"),
        b"+PONG\r\n+OK\r\n"
    );
}

#[test]
fn redis_cli_talks_to_it() {
    if !ensure_program("redis-cli", "redis-tools") {
        return;
    }
    let server = kv(2);
    let port = server.addr.port().to_string();
    let cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(cli(&["PING"]), "PONG\n");
    assert_eq!(cli(&["SET", "greeting", "hello"]), "OK\n");
    assert_eq!(cli(&["GET", "greeting"]), "hello\n");
    assert_eq!(cli(&["MSET", "a", "1", "b", "2"]), "OK\n");
    assert_eq!(cli(&["MGET", "a", "b", "greeting", "c"]), "1\n2\nhello\n\n");
    assert_eq!(cli(&["DBSIZE"]), "3\n");
}

#[test]
fn redis_benchmark_pipelined_runs_clean_and_leaves_its_keys() {
    if !ensure_program("redis-benchmark", "redis-tools") {
        return;
    }
    let server = kv(2);
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &server.addr.port().to_string()])
        .args([
            "-n",
            "20000",
            "-c",
            "20",
            "-P",
            "16",
            "-r",
            "1000",
            "-t",
            "set,get,incr,mset",
            "-q",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for test in ["SET", "GET", "INCR", "MSET (10 keys)"] {
        assert!(
            text.lines()
                .any(|l| l.contains(&format!("{test}: ")) && l.contains("requests per second")),
            "{test} missing: {text}"
        );
    }
    assert!(!text.to_lowercase().contains("error"), "{text}");
    // -r 1000 spreads the keys: both shards hold some, DBSIZE adds them up.
    let reply = exchange(server.addr, b"DBSIZE\r\nQUIT\r\n");
    let n: i64 = String::from_utf8_lossy(&reply)[1..]
        .split("\r\n")
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(n > 100, "{n} keys");
}

#[test]
fn a_client_that_never_reads_is_held_not_buffered() {
    let server = kv(1);
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    // A 1 MB value (inline commands stop at 64 KiB), then GETs of it
    // without reading a byte: the server
    // stops reading once its output is past the high-water mark, so our
    // writes block (time out) instead of the server buffering gigabytes.
    let value = "x".repeat(1 << 20);
    let set = format!(
        "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${}\r\n{value}\r\n",
        value.len()
    );
    s.write_all(set.as_bytes()).unwrap();
    let get = b"GET big\r\n".repeat(1000);
    let mut blocked = false;
    for _ in 0..2000 {
        if s.write_all(&get).is_err() {
            blocked = true;
            break;
        }
    }
    assert!(
        blocked,
        "the server kept reading from a client that never reads"
    );
    let rss_mib = rss_kib(server.child.id()) / 1024;
    assert!(
        rss_mib < 64,
        "the server holds {rss_mib} MiB for a client that never reads"
    );
    // And it still serves others.
    assert_eq!(
        exchange(server.addr, b"PING\r\nQUIT\r\n"),
        b"+PONG\r\n+OK\r\n"
    );
}

#[test]
fn the_apps_own_metrics_count_commands_remote_calls_and_keys() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_torsion-kv"))
        .env("RUST_LOG", "warn")
        .args([
            "serve",
            "kv",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--shards",
            "2",
        ])
        .args(["--metrics", "tcp:0:interface=127.0.0.1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn torsion-kv");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let (addr, _) = torsion_tests::parse_listening_line(&lines.next().unwrap().unwrap());
    let metrics_line = lines.next().unwrap().unwrap();
    let (_, metrics) = torsion_tests::parse_metrics_line(&metrics_line, "http");
    let _server = ServerProcess {
        child,
        addr,
        shards: 2,
    };
    // 20 keys spread over both shards, then one MGET of all of them.
    let mut script = Vec::new();
    for i in 0..20 {
        script.extend_from_slice(format!("SET key{i} v\r\n").as_bytes());
    }
    script.extend_from_slice(b"MGET");
    for i in 0..20 {
        script.extend_from_slice(format!(" key{i}").as_bytes());
    }
    script.extend_from_slice(b"\r\nQUIT\r\n");
    let reply = exchange(addr, &script);
    assert!(reply.ends_with(b"+OK\r\n"));
    let scrape = exchange(
        metrics,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&scrape);
    let total = |name: &str| torsion_tests::metric_total(&text, name, &[]) as u64;
    assert_eq!(total("torsion_kv_keys"), 20, "{text}");
    assert_eq!(total("torsion_kv_commands_total"), 22);
    // Every key owned by the other shard cost one call; the MGET one more
    // for the other shard's part: at least one of each.
    assert!(total("torsion_kv_remote_calls_total") >= 2, "{text}");
    assert!(text.contains("torsion_bus_messages_sent_total{shard=\"0\",bus=\"kv\"}"));
}

/// `torsion load redis` (the library under the command) against torsion-kv:
/// SET and GET over a zipf key space, pipelined; every reply checked, the
/// keys land on their shards, and a command kv does not know is counted
/// with the text kv answers.
#[test]
fn torsion_load_redis_drives_kv_and_checks_every_reply() {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use torsion_cli::load::echo::{EchoLoad, Rate};
    use torsion_cli::load::resp_wire::{KeyDistribution, RedisLoad};
    use torsion_cli::load::target::LoadTarget;
    use torsion_cli::load::{run_echo, Outputs};

    let server = kv(2);
    let load = |commands: &[&str], rate: Rate, pipeline: usize| EchoLoad {
        targets: vec![LoadTarget::plain(server.addr)],
        connections: 8,
        rate,
        pipeline,
        duration: Duration::from_secs(1),
        warmup: Duration::ZERO,
        size: 0,
        framing: torsion_protocols::Framing::Raw,
        connect_timeout: Duration::from_secs(3),
        drain: Duration::from_secs(2),
        udp: false,
        http: None,
        websocket: None,
        redis: Some(
            RedisLoad::new(
                &commands.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                None,
                500,
                KeyDistribution::Zipf(0.99),
                8,
            )
            .unwrap(),
        ),
        churn: 0.0,
        batches: false,
    };
    let cores = vec![*torsion::cores::allowed_cores().unwrap().last().unwrap()];
    let stop = Arc::new(AtomicBool::new(false));
    let report = run_echo(
        load(&["SET key:{key} {data}", "GET key:{key}"], Rate::Max, 16),
        &cores,
        stop.clone(),
        &Outputs::default(),
    )
    .unwrap();
    assert!(!report.has_errors(), "{}", report.render());
    assert!(report.completed > 0 && report.completed == report.sent);
    assert_eq!(report.commands.len(), 2);
    let dbsize = exchange(server.addr, b"DBSIZE\r\nQUIT\r\n");
    let text = String::from_utf8_lossy(&dbsize);
    let n: u64 = text
        .lines()
        .next()
        .and_then(|l| l.trim_start_matches(':').parse().ok())
        .unwrap_or(0);
    assert!((1..=500).contains(&n), "{text}");

    let report = run_echo(
        load(&["NOSUCH {key}"], Rate::PerSecond(200.0), 1),
        &cores,
        stop,
        &Outputs::default(),
    )
    .unwrap();
    assert_eq!(
        report.errors.server,
        report.completed,
        "{}",
        report.render()
    );
    assert!(report.completed > 0);
    assert!(
        report.server_errors.keys().all(|t| t.starts_with("ERR")),
        "{:?}",
        report.server_errors
    );
}

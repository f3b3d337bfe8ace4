//! What the database pool costs per query: SQLite point reads through
//! `torsion_db::ConnectionPool`, awaited on a torsion executor with 64 in
//! flight, against the same reads by `rusqlite` called directly on as many
//! threads as the pool has — in the same run, interleaved rounds.
//!
//! `cargo bench -p torsion-benches --bench db [-- --threads 1 --seconds 2 --rounds 3]`
//!
//! Prints each round's reads/s for both, then the medians, the ratio, and
//! the pool's overhead per query in µs (1/pool rate − 1/direct rate, per
//! thread).

use std::sync::atomic::Ordering;

use torsion_db::{ConnectionPool, Sqlite, Value};

const KEYS: i64 = 10_000;
const IN_FLIGHT: usize = 64;

fn setup(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("DROP TABLE IF EXISTS kv; CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT);")
        .unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    for k in 0..KEYS {
        tx.execute(
            "INSERT INTO kv VALUES (?1, ?2)",
            rusqlite::params![k, format!("value {k}")],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

/// Reads/s of `threads` threads each reading with its own connection.
fn direct(path: &std::path::Path, threads: usize, secs: f64) -> f64 {
    let path = path.to_owned();
    torsion_benches::direct_reads_per_second(threads, secs, move |t, stop| {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let mut stmt = conn
            .prepare_cached("SELECT v FROM kv WHERE k = ?1")
            .unwrap();
        let mut n = 0u64;
        let mut k = t as i64;
        while !stop.load(Ordering::Relaxed) {
            let v: String = stmt.query_row([k % KEYS], |r| r.get(0)).unwrap();
            std::hint::black_box(v);
            k += 7919;
            n += 1;
        }
        n
    })
}

fn main() {
    let threads: usize = torsion_benches::arg_or("--threads", 1);
    let secs: f64 = torsion_benches::arg_or("--seconds", 2.0);
    let rounds: usize = torsion_benches::arg_or("--rounds", 3);
    let dir = std::env::temp_dir().join(format!("torsion-db-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bench.db");
    setup(&path);
    let pool = ConnectionPool::new(Sqlite::file(&path), threads, 1024).unwrap();
    println!("db: SQLite point reads, {KEYS} keys, {threads} thread(s), {secs} s per run, {rounds} rounds");
    torsion_benches::report_pool_against_direct(
        "rusqlite",
        threads,
        rounds,
        || direct(&path, threads, secs),
        || {
            let pool = pool.clone();
            torsion_benches::pool_reads_per_second(secs, IN_FLIGHT, KEYS, move |k| {
                pool.run_query("SELECT v FROM kv WHERE k = ?1", vec![Value::Integer(k)])
            })
        },
    );
    pool.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

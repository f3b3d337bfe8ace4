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

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    let stop = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (path, stop, total) = (path.to_owned(), stop.clone(), total.clone());
            std::thread::spawn(move || {
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
                total.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    total.load(Ordering::Relaxed) as f64 / secs
}

/// Reads/s through the pool, awaited on one torsion executor with
/// `IN_FLIGHT` calls outstanding.
fn pooled(pool: &ConnectionPool<Sqlite>, secs: f64) -> f64 {
    let pool = pool.clone();
    torsion::block_on(async move {
        let end = Instant::now() + Duration::from_secs_f64(secs);
        let done = std::rc::Rc::new(std::cell::Cell::new(0u64));
        let workers: Vec<_> = (0..IN_FLIGHT)
            .map(|w| {
                let (pool, done) = (pool.clone(), done.clone());
                torsion::spawn_local(async move {
                    let mut k = w as i64;
                    while Instant::now() < end {
                        let rows = pool
                            .run_query(
                                "SELECT v FROM kv WHERE k = ?1",
                                vec![Value::Integer(k % KEYS)],
                            )
                            .await
                            .unwrap();
                        std::hint::black_box(rows);
                        k += 7919;
                        done.set(done.get() + 1);
                    }
                })
            })
            .collect();
        for w in workers {
            w.await;
        }
        done.get() as f64 / secs
    })
    .unwrap()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
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
    let (mut d, mut p) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        d.push(direct(&path, threads, secs));
        p.push(pooled(&pool, secs));
        println!(
            "  round {}: rusqlite direct {:>10.0} reads/s, through the pool {:>10.0} reads/s",
            r + 1,
            d[r],
            p[r]
        );
    }
    let (dm, pm) = (median(d.clone()), median(p.clone()));
    let range = |xs: &[f64]| {
        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().copied().fold(0.0, f64::max);
        format!("{lo:.0}–{hi:.0}")
    };
    println!(
        "  median: direct {dm:.0} [{}], pool {pm:.0} [{}] reads/s; pool ÷ direct = {:.2}×",
        range(&d),
        range(&p),
        pm / dm
    );
    println!(
        "  per query (per thread): direct {:.2} µs, pool {:.2} µs: the pool adds {:.2} µs",
        threads as f64 / dm * 1e6,
        threads as f64 / pm * 1e6,
        threads as f64 * (1.0 / pm - 1.0 / dm) * 1e6
    );
    pool.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

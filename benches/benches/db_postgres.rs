//! What the database pool costs per query against PostgreSQL: point reads
//! through `torsion_db::ConnectionPool<Postgres>`, awaited on a torsion
//! executor with 64 in flight, against the same reads by the `postgres`
//! crate called directly (a prepared statement) on as many threads as the
//! pool has — in the same run, interleaved rounds, against one server of
//! the bench's own (Debian's `postgresql`, a fresh cluster on loopback,
//! its processes on the server core; the clients and the pool on the load
//! core).
//!
//! `cargo bench -p torsion-benches --bench db_postgres [-- --threads 1 --seconds 2 --rounds 3]`
//!
//! Prints each round's reads/s for both, then the medians with their
//! range, the ratio, and the pool's overhead per query in µs (1/pool rate
//! − 1/direct rate, per thread).

use std::sync::atomic::Ordering;

use torsion_db::{ConnectionPool, Postgres, Value};
use torsion_tests::PostgresServer;

const KEYS: i64 = 10_000;
const IN_FLIGHT: usize = 64;
const READ: &str = "SELECT v FROM kv WHERE k = $1";

fn setup(conninfo: &str) {
    let mut client = postgres::Client::connect(conninfo, postgres::NoTls).unwrap();
    client
        .batch_execute(
            "DROP TABLE IF EXISTS kv; CREATE TABLE kv (k int8 PRIMARY KEY, v text);\
             INSERT INTO kv SELECT k, 'value ' || k FROM generate_series(0, 9999) AS k;\
             ANALYZE kv;",
        )
        .unwrap();
}

/// Reads/s of `threads` threads each reading with its own client.
fn direct(conninfo: &str, threads: usize, secs: f64) -> f64 {
    let conninfo = conninfo.to_owned();
    torsion_benches::direct_reads_per_second(threads, secs, move |t, stop| {
        let mut client = postgres::Client::connect(&conninfo, postgres::NoTls).unwrap();
        let stmt = client.prepare(READ).unwrap();
        let mut n = 0u64;
        let mut k = t as i64;
        while !stop.load(Ordering::Relaxed) {
            let row = client.query_one(&stmt, &[&(k % KEYS)]).unwrap();
            std::hint::black_box(row.get::<_, String>(0));
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
    if !torsion_benches::two_cores_available() {
        return;
    }
    // The server's processes inherit this thread's core when they are
    // forked: PostgreSQL on the server core, the clients and the pool on
    // the load core.
    torsion_benches::pin(torsion_benches::SERVER_CORE);
    let Some(server) = PostgresServer::start() else {
        eprintln!("db_postgres: no PostgreSQL server to measure against");
        return;
    };
    torsion_benches::pin(torsion_benches::LOAD_CORE);
    let conninfo = server.conninfo();
    setup(&conninfo);
    let pool = ConnectionPool::new(Postgres::new(&conninfo).unwrap(), threads, 1024).unwrap();
    println!(
        "db_postgres: PostgreSQL point reads over loopback, {KEYS} keys, {threads} thread(s), \
         {secs} s per run, {rounds} rounds"
    );
    torsion_benches::report_pool_against_direct(
        "postgres",
        threads,
        rounds,
        || direct(&conninfo, threads, secs),
        || {
            let pool = pool.clone();
            torsion_benches::pool_reads_per_second(secs, IN_FLIGHT, KEYS, move |k| {
                pool.run_query(READ, vec![Value::Integer(k)])
            })
        },
    );
    pool.shutdown();
}

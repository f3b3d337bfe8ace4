//! The pool against real SQLite files: queries, operations, interactions
//! that commit and that roll back, a locked database, a full queue, a
//! panicking call, a database that cannot be opened — each a sentence, the
//! pool going on — awaited from a torsion executor.

use std::path::PathBuf;
use std::time::Duration;

use torsion_db::{ConnectionPool, DbError, Sqlite, Value};

/// A fresh database file's path, removed with its folder when dropped.
struct TempDb(PathBuf);

impl TempDb {
    fn new(tag: &str) -> TempDb {
        let dir = std::env::temp_dir().join(format!("torsion-db-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDb(dir)
    }
    fn file(&self) -> PathBuf {
        self.0.join("test.db")
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn count(pool: &ConnectionPool<Sqlite>) -> i64 {
    let pool = pool.clone();
    let rows =
        torsion::block_on(async move { pool.run_query("SELECT count(*) FROM t", vec![]).await })
            .unwrap()
            .unwrap();
    match rows[0][0] {
        Value::Integer(n) => n,
        ref other => panic!("{other:?}"),
    }
}

#[test]
fn queries_operations_and_interactions_that_commit_or_roll_back() {
    let db = TempDb::new("basics");
    let pool = ConnectionPool::new(Sqlite::file(db.file()), 2, 16).unwrap();
    let p = pool.clone();
    torsion::block_on(async move {
        p.run_operation(
            "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER, b BLOB)",
            vec![],
        )
        .await
        .unwrap();
        let changed = p
            .run_operation(
                "INSERT INTO t VALUES (?1, ?2, ?3), (?4, ?5, NULL)",
                vec![
                    "a".into(),
                    1i64.into(),
                    vec![0u8, 255].into(),
                    "b".into(),
                    2i64.into(),
                ],
            )
            .await
            .unwrap();
        assert_eq!(changed, 2);
        let rows = p
            .run_query("SELECT k, v, b FROM t ORDER BY k", vec![])
            .await
            .unwrap();
        assert_eq!(
            rows,
            vec![
                vec![
                    Value::Text("a".into()),
                    Value::Integer(1),
                    Value::Blob(vec![0, 255])
                ],
                vec![Value::Text("b".into()), Value::Integer(2), Value::Null],
            ]
        );
        // SQLite has no booleans: true is stored, and read back, as 1.
        let one = p
            .run_query("SELECT ?1, ?2", vec![true.into(), Value::from(None::<i64>)])
            .await
            .unwrap();
        assert_eq!(one, vec![vec![Value::Integer(1), Value::Null]]);
        // A refused statement carries SQLite's extended code.
        let dup = p
            .run_operation("INSERT INTO t VALUES ('a', 3, NULL)", vec![])
            .await
            .unwrap_err();
        assert_eq!(dup.code(), Some("1555"), "{dup}"); // SQLITE_CONSTRAINT_PRIMARYKEY
        assert!(
            dup.to_string().contains("UNIQUE constraint failed: t.k"),
            "{dup}"
        );
        // An interaction that commits: both statements, or neither.
        let total = p
            .run_interaction(|tx| {
                tx.execute("UPDATE t SET v = v + 10", [])?;
                let total: i64 = tx.query_row("SELECT sum(v) FROM t", [], |r| r.get(0))?;
                Ok(total)
            })
            .await
            .unwrap();
        assert_eq!(total, 23);
        // One that fails half-way is rolled back.
        let err = p
            .run_interaction(|tx| {
                tx.execute("INSERT INTO t VALUES ('c', 3, NULL)", [])?;
                Err::<(), _>(DbError::failed("changed my mind"))
            })
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "changed my mind");
        // A statement the database refuses: its words.
        let err = p
            .run_operation("INSERT INTO t VALUES ('a', 0, NULL)", vec![])
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("UNIQUE constraint failed"),
            "{err}"
        );
    })
    .unwrap();
    assert_eq!(count(&pool), 2);
    assert!(pool.stats().completed >= 7);
    pool.shutdown();
}

#[test]
fn a_locked_database_is_an_error_in_words_and_the_pool_goes_on() {
    let db = TempDb::new("locked");
    let pool = ConnectionPool::new(
        Sqlite::file(db.file()).busy_timeout(Duration::from_millis(50)),
        1,
        4,
    )
    .unwrap();
    let p = pool.clone();
    torsion::block_on(async move { p.run_operation("CREATE TABLE t (x)", vec![]).await })
        .unwrap()
        .unwrap();
    // Another connection holds the write lock.
    let holder = rusqlite::Connection::open(db.file()).unwrap();
    holder
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (1);")
        .unwrap();
    let p = pool.clone();
    let err =
        torsion::block_on(async move { p.run_operation("INSERT INTO t VALUES (2)", vec![]).await })
            .unwrap()
            .unwrap_err();
    assert!(err.to_string().contains("database is locked"), "{err}");
    holder.execute_batch("COMMIT").unwrap();
    let p = pool.clone();
    torsion::block_on(async move { p.run_operation("INSERT INTO t VALUES (3)", vec![]).await })
        .unwrap()
        .unwrap();
    assert_eq!(count(&pool), 2);
}

#[test]
fn a_full_queue_refuses_at_once_and_a_panic_is_an_answer() {
    let db = TempDb::new("queue");
    let pool = ConnectionPool::new(Sqlite::file(db.file()), 1, 1).unwrap();
    let (started_tx, started_rx) = crossbeam_channel::bounded::<()>(1);
    let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(1);
    let p = pool.clone();
    torsion::block_on(async move {
        // The thread is busy with the first call, the queue holds the second:
        // the third is refused without waiting.
        let busy = p.run_with(move |_conn| {
            let _ = started_tx.send(());
            let _ = release_rx.recv();
            Ok(1)
        });
        started_rx.recv().unwrap();
        let queued = p.run_with(|_conn| Ok(2));
        let refused = p.run_with(|_conn| Ok(3)).await.unwrap_err();
        assert!(
            matches!(refused, DbError::QueueFull { queue: 1 }),
            "{refused}"
        );
        assert!(refused.to_string().contains("queue is full"));
        release_tx.send(()).unwrap();
        assert_eq!(busy.await.unwrap(), 1);
        assert_eq!(queued.await.unwrap(), 2);
        // A panic on the pool's thread is an answer; the pool goes on.
        let panicked = p
            .run_with(|_conn| -> Result<(), DbError> { panic!("bad query builder") })
            .await
            .unwrap_err();
        assert_eq!(
            panicked.to_string(),
            "the database work panicked: bad query builder"
        );
        assert_eq!(p.run_with(|_conn| Ok(4)).await.unwrap(), 4);
    })
    .unwrap();
    let stats = pool.stats();
    assert_eq!((stats.refused, stats.panicked), (1, 1));
}

#[test]
fn a_database_that_cannot_be_opened_fails_the_pool_with_its_reason() {
    let err = ConnectionPool::new(Sqlite::file("/nonexistent-dir/x/app.db"), 2, 4).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("cannot open the sqlite database /nonexistent-dir/x/app.db:"),
        "{text}"
    );
}

#[test]
fn a_shut_down_pool_answers_pool_closed_and_finishes_what_was_queued() {
    let db = TempDb::new("closed");
    let pool = ConnectionPool::new(Sqlite::file(db.file()), 1, 8).unwrap();
    let clone = pool.clone();
    let (queued, closed) = torsion::block_on(async move {
        let queued = clone.run_operation("CREATE TABLE t (x)", vec![]);
        pool.shutdown(); // waits for the queued call
        let closed = clone.run_with(|_c| Ok(())).await;
        (queued.await, closed)
    })
    .unwrap();
    assert_eq!(queued.unwrap(), 0);
    assert!(matches!(closed, Err(DbError::PoolClosed)), "{closed:?}");
    // The queued call ran: the table is there.
    let conn = rusqlite::Connection::open(db.file()).unwrap();
    conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
}

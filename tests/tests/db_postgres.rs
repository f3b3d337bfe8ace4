//! torsion-db's PostgreSQL backend against a real server of the test's own
//! (Debian's `postgresql`, a fresh cluster per test): queries, operations
//! and interactions that commit or roll back, typed values both ways,
//! errors in words with their SQLSTATE, a lock held elsewhere, a server
//! that goes away and comes back.

use std::time::Duration;

use torsion_db::{ConnectionPool, DbError, Postgres, Value};
use torsion_tests::{PostgresServer, PATIENCE};

fn pool(conninfo: &str, threads: usize) -> ConnectionPool<Postgres> {
    ConnectionPool::new(Postgres::new(conninfo).unwrap(), threads, 64).unwrap()
}

fn count(pool: &ConnectionPool<Postgres>, table: &str) -> i64 {
    let rows = torsion::block_on(pool.run_query(format!("SELECT count(*) FROM {table}"), vec![]))
        .unwrap()
        .unwrap();
    match rows[0][0] {
        Value::Integer(n) => n,
        ref other => panic!("count(*) came back as {other:?}"),
    }
}

#[test]
fn queries_operations_and_interactions_that_commit_or_roll_back() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let pool = pool(&server.conninfo(), 2);
    torsion::block_on({
        let pool = pool.clone();
        async move {
            pool.run_operation(
                "CREATE TABLE items (id int4 PRIMARY KEY, name text, price float8, \
                 small int2, big int8, data bytea, ok boolean, doc jsonb, note varchar(20))",
                vec![],
            )
            .await
            .unwrap();
            let row = vec![
                Value::Integer(1),
                "tea".into(),
                Value::Real(2.5),
                Value::Integer(-7),
                Value::Integer(1 << 40),
                Value::Blob(vec![0, 255, 10]),
                Value::Bool(true),
                r#"{"a": 1}"#.into(),
                Value::Null,
            ];
            let changed = pool
                .run_operation(
                    "INSERT INTO items VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    row.clone(),
                )
                .await
                .unwrap();
            assert_eq!(changed, 1);
            let back = pool
                .run_query("SELECT * FROM items WHERE id = $1", vec![1.into()])
                .await
                .unwrap();
            assert_eq!(back, vec![row]);

            // An interaction that returns Ok commits; Err and a panic roll
            // back what they did.
            pool.run_interaction(|tx| {
                tx.execute("INSERT INTO items (id, name) VALUES (2, 'coffee')", &[])?;
                Ok(())
            })
            .await
            .unwrap();
            let refused = pool
                .run_interaction(|tx| -> Result<(), DbError> {
                    tx.execute("INSERT INTO items (id, name) VALUES (3, 'juice')", &[])?;
                    Err(DbError::failed("changed my mind"))
                })
                .await;
            assert_eq!(refused.unwrap_err().to_string(), "changed my mind");
            let panicked = pool
                .run_interaction(|tx| -> Result<(), DbError> {
                    tx.execute("INSERT INTO items (id, name) VALUES (4, 'milk')", &[])?;
                    panic!("the work broke");
                })
                .await;
            assert!(
                matches!(&panicked, Err(DbError::Panicked(why)) if why == "the work broke"),
                "{panicked:?}"
            );
            let ids = pool
                .run_query("SELECT id FROM items ORDER BY id", vec![])
                .await
                .unwrap();
            assert_eq!(ids, vec![vec![Value::Integer(1)], vec![Value::Integer(2)]]);
        }
    })
    .unwrap();
    assert_eq!(pool.stats().panicked, 1);

    // The Unix socket reaches the same database.
    let by_socket = self::pool(&server.unix_conninfo(), 1);
    assert_eq!(count(&by_socket, "items"), 2);
}

#[test]
fn bad_statements_and_values_are_errors_in_words_and_the_pool_goes_on() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    // One thread: every call below meets the same connection (and its
    // cached statements).
    let pool = pool(&server.conninfo(), 1);
    torsion::block_on(async move {
        pool.run_operation("CREATE TABLE t (id int4 PRIMARY KEY, name text)", vec![])
            .await
            .unwrap();
        pool.run_operation("INSERT INTO t VALUES (1, 'a')", vec![])
            .await
            .unwrap();

        let e = pool
            .run_operation("INSERT INTO t VALUES (1, 'again')", vec![])
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("23505"), "{e}");
        assert!(
            e.to_string()
                .contains("duplicate key value violates unique constraint")
                && e.to_string().contains("(Key (id)=(1) already exists.)"),
            "{e}"
        );

        let e = pool.run_query("SELEC 1", vec![]).await.unwrap_err();
        assert_eq!(e.code(), Some("42601"), "{e}");
        assert_eq!(
            e.to_string(),
            "the database said: ERROR: syntax error at or near \"SELEC\" (SQLSTATE 42601)"
        );

        let e = pool
            .run_query("SELECT name FROM t WHERE id = $1", vec!["one".into()])
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("a Text value cannot be a parameter of type int4"),
            "{e}"
        );
        let e = pool
            .run_query(
                "SELECT name FROM t WHERE id = $1",
                vec![Value::Integer(1 << 40)],
            )
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("the Integer 1099511627776 does not fit a int4 parameter"),
            "{e}"
        );
        let e = pool
            .run_query("SELECT name FROM t WHERE id = $1", vec![])
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("expected 1 parameters but got 0"),
            "{e}"
        );

        // A column Value cannot hold is refused before the query runs,
        // with the cast that reads it.
        let e = pool
            .run_query("SELECT now() AS at", vec![])
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "column `at` is of type timestamptz, which torsion_db::Value does not hold: \
             convert it to text in the query (e.g. `SELECT created::text`, \
             `SELECT now()::text AS at`)"
        );
        let rows = pool
            .run_query("SELECT '2026-12-03'::date::text", vec![])
            .await
            .unwrap();
        assert_eq!(rows, vec![vec![Value::Text("2026-12-03".into())]]);

        // A schema change under a cached statement: prepared again, once.
        let before = pool.run_query("SELECT * FROM t", vec![]).await.unwrap();
        assert_eq!(before, vec![vec![Value::Integer(1), "a".into()]]);
        pool.run_operation("ALTER TABLE t ADD COLUMN n int8 DEFAULT 5", vec![])
            .await
            .unwrap();
        let after = pool.run_query("SELECT * FROM t", vec![]).await.unwrap();
        assert_eq!(
            after,
            vec![vec![Value::Integer(1), "a".into(), Value::Integer(5)]]
        );
        assert_eq!(pool.stats().reconnects, 0);
    })
    .unwrap();
}

#[test]
fn a_lock_held_elsewhere_times_out_in_words_and_the_pool_goes_on() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let backend = Postgres::new(&server.conninfo())
        .unwrap()
        .lock_timeout(Duration::from_millis(100));
    let pool = ConnectionPool::new(backend, 2, 64).unwrap();
    let (locked_tx, locked_rx) = std::sync::mpsc::sync_channel(1);
    let (release_tx, release_rx) = std::sync::mpsc::sync_channel::<()>(1);
    torsion::block_on(async move {
        pool.run_operation("CREATE TABLE t (id int4)", vec![])
            .await
            .unwrap();
        // One thread holds the table's lock until told to let go.
        let holder = pool.run_interaction(move |tx| {
            tx.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE", &[])?;
            locked_tx.send(()).unwrap();
            release_rx.recv_timeout(PATIENCE).unwrap();
            tx.execute("INSERT INTO t VALUES (1)", &[])?;
            Ok(())
        });
        locked_rx.recv_timeout(PATIENCE).unwrap();
        let e = pool
            .run_operation("INSERT INTO t VALUES (2)", vec![])
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("55P03"), "{e}");
        assert_eq!(
            e.to_string(),
            "the database said: ERROR: canceling statement due to lock timeout (SQLSTATE 55P03)"
        );
        release_tx.send(()).unwrap();
        holder.await.unwrap();
        pool.run_operation("INSERT INTO t VALUES (3)", vec![])
            .await
            .unwrap();
        let rows = pool
            .run_query("SELECT id FROM t ORDER BY id", vec![])
            .await
            .unwrap();
        assert_eq!(rows, vec![vec![Value::Integer(1)], vec![Value::Integer(3)]]);
    })
    .unwrap();
}

#[test]
fn a_server_that_goes_away_fails_calls_in_words_and_the_pool_reconnects_when_it_is_back() {
    let Some(mut server) = PostgresServer::start() else {
        return;
    };
    let pool = pool(&server.conninfo(), 1);
    let one = || torsion::block_on(pool.run_query("SELECT 1", vec![])).unwrap();
    assert_eq!(one().unwrap(), vec![vec![Value::Integer(1)]]);

    server.stop();
    // The call that meets the closed connection fails with the loss (or,
    // had the client already seen the close, with the refused reconnect).
    match one() {
        Err(DbError::ConnectionLost(_) | DbError::Connect { .. }) => {}
        other => panic!("after the server stopped: {other:?}"),
    }
    // With the server still down, each call tries to reconnect and says
    // why it could not.
    match one() {
        Err(DbError::Connect { problem, .. }) => {
            assert!(problem.contains("Connection refused"), "{problem}")
        }
        other => panic!("with the server down: {other:?}"),
    }

    server.restart();
    // Calls within RECONNECT_BACKOFF of the last refused connect fail at
    // once with its reason; the first after it connects.
    let mut answer = one();
    while let Err(DbError::Connect { .. }) = answer {
        std::thread::sleep(Duration::from_millis(20));
        answer = one();
    }
    assert_eq!(answer.unwrap(), vec![vec![Value::Integer(1)]]);
    assert_eq!(pool.stats().reconnects, 1);
}

#[test]
fn a_session_ended_under_the_pool_fails_one_call_and_the_next_reconnects() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let pool = pool(&server.conninfo(), 1);
    let admin = self::pool(&server.conninfo(), 1);
    torsion::block_on(async move {
        let pid = pool
            .run_query("SELECT pg_backend_pid()", vec![])
            .await
            .unwrap();
        // Not a lost session: SQL the client cannot even send (a NUL), or
        // a value the server refuses.
        let e = pool.run_query("SELECT 1\0", vec![]).await.unwrap_err();
        assert!(matches!(e, DbError::Database { .. }), "{e:?}");
        let e = pool.run_query("SELECT 1/0", vec![]).await.unwrap_err();
        assert_eq!(e.code(), Some("22012"), "{e}");
        assert_eq!(
            pool.run_query("SELECT pg_backend_pid()", vec![])
                .await
                .unwrap(),
            pid,
            "the same session goes on"
        );

        // Another session ends this one (as an administrator, a failover
        // or an idle timeout would): the next call on it fails with the
        // loss, the one after runs on a new session.
        admin
            .run_query("SELECT pg_terminate_backend($1::int4)", pid[0].clone())
            .await
            .unwrap();
        let e = pool.run_query("SELECT 1", vec![]).await.unwrap_err();
        assert!(matches!(e, DbError::ConnectionLost(_)), "{e:?}");
        assert!(
            e.to_string().starts_with(
                "the connection to the database was lost (the next call opens a new one): "
            ),
            "{e}"
        );
        let new_pid = pool
            .run_query("SELECT pg_backend_pid()", vec![])
            .await
            .unwrap();
        assert_ne!(new_pid, pid);
        assert_eq!(pool.stats().reconnects, 1);
    })
    .unwrap();
}

#[test]
fn every_value_type_both_ways_and_statements_that_go_stale() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let pool = pool(&server.conninfo(), 1);
    torsion::block_on(async move {
        pool.run_operation("CREATE DOMAIN short_text AS varchar(10)", vec![])
            .await
            .unwrap();
        pool.run_operation("CREATE TYPE mood AS ENUM ('calm', 'cross')", vec![])
            .await
            .unwrap();
        pool.run_operation(
            "CREATE TABLE v (id int4, f4 float4, f8 float8, o oid, j json, d short_text, m mood)",
            vec![],
        )
        .await
        .unwrap();
        let row = vec![
            Value::Integer(1),
            Value::Real(0.5),
            Value::Integer(1 << 53), // an integer a float8 holds exactly
            Value::Integer(4_000_000_000),
            r#"{"k": [1, 2]}"#.into(),
            "domain".into(),
            "cross".into(),
        ];
        pool.run_operation("INSERT INTO v VALUES ($1, $2, $3, $4, $5, $6, $7)", row)
            .await
            .unwrap();
        let back = pool.run_query("SELECT * FROM v", vec![]).await.unwrap();
        assert_eq!(
            back,
            vec![vec![
                Value::Integer(1),
                Value::Real(0.5),
                Value::Real(9007199254740992.0),
                Value::Integer(4_000_000_000),
                r#"{"k": [1, 2]}"#.into(),
                "domain".into(),
                "cross".into(),
            ]]
        );
        let e = pool
            .run_operation("UPDATE v SET f8 = $1", vec![Value::Integer(i64::MAX)])
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("the Integer 9223372036854775807 is not exactly a float8"),
            "{e}"
        );

        // Statements are kept per connection: the server lists them.
        let kept = |pool: ConnectionPool<Postgres>| async move {
            pool.run_query("SELECT statement FROM pg_prepared_statements", vec![])
                .await
                .unwrap()
                .into_iter()
                .map(|r| r[0].clone())
                .collect::<Vec<_>>()
        };
        assert!(kept(pool.clone()).await.contains(&"SELECT * FROM v".into()));

        // A parameter type fixed when the statement was prepared changes.
        let by_id = "SELECT count(*) FROM v WHERE id = $1";
        pool.run_query(by_id, vec![Value::Integer(1)])
            .await
            .unwrap();
        pool.run_operation("ALTER TABLE v ALTER id TYPE int8", vec![])
            .await
            .unwrap();
        let n = pool
            .run_query(by_id, vec![Value::Integer(1 << 40)])
            .await
            .unwrap();
        assert_eq!(n, vec![vec![Value::Integer(0)]]);

        // A column refused for its type is not kept: once the table
        // changes, the same query reads it.
        pool.run_operation(
            "ALTER TABLE v ADD COLUMN at timestamptz DEFAULT now()",
            vec![],
        )
        .await
        .unwrap();
        let e = pool
            .run_query("SELECT at FROM v", vec![])
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("column `at` is of type timestamptz"),
            "{e}"
        );
        pool.run_operation("ALTER TABLE v ALTER at TYPE text", vec![])
            .await
            .unwrap();
        let at = pool.run_query("SELECT at FROM v", vec![]).await.unwrap();
        assert!(matches!(at[0][0], Value::Text(_)), "{at:?}");

        // The session forgets every statement: each is prepared again.
        pool.run_operation("DISCARD ALL", vec![]).await.unwrap();
        let n = pool
            .run_query(by_id, vec![Value::Integer(1)])
            .await
            .unwrap();
        assert_eq!(n, vec![vec![Value::Integer(1)]]);

        // Each connection's settings (DISCARD ALL reset this one's; a new
        // pool shows them).
        let fresh = ConnectionPool::new(
            Postgres::new(&server.conninfo())
                .unwrap()
                .statement_timeout(Duration::from_micros(1500)),
            1,
            8,
        )
        .unwrap();
        let settings = fresh
            .run_query(
                "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(settings, vec![vec!["5s".into(), "2ms".into()]]);
    })
    .unwrap();
}

#[test]
fn bad_connection_strings_and_missing_databases_fail_the_pool_with_their_reason() {
    let e = Postgres::new("host=127.0.0.1 port=notaport").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cannot open the postgres database (connection string): the connection string cannot be read"),
        "{e}"
    );

    let Some(server) = PostgresServer::start() else {
        return;
    };
    let missing = format!(
        "host=127.0.0.1 port={} user=torsion dbname=nosuch password=secret",
        server.addr.port()
    );
    let e = ConnectionPool::new(Postgres::new(&missing).unwrap(), 2, 8).unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("cannot open the postgres database nosuch on 127.0.0.1:")
            && text.contains("FATAL: database \"nosuch\" does not exist (SQLSTATE 3D000)"),
        "{text}"
    );
    assert!(!text.contains("secret"), "a password in an error: {text}");
    assert!(!format!("{:?}", Postgres::new(&missing).unwrap()).contains("secret"));
}

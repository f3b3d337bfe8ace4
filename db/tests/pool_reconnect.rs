//! The pool's threads when a connection breaks: a new one is opened before
//! the next call; a backend that cannot connect, or panics connecting,
//! answers the call with why and the thread goes on; calls right after a
//! refused connect fail at once instead of each trying again.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use torsion_db::{Backend, ConnectionPool, DbError};

/// What the next connect does (once the script is empty, refuse).
enum Next {
    Open,
    Panic,
}

/// A backend whose connects follow a script (refusing once it runs out)
/// and whose connections break when told.
#[derive(Clone, Default)]
struct Scripted {
    script: Arc<Mutex<VecDeque<Next>>>,
    attempts: Arc<AtomicUsize>,
    broken: Arc<AtomicBool>,
}

impl Scripted {
    fn then(&self, next: Next) {
        self.script.lock().unwrap().push_back(next);
    }
}

impl Backend for Scripted {
    type Connection = usize;

    fn connect(&self) -> Result<usize, DbError> {
        let n = self.attempts.fetch_add(1, Ordering::SeqCst);
        let next = self.script.lock().unwrap().pop_front();
        match next {
            Some(Next::Open) => {
                self.broken.store(false, Ordering::SeqCst);
                Ok(n)
            }
            Some(Next::Panic) => panic!("the driver fell over"),
            None => Err(DbError::Connect {
                backend: "scripted",
                target: "nowhere".into(),
                problem: "refused".into(),
            }),
        }
    }

    fn is_usable(&self, _conn: &mut usize) -> bool {
        !self.broken.load(Ordering::SeqCst)
    }
}

fn which_connection(pool: &ConnectionPool<Scripted>) -> Result<usize, DbError> {
    torsion::block_on(pool.run_with(|c| Ok(*c))).unwrap()
}

#[test]
fn a_broken_connection_is_replaced_and_a_panicking_connect_is_an_answer() {
    let backend = Scripted::default();
    backend.then(Next::Open);
    let pool = ConnectionPool::new(backend.clone(), 1, 8).unwrap();
    assert_eq!(which_connection(&pool).unwrap(), 0);

    backend.broken.store(true, Ordering::SeqCst);
    backend.then(Next::Panic);
    match which_connection(&pool) {
        Err(DbError::Panicked(why)) => {
            assert_eq!(why, "opening a new connection: the driver fell over")
        }
        other => panic!("{other:?}"),
    }
    // The thread lives on: once a connect succeeds, calls are served.
    backend.then(Next::Open);
    let deadline = Instant::now() + Duration::from_secs(20);
    let served = loop {
        match which_connection(&pool) {
            Ok(id) => break id,
            Err(DbError::Panicked(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(served, 2, "the third connect opened it");
    let stats = pool.stats();
    assert_eq!((stats.panicked, stats.reconnects), (1, 1));
}

#[test]
fn calls_right_after_a_refused_connect_fail_at_once_with_its_reason() {
    let backend = Scripted::default();
    backend.then(Next::Open);
    let pool = ConnectionPool::new(backend.clone(), 1, 8).unwrap();
    backend.broken.store(true, Ordering::SeqCst);
    // The script is empty: every connect is refused.
    for _ in 0..50 {
        match which_connection(&pool) {
            Err(DbError::Connect { problem, .. }) => assert_eq!(problem, "refused"),
            other => panic!("{other:?}"),
        }
    }
    let attempts = backend.attempts.load(Ordering::SeqCst) - 1;
    assert!(
        (1..50).contains(&attempts),
        "50 calls made {attempts} connect attempts"
    );
}

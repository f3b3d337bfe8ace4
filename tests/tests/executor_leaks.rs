//! An executor leaves nothing behind when it ends: starting and stopping
//! executors in a loop (`torsion::block_on`, `run_on_cores`, a sweep's load
//! steps, a test harness) keeps the process's descriptors where they were,
//! whatever its tasks were doing at the end (the glommio-level cases are
//! the vendored reactor's unit test
//! `ending_executor_drops_every_task_and_its_notifier`). Alone in its test
//! binary: it counts the whole process's descriptors, which another test
//! running beside it would change (so it is one test, its cases one after
//! another).

use std::time::Duration;

/// Open file descriptors of this process, with what each one is.
fn open_fds() -> Vec<String> {
    let mut fds: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|p| p.display().to_string())
        .collect();
    fds.sort();
    fds
}

/// Runs `case` 30 times; the descriptors afterwards are no more than before.
fn assert_leaves_nothing(name: &str, case: impl Fn()) {
    case();
    let before = open_fds();
    for _ in 0..30 {
        case();
    }
    // The last executor's blocking-pool thread lets go of its eventfd as
    // it exits, a moment after the executor is dropped: wait for that, up
    // to the patience every test has.
    let deadline = std::time::Instant::now() + torsion_tests::PATIENCE;
    while open_fds().len() > before.len() && std::time::Instant::now() < deadline {
        std::thread::sleep(one_ms());
    }
    let after = open_fds();
    assert!(
        after.len() <= before.len(),
        "{name}: {} descriptors before, {} after 30 executors:\nbefore {before:?}\nafter {after:?}",
        before.len(),
        after.len()
    );
}

fn one_ms() -> Duration {
    Duration::from_millis(1)
}

#[test]
fn executors_started_and_stopped_in_a_row_leave_no_descriptor_behind() {
    assert_leaves_nothing("torsion::block_on with a sleep", || {
        torsion::block_on(async { torsion::Clock::real().sleep(one_ms()).await }).unwrap()
    });
    assert_leaves_nothing("torsion::run_on_cores on every core", || {
        let cores = torsion::cores::allowed_cores().unwrap();
        torsion::run_on_cores(&cores, |_| async {
            torsion::Clock::real().sleep(one_ms()).await
        })
        .unwrap();
    });
}

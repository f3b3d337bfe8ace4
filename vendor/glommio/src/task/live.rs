// torsion: this file is new (not in glommio 0.9).
//! The tasks alive on this thread, so that an executor can drop the futures
//! of those still pending when it ends.
//!
//! glommio 0.9 keeps no list of its tasks: a task that is pending when its
//! executor is dropped (a detached accept loop, a task sleeping on a timer,
//! one whose waker is stored in a structure its own future owns) is
//! referenced only by wakers, which nothing ever drops. Its future, its
//! memory and its header's `SleepNotifier` (and with it the executor's
//! eventfd) leaked, once per executor ever started in the process. Tokio's
//! runtime keeps the same kind of list (`OwnedTasks`) for the same reason.
//!
//! Tasks are allocated and destroyed on their executor's thread (`Task`,
//! `JoinHandle` and local wakers are `!Send`; a foreign waker's last drop
//! sends it home instead of destroying it), so a thread-local slab is
//! enough: a task's slot index is kept in its header.

use std::cell::RefCell;

#[derive(Default)]
struct LiveTasks {
    /// The executor's id and the task's pointer, by slot.
    slots: Vec<Option<(usize, *const ())>>,
    /// Slots to reuse.
    free: Vec<usize>,
}

thread_local! {
    static LIVE: RefCell<LiveTasks> = RefCell::new(LiveTasks::default());
}

/// Records a new task of executor `executor`; returns its slot.
pub(crate) fn insert(executor: usize, task: *const ()) -> usize {
    LIVE.try_with(|live| {
        let mut live = live.borrow_mut();
        match live.free.pop() {
            Some(slot) => {
                live.slots[slot] = Some((executor, task));
                slot
            }
            None => {
                live.slots.push(Some((executor, task)));
                live.slots.len() - 1
            }
        }
    })
    // While the thread's locals are being destroyed: not recorded.
    .unwrap_or(usize::MAX)
}

/// Forgets the task in `slot` (it is being destroyed).
pub(crate) fn remove(slot: usize, task: *const ()) {
    let _ = LIVE.try_with(|live| {
        let mut live = live.borrow_mut();
        if let Some(entry) = live.slots.get_mut(slot) {
            if matches!(entry, Some((_, t)) if *t == task) {
                *entry = None;
                live.free.push(slot);
            }
        }
    });
}

/// The tasks of executor `executor` still alive.
pub(crate) fn of_executor(executor: usize) -> Vec<*const ()> {
    LIVE.try_with(|live| {
        live.borrow()
            .slots
            .iter()
            .flatten()
            .filter(|(ex, _)| *ex == executor)
            .map(|(_, task)| *task)
            .collect()
    })
    .unwrap_or_default()
}

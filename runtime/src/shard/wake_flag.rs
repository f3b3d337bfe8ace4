//! A waker that raises a flag: for code that polls futures by hand,
//! without an executor (the test kit, the manual bus), to learn that
//! something it polled wants another poll. It may be woken from any thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};

/// A flag raised by its [`Waker`]s.
#[derive(Debug, Default)]
pub(crate) struct WakeFlag(AtomicBool);

impl WakeFlag {
    /// A new flag, raised (so the first look polls), and its waker.
    pub(crate) fn raised() -> (Arc<WakeFlag>, Waker) {
        let flag = Arc::new(WakeFlag(AtomicBool::new(true)));
        let waker = Waker::from(flag.clone());
        (flag, waker)
    }

    /// Lowers the flag; true if it was raised.
    pub(crate) fn take(&self) -> bool {
        self.0.swap(false, Ordering::SeqCst)
    }

    /// True while raised.
    pub(crate) fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl Wake for WakeFlag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

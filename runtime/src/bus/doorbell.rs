//! Waking a parked shard from another thread.
//!
//! A shard that has nothing to do parks in `io_uring_enter`; a message put on
//! its crossbeam channel does not wake it by itself. Each shard therefore owns
//! the read end of a non-blocking Unix socket pair, which it reads through
//! glommio (an io_uring poll, so reading it costs nothing while parked); any
//! thread rings the bell by writing one byte to the other end. When the bell
//! already has unread bytes the write fails with `EAGAIN` or simply adds a
//! byte; either way one wake-up drains them all (a read that fills its
//! buffer is followed by non-blocking reads until the bell is empty), so a
//! burst of rings costs the shard one wake-up. Cost per ring: one `write(2)`
//! on the ringing thread.
//!
//! Bytes can pile up while the shard is awake: a sender that finds the
//! shard parked rings, but the shard may have seen the message in its last
//! look before sleeping and never slept (`bus/mod.rs`); that ring stays in
//! the bell. However many there are, the next park reads them all at once:
//! at most one wake-up without news.

use std::io::{self, Write};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::net::UnixStream as StdUnixStream;

use futures_lite::AsyncReadExt;

use crate::net::pacer::{FailurePacer, FAILURE_PAUSE};

/// The ringing side: `Send + Sync`, held by whoever must wake the shard.
#[derive(Debug)]
pub(crate) struct Doorbell {
    tx: StdUnixStream,
}

/// The shard's side: turned into a glommio stream on the shard's thread.
#[derive(Debug)]
pub(crate) struct DoorbellReceiver {
    rx: OwnedFd,
}

/// A new bell and its receiver.
pub(crate) fn doorbell() -> io::Result<(Doorbell, DoorbellReceiver)> {
    let (tx, rx) = StdUnixStream::pair()?;
    tx.set_nonblocking(true)?;
    rx.set_nonblocking(true)?;
    Ok((Doorbell { tx }, DoorbellReceiver { rx: rx.into() }))
}

impl Doorbell {
    /// Wakes the shard (cheap; never blocks).
    pub(crate) fn ring(&self) {
        match (&self.tx).write(&[1]) {
            Ok(_) => {}
            // Full buffer: unread rings are pending, the shard will wake.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => tracing::debug!("doorbell ring failed: {e}"),
        }
    }
}

/// The bell as the shard listens to it.
pub(crate) struct DoorbellListener {
    stream: glommio::net::UnixStream,
    /// The stream's descriptor, for draining it without waiting.
    fd: std::os::fd::RawFd,
    failures: FailurePacer,
}

impl DoorbellReceiver {
    /// Binds the receiver to the current shard's reactor.
    pub(crate) fn listen(self) -> DoorbellListener {
        let fd = self.rx.into_raw_fd();
        // SAFETY: fd is an open Unix stream socket we own; ownership moves to
        // the glommio stream, which closes it on drop.
        let stream = unsafe { glommio::net::UnixStream::from_raw_fd(fd) };
        DoorbellListener {
            stream,
            fd,
            failures: FailurePacer::new(FAILURE_PAUSE),
        }
    }
}

impl DoorbellListener {
    /// Waits for at least one ring and consumes all pending ones. Returns
    /// false when every bell was dropped (no one can ring any more).
    ///
    /// If reading the bell fails, the shard falls back to polling: `rung`
    /// returns true ("look at your queue") after a pause of
    /// [`FAILURE_PAUSE`] per repeated failure, logging once per episode —
    /// slower wake-ups, never a spinning shard, never a deaf one.
    pub(crate) async fn rung(&mut self) -> bool {
        let mut buf = [0u8; 256];
        loop {
            match self.stream.read(&mut buf).await {
                Ok(0) => return false,
                Ok(n) => {
                    if n == buf.len() {
                        self.drain(&mut buf);
                    }
                    if let Some(n) = self.failures.succeeded() {
                        tracing::info!(failures = n, "doorbell readable again");
                    }
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let retry = self.failures.failed();
                    if retry.first {
                        tracing::error!(
                            "doorbell read failed: {e}; polling every {FAILURE_PAUSE:?} until it recovers"
                        );
                    }
                    glommio::timer::sleep(retry.wait.max(FAILURE_PAUSE)).await;
                    return true;
                }
            }
        }
    }
}

impl DoorbellListener {
    /// Reads what is left in the bell without waiting, so rings that piled
    /// up cost one wake-up, not one per buffer's worth.
    fn drain(&self, buf: &mut [u8]) {
        loop {
            // SAFETY: fd is the bell's open socket (owned by `stream`); buf
            // is valid for writes of its length.
            let n = unsafe {
                libc::recv(
                    self.fd,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            // Short, empty (EAGAIN) or failed: nothing more to take now
            // (a failure shows again on the next wait, which handles it).
            if n < buf.len() as isize {
                return;
            }
        }
    }
}

impl Drop for Doorbell {
    fn drop(&mut self) {
        // Closing the write end makes the listener see end-of-file.
        let _ = self.tx.shutdown(std::net::Shutdown::Write);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn rings_that_piled_up_cost_one_wake_up() {
        let (bell, receiver) = doorbell().unwrap();
        // More rings than one read's buffer holds, all before the shard
        // listens (as while it was awake and never slept).
        for _ in 0..1000 {
            bell.ring();
        }
        glommio::LocalExecutorBuilder::default()
            .io_memory(64 * 1024)
            .spawn(move || async move {
                let mut listener = receiver.listen();
                assert!(listener.rung().await);
                // Nothing left: the next wait would sleep. Ring once more
                // and exactly that ring is what the next wait finds.
                let mut probe = [0u8; 1];
                // SAFETY: the bell's fd is open; probe is valid for 1 byte.
                let left = unsafe {
                    libc::recv(
                        listener.fd,
                        probe.as_mut_ptr().cast(),
                        1,
                        libc::MSG_DONTWAIT,
                    )
                };
                assert_eq!(left, -1, "the bell was drained by one wake-up");
                bell.ring();
                assert!(listener.rung().await);
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn a_bell_that_cannot_be_read_is_polled_not_spun_on() {
        // A directory is no socket: every read of it fails (ENOTSOCK).
        let dir = std::fs::File::open(std::env::temp_dir()).unwrap();
        let receiver = DoorbellReceiver {
            rx: OwnedFd::from(dir),
        };
        glommio::LocalExecutorBuilder::default()
            .io_memory(64 * 1024)
            .spawn(move || async move {
                let mut bell = receiver.listen();
                let start = Instant::now();
                for _ in 0..3 {
                    assert!(bell.rung().await, "a failed read means: look anyway");
                }
                // Three failures cost at least three pauses (a lower bound:
                // it cannot fail on a slow machine; a spin takes microseconds).
                assert!(start.elapsed() >= FAILURE_PAUSE * 3 - Duration::from_millis(1));
            })
            .unwrap()
            .join()
            .unwrap();
    }
}

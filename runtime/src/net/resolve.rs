//! Host names for client endpoints: resolved off the shard, then connected
//! Happy-Eyeballs style (RFC 8305).
//!
//! # Resolution
//!
//! An IP literal needs none. A name is resolved on the blocking pool (the
//! system's resolver, `getaddrinfo` through `ToSocketAddrs`: `/etc/hosts`,
//! then DNS as `nsswitch.conf` says — Twisted's threaded resolver does the
//! same), raced against the endpoint's timeout, so a slow or dead DNS server
//! never blocks the shard; the shard serves its other connections
//! meanwhile.
//!
//! # Connecting over every address
//!
//! The addresses are ordered as RFC 8305 §4 says: the families
//! interleaved, IPv6 first (`[v6, v4, v6, v4, …]`). The first attempt
//! starts at once; each later one starts when the one before has failed, or
//! 250 ms after it started (the connection attempt delay), whichever comes
//! first. The first attempt to connect wins and the others are dropped
//! (closed). When every attempt fails, the error is the last one's; when
//! the timeout passes first, `TimedOut`.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::clock::{Clock, Sleep};

/// RFC 8305's recommended connection attempt delay.
pub const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// The addresses of `host`: itself if it is an IP literal, else resolved
/// on the blocking pool within `timeout`.
pub(crate) async fn resolve(
    host: &str,
    port: u16,
    timeout: Duration,
) -> io::Result<Vec<SocketAddr>> {
    let literal = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let name = host.to_owned();
    let lookup = crate::blocking::defer_to_thread(move || {
        (name.as_str(), port)
            .to_socket_addrs()
            .map(|addrs| addrs.collect::<Vec<_>>())
    });
    let timed_out = async {
        Clock::real().sleep(timeout).await;
        None
    };
    let found = futures_lite::future::or(async { Some(lookup.await) }, timed_out).await;
    match found {
        None => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("resolving \"{host}\" took longer than {timeout:?}"),
        )),
        Some(Err(e)) => Err(io::Error::other(format!(
            "cannot resolve \"{host}\": the blocking pool refused the lookup ({e})"
        ))),
        Some(Ok(Err(e))) => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("cannot resolve \"{host}\": {e}"),
        )),
        Some(Ok(Ok(addrs))) if addrs.is_empty() => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("cannot resolve \"{host}\": it has no address"),
        )),
        Some(Ok(Ok(addrs))) => Ok(addrs),
    }
}

/// RFC 8305 §4: the families interleaved, IPv6 first, each family's
/// addresses in the resolver's order.
pub(crate) fn attempt_order(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let (v6, v4): (Vec<SocketAddr>, Vec<SocketAddr>) = addrs.iter().partition(|a| a.is_ipv6());
    let mut order = Vec::with_capacity(addrs.len());
    let (mut a, mut b) = (v6.into_iter(), v4.into_iter());
    loop {
        match (a.next(), b.next()) {
            (None, None) => return order,
            (x, y) => order.extend(x.into_iter().chain(y)),
        }
    }
}

/// One attempt's future.
type Attempt<T> = Pin<Box<dyn Future<Output = io::Result<T>>>>;

/// Connects to the first of `addrs` that answers, Happy-Eyeballs style
/// (see the module docs), within `timeout`: `attempt(addr)` is one
/// connection attempt. Returns what the winning attempt made and its
/// address.
pub(crate) async fn connect_first<T: 'static, F>(
    addrs: &[SocketAddr],
    timeout: Duration,
    clock: &Clock,
    mut attempt: impl FnMut(SocketAddr) -> F,
) -> io::Result<(T, SocketAddr)>
where
    F: Future<Output = io::Result<T>> + 'static,
{
    let mut waiting = attempt_order(addrs).into_iter();
    let mut running: Vec<(SocketAddr, Attempt<T>)> = Vec::new();
    let mut last_error: Option<io::Error> = None;
    let mut next_start: Option<Sleep> = None;
    let mut deadline = clock.sleep(timeout);
    std::future::poll_fn(|cx: &mut Context<'_>| loop {
        // Start the next attempt when none runs, or when the delay since the
        // last one started has passed.
        let due = running.is_empty()
            || next_start
                .as_mut()
                .is_some_and(|s| Pin::new(s).poll(cx).is_ready());
        if due {
            if let Some(addr) = waiting.next() {
                running.push((addr, Box::pin(attempt(addr))));
                next_start = Some(clock.sleep(ATTEMPT_DELAY));
                continue;
            }
            next_start = None;
        }
        let mut i = 0;
        while i < running.len() {
            match running[i].1.as_mut().poll(cx) {
                Poll::Ready(Ok(made)) => return Poll::Ready(Ok((made, running[i].0))),
                Poll::Ready(Err(e)) => {
                    last_error = Some(e);
                    drop(running.swap_remove(i));
                }
                Poll::Pending => i += 1,
            }
        }
        if running.is_empty() {
            if waiting.len() > 0 {
                // A failure starts the next attempt at once.
                continue;
            }
            return Poll::Ready(Err(last_error.take().unwrap_or_else(|| {
                io::Error::new(io::ErrorKind::AddrNotAvailable, "no address to connect to")
            })));
        }
        if Pin::new(&mut deadline).poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no address answered within {timeout:?}"),
            )));
        }
        return Poll::Pending;
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls `fut` once by hand: its output, or `None` while pending.
    fn poll_once_with<T>(fut: &mut Pin<Box<dyn Future<Output = T>>>) -> Option<T> {
        let (_flag, waker) = crate::shard::wake_flag::WakeFlag::raised();
        match fut.as_mut().poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        }
    }

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn families_interleave_ipv6_first() {
        let order = attempt_order(&addrs(&[
            "10.0.0.1:80",
            "10.0.0.2:80",
            "[::1]:80",
            "10.0.0.3:80",
            "[::2]:80",
        ]));
        assert_eq!(
            order,
            addrs(&[
                "[::1]:80",
                "10.0.0.1:80",
                "[::2]:80",
                "10.0.0.2:80",
                "10.0.0.3:80"
            ])
        );
        assert_eq!(
            attempt_order(&addrs(&["10.0.0.1:80"])),
            addrs(&["10.0.0.1:80"])
        );
    }

    /// A fake attempt that finishes when the test says, on a manual clock.
    type Outcomes =
        std::rc::Rc<std::cell::RefCell<Vec<(SocketAddr, crate::oneshot::Sender<io::Result<()>>)>>>;

    /// The search under test, polled by hand.
    type Search = Pin<Box<dyn Future<Output = io::Result<((), SocketAddr)>>>>;

    fn run(list: &[&str]) -> (crate::ManualClock, Outcomes, Search) {
        let manual = crate::ManualClock::new();
        let clock = manual.clock();
        let started: Outcomes = Default::default();
        let record = started.clone();
        let list = addrs(list);
        let fut = Box::pin(async move {
            connect_first(&list, Duration::from_secs(10), &clock, move |addr| {
                let (tx, rx) = crate::oneshot::channel();
                record.borrow_mut().push((addr, tx));
                async move {
                    rx.await
                        .unwrap_or_else(|_| Err(io::Error::other("dropped")))
                }
            })
            .await
        });
        (manual, started, fut)
    }

    #[test]
    fn the_second_family_starts_after_the_attempt_delay_and_the_first_to_connect_wins() {
        let (manual, started, mut fut) = run(&["10.0.0.1:80", "[::1]:80"]);
        assert!(poll_once_with(&mut fut).is_none());
        // IPv6 first, alone until the delay passes.
        assert_eq!(started.borrow().len(), 1);
        assert_eq!(started.borrow()[0].0, "[::1]:80".parse().unwrap());
        manual.advance(ATTEMPT_DELAY - Duration::from_millis(1));
        assert!(poll_once_with(&mut fut).is_none());
        assert_eq!(started.borrow().len(), 1);
        manual.advance(Duration::from_millis(1));
        assert!(poll_once_with(&mut fut).is_none());
        assert_eq!(started.borrow().len(), 2);
        // IPv4 answers first: it wins, though IPv6 started first.
        let (addr, tx) = started.borrow_mut().remove(1);
        tx.send(Ok(()));
        let ((), won) = poll_once_with(&mut fut).unwrap().unwrap();
        assert_eq!(won, addr);
    }

    #[test]
    fn a_failure_starts_the_next_attempt_at_once_and_the_last_error_is_kept() {
        let (_manual, started, mut fut) = run(&["[::1]:80", "10.0.0.1:80"]);
        assert!(poll_once_with(&mut fut).is_none());
        let (_, tx) = started.borrow_mut().remove(0);
        tx.send(Err(io::Error::from(io::ErrorKind::ConnectionRefused)));
        // No 250 ms wait: the next address is tried at once.
        assert!(poll_once_with(&mut fut).is_none());
        assert_eq!(started.borrow().len(), 1);
        let (_, tx) = started.borrow_mut().remove(0);
        tx.send(Err(io::Error::from(io::ErrorKind::HostUnreachable)));
        let err = poll_once_with(&mut fut).unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::HostUnreachable);
    }

    #[test]
    fn the_timeout_ends_attempts_that_never_answer() {
        let (manual, started, mut fut) = run(&["[::1]:80", "10.0.0.1:80"]);
        assert!(poll_once_with(&mut fut).is_none());
        manual.advance(ATTEMPT_DELAY);
        assert!(poll_once_with(&mut fut).is_none());
        assert_eq!(started.borrow().len(), 2);
        manual.advance(Duration::from_secs(10));
        let err = poll_once_with(&mut fut).unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}

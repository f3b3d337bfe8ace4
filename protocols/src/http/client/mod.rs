//! An HTTP/1.1 client for code on a shard (Twisted's `Agent` and `treq`,
//! hyper's client): requests with `.await`, responses streamed under flow
//! control, keep-alive connections in a per-shard pool.
//!
//! | file | what |
//! |---|---|
//! | `target.rs` | [`Origin`]; an `http://`/`https://` URL split into origin, `Host` and path |
//! | `pool.rs` | the per-origin pool: idle connections, a cap, a FIFO queue at the cap; [`PoolStats`] |
//! | `response_head.rs` | a response head: status, headers, body framing, keep-alive ([`response_framing`]) |
//! | `response.rs` | [`ClientResponse`], [`ResponseBody`] (streamed; the connection back to the pool at its end) |
//! | `deadline.rs` | a future against a deadline on a torsion `Clock` |
//! | `error.rs` | [`ClientError`], [`TimeoutPhase`] |
//!
//! # Design
//!
//! An [`HttpClient`] belongs to one shard: make one per shard (in the
//! factory, or lazily on first use); clones share its pool. No locks, no
//! cross-thread hand-offs: a request runs on the calling task, over
//! torsion's async [`torsion::Connection`] to the server (host names
//! resolved off the shard, Happy Eyeballs, TLS by rustls with certificate
//! and name checked — the `tls:` client endpoint's machinery).
//!
//! One request at a time per connection (no pipelining, as browsers and
//! hyper). A request on a connection that had served one before and that
//! fails before any byte of the response arrives — the server closed the
//! idle connection as the request went out — is sent once more on a new
//! connection when its method is idempotent (RFC 9110 §9.2.2), as Go's and
//! hyper's clients do. Redirects are not followed unless
//! [`ClientConfig::max_redirects`] says so. Each phase has its timeout:
//! connecting (per address and handshake), the first byte of the response,
//! and the whole request including its body.
//!
//! ```no_run
//! use torsion_protocols::http::client::{ClientConfig, HttpClient};
//!
//! torsion::block_on(async {
//!     let client = HttpClient::new(ClientConfig::default());
//!     let response = client.get("http://127.0.0.1:8080/hello").send().await?;
//!     println!("{} {}", response.status(), response.text().await?);
//!     let created = client
//!         .post("http://127.0.0.1:8080/items")
//!         .header("content-type", "application/json")
//!         .body(r#"{"name":"a"}"#)
//!         .send()
//!         .await?;
//!     assert!(created.status().is_success());
//!     Ok::<_, torsion_protocols::http::client::ClientError>(())
//! })??;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod deadline;
mod error;
mod pool;
mod response;
mod response_head;
mod target;

use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue};
use http::Method;
use torsion::{ClientEndpoint, ClientTls, Clock};

pub use error::{ClientError, TimeoutPhase};
pub use pool::PoolStats;
pub use response::{ClientResponse, ResponseBody};
pub use response_head::{response_framing, MAX_RESPONSE_HEAD};
pub use target::Origin;

use pool::{Pool, PoolLimits, PooledConnection};
use response_head::parse_response_head;
use target::Target;

/// How an [`HttpClient`] connects, pools and times out.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Resolving the name, each connection attempt, and the TLS handshake
    /// (each; default 10 s).
    pub connect_timeout: Duration,
    /// From the start of sending the request to the first byte of the
    /// response (default 30 s; `None`: no limit).
    pub first_byte_timeout: Option<Duration>,
    /// The whole request, waiting in the pool's queue and reading the body
    /// included (default none; [`RequestBuilder::timeout`] sets one per
    /// request).
    pub timeout: Option<Duration>,
    /// Open connections per origin at most (in use or idle; default 32);
    /// requests beyond it wait in a FIFO queue.
    pub max_per_origin: usize,
    /// Idle connections kept per origin (default 32).
    pub max_idle_per_origin: usize,
    /// An idle connection older than this is not reused (default 60 s).
    pub idle_timeout: Duration,
    /// Redirects followed (default 0: a 3xx is the response).
    pub max_redirects: u32,
    /// The most bytes [`ClientResponse::bytes`] and `text` read (default
    /// 16 MiB; stream with [`ResponseBody::chunk`] for more).
    pub max_body: usize,
    /// Trust these CA certificates (a PEM file) for `https://` instead of
    /// the platform's roots.
    pub ca_certs: Option<PathBuf>,
    /// The `User-Agent` sent unless a request sets its own (`None`: none).
    pub user_agent: Option<String>,
    /// The clock timeouts run on (a manual one in tests).
    pub clock: Clock,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Some(Duration::from_secs(30)),
            timeout: None,
            max_per_origin: 32,
            max_idle_per_origin: 32,
            idle_timeout: Duration::from_secs(60),
            max_redirects: 0,
            max_body: 16 << 20,
            ca_certs: None,
            user_agent: Some(concat!("torsion/", env!("CARGO_PKG_VERSION")).to_string()),
            clock: Clock::real(),
        }
    }
}

/// An HTTP/1.1 client with its own connection pool, for one shard; clones
/// share the pool. See the [module docs](self).
#[derive(Clone)]
pub struct HttpClient {
    inner: Rc<ClientInner>,
}

struct ClientInner {
    config: ClientConfig,
    pool: Rc<Pool>,
}

impl HttpClient {
    /// A client with an empty pool.
    pub fn new(config: ClientConfig) -> HttpClient {
        let pool = Pool::new(
            PoolLimits {
                max_per_origin: config.max_per_origin,
                max_idle_per_origin: config.max_idle_per_origin,
                idle_timeout: config.idle_timeout,
            },
            config.clock.clone(),
        );
        HttpClient {
            inner: Rc::new(ClientInner { config, pool }),
        }
    }

    /// What the pool has done and holds now.
    pub fn pool_stats(&self) -> PoolStats {
        self.inner.pool.stats()
    }

    /// A request with `method` to `url` (absolute `http://` or `https://`).
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        RequestBuilder {
            client: self.clone(),
            method,
            url: url.to_string(),
            headers: Vec::new(),
            body: Bytes::new(),
            timeout: self.inner.config.timeout,
            error: None,
        }
    }

    /// A `GET` request.
    pub fn get(&self, url: &str) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// A `POST` request.
    pub fn post(&self, url: &str) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// A `PUT` request.
    pub fn put(&self, url: &str) -> RequestBuilder {
        self.request(Method::PUT, url)
    }

    /// A `DELETE` request.
    pub fn delete(&self, url: &str) -> RequestBuilder {
        self.request(Method::DELETE, url)
    }

    /// A `HEAD` request.
    pub fn head(&self, url: &str) -> RequestBuilder {
        self.request(Method::HEAD, url)
    }
}

/// One request being put together; [`RequestBuilder::send`] sends it.
pub struct RequestBuilder {
    client: HttpClient,
    method: Method,
    url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    timeout: Option<Duration>,
    /// The first invalid header, reported by `send`.
    error: Option<ClientError>,
}

impl RequestBuilder {
    /// Adds a header field (repeatable). An invalid name or value makes
    /// [`RequestBuilder::send`] fail with [`ClientError::InvalidHeader`].
    /// `Content-Length`, `Transfer-Encoding` and `Connection` are the
    /// client's: set, they are refused.
    pub fn header(mut self, name: &str, value: &str) -> RequestBuilder {
        let parsed = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ClientError::InvalidHeader(format!("name \"{name}\"")))
            .and_then(|n| {
                if n == http::header::CONTENT_LENGTH
                    || n == http::header::TRANSFER_ENCODING
                    || n == http::header::CONNECTION
                {
                    return Err(ClientError::InvalidHeader(format!(
                        "\"{name}\": the client sets it itself"
                    )));
                }
                let v = HeaderValue::from_str(value).map_err(|_| {
                    ClientError::InvalidHeader(format!("value for \"{name}\": {value:?}"))
                })?;
                Ok((n, v))
            });
        match parsed {
            Ok(h) => self.headers.push(h),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// The request body (sent with `Content-Length`).
    pub fn body(mut self, body: impl Into<Bytes>) -> RequestBuilder {
        self.body = body.into();
        self
    }

    /// A timeout for this whole request (overrides the client's).
    pub fn timeout(mut self, timeout: Duration) -> RequestBuilder {
        self.timeout = Some(timeout);
        self
    }

    /// Sends the request; the response comes back once its head has, with
    /// the body to read.
    pub async fn send(mut self) -> Result<ClientResponse, ClientError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let clock = self.client.inner.config.clock.clone();
        let deadline = self.timeout.map(|d| (clock.now() + d, d));
        let mut target = Target::parse(&self.url)?;
        let mut redirects = 0;
        loop {
            let response = self.send_to(&target, deadline).await?;
            let location = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let follow = redirects < self.client.inner.config.max_redirects
                && response.status().is_redirection()
                && response.status() != http::StatusCode::NOT_MODIFIED;
            let Some(location) = location.filter(|_| follow) else {
                return Ok(response);
            };
            redirects += 1;
            let status = response.status().as_u16();
            // Read a small redirect body so its connection is reused.
            let _ = response.into_body().bytes(64 * 1024).await;
            if status == 303 || ((status == 301 || status == 302) && self.method == Method::POST) {
                self.method = Method::GET;
                self.body = Bytes::new();
            }
            let next = target.join(&location)?;
            if next.origin != target.origin {
                // Credentials and the Host are the first origin's.
                self.headers.retain(|(name, _)| {
                    ![
                        http::header::AUTHORIZATION,
                        http::header::PROXY_AUTHORIZATION,
                        http::header::COOKIE,
                        http::header::HOST,
                    ]
                    .contains(name)
                });
            }
            target = next;
        }
    }

    /// One request to `target`, sent once more on a new connection when a
    /// reused one turns out closed (idempotent methods only).
    async fn send_to(
        &self,
        target: &Target,
        deadline: Option<(Instant, Duration)>,
    ) -> Result<ClientResponse, ClientError> {
        let request = self.encode(target);
        let idempotent = matches!(
            self.method,
            Method::GET
                | Method::HEAD
                | Method::PUT
                | Method::DELETE
                | Method::OPTIONS
                | Method::TRACE
        );
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Sent again: on a new connection, never another idle one.
            let lease = self.lease(target, deadline, attempt == 1).await?;
            let reused = lease.reused;
            match self.exchange(lease, target, &request, deadline).await {
                Err(Retry) if reused && idempotent && attempt == 1 => continue,
                Err(Retry) if attempt > 1 || !reused => {
                    return Err(ClientError::Closed {
                        origin: target.origin.to_string(),
                        when: "before the response head",
                    })
                }
                Err(Retry) => {
                    return Err(ClientError::Closed {
                        origin: target.origin.to_string(),
                        when: "before the response head (a reused connection; the request is not idempotent, so it was not sent again)",
                    })
                }
                Ok(result) => return result,
            }
        }
    }

    /// The request's bytes: head and body.
    fn encode(&self, target: &Target) -> Bytes {
        let mut out = BytesMut::with_capacity(128 + self.body.len());
        out.put_slice(self.method.as_str().as_bytes());
        out.put_u8(b' ');
        out.put_slice(target.path.as_bytes());
        out.put_slice(b" HTTP/1.1\r\n");
        let has = |name: &HeaderName| self.headers.iter().any(|(n, _)| n == name);
        if !has(&http::header::HOST) {
            out.put_slice(b"host: ");
            out.put_slice(target.host_header.as_bytes());
            out.put_slice(b"\r\n");
        }
        if let Some(agent) = &self.client.inner.config.user_agent {
            if !has(&http::header::USER_AGENT) {
                out.put_slice(b"user-agent: ");
                out.put_slice(agent.as_bytes());
                out.put_slice(b"\r\n");
            }
        }
        for (name, value) in &self.headers {
            out.put_slice(name.as_str().as_bytes());
            out.put_slice(b": ");
            out.put_slice(value.as_bytes());
            out.put_slice(b"\r\n");
        }
        let bodyless = matches!(
            self.method,
            Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS | Method::TRACE
        );
        if !self.body.is_empty() || !bodyless {
            out.put_slice(b"content-length: ");
            out.put_slice(self.body.len().to_string().as_bytes());
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"\r\n");
        if self.body.len() <= 16 * 1024 {
            out.put_slice(&self.body);
        }
        out.freeze()
    }

    /// A connection to `target`'s origin: from the pool, or a new one.
    async fn lease(
        &self,
        target: &Target,
        deadline: Option<(Instant, Duration)>,
        reuse: bool,
    ) -> Result<PooledConnection, ClientError> {
        let config = &self.client.inner.config;
        let timed_out = || ClientError::whole_timeout(&target.origin, deadline);
        let at = deadline.map(|(at, _)| at);
        let pool = &self.client.inner.pool;
        let mut lease = deadline::before(&config.clock, at, pool.acquire(&target.origin, reuse))
            .await
            .ok_or_else(timed_out)?;
        if lease.connection().is_some() {
            return Ok(lease);
        }
        let origin = &target.origin;
        let endpoint = ClientEndpoint {
            host: origin.host.clone(),
            port: origin.port,
            timeout: config.connect_timeout,
            tls: origin.https.then(|| ClientTls {
                ca_certs: config.ca_certs.clone(),
                server_name: origin.host.clone(),
            }),
        };
        let conn = deadline::before(&config.clock, at, torsion::client::connect(&endpoint))
            .await
            .ok_or_else(timed_out)?
            .map_err(|source| {
                if source.kind() == std::io::ErrorKind::TimedOut {
                    ClientError::Timeout {
                        origin: origin.to_string(),
                        phase: TimeoutPhase::Connect,
                        after: config.connect_timeout,
                    }
                } else {
                    ClientError::Connect {
                        origin: origin.to_string(),
                        source,
                    }
                }
            })?;
        lease.opened(conn);
        Ok(lease)
    }

    /// Writes the request and reads the response head. `Err(Retry)`: the
    /// connection closed before any byte of the response.
    async fn exchange(
        &self,
        mut lease: PooledConnection,
        target: &Target,
        request: &Bytes,
        deadline: Option<(Instant, Duration)>,
    ) -> Result<Result<ClientResponse, ClientError>, Retry> {
        let config = &self.client.inner.config;
        let clock = &config.clock;
        let origin = &target.origin;
        let whole = deadline.map(|(at, _)| at);
        let Some(conn) = lease.connection() else {
            return Err(Retry);
        };
        let timeout = |phase, after| {
            Ok(Err(ClientError::Timeout {
                origin: origin.to_string(),
                phase,
                after,
            }))
        };
        let whole_timeout = || Ok(Err(ClientError::whole_timeout(origin, deadline)));
        let write = async {
            conn.write_bytes(request.clone()).await?;
            if self.body.len() > 16 * 1024 {
                // In pieces, each waiting while the server is behind: one
                // write of a body over the outbound hard cap would abort the
                // connection as a slow consumer.
                let mut at = 0;
                while at < self.body.len() {
                    let end = (at + BODY_PIECE).min(self.body.len());
                    conn.write_bytes(self.body.slice(at..end)).await?;
                    at = end;
                }
            }
            Ok::<_, torsion::WriteError>(())
        };
        // The first-byte timeout runs from here: a server that answers
        // early and stops reading a long body must not hold us for ever.
        let first_byte_at = config.first_byte_timeout.map(|d| clock.now() + d);
        let write_by = deadline::earliest(first_byte_at, whole);
        match deadline::before(clock, write_by, write).await {
            None if whole.is_some_and(|w| write_by == Some(w)) => return whole_timeout(),
            None => {
                return timeout(
                    TimeoutPhase::FirstByte,
                    config.first_byte_timeout.unwrap_or_default(),
                )
            }
            // The server answered (an early 413, 401…) and closed: read it.
            Some(Err(_)) if conn.buffered_input() > 0 => {}
            Some(Err(_)) => return Err(Retry),
            Some(Ok(())) => {}
        }
        let first_byte = conn.read_with(|buf, _| Ok::<_, ()>((!buf.is_empty()).then_some(())));
        match deadline::before(clock, deadline::earliest(first_byte_at, whole), first_byte).await {
            None if first_byte_at.is_some_and(|f| whole.map_or(true, |w| f <= w)) => {
                return timeout(
                    TimeoutPhase::FirstByte,
                    config.first_byte_timeout.unwrap_or_default(),
                )
            }
            None => return whole_timeout(),
            Some(None) => return Err(Retry),
            Some(Some(_)) => {}
        }
        let head_request = self.method == Method::HEAD;
        let mut interim = 0;
        let head = conn.read_with(|buf, _| parse_response_head(buf, head_request, &mut interim));
        let head = match deadline::before(clock, whole, head).await {
            None => return whole_timeout(),
            Some(None) => {
                return Ok(Err(ClientError::Closed {
                    origin: origin.to_string(),
                    when: "in the middle of the response head",
                }))
            }
            Some(Some(Err(why))) => {
                return Ok(Err(ClientError::Malformed {
                    origin: origin.to_string(),
                    why,
                }))
            }
            Some(Some(Ok(head))) => head,
        };
        let body = ResponseBody::new(
            lease,
            head.framing,
            head.keep_alive,
            Rc::from(origin.to_string()),
            clock.clone(),
            deadline,
        );
        Ok(Ok(ClientResponse::new(
            head.status,
            head.version,
            head.headers,
            body,
            config.max_body,
        )))
    }
}

/// A long request body goes out in pieces of this size.
const BODY_PIECE: usize = 64 * 1024;

/// The connection closed before any byte of the response: the request may
/// be sent again.
struct Retry;

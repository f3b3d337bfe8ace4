//! Routing a request to its handler (Twisted's `Resource` tree, flattened):
//! a per-shard table from method + path to handlers. A router is built once
//! per shard, on that shard, so handlers may hold `Rc`/`RefCell` state
//! without locks.
//!
//! A handler gets the whole request (`http::Request<Bytes>`: method, URI
//! with path and query, headers, body) and returns a [`Reply`]: a response
//! now, or a future of one (`Reply::later(async move { … })`) that may await
//! `defer_to_thread`, a TCP client or a timer without blocking the shard;
//! pipelined responses still leave in request order.
//!
//! Matching: exact paths first, then the longest matching prefix route
//! (`prefix("/static/", …)`); a path that matches with another method gets
//! 405 with `Allow`; no match gets 404. `HEAD` runs the `GET` handler when
//! no `HEAD` route exists (the body is not sent). A handler that panics
//! answers 500; the connection and the shard go on.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use bytes::Bytes;
use http::{Method, StatusCode};

use super::response::{status_page, Response};

/// A request as handlers see it.
pub type Request = http::Request<Bytes>;

/// What a handler returns: a response now, or later.
pub enum Reply {
    /// The response is ready.
    Now(Response),
    /// The response comes when this future resolves (it runs on the shard).
    Later(Pin<Box<dyn Future<Output = Response>>>),
}

impl Reply {
    /// A reply from a future (an `async` block).
    pub fn later(f: impl Future<Output = Response> + 'static) -> Reply {
        Reply::Later(Box::pin(f))
    }
}

impl From<Response> for Reply {
    fn from(r: Response) -> Reply {
        Reply::Now(r)
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Now(r) => f.debug_tuple("Reply::Now").field(r).finish(),
            Reply::Later(_) => f.write_str("Reply::Later(..)"),
        }
    }
}

/// Answers requests (Twisted's `IResource.render`).
pub trait Handler: 'static {
    /// The reply to `request`.
    fn call(&self, request: Request) -> Reply;
}

impl<F, R> Handler for F
where
    F: Fn(Request) -> R + 'static,
    R: Into<Reply>,
{
    fn call(&self, request: Request) -> Reply {
        self(request).into()
    }
}

struct Route {
    method: Method,
    path: String,
    prefix: bool,
    handler: Rc<dyn Handler>,
}

/// A per-shard routing table. Cheap to share between the shard's
/// connections (`Rc`).
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
    fallback: Option<Rc<dyn Handler>>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.routes
                    .iter()
                    .map(|r| format!("{} {}{}", r.method, r.path, if r.prefix { "*" } else { "" })),
            )
            .finish()
    }
}

impl Router {
    /// An empty table: every request gets 404.
    pub fn new() -> Router {
        Router::default()
    }

    /// `method path` (exactly) goes to `handler`.
    pub fn route(mut self, method: Method, path: &str, handler: impl Handler) -> Router {
        self.routes.push(Route {
            method,
            path: path.to_owned(),
            prefix: false,
            handler: Rc::new(handler),
        });
        self
    }

    /// `GET path` goes to `handler`.
    pub fn get(self, path: &str, handler: impl Handler) -> Router {
        self.route(Method::GET, path, handler)
    }

    /// `POST path` goes to `handler`.
    pub fn post(self, path: &str, handler: impl Handler) -> Router {
        self.route(Method::POST, path, handler)
    }

    /// `method` on every path starting with `prefix` goes to `handler`
    /// (the longest matching prefix wins).
    pub fn prefix(mut self, method: Method, prefix: &str, handler: impl Handler) -> Router {
        self.routes.push(Route {
            method,
            path: prefix.to_owned(),
            prefix: true,
            handler: Rc::new(handler),
        });
        self
    }

    /// What answers requests no route matches (default: 404).
    pub fn fallback(mut self, handler: impl Handler) -> Router {
        self.fallback = Some(Rc::new(handler));
        self
    }

    /// The reply to `request`: its route's handler, 405 or 404.
    pub fn dispatch(&self, request: Request) -> Reply {
        let path = request.uri().path();
        let method = request.method();
        let matches = |r: &&Route| {
            if r.prefix {
                path.starts_with(r.path.as_str())
            } else {
                path == r.path
            }
        };
        let best = |m: &Method| {
            self.routes
                .iter()
                .filter(|r| r.method == *m)
                .filter(matches)
                .max_by_key(|r| (!r.prefix, r.path.len()))
        };
        let found = best(method).or_else(|| {
            (*method == Method::HEAD)
                .then(|| best(&Method::GET))
                .flatten()
        });
        if let Some(route) = found {
            return route.handler.call(request);
        }
        if let Some(fallback) = &self.fallback {
            return fallback.call(request);
        }
        let mut allowed: Vec<&str> = self
            .routes
            .iter()
            .filter(matches)
            .map(|r| r.method.as_str())
            .collect();
        if allowed.is_empty() {
            return status_page(StatusCode::NOT_FOUND).into();
        }
        if allowed.contains(&"GET") && !allowed.contains(&"HEAD") {
            allowed.push("HEAD");
        }
        allowed.sort_unstable();
        allowed.dedup();
        let mut r = status_page(StatusCode::METHOD_NOT_ALLOWED);
        if let Ok(v) = allowed.join(", ").parse() {
            r.headers_mut().insert(http::header::ALLOW, v);
        }
        r.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::response::text;

    fn status(router: &Router, method: Method, path: &str) -> (StatusCode, Option<String>) {
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .body(Bytes::new())
            .unwrap();
        match router.dispatch(req) {
            Reply::Now(r) => (
                r.status(),
                r.headers()
                    .get(http::header::ALLOW)
                    .map(|v| v.to_str().unwrap().to_owned()),
            ),
            Reply::Later(_) => panic!("sync handlers only here"),
        }
    }

    #[test]
    fn exact_then_longest_prefix_then_405_then_404() {
        let r = Router::new()
            .get("/a", |_| text("a"))
            .prefix(Method::GET, "/s/", |_| text("s"))
            .prefix(Method::GET, "/s/deep/", |_| {
                http::Response::builder()
                    .status(202)
                    .body("deep".into())
                    .unwrap()
            })
            .post("/p", |_| text("p"));
        assert_eq!(status(&r, Method::GET, "/a").0, StatusCode::OK);
        assert_eq!(
            status(&r, Method::HEAD, "/a").0,
            StatusCode::OK,
            "HEAD runs GET"
        );
        assert_eq!(status(&r, Method::GET, "/s/deep/x").0, StatusCode::ACCEPTED);
        assert_eq!(status(&r, Method::GET, "/s/x").0, StatusCode::OK);
        assert_eq!(
            status(&r, Method::GET, "/p"),
            (StatusCode::METHOD_NOT_ALLOWED, Some("POST".into()))
        );
        assert_eq!(
            status(&r, Method::DELETE, "/a"),
            (StatusCode::METHOD_NOT_ALLOWED, Some("GET, HEAD".into()))
        );
        assert_eq!(status(&r, Method::GET, "/nope").0, StatusCode::NOT_FOUND);
    }
}

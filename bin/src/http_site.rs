//! What `torsion serve http` serves: the TechEmpower plaintext and JSON
//! tests, so the runtime can be measured against the public record.
//!
//! - `GET /plaintext` → `Hello, World!` (`text/plain`)
//! - `GET /json` → `{"message":"Hello, World!"}` (`application/json`),
//!   serialized for each request as the JSON test's rules require.
//!
//! Both carry `Server`, `Date` and `Content-Length` (the connection writes
//! those; see `torsion_protocols::http`).
//!
//! With `--dir PATH`, every other `GET`/`HEAD` path is a file under PATH
//! (`StaticDir`: Twisted's `twistd web --path`); the two routes above win
//! over files of the same name.

use ::http::Method;
use serde::Serialize;
use torsion_protocols::http::{self, Router, StaticDir};

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

/// The routes of `serve http`, built once per shard; `dir` adds the
/// directory's files.
pub fn router(dir: Option<&StaticDir>) -> Router {
    let router = Router::new()
        .get("/plaintext", |_| http::text("Hello, World!"))
        .get("/json", |_| {
            let body = serde_json::to_vec(&Message {
                message: "Hello, World!",
            })
            .unwrap_or_default();
            http::json(body)
        });
    match dir {
        Some(dir) => router.prefix(Method::GET, "/", dir.clone()),
        None => router,
    }
}

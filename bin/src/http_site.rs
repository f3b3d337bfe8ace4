//! What `torsion serve http` serves: the TechEmpower plaintext and JSON
//! tests, so the runtime can be measured against the public record.
//!
//! - `GET /plaintext` → `Hello, World!` (`text/plain`)
//! - `GET /json` → `{"message":"Hello, World!"}` (`application/json`),
//!   serialized for each request as the JSON test's rules require.
//!
//! Both carry `Server`, `Date` and `Content-Length` (the connection writes
//! those; see `torsion_protocols::http`).

use serde::Serialize;
use torsion_protocols::http::{self, Router};

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

/// The routes of `serve http`, built once per shard.
pub fn router() -> Router {
    Router::new()
        .get("/plaintext", |_| http::text("Hello, World!"))
        .get("/json", |_| {
            let body = serde_json::to_vec(&Message {
                message: "Hello, World!",
            })
            .unwrap_or_default();
            http::json(body)
        })
}

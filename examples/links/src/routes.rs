//! The API, one router per shard:
//!
//! - `POST /links` with a URL as the body: checks it, stores the result,
//!   `201` with the stored link as JSON (`400` for a URL that cannot be
//!   requested);
//! - `GET /links`: every stored link, a JSON array;
//! - `GET /links/ID`: one, or `404`.
//!
//! A failure of the database is a `503` with its sentence (the pool's queue
//! full, the file locked).

use serde_json::json;
use torsion_protocols::http::client::HttpClient;
use torsion_protocols::http::{self, Method, Reply, Request, Response, Router, StatusCode};

use crate::check::check;
use crate::store::Store;

/// The router of one shard.
pub fn routes(store: Store, client: HttpClient) -> Router {
    let (list_store, get_store) = (store.clone(), store.clone());
    Router::new()
        .post("/links", move |req: Request| {
            let (store, client) = (store.clone(), client.clone());
            Reply::later(async move { add(&store, &client, req).await })
        })
        .get("/links", move |_req| {
            let store = list_store.clone();
            Reply::later(async move {
                match store.list().await {
                    Ok(links) => json_reply(
                        StatusCode::OK,
                        serde_json::Value::from_iter(links.iter().map(|l| l.to_json())),
                    ),
                    Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
                }
            })
        })
        .prefix(Method::GET, "/links/", move |req: Request| {
            let store = get_store.clone();
            Reply::later(async move {
                let id = req.uri().path().trim_start_matches("/links/");
                let Ok(id) = id.parse::<i64>() else {
                    return error(StatusCode::NOT_FOUND, &format!("no link \"{id}\""));
                };
                match store.get(id).await {
                    Ok(Some(link)) => json_reply(StatusCode::OK, link.to_json()),
                    Ok(None) => error(StatusCode::NOT_FOUND, &format!("no link {id}")),
                    Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
                }
            })
        })
}

/// `POST /links`.
async fn add(store: &Store, client: &HttpClient, req: Request) -> Response {
    let Ok(url) = std::str::from_utf8(req.body()) else {
        return error(StatusCode::BAD_REQUEST, "the body is not UTF-8 text");
    };
    let checked = match check(client, url.trim()).await {
        Ok(checked) => checked,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    match store.insert(checked).await {
        Ok(link) => json_reply(StatusCode::CREATED, link.to_json()),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

fn json_reply(status: StatusCode, body: serde_json::Value) -> Response {
    http::response(status, "application/json", format!("{body}\n"))
}

fn error(status: StatusCode, why: &str) -> Response {
    json_reply(status, json!({ "error": why }))
}

//! `links`: an example service built from torsion's parts — an HTTP API on
//! the app runner that checks each link it is given with the HTTP client
//! (a per-shard pool) and keeps the results in SQLite through the database
//! pool (threads of its own, awaited on the shard).
//!
//! `links serve links --listen tcp:8080 --db links.db`, then
//! `curl -d http://example.test/ localhost:8080/links`.
//!
//! | file | what |
//! |---|---|
//! | `main.rs` | the runner with one app |
//! | `app.rs` | the app: its flags, the pool, one router and one HTTP client per shard |
//! | `routes.rs` | the API: `POST /links`, `GET /links`, `GET /links/ID` |
//! | `check.rs` | checking a link: a `GET` through the HTTP client, what it answered |
//! | `store.rs` | the `links` table: create, insert, list, get — as pool calls |

mod app;
mod check;
mod routes;
mod store;

fn main() {
    torsion_app::Runner::new("links")
        .about("Checks links and keeps them in SQLite: an HTTP API on torsion")
        .app(app::LinksApp)
        .main()
}

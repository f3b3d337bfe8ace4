//! The built-in apps of `torsion serve`, registered through the app runner
//! like any user's (see [`torsion_app`]).
//!
//! | file | app |
//! |---|---|
//! | `echo.rs` | `serve echo`: Twisted's Echo, in any framing; UDP too |
//! | `chat.rs` | `serve chat`: the docs' chat server, sharded |
//! | `http.rs` | `serve http`: `/plaintext`, `/json`, and `--dir` |
//! | `websocket.rs` | `serve websocket`: echo over WebSocket |

mod chat;
mod echo;
mod http;
mod websocket;

pub use chat::{ChatApp, ChatFlags};
pub use echo::{EchoApp, EchoFlags};
pub use http::{HttpApp, HttpFlags};
pub use websocket::{WebSocketApp, WebSocketFlags};

use torsion_app::Runner;

/// `torsion`'s runner: echo, chat, http and websocket.
pub fn builtin_runner() -> Runner {
    Runner::new("torsion")
        .app(EchoApp)
        .app(ChatApp)
        .app(HttpApp)
        .app(WebSocketApp)
}

//! A WebSocket listener: every connection's opening request read and
//! checked; an upgrade is answered `101` and handed to the shard's
//! [`WsHandler`]; any other request gets the handler's page (a chat's HTML,
//! say) or `426 Upgrade Required`, and the connection closes after it.
//!
//! The handshake is bounded: a head over `max_head` is 431, a malformed
//! one 400, and a client that does not finish it within
//! `handshake_timeout` is disconnected (slowloris).

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use http::{header, StatusCode};
use torsion::{Connection, ConnectionFn, ServerBuilder, ServerError, ServerHandle, ShardInfo};

use super::frame::{Role, MAX_HEADER};
use super::handshake::{accept, check_origin, is_upgrade};
use super::socket::{WebSocket, WsConfig};
use crate::http::{
    parse_head, response, status_page, whole_response, HeadScanner, RequestHead, Response,
};

type OnOpen = dyn Fn(WebSocket, RequestHead) -> Pin<Box<dyn Future<Output = ()>>>;
type Page = dyn Fn(&RequestHead) -> Option<Response>;

/// One shard's WebSocket service: what runs for each accepted WebSocket,
/// and the page (if any) for requests that are not upgrades. Cheap to
/// clone (shared by the shard's connections).
#[derive(Clone)]
pub struct WsHandler {
    on_open: Rc<OnOpen>,
    page: Option<Rc<Page>>,
}

impl std::fmt::Debug for WsHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsHandler")
            .field("page", &self.page.is_some())
            .finish_non_exhaustive()
    }
}

impl WsHandler {
    /// Runs `on_open(websocket, request)` for every accepted WebSocket,
    /// on the connection's shard.
    pub fn new<F, Fut>(on_open: F) -> WsHandler
    where
        F: Fn(WebSocket, RequestHead) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        WsHandler {
            on_open: Rc::new(move |ws, head| Box::pin(on_open(ws, head))),
            page: None,
        }
    }

    /// Echo: every message back as it came, until the peer closes.
    pub fn echo() -> WsHandler {
        WsHandler::new(|mut ws, _request| async move {
            while let Some(Ok(message)) = ws.recv().await {
                if ws.send(message).await.is_err() {
                    break;
                }
            }
        })
    }

    /// Answers requests that are not upgrades with `page(request)` (`None`:
    /// `426 Upgrade Required`).
    pub fn with_page(
        mut self,
        page: impl Fn(&RequestHead) -> Option<Response> + 'static,
    ) -> WsHandler {
        self.page = Some(Rc::new(page));
        self
    }
}

/// Starts a WebSocket server: `make_handler` runs once on each shard, so
/// the handler's state (a chat room) is per shard and needs no locks.
pub fn start_websocket_server<M>(
    builder: ServerBuilder,
    config: WsConfig,
    make_handler: M,
) -> Result<ServerHandle, ServerError>
where
    M: Fn(&ShardInfo) -> WsHandler + Send + Sync + 'static,
{
    // A message in progress waits whole in the connection's input: room
    // for the largest one, its header and a read behind it.
    let limits = builder.current_limits();
    let needed = config.max_message + MAX_HEADER + 64 * 1024;
    let builder = if limits.max_read_buffer < needed {
        builder.limits(limits.with_max_read_buffer(needed))
    } else {
        builder
    };
    let config = Arc::new(config);
    builder.serve(move |shard| {
        let handler = make_handler(shard);
        let config = Rc::new((*config).clone());
        ConnectionFn::new(move |conn| serve_connection(conn, config.clone(), handler.clone()))
    })
}

/// One connection of a WebSocket listener, from its first byte.
pub async fn serve_connection(mut conn: Connection, config: Rc<WsConfig>, handler: WsHandler) {
    let clock = conn.clock();
    let deadline = clock.now() + config.handshake_timeout;
    let head = futures_lite::future::or(read_head(&mut conn, config.max_head), async {
        clock.sleep_until(deadline).await;
        Err(None)
    })
    .await;
    let head = match head {
        Ok(head) => head,
        Err(Some(status)) => return answer(&conn, status_page(status)).await,
        // Timed out, or the peer left before its request was whole.
        Err(None) => return conn.close(),
    };
    if !is_upgrade(&head) {
        let page = handler.page.as_ref().and_then(|page| page(&head));
        let page = page.unwrap_or_else(|| {
            let mut r = response(
                StatusCode::UPGRADE_REQUIRED,
                "text/plain; charset=utf-8",
                "426 Upgrade Required: this is a WebSocket endpoint\n",
            );
            r.headers_mut().insert(
                header::UPGRADE,
                header::HeaderValue::from_static("websocket"),
            );
            r
        });
        return answer(&conn, page).await;
    }
    let accepted = check_origin(&head, &config.allowed_origins)
        .and_then(|()| accept(&head, &config.protocols, config.deflate));
    match accepted {
        Ok(accepted) => {
            if conn.write(&accepted.response).await.is_err() {
                return;
            }
            let ws = WebSocket::new(
                conn,
                Role::Server,
                &config,
                accepted.protocol,
                accepted.deflate,
            );
            (handler.on_open)(ws, head).await;
        }
        Err(refusal) => {
            let mut r = response(
                refusal.status,
                "text/plain; charset=utf-8",
                format!("{} {}\n", refusal.status.as_u16(), refusal.reason),
            );
            if refusal.status == StatusCode::UPGRADE_REQUIRED {
                r.headers_mut().insert(
                    header::SEC_WEBSOCKET_VERSION,
                    header::HeaderValue::from_static("13"),
                );
            }
            answer(&conn, r).await
        }
    }
}

/// The opening request's head: `Err(Some(status))` for one to refuse,
/// `Err(None)` when the connection ended first.
async fn read_head(
    conn: &mut Connection,
    max_head: usize,
) -> Result<RequestHead, Option<StatusCode>> {
    let mut scanner = HeadScanner::default();
    let got = conn
        .read_with(|buf, _at_end| match scanner.scan(buf, max_head) {
            Ok(Some(n)) => Ok(Some(buf.split_to(n).freeze())),
            Ok(None) => Ok(None),
            Err(e) => Err(e.status()),
        })
        .await;
    match got {
        None => Err(None),
        Some(Err(status)) => Err(Some(status)),
        Some(Ok(bytes)) => parse_head(bytes, 100).map_err(|e| Some(e.status())),
    }
}

/// Writes `r` and closes the connection after it.
async fn answer(conn: &Connection, r: Response) {
    // Err: the connection is closing already.
    let _ = conn.write(&whole_response(r)).await;
    conn.close();
}

//! Serving a directory (Twisted's `static.File`, `twistd web --path`).
//!
//! Every file-system call (resolving, `stat`, opening, reading) runs on the
//! blocking pool (`defer_to_thread`), never on the shard; a file is sent in
//! 64 KiB pieces read only as the client takes them (a streamed
//! [`Body`](super::Body)), so files of any size are served in constant
//! memory.
//!
//! Never outside the root: the path is percent-decoded once; a NUL byte →
//! 400; an encoded `/` or `\` (`%2f`, `%5c`) or a `..` segment (also as
//! `%2e%2e`) → 404; the joined path is canonicalised (symlinks resolved)
//! and must still lie under the canonical root → else 404.
//!
//! Caching and ranges: `Last-Modified` + `If-Modified-Since` and a strong
//! `ETag` (length and modification time) + `If-None-Match` answer 304; one
//! `Range: bytes=…` answers 206 with `Content-Range` (416 when it cannot be
//! satisfied; several ranges are answered with the whole file, as RFC 9110
//! allows). A directory answers its `index.html`, or a listing; a directory
//! asked for without its final `/` is redirected (301) to it.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;

use super::response::{response, status_page, Body, Response};
use super::router::{Handler, Reply, Request};

/// Bytes read from a file per piece.
const PIECE: u64 = 64 * 1024;

/// Serves the files under a directory.
#[derive(Debug, Clone)]
pub struct StaticDir {
    root: Arc<PathBuf>,
}

impl StaticDir {
    /// Serves `root` (canonicalised now: it must exist and be a directory).
    pub fn new(root: impl AsRef<Path>) -> io::Result<StaticDir> {
        let root = root.as_ref().canonicalize()?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(StaticDir {
            root: Arc::new(root),
        })
    }
}

impl Handler for StaticDir {
    fn call(&self, request: Request) -> Reply {
        let root = self.root.clone();
        let path = request.uri().path().to_owned();
        let headers = request.headers().clone();
        Reply::later(async move {
            let found = torsion::defer_to_thread(move || resolve(&root, &path)).await;
            match found {
                Ok(Ok(found)) => answer(found, &headers),
                Ok(Err(status)) => status_page(status),
                Err(e) => {
                    tracing::warn!("http: static files: the blocking pool failed: {e}");
                    status_page(StatusCode::SERVICE_UNAVAILABLE)
                }
            }
        })
    }
}

/// What a request path names.
enum Found {
    File {
        file: Arc<File>,
        path: PathBuf,
        len: u64,
        modified: SystemTime,
    },
    Listing {
        path: String,
        entries: Vec<(String, bool)>,
    },
    Redirect(String),
}

/// Decodes `%XX` escapes; `None` when an escape is malformed.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The path's segments under the root, or the status that refuses it.
fn segments(path: &str) -> Result<Vec<String>, StatusCode> {
    let mut out = Vec::new();
    for raw in path.split('/') {
        let decoded = percent_decode(raw).ok_or(StatusCode::BAD_REQUEST)?;
        if decoded.contains(&0) {
            return Err(StatusCode::BAD_REQUEST);
        }
        if decoded.contains(&b'/') || decoded.contains(&b'\\') {
            return Err(StatusCode::NOT_FOUND);
        }
        let segment = String::from_utf8(decoded).map_err(|_| StatusCode::NOT_FOUND)?;
        match segment.as_str() {
            "" | "." => {}
            ".." => return Err(StatusCode::NOT_FOUND),
            _ => out.push(segment),
        }
    }
    Ok(out)
}

/// Runs on the blocking pool: what `path` names under `root`.
fn resolve(root: &Path, path: &str) -> Result<Found, StatusCode> {
    let segments = segments(path)?;
    let joined: PathBuf = segments.iter().fold(root.to_path_buf(), |p, s| p.join(s));
    let real = joined.canonicalize().map_err(|_| StatusCode::NOT_FOUND)?;
    if !real.starts_with(root) {
        return Err(StatusCode::NOT_FOUND);
    }
    let meta = real.metadata().map_err(|_| StatusCode::NOT_FOUND)?;
    if meta.is_dir() {
        if !path.ends_with('/') {
            return Ok(Found::Redirect(format!("{path}/")));
        }
        let index = real.join("index.html");
        if let Ok(index) = index.canonicalize() {
            if index.starts_with(root) && index.is_file() {
                return open(index);
            }
        }
        let mut entries: Vec<(String, bool)> = std::fs::read_dir(&real)
            .map_err(|_| StatusCode::FORBIDDEN)?
            .filter_map(Result::ok)
            .map(|e| {
                let dir = e.file_type().is_ok_and(|t| t.is_dir());
                (e.file_name().to_string_lossy().into_owned(), dir)
            })
            .collect();
        entries.sort();
        return Ok(Found::Listing {
            path: path.to_owned(),
            entries,
        });
    }
    open(real)
}

fn open(path: PathBuf) -> Result<Found, StatusCode> {
    let file = File::open(&path).map_err(|_| StatusCode::FORBIDDEN)?;
    let meta = file.metadata().map_err(|_| StatusCode::FORBIDDEN)?;
    if !meta.is_file() {
        return Err(StatusCode::NOT_FOUND);
    }
    Ok(Found::File {
        file: Arc::new(file),
        path,
        len: meta.len(),
        modified: meta.modified().unwrap_or(UNIX_EPOCH),
    })
}

/// Escapes text for HTML.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn answer(found: Found, request_headers: &HeaderMap) -> Response {
    match found {
        Found::Redirect(to) => {
            let mut r = status_page(StatusCode::MOVED_PERMANENTLY);
            if let Ok(v) = HeaderValue::from_str(&to) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        Found::Listing { path, entries } => {
            let mut html = format!(
                "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {0}</title></head>\n<body><h1>Index of {0}</h1>\n<ul>\n",
                escape(&path)
            );
            for (name, dir) in entries {
                let slash = if dir { "/" } else { "" };
                let href: String = name
                    .bytes()
                    .map(|b| match b {
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                            (b as char).to_string()
                        }
                        _ => format!("%{b:02X}"),
                    })
                    .collect();
                html.push_str(&format!(
                    "<li><a href=\"{href}{slash}\">{}{slash}</a></li>\n",
                    escape(&name)
                ));
            }
            html.push_str("</ul></body></html>\n");
            response(StatusCode::OK, "text/html; charset=utf-8", html)
        }
        Found::File {
            file,
            path,
            len,
            modified,
        } => file_response(file, &path, len, modified, request_headers),
    }
}

fn file_response(
    file: Arc<File>,
    path: &Path,
    len: u64,
    modified: SystemTime,
    request_headers: &HeaderMap,
) -> Response {
    let mtime = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
    let etag = format!(
        "\"{len:x}-{:x}{:08x}\"",
        mtime.as_secs(),
        mtime.subsec_nanos()
    );
    let last_modified = httpdate::fmt_http_date(modified);
    let mut headers = HeaderMap::new();
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    if let Ok(v) = HeaderValue::from_str(mime.essence_str()) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&last_modified) {
        headers.insert(header::LAST_MODIFIED, v);
    }
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let not_modified = match request_headers.get(header::IF_NONE_MATCH) {
        Some(v) => v
            .to_str()
            .map(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
            .unwrap_or(false),
        None => request_headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .is_some_and(|since| {
                since
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs()
                    >= mtime.as_secs()
            }),
    };
    let mut status = StatusCode::OK;
    let (mut start, mut end) = (0, len);
    if not_modified {
        status = StatusCode::NOT_MODIFIED;
        end = 0;
    } else if let Some(range) = request_headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
    {
        match byte_range(range, len) {
            Some(Ok((a, b))) => {
                status = StatusCode::PARTIAL_CONTENT;
                (start, end) = (a, b + 1);
                if let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{b}/{len}")) {
                    headers.insert(header::CONTENT_RANGE, v);
                }
            }
            Some(Err(())) => {
                let mut r = status_page(StatusCode::RANGE_NOT_SATISFIABLE);
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    r.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return r;
            }
            None => {}
        }
    }
    let body = if status == StatusCode::NOT_MODIFIED {
        Body::Empty
    } else {
        Body::stream(Some(end - start), file_pieces(file, start, end))
    };
    let mut r = http::Response::new(body);
    *r.status_mut() = status;
    *r.headers_mut() = headers;
    r
}

/// One `bytes=` range of a file of `len` bytes: `None` to ignore the header
/// (not a single byte range), `Some(Err)` when it cannot be satisfied,
/// else the first and last byte.
fn byte_range(header: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 || len == 0 {
            return Some(Err(()));
        }
        (len.saturating_sub(n), len - 1)
    } else {
        let first: u64 = a.parse().ok()?;
        let last: u64 = if b.is_empty() {
            u64::MAX
        } else {
            b.parse().ok()?
        };
        if last < first {
            return None;
        }
        if first >= len {
            return Some(Err(()));
        }
        (first, last.min(len - 1))
    };
    Some(Ok(range))
}

/// The bytes `start..end` of `file`, read in pieces on the blocking pool.
fn file_pieces(
    file: Arc<File>,
    start: u64,
    end: u64,
) -> impl futures_lite::Stream<Item = io::Result<Bytes>> {
    futures_lite::stream::unfold(start, move |at| {
        let file = file.clone();
        async move {
            if at >= end {
                return None;
            }
            let n = (end - at).min(PIECE) as usize;
            let read = torsion::defer_to_thread(move || {
                let mut buf = vec![0u8; n];
                let mut got = 0;
                while got < n {
                    match file.read_at(&mut buf[got..], at + got as u64)? {
                        0 => break,
                        k => got += k,
                    }
                }
                buf.truncate(got);
                Ok::<_, io::Error>(buf)
            })
            .await;
            let piece = match read {
                Ok(Ok(buf)) if buf.is_empty() => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file shrank while it was being sent",
                )),
                Ok(Ok(buf)) => Ok(Bytes::from(buf)),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(io::Error::other(e.to_string())),
            };
            let next = match &piece {
                Ok(b) => at + b.len() as u64,
                Err(_) => end,
            };
            Some((piece, next))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_shapes_are_refused() {
        assert_eq!(segments("/a/./b//c").unwrap(), ["a", "b", "c"]);
        assert_eq!(segments("/a%20b").unwrap(), ["a b"]);
        for (bad, status) in [
            ("/../etc/passwd", StatusCode::NOT_FOUND),
            ("/a/%2e%2e/%2E%2E/etc", StatusCode::NOT_FOUND),
            ("/a%2fb", StatusCode::NOT_FOUND),
            ("/a%5c..", StatusCode::NOT_FOUND),
            ("/a%00b", StatusCode::BAD_REQUEST),
            ("/a%zz", StatusCode::BAD_REQUEST),
            ("/a%2", StatusCode::BAD_REQUEST),
        ] {
            assert_eq!(segments(bad).unwrap_err(), status, "{bad}");
        }
    }

    #[test]
    fn single_byte_ranges_are_read_and_others_ignored_or_refused() {
        assert_eq!(byte_range("bytes=0-9", 100), Some(Ok((0, 9))));
        assert_eq!(byte_range("bytes=90-", 100), Some(Ok((90, 99))));
        assert_eq!(byte_range("bytes=-10", 100), Some(Ok((90, 99))));
        assert_eq!(byte_range("bytes=-200", 100), Some(Ok((0, 99))));
        assert_eq!(byte_range("bytes=50-1000", 100), Some(Ok((50, 99))));
        assert_eq!(byte_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(byte_range("bytes=-0", 100), Some(Err(())));
        assert_eq!(byte_range("bytes=0-1,5-6", 100), None);
        assert_eq!(byte_range("items=0-1", 100), None);
        assert_eq!(byte_range("bytes=9-1", 100), None);
    }
}

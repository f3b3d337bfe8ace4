//! Where a request goes: an absolute `http://` or `https://` URL split into
//! the [`Origin`] that keys the connection pool, the `Host` header and the
//! request target (path and query).

use std::fmt;

use super::error::ClientError;

/// A scheme, host and port: what one pooled connection can serve.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// `https://`.
    pub https: bool,
    /// An IP address (IPv6 without brackets) or a host name.
    pub host: String,
    /// The port (80 or 443 when the URL names none).
    pub port: u16,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// A parsed request URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub origin: Origin,
    /// The `Host` header's value (the URL's authority without user info).
    pub host_header: String,
    /// The request target: path and query, `/` when empty.
    pub path: String,
}

impl Target {
    /// Parses an absolute `http://` or `https://` URL.
    pub fn parse(url: &str) -> Result<Target, ClientError> {
        let bad = |why: &str| ClientError::InvalidUrl {
            url: url.to_string(),
            why: why.to_string(),
        };
        if !url.contains("://") {
            return Err(bad(
                "not an absolute URL (expected http://HOST/… or https://HOST/…)",
            ));
        }
        let uri: http::Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
        let https = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => false,
            Some(s) if s.eq_ignore_ascii_case("https") => true,
            Some(s) => return Err(bad(&format!("scheme \"{s}\" is not http or https"))),
            None => {
                return Err(bad(
                    "not an absolute URL (expected http://HOST/… or https://HOST/…)",
                ))
            }
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("user information in the URL is not supported"));
        }
        let raw_host = authority.host();
        if raw_host.is_empty() {
            return Err(bad("no host"));
        }
        let text = authority.as_str();
        let after_host = text
            .find(raw_host)
            .map_or("", |i| &text[i + raw_host.len()..]);
        let port = match after_host.strip_prefix(':') {
            None if https => 443,
            None => 80,
            Some("") => return Err(bad("empty port")),
            Some(p) => match p.parse::<u16>() {
                Ok(0) => return Err(bad("port 0")),
                Ok(p) => p,
                Err(_) => {
                    return Err(bad(&format!(
                        "port \"{p}\" is not a number from 1 to 65535"
                    )))
                }
            },
        };
        let host = raw_host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let path = uri
            .path_and_query()
            .map(|p| p.as_str())
            .filter(|p| !p.is_empty())
            .unwrap_or("/");
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        Ok(Target {
            origin: Origin { https, host, port },
            host_header: authority.as_str().to_string(),
            path,
        })
    }

    /// `Location` resolved against this URL (absolute, or a path on the
    /// same origin).
    pub fn join(&self, location: &str) -> Result<Target, ClientError> {
        if location.starts_with("http://") || location.starts_with("https://") {
            return Target::parse(location);
        }
        if location.starts_with("//") {
            let scheme = if self.origin.https { "https:" } else { "http:" };
            return Target::parse(&format!("{scheme}{location}"));
        }
        let path = if location.starts_with('/') {
            location.to_string()
        } else {
            let dir = self.path.split('?').next().unwrap_or("/");
            let dir = &dir[..dir.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{location}")
        };
        let scheme = if self.origin.https { "https" } else { "http" };
        Target::parse(&format!("{scheme}://{}{path}", self.host_header))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_origin_host_and_path() {
        let t = Target::parse("http://127.0.0.1:8080/a/b?x=1").unwrap();
        assert_eq!(t.origin.to_string(), "http://127.0.0.1:8080");
        assert_eq!(
            (t.host_header.as_str(), t.path.as_str()),
            ("127.0.0.1:8080", "/a/b?x=1")
        );
        let t = Target::parse("https://localhost").unwrap();
        assert_eq!(
            (t.origin.port, t.origin.https, t.path.as_str()),
            (443, true, "/")
        );
        let t = Target::parse("http://[::1]:81/").unwrap();
        assert_eq!(
            (t.origin.host.as_str(), t.host_header.as_str()),
            ("::1", "[::1]:81")
        );
        assert_eq!(t.origin.to_string(), "http://[::1]:81");
        assert_eq!(
            Target::parse("HTTP://example.test/").unwrap().origin.port,
            80
        );
    }

    #[test]
    fn bad_urls_are_errors_that_say_why() {
        for (url, why) in [
            ("/just/a/path", "not an absolute URL"),
            ("ftp://h/", "scheme \"ftp\""),
            ("http://h:0/", "port 0"),
            ("http://u:p@h/", "user information"),
            ("http://h:99999/", "1 to 65535"),
            ("http://h:/", "empty port"),
            ("", "not an absolute URL"),
            ("http://", "invalid"),
        ] {
            let e = Target::parse(url).unwrap_err().to_string();
            assert!(e.contains(why), "{url:?}: {e}");
        }
    }

    #[test]
    fn locations_resolve_against_the_request() {
        let t = Target::parse("http://h:1/a/b?q").unwrap();
        assert_eq!(t.join("/c").unwrap().path, "/c");
        assert_eq!(t.join("c?d").unwrap().path, "/a/c?d");
        assert_eq!(
            t.join("https://o/x").unwrap().origin.to_string(),
            "https://o:443"
        );
        assert_eq!(t.join("//o:2/y").unwrap().origin.to_string(), "http://o:2");
    }
}

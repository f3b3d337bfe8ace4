//! Server endpoint strings in Twisted's `serverFromString` syntax.
//!
//! ```text
//! tcp:PORT                          all IPv4 interfaces
//! tcp:PORT:interface=ADDR           one interface (IPv4 or IPv6)
//! tcp:PORT:interface=ADDR:backlog=N listen(2) backlog
//! tcp:port=PORT:interface=ADDR      the keyword form of the port
//! tcp6:PORT:interface=::1           IPv6 (default interface `::`)
//! ```
//!
//! As in Twisted, a colon inside a value may be escaped as `\:`
//! (`tcp6:8080:interface=\:\:1`); an unescaped IPv6 address after
//! `interface=` is accepted too, because colons that cannot start a new
//! `key=value` option are folded back into the interface value.
//!
//! Every malformed string gets its own [`EndpointError`], never a panic.
//! Defaults differ from Twisted's in one place: the backlog defaults to 1024
//! (Twisted's 50 drops connections under the load this runtime is built for).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// The listen(2) backlog used when the endpoint string does not give one.
pub const DEFAULT_BACKLOG: u32 = 1024;

/// A parsed server endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Endpoint {
    /// A TCP listener (`tcp:` or `tcp6:`).
    Tcp {
        /// The address every shard binds (port 0 = pick one).
        addr: SocketAddr,
        /// The listen(2) backlog of each shard's socket.
        backlog: u32,
    },
    /// A TLS listener (`tls:` or Twisted's `ssl:`): TCP with rustls.
    Tls {
        /// The address every shard binds (port 0 = pick one).
        addr: SocketAddr,
        /// The listen(2) backlog of each shard's socket.
        backlog: u32,
        /// PEM file with the certificate chain (`certKey=`).
        cert: std::path::PathBuf,
        /// PEM file with the private key (`privateKey=`).
        key: std::path::PathBuf,
    },
    /// A UDP socket per shard (`udp:` or `udp6:`).
    Udp {
        /// The address every shard binds (port 0 = pick one).
        addr: SocketAddr,
    },
}

/// Why an endpoint string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The string was empty.
    #[error("empty endpoint string (expected e.g. \"tcp:7000:interface=127.0.0.1\")")]
    Empty,
    /// The part before the first colon is not a known type.
    #[error("unknown endpoint type \"{0}\" (expected \"tcp\", \"tcp6\", \"tls\", \"ssl\", \"udp\" or \"udp6\")")]
    UnknownType(String),
    /// An endpoint type this build leaves out (torsion compiled without the
    /// Cargo feature that serves it).
    #[error("{kind}: endpoints need torsion's `{feature}` feature, which this program was built without")]
    NotBuiltIn {
        /// The endpoint type, e.g. `tls`.
        kind: String,
        /// The Cargo feature of the `torsion` crate that adds it.
        feature: &'static str,
    },
    /// A TLS endpoint without its certificate or key file.
    #[error("tls endpoint needs certKey=CERT.pem and privateKey=KEY.pem")]
    MissingTlsFiles,
    /// No port was given.
    #[error("missing port in endpoint \"{0}\"")]
    MissingPort(String),
    /// The port is not a decimal number.
    #[error("port \"{0}\" is not a number")]
    InvalidPort(String),
    /// The port does not fit in 16 bits.
    #[error("port \"{0}\" is out of range (0-65535)")]
    PortOutOfRange(String),
    /// An option name that the endpoint type does not know.
    #[error("unknown option \"{0}\" (known: interface, backlog, port; tls: certKey, privateKey)")]
    UnknownOption(String),
    /// The same option twice.
    #[error("option \"{0}\" given twice")]
    DuplicateOption(String),
    /// A positional argument after the port.
    #[error("unexpected argument \"{0}\" (options are written key=value)")]
    UnexpectedArgument(String),
    /// `interface=` is not an IP address.
    #[error("invalid interface address \"{0}\"")]
    InvalidInterface(String),
    /// `tcp6:` with an IPv4 interface.
    #[error("tcp6 endpoint needs an IPv6 interface, got \"{0}\"")]
    NotIpv6(String),
    /// `backlog=` is not a positive number.
    #[error("backlog \"{0}\" is not a positive number")]
    InvalidBacklog(String),
    /// A trailing backslash with nothing to escape.
    #[error("endpoint ends with a lone backslash")]
    TrailingEscape,
}

impl Endpoint {
    /// Parses a Twisted-style server endpoint string.
    pub fn parse(s: &str) -> Result<Endpoint, EndpointError> {
        s.parse()
    }

    /// The socket address this endpoint binds.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Endpoint::Tcp { addr, .. } | Endpoint::Tls { addr, .. } | Endpoint::Udp { addr } => {
                *addr
            }
        }
    }

    /// True for a datagram (UDP) endpoint.
    pub fn is_datagram(&self) -> bool {
        matches!(self, Endpoint::Udp { .. })
    }

    /// The same endpoint with another port (used to bind every shard to the
    /// port the first one picked).
    pub fn with_port(&self, port: u16) -> Endpoint {
        match self {
            Endpoint::Tcp { addr, backlog } => Endpoint::Tcp {
                addr: SocketAddr::new(addr.ip(), port),
                backlog: *backlog,
            },
            Endpoint::Udp { addr } => Endpoint::Udp {
                addr: SocketAddr::new(addr.ip(), port),
            },
            Endpoint::Tls {
                addr,
                backlog,
                cert,
                key,
            } => Endpoint::Tls {
                addr: SocketAddr::new(addr.ip(), port),
                backlog: *backlog,
                cert: cert.clone(),
                key: key.clone(),
            },
        }
    }
}

/// Splits on unescaped colons, resolving `\:` and `\\` escapes.
fn split_escaped(s: &str) -> Result<Vec<String>, EndpointError> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped) => parts.last_mut().expect("non-empty").push(escaped),
                None => return Err(EndpointError::TrailingEscape),
            },
            ':' => parts.push(String::new()),
            c => parts.last_mut().expect("non-empty").push(c),
        }
    }
    Ok(parts)
}

fn parse_port(s: &str) -> Result<u16, EndpointError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EndpointError::InvalidPort(s.to_string()));
    }
    // All digits: a parse failure can only mean "too large".
    s.parse::<u16>()
        .map_err(|_| EndpointError::PortOutOfRange(s.to_string()))
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(s: &str) -> Result<Endpoint, EndpointError> {
        if s.trim().is_empty() {
            return Err(EndpointError::Empty);
        }
        let parts = split_escaped(s)?;
        let kind = parts[0].as_str();
        let (ipv6_only, udp) = match kind {
            "tcp" | "tls" | "ssl" => (false, false),
            "tcp6" => (true, false),
            "udp" => (false, true),
            "udp6" => (true, true),
            other => return Err(EndpointError::UnknownType(other.to_string())),
        };
        let tls = matches!(kind, "tls" | "ssl");
        if tls && !cfg!(feature = "tls") {
            return Err(EndpointError::NotBuiltIn {
                kind: kind.to_string(),
                feature: "tls",
            });
        }

        let mut port: Option<String> = None;
        let mut interface: Option<String> = None;
        let mut backlog: Option<String> = None;
        let mut cert_key: Option<String> = None;
        let mut private_key: Option<String> = None;
        // The option a bare segment (one with no '=') folds back into: only
        // `interface`, whose IPv6 value may contain unescaped colons.
        let mut last_key: Option<&'static str> = None;

        for seg in &parts[1..] {
            match seg.split_once('=') {
                Some((key, value)) => {
                    let (slot, name) = match key {
                        "port" => (&mut port, "port"),
                        "interface" => (&mut interface, "interface"),
                        "backlog" => (&mut backlog, "backlog"),
                        "certKey" if tls => (&mut cert_key, "certKey"),
                        "privateKey" if tls => (&mut private_key, "privateKey"),
                        other => return Err(EndpointError::UnknownOption(other.to_string())),
                    };
                    if slot.is_some() {
                        return Err(EndpointError::DuplicateOption(name.to_string()));
                    }
                    *slot = Some(value.to_string());
                    last_key = Some(name);
                }
                None if port.is_none() && last_key.is_none() => {
                    port = Some(seg.clone());
                    last_key = Some("port-positional");
                }
                None if last_key == Some("interface") => {
                    let v = interface.as_mut().expect("interface was set");
                    v.push(':');
                    v.push_str(seg);
                }
                None => return Err(EndpointError::UnexpectedArgument(seg.clone())),
            }
        }

        let port_str = port.ok_or_else(|| EndpointError::MissingPort(s.to_string()))?;
        let port = parse_port(&port_str)?;

        let ip: IpAddr = match interface {
            None if ipv6_only => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Some(text) => {
                let trimmed = text
                    .strip_prefix('[')
                    .and_then(|t| t.strip_suffix(']'))
                    .unwrap_or(&text);
                let ip: IpAddr = trimmed
                    .parse()
                    .map_err(|_| EndpointError::InvalidInterface(text.clone()))?;
                if ipv6_only && ip.is_ipv4() {
                    return Err(EndpointError::NotIpv6(text));
                }
                ip
            }
        };

        if udp {
            if backlog.is_some() {
                return Err(EndpointError::UnknownOption("backlog".to_string()));
            }
            return Ok(Endpoint::Udp {
                addr: SocketAddr::new(ip, port),
            });
        }
        let backlog = match backlog {
            None => DEFAULT_BACKLOG,
            Some(b) => match b.parse::<u32>() {
                Ok(n) if n > 0 && n <= i32::MAX as u32 => n,
                _ => return Err(EndpointError::InvalidBacklog(b)),
            },
        };

        if tls {
            let (Some(cert), Some(key)) = (cert_key, private_key) else {
                return Err(EndpointError::MissingTlsFiles);
            };
            return Ok(Endpoint::Tls {
                addr: SocketAddr::new(ip, port),
                backlog,
                cert: cert.into(),
                key: key.into(),
            });
        }
        Ok(Endpoint::Tcp {
            addr: SocketAddr::new(ip, port),
            backlog,
        })
    }
}

impl fmt::Display for Endpoint {
    /// Writes the endpoint back in the same syntax (colons escaped), so that
    /// `parse(display(e)) == e`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp { addr, backlog } => {
                let kind = if addr.is_ipv6() { "tcp6" } else { "tcp" };
                let iface = addr.ip().to_string().replace(':', "\\:");
                write!(f, "{kind}:{}:interface={iface}", addr.port())?;
                if *backlog != DEFAULT_BACKLOG {
                    write!(f, ":backlog={backlog}")?;
                }
                Ok(())
            }
            Endpoint::Tls {
                addr,
                backlog,
                cert,
                key,
            } => {
                let esc = |p: &std::path::Path| p.display().to_string().replace(':', "\\:");
                let iface = addr.ip().to_string().replace(':', "\\:");
                write!(
                    f,
                    "tls:{}:interface={iface}:certKey={}:privateKey={}",
                    addr.port(),
                    esc(cert),
                    esc(key)
                )?;
                if *backlog != DEFAULT_BACKLOG {
                    write!(f, ":backlog={backlog}")?;
                }
                Ok(())
            }
            Endpoint::Udp { addr } => {
                let kind = if addr.is_ipv6() { "udp6" } else { "udp" };
                let iface = addr.ip().to_string().replace(':', "\\:");
                write!(f, "{kind}:{}:interface={iface}", addr.port())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(addr: &str, backlog: u32) -> Endpoint {
        Endpoint::Tcp {
            addr: addr.parse().unwrap(),
            backlog,
        }
    }

    #[test]
    fn parses_the_twisted_forms() {
        assert_eq!(
            Endpoint::parse("tcp:8080").unwrap(),
            tcp("0.0.0.0:8080", 1024)
        );
        assert_eq!(
            Endpoint::parse("tcp:7000:interface=127.0.0.1").unwrap(),
            tcp("127.0.0.1:7000", 1024)
        );
        assert_eq!(
            Endpoint::parse("tcp:7000:interface=127.0.0.1:backlog=50").unwrap(),
            tcp("127.0.0.1:7000", 50)
        );
        assert_eq!(
            Endpoint::parse("tcp:port=0:interface=127.0.0.1").unwrap(),
            tcp("127.0.0.1:0", 1024)
        );
        assert_eq!(
            Endpoint::parse("tcp:backlog=10:port=9").unwrap(),
            tcp("0.0.0.0:9", 10)
        );
    }

    #[test]
    fn parses_ipv6_escaped_and_unescaped() {
        let want = tcp("[::1]:7000", 1024);
        assert_eq!(Endpoint::parse("tcp6:7000:interface=::1").unwrap(), want);
        assert_eq!(
            Endpoint::parse("tcp6:7000:interface=\\:\\:1").unwrap(),
            want
        );
        assert_eq!(Endpoint::parse("tcp6:7000:interface=[::1]").unwrap(), want);
        assert_eq!(
            Endpoint::parse("tcp6:7000:interface=fe80::1:2:backlog=5").unwrap(),
            tcp("[fe80::1:2]:7000", 5)
        );
        assert_eq!(
            Endpoint::parse("tcp6:7000").unwrap(),
            tcp("[::]:7000", 1024)
        );
        // Twisted's tcp: also listens on an IPv6 interface when given one.
        assert_eq!(Endpoint::parse("tcp:7000:interface=::1").unwrap(), want);
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_without_the_feature_is_refused_by_name() {
        let err = Endpoint::parse("tls:7443:certKey=cert.pem:privateKey=key.pem").unwrap_err();
        assert_eq!(
            err.to_string(),
            "tls: endpoints need torsion's `tls` feature, which this program was built without"
        );
    }

    #[cfg(feature = "tls")]
    #[test]
    fn parses_tls_and_the_ssl_alias() {
        let want = Endpoint::Tls {
            addr: "127.0.0.1:7443".parse().unwrap(),
            backlog: DEFAULT_BACKLOG,
            cert: "cert.pem".into(),
            key: "key.pem".into(),
        };
        assert_eq!(
            Endpoint::parse("tls:7443:certKey=cert.pem:privateKey=key.pem:interface=127.0.0.1")
                .unwrap(),
            want
        );
        assert_eq!(
            Endpoint::parse("ssl:7443:interface=127.0.0.1:privateKey=key.pem:certKey=cert.pem")
                .unwrap(),
            want
        );
        assert_eq!(
            Endpoint::parse("tls:7443:certKey=cert.pem").unwrap_err(),
            EndpointError::MissingTlsFiles
        );
        assert_eq!(
            Endpoint::parse("tcp:7443:certKey=cert.pem").unwrap_err(),
            EndpointError::UnknownOption("certKey".into())
        );
        assert_eq!(Endpoint::parse(&want.to_string()).unwrap(), want);
    }

    #[test]
    fn parses_udp() {
        assert_eq!(
            Endpoint::parse("udp:7001:interface=127.0.0.1").unwrap(),
            Endpoint::Udp {
                addr: "127.0.0.1:7001".parse().unwrap()
            }
        );
        assert!(Endpoint::parse("udp6:0").unwrap().is_datagram());
    }

    #[test]
    fn rejects_bad_strings_with_specific_errors() {
        let cases: &[(&str, EndpointError)] = &[
            ("", EndpointError::Empty),
            ("tpc:80", EndpointError::UnknownType("tpc".into())),
            ("udpx:80", EndpointError::UnknownType("udpx".into())),
            (
                "udp:80:backlog=5",
                EndpointError::UnknownOption("backlog".into()),
            ),
            ("tcp:70000", EndpointError::PortOutOfRange("70000".into())),
            (
                "tcp:99999999999999999999",
                EndpointError::PortOutOfRange("99999999999999999999".into()),
            ),
            ("tcp:-1", EndpointError::InvalidPort("-1".into())),
            ("tcp:http", EndpointError::InvalidPort("http".into())),
            ("tcp:", EndpointError::InvalidPort("".into())),
            ("tcp", EndpointError::MissingPort("tcp".into())),
            (
                "tcp:interface=127.0.0.1",
                EndpointError::MissingPort("tcp:interface=127.0.0.1".into()),
            ),
            (
                "tcp:80:interfce=127.0.0.1",
                EndpointError::UnknownOption("interfce".into()),
            ),
            (
                "tcp:80:interface=localhost",
                EndpointError::InvalidInterface("localhost".into()),
            ),
            (
                "tcp:80:interface=127.0.0.1:junk",
                EndpointError::InvalidInterface("127.0.0.1:junk".into()),
            ),
            (
                "tcp:80:junk",
                EndpointError::UnexpectedArgument("junk".into()),
            ),
            (
                "tcp:80:backlog=0",
                EndpointError::InvalidBacklog("0".into()),
            ),
            (
                "tcp:80:backlog=many",
                EndpointError::InvalidBacklog("many".into()),
            ),
            (
                "tcp:80:port=81",
                EndpointError::DuplicateOption("port".into()),
            ),
            (
                "tcp:80:backlog=1:backlog=2",
                EndpointError::DuplicateOption("backlog".into()),
            ),
            (
                "tcp6:80:interface=127.0.0.1",
                EndpointError::NotIpv6("127.0.0.1".into()),
            ),
            ("tcp:80\\", EndpointError::TrailingEscape),
        ];
        for (input, want) in cases {
            assert_eq!(
                &Endpoint::parse(input).unwrap_err(),
                want,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn error_messages_name_the_culprit() {
        assert_eq!(
            Endpoint::parse("tpc:80").unwrap_err().to_string(),
            "unknown endpoint type \"tpc\" (expected \"tcp\", \"tcp6\", \"tls\", \"ssl\", \"udp\" or \"udp6\")"
        );
        assert!(Endpoint::parse("tcp:70000")
            .unwrap_err()
            .to_string()
            .starts_with("port \"70000\" is out of range"));
        assert!(Endpoint::parse("tcp:1:interfce=x")
            .unwrap_err()
            .to_string()
            .starts_with("unknown option \"interfce\""));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "tcp:0:interface=127.0.0.1",
            "tcp:65535:interface=0.0.0.0:backlog=7",
            "tcp6:80:interface=::1",
            "tcp6:1:interface=fe80::dead:beef",
            "udp:7001:interface=127.0.0.1",
            "udp6:0:interface=::1",
        ] {
            let e = Endpoint::parse(s).unwrap();
            assert_eq!(Endpoint::parse(&e.to_string()).unwrap(), e, "{s}");
        }
    }

    #[test]
    fn arbitrary_input_never_panics() {
        // A cheap exhaustive sweep over short strings of the tricky characters.
        let alphabet = ['t', 'c', 'p', '6', ':', '=', '\\', '1', 'i', '['];
        let mut buf = String::new();
        fn rec(buf: &mut String, alphabet: &[char], depth: usize) {
            let _ = Endpoint::parse(buf);
            if depth == 0 {
                return;
            }
            for &c in alphabet {
                buf.push(c);
                rec(buf, alphabet, depth - 1);
                buf.pop();
            }
        }
        rec(&mut buf, &alphabet, 5);
    }
}

/// A client endpoint in Twisted's `clientFromString` syntax:
/// `tcp:HOST:PORT`, `tcp:host=HOST:port=PORT`, or `tls:HOST:PORT` with
/// `caCerts=FILE` (PEM certificates to trust instead of the platform's
/// roots) and `serverName=NAME` (the name the certificate must be for;
/// default HOST); optional `:timeout=SECONDS` (default 30, as Twisted).
/// HOST is an IP address (IPv6 escaped as in server strings, or bracketed)
/// or a host name, resolved off the shard when connecting
/// ([`crate::client::connect`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientEndpoint {
    /// An IP address or a host name.
    pub host: String,
    /// The port.
    pub port: u16,
    /// Connect timeout (resolution, connection and TLS handshake each).
    pub timeout: std::time::Duration,
    /// `tls:`: TLS over the connection.
    pub tls: Option<ClientTls>,
}

/// The TLS settings of a `tls:` client endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTls {
    /// `caCerts=FILE`: trust the certificates in this PEM file (default:
    /// the platform's roots).
    pub ca_certs: Option<std::path::PathBuf>,
    /// The name the server's certificate must be for.
    pub server_name: String,
}

/// Why a client endpoint string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientEndpointError {
    /// Not `tcp:` or `tls:`.
    #[error("unknown client endpoint type \"{0}\" (expected \"tcp\" or \"tls\")")]
    UnknownType(String),
    /// An endpoint type this build leaves out.
    #[error("{kind}: client endpoints need torsion's `{feature}` feature, which this program was built without")]
    NotBuiltIn {
        /// The endpoint type, e.g. `tls`.
        kind: String,
        /// The Cargo feature of the `torsion` crate that adds it.
        feature: &'static str,
    },
    /// No host.
    #[error("missing host in \"{0}\"")]
    MissingHost(String),
    /// The host is not an IP address or a host name.
    #[error("host \"{0}\" is not an IP address or a host name (letters, digits, '-' and '.')")]
    InvalidHost(String),
    /// Port problems, as for server endpoints.
    #[error(transparent)]
    Port(#[from] EndpointError),
    /// `timeout=` is not a positive number of seconds.
    #[error("timeout \"{0}\" is not a positive number of seconds")]
    InvalidTimeout(String),
    /// A TLS option on a `tcp:` endpoint.
    #[error("option \"{0}\" goes with tls: endpoints")]
    TlsOptionOnTcp(String),
}

/// Whether `host` is a DNS name: labels of letters, digits, `-` and `_`,
/// 1–63 bytes each, not starting or ending with `-`, 253 bytes at most.
fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.trim_end_matches('.').split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl ClientEndpoint {
    /// Parses a Twisted-style client endpoint string.
    pub fn parse(s: &str) -> Result<ClientEndpoint, ClientEndpointError> {
        let parts = split_escaped(s)?;
        let tls = match parts[0].as_str() {
            "tcp" => false,
            "tls" | "ssl" => true,
            other => return Err(ClientEndpointError::UnknownType(other.to_string())),
        };
        if tls && !cfg!(feature = "tls") {
            return Err(ClientEndpointError::NotBuiltIn {
                kind: parts[0].clone(),
                feature: "tls",
            });
        }
        let (mut host, mut port, mut timeout) = (None, None, None);
        let (mut ca_certs, mut server_name) = (None, None);
        let mut positional = Vec::new();
        for seg in &parts[1..] {
            match seg.split_once('=') {
                Some(("host", v)) => host = Some(v.to_string()),
                Some(("port", v)) => port = Some(v.to_string()),
                Some(("timeout", v)) => timeout = Some(v.to_string()),
                Some((k @ ("caCerts" | "serverName"), _)) if !tls => {
                    return Err(ClientEndpointError::TlsOptionOnTcp(k.to_string()));
                }
                Some(("caCerts", v)) => ca_certs = Some(std::path::PathBuf::from(v)),
                Some(("serverName", v)) => server_name = Some(v.to_string()),
                Some((k, _)) => {
                    return Err(EndpointError::UnknownOption(k.to_string()).into());
                }
                None => positional.push(seg.clone()),
            }
        }
        // `tcp:HOST:PORT`, where an unescaped IPv6 host may have been split.
        if !positional.is_empty() {
            let p = positional.pop().expect("non-empty");
            if port.is_none() {
                port = Some(p);
            } else {
                positional.push(p);
            }
            if !positional.is_empty() && host.is_none() {
                host = Some(positional.join(":"));
            }
        }
        let host = host.ok_or_else(|| ClientEndpointError::MissingHost(s.to_string()))?;
        let port_str = port.ok_or_else(|| EndpointError::MissingPort(s.to_string()))?;
        let port = parse_port(&port_str)?;
        let bare = host
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(&host);
        let host = if let Ok(ip) = bare.parse::<IpAddr>() {
            ip.to_string()
        } else if is_host_name(&host) {
            host.clone()
        } else {
            return Err(ClientEndpointError::InvalidHost(host.clone()));
        };
        let timeout = match timeout {
            None => std::time::Duration::from_secs(30),
            Some(t) => match t.parse::<f64>() {
                Ok(secs) if secs.is_finite() && secs > 0.0 => {
                    std::time::Duration::from_secs_f64(secs)
                }
                _ => return Err(ClientEndpointError::InvalidTimeout(t)),
            },
        };
        Ok(ClientEndpoint {
            tls: tls.then(|| ClientTls {
                ca_certs,
                server_name: server_name.unwrap_or_else(|| host.clone()),
            }),
            host,
            port,
            timeout,
        })
    }

    /// The address, when the host is an IP address (no resolution needed).
    pub fn ip_addr(&self) -> Option<SocketAddr> {
        self.host
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, self.port))
    }
}

#[cfg(test)]
mod client_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn client_strings_parse() {
        let e = ClientEndpoint::parse("tcp:127.0.0.1:7000").unwrap();
        assert_eq!(e.ip_addr(), Some("127.0.0.1:7000".parse().unwrap()));
        assert_eq!(e.timeout, Duration::from_secs(30));
        assert_eq!(e.tls, None);
        let e = ClientEndpoint::parse("tcp:host=localhost:port=80:timeout=2.5").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.ip_addr()),
            ("localhost", 80, None)
        );
        assert_eq!(e.timeout, Duration::from_millis(2500));
        let e = ClientEndpoint::parse("tcp:::1:8080").unwrap();
        assert_eq!(e.ip_addr(), Some("[::1]:8080".parse().unwrap()));
        let e = ClientEndpoint::parse("tcp:\\:\\:1:8080").unwrap();
        assert_eq!(e.ip_addr(), Some("[::1]:8080".parse().unwrap()));
        let e = ClientEndpoint::parse("tcp:[::1]:8080").unwrap();
        assert_eq!(e.host, "::1");
        let e = ClientEndpoint::parse("tcp:db-1.internal.example:5432").unwrap();
        assert_eq!(e.host, "db-1.internal.example");
    }

    #[test]
    fn bad_client_strings_are_specific_errors() {
        assert_eq!(
            ClientEndpoint::parse("udp:1.2.3.4:5").unwrap_err(),
            ClientEndpointError::UnknownType("udp".into())
        );
        for bad in [
            "exa mple.com",
            "-x.example",
            "a..b",
            "x_y!",
            "ümlaut.example",
        ] {
            assert_eq!(
                ClientEndpoint::parse(&format!("tcp:host={bad}:port=80")).unwrap_err(),
                ClientEndpointError::InvalidHost(bad.into()),
                "{bad}"
            );
        }
        assert_eq!(
            ClientEndpoint::parse("tcp:localhost:80:caCerts=ca.pem").unwrap_err(),
            ClientEndpointError::TlsOptionOnTcp("caCerts".into())
        );
        assert!(matches!(
            ClientEndpoint::parse("tcp:1.2.3.4:99999").unwrap_err(),
            ClientEndpointError::Port(EndpointError::PortOutOfRange(_))
        ));
        assert_eq!(
            ClientEndpoint::parse("tcp:port=80").unwrap_err(),
            ClientEndpointError::MissingHost("tcp:port=80".into())
        );
        assert_eq!(
            ClientEndpoint::parse("tcp:1.2.3.4:80:timeout=-1").unwrap_err(),
            ClientEndpointError::InvalidTimeout("-1".into())
        );
        assert!(ClientEndpoint::parse("tcp:1.2.3.4:80:colour=red").is_err());
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_client_strings_parse() {
        let e = ClientEndpoint::parse("tls:host=localhost:port=8443:caCerts=ca.pem").unwrap();
        let tls = e.tls.unwrap();
        assert_eq!(tls.ca_certs, Some("ca.pem".into()));
        assert_eq!(tls.server_name, "localhost");
        let e = ClientEndpoint::parse("tls:127.0.0.1:443:serverName=api.example").unwrap();
        assert_eq!(
            e.tls.unwrap(),
            ClientTls {
                ca_certs: None,
                server_name: "api.example".into()
            }
        );
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_client_strings_without_the_feature_are_refused_by_name() {
        let err = ClientEndpoint::parse("tls:localhost:443").unwrap_err();
        assert!(err.to_string().contains("`tls` feature"), "{err}");
    }
}

//! TLS termination with rustls (Twisted's `listenSSL`, `ssl:` endpoints).
//!
//! A `tls:` endpoint's certificate chain and key are loaded once, when the
//! server starts: a missing or unreadable file, a file with no certificate
//! or key, or a key that does not match the certificate is a start-up error
//! naming the file. Each accepted connection then runs the handshake (bounded
//! by the handshake timeout, default 10 s) before its protocol is built; a
//! failed or stalled handshake closes the connection and is counted in
//! `tls_failures`. After the handshake the connection is driven like any
//! other, through `futures-rustls` over the glommio socket, so every protocol
//! runs over TLS unchanged: the transport hides it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// How long a handshake may take by default.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a TLS error came from.
pub type TlsSource = std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Why TLS could not be set up. The underlying error (a file's I/O or PEM
/// error, rustls's refusal) is the [`source`](std::error::Error::source).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read or parsed.
    #[error("cannot read {what} from {path}{}", problem.map(|p| format!(": {p}")).unwrap_or_default())]
    File {
        /// "certificate chain" or "private key".
        what: &'static str,
        /// The file.
        path: String,
        /// What is wrong with a file that was read (e.g. it holds no
        /// certificate), when no other error says it.
        problem: Option<&'static str>,
        /// The I/O or PEM error.
        #[source]
        source: Option<TlsSource>,
    },
    /// rustls refused the pair (e.g. the key does not match the certificate).
    #[error("invalid certificate/key pair ({cert}, {key})")]
    Config {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
        /// rustls's reason.
        #[source]
        source: TlsSource,
    },
}

/// Loads a certificate chain (PEM).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |problem: Option<&'static str>, source: Option<TlsSource>| TlsError::File {
        what: "certificate chain",
        path: path.display().to_string(),
        problem,
        source,
    };
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(None, Some(std::sync::Arc::new(e))))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(None, Some(std::sync::Arc::new(e))))?;
    if certs.is_empty() {
        return Err(err(Some("no CERTIFICATE section found"), None));
    }
    Ok(certs)
}

/// Loads a private key (PEM: PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::File {
        what: "private key",
        path: path.display().to_string(),
        problem: None,
        source: Some(std::sync::Arc::new(e)),
    })
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls server configuration for `cert` and `key`.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = load_certs(cert)?;
    let key_der = load_key(key)?;
    let config_err = |e: rustls::Error| TlsError::Config {
        cert: cert.display().to_string(),
        key: key.display().to_string(),
        source: std::sync::Arc::new(e),
    };
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(config_err)?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(config_err)?;
    Ok(Arc::new(config))
}

/// A rustls client configuration trusting the certificates in `ca` (PEM),
/// the platform's roots when `ca` is `None` (`rustls-native-certs`: the
/// system's store, e.g. `/etc/ssl/certs`), or, with `insecure`, any
/// certificate (for load tests only).
pub fn client_config(
    ca: Option<&Path>,
    insecure: bool,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config {
            cert: String::new(),
            key: String::new(),
            source: std::sync::Arc::new(e),
        })?;
    let config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = ca {
            for cert in load_certs(ca)? {
                roots.add(cert).map_err(|e| TlsError::File {
                    what: "certificate chain",
                    path: ca.display().to_string(),
                    problem: None,
                    source: Some(std::sync::Arc::new(e)),
                })?;
            }
        } else {
            // Certificates the store holds but rustls cannot parse are
            // skipped, as every rustls client does.
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// Accepts any server certificate (`--insecure`): encryption without
/// authentication, for load-testing servers with throwaway certificates.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS failure as a sentence a user can act on: rustls's certificate
/// errors are translated (a CA certificate used as a server's, an unknown
/// issuer, a name mismatch, an expired certificate…); anything else is
/// rustls's own text. `err` is what a handshake returned (rustls errors
/// arrive wrapped in `io::Error`).
pub fn explain_handshake_error(err: &std::io::Error) -> String {
    match err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(e) => explain(e),
        None => err.to_string(),
    }
}

/// [`explain_handshake_error`] for a rustls error itself.
pub fn explain(err: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    let rustls::Error::InvalidCertificate(cert) = err else {
        return err.to_string();
    };
    let why = match cert {
        C::UnknownIssuer => "it is not signed by a certificate you trust: trust the server's CA (or its self-signed certificate) with --ca FILE, or caCerts=FILE in a tls: client endpoint".to_string(),
        C::NotValidForNameContext { expected, presented } => format!(
            "it is not valid for the name asked for (\"{}\"; it is for {}): ask for the name it was made for with --server-name NAME, or serverName=NAME in a tls: client endpoint",
            expected.to_str(),
            if presented.is_empty() {
                "no name".to_string()
            } else {
                presented.iter().map(|n| bare_name(n)).collect::<Vec<_>>().join(", ")
            }
        ),
        C::NotValidForName => {
            "it is not valid for the name asked for: ask for the name it was made for with --server-name NAME, or serverName=NAME in a tls: client endpoint".to_string()
        }
        C::Expired | C::ExpiredContext { .. } => "it has expired".to_string(),
        C::NotValidYet | C::NotValidYetContext { .. } => {
            "it is not valid yet (check both machines' clocks)".to_string()
        }
        C::BadSignature => "its signature does not verify against the certificates you trust: is --ca FILE the one the server uses?".to_string(),
        C::Other(other) if other.to_string().contains("CaUsedAsEndEntity") => {
            "it is a CA certificate (basicConstraints CA:TRUE), which TLS refuses as a server's own certificate: use a leaf certificate (`torsion cert --name NAME --out DIR` makes one; with openssl, add `-addext basicConstraints=critical,CA:FALSE`)".to_string()
        }
        other => format!("{other:?}"),
    };
    format!("the server's certificate was refused: {why}")
}

/// TLS state a shard keeps for a `tls:` listener.
#[derive(Clone)]
pub(crate) struct ShardTls {
    pub(crate) acceptor: futures_rustls::TlsAcceptor,
    pub(crate) handshake_timeout: Duration,
}

/// A presented name as rustls reports it (`DnsName("example.test")`,
/// `IpAddress(127.0.0.1)`), without its wrapper: `example.test`.
fn bare_name(presented: &str) -> &str {
    presented
        .split_once('(')
        .and_then(|(_, inner)| inner.strip_suffix(')'))
        .map(|inner| inner.trim_matches('"'))
        .unwrap_or(presented)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presented_names_lose_their_wrapper() {
        assert_eq!(bare_name("DnsName(\"other.test\")"), "other.test");
        assert_eq!(bare_name("IpAddress(127.0.0.1)"), "127.0.0.1");
        assert_eq!(bare_name("plain"), "plain");
    }

    #[test]
    fn certificate_errors_become_sentences() {
        let ca_as_leaf = rustls::Error::InvalidCertificate(rustls::CertificateError::Other(
            rustls::OtherError(Arc::new(std::io::Error::other("CaUsedAsEndEntity"))),
        ));
        let wrapped = std::io::Error::new(std::io::ErrorKind::InvalidData, ca_as_leaf);
        let text = explain_handshake_error(&wrapped);
        assert!(
            text.contains("is a CA certificate") && text.contains("torsion cert"),
            "{text}"
        );
        let unknown = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert!(explain(&unknown).contains("--ca FILE"));
        let plain = std::io::Error::other("connection reset");
        assert_eq!(explain_handshake_error(&plain), "connection reset");
    }
}

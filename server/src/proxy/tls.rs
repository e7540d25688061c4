//! The proxy's TLS listener (`[proxy.tls]`), with optional or required client certificates.
//!
//! ```toml
//! [proxy.tls]
//! cert = "tls/server.pem"        # the certificate chain, PEM, leaf first
//! key = "tls/server.key"         # its private key, PEM (PKCS#8, PKCS#1 or SEC1)
//! client_ca = "tls/mesh-ca.pem"  # CAs whose client certificates are trusted, PEM
//! client_auth = "required"       # or "optional"; "required" when `client_ca` is given alone
//! handshake_timeout_ms = 10000
//! ```
//!
//! Client certificates are verified during the handshake by rustls' `WebPkiClientVerifier`
//! against `client_ca` (chain, validity period, the clientAuth key usage when a certificate
//! states its usages): a certificate from another CA, or an expired one, ends the handshake.
//! With `client_auth = "required"` a client without a certificate cannot connect either; with
//! `"optional"` it connects and must then present a credential in the request (or be anonymous).
//! The verified end-entity certificate is mapped once per connection by
//! [`CertificateMapper`]; the pipeline receives the result with every request of the connection.
//!
//! The listener speaks HTTP/1.1 only and says so with ALPN (`http/1.1`). Handshakes run in the
//! connection's own task under a timeout, so a slow client never holds up the accept loop.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::identity::mtls::{CertificateMapper, MtlsConfig, PeerCertificate};

/// `[proxy.tls]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// The server's certificate chain (PEM), leaf first; relative to the configuration file.
    pub cert: PathBuf,
    /// The server's private key (PEM); relative to the configuration file.
    pub key: PathBuf,
    /// The CAs whose client certificates are trusted (a PEM bundle); without it no client
    /// certificate is asked for.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// Whether a client certificate is required or optional; `required` by default when
    /// `client_ca` is given.
    #[serde(default)]
    pub client_auth: Option<ClientAuth>,
    /// Milliseconds a client has to complete the handshake.
    #[serde(default = "default_handshake_timeout")]
    pub handshake_timeout_ms: u64,
}

fn default_handshake_timeout() -> u64 {
    10_000
}

/// `proxy.tls.client_auth`
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// Clients may connect without a certificate; one they present must verify.
    Optional,
    /// Clients must present a certificate that verifies.
    Required,
}

impl TlsSettings {
    /// Resolves relative paths against the configuration file's directory.
    pub fn resolve(&mut self, base: &Path) {
        for path in [&mut self.cert, &mut self.key]
            .into_iter()
            .chain(self.client_ca.as_mut())
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    /// Checks what serde cannot, without reading files; errors name the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.client_auth.is_some() && self.client_ca.is_none() {
            return Err(
                "`proxy.tls.client_auth`: client certificates need `proxy.tls.client_ca`, the CAs \
                 that issue them"
                    .to_string(),
            );
        }
        if self.handshake_timeout_ms == 0 || self.handshake_timeout_ms > 300_000 {
            return Err(
                "`proxy.tls.handshake_timeout_ms`: must be between 1 and 300000".to_string(),
            );
        }
        Ok(())
    }
}

/// Accepts TLS connections and reads their client certificates.
pub struct TlsListener {
    acceptor: TlsAcceptor,
    mapper: CertificateMapper,
    handshake_timeout: Duration,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("mapper", &self.mapper)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl TlsListener {
    /// Reads the certificate, key and client CAs and builds the rustls configuration; errors
    /// name the key.
    pub fn from_config(settings: &TlsSettings, mtls: Option<&MtlsConfig>) -> Result<Self, String> {
        settings.validate()?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let chain = read_certificates(&settings.cert, "proxy.tls.cert")?;
        let key = PrivateKeyDer::from_pem_file(&settings.key).map_err(|error| {
            format!(
                "`proxy.tls.key`: cannot read a private key from `{}`: {}",
                settings.key.display(),
                pem_error(&error)
            )
        })?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| format!("`proxy.tls`: {error}"))?;
        let builder = match &settings.client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for certificate in read_certificates(path, "proxy.tls.client_ca")? {
                    roots.add(certificate).map_err(|error| {
                        format!(
                            "`proxy.tls.client_ca`: `{}` holds a certificate that is not a \
                             usable CA: {error}",
                            path.display()
                        )
                    })?;
                }
                let mut verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                if settings.client_auth == Some(ClientAuth::Optional) {
                    verifier = verifier.allow_unauthenticated();
                }
                let verifier = verifier
                    .build()
                    .map_err(|error| format!("`proxy.tls.client_ca`: {error}"))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(chain, key).map_err(|error| {
            format!(
                "`proxy.tls.key`: the key does not suit the certificate in `{}`: {error}",
                settings.cert.display()
            )
        })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsListener {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            mapper: CertificateMapper::new(mtls.cloned()),
            handshake_timeout: Duration::from_millis(settings.handshake_timeout_ms),
        })
    }

    /// Completes the handshake on an accepted connection and maps its verified client
    /// certificate, if any.
    pub async fn accept(
        &self,
        stream: TcpStream,
    ) -> std::io::Result<(TlsStream<TcpStream>, Option<Arc<PeerCertificate>>)> {
        let stream = match tokio::time::timeout(
            self.handshake_timeout,
            self.acceptor.accept(stream),
        )
        .await
        {
            Ok(result) => result?,
            Err(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "TLS handshake timed out",
                ))
            }
        };
        let certificate = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(<[CertificateDer<'static>]>::first)
            .map(|leaf| Arc::new(self.mapper.map(leaf.as_ref())));
        Ok((stream, certificate))
    }
}

/// Every certificate of a PEM file; at least one.
fn read_certificates(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|error| {
            format!(
                "`{key}`: cannot read certificates from `{}`: {}",
                path.display(),
                pem_error(&error)
            )
        })?;
    if certificates.is_empty() {
        return Err(format!(
            "`{key}`: `{}` holds no PEM certificate",
            path.display()
        ));
    }
    Ok(certificates)
}

/// A PEM error in words, without echoing file contents.
fn pem_error(error: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match error {
        Error::Io(error) => error.to_string(),
        Error::NoItemsFound => "no PEM item of the expected kind".to_string(),
        _ => "not valid PEM".to_string(),
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use std::path::Path;

    use crate::proxy::config::ProxyConfig;

    const BASE: &str =
        "[policies]\ndir = \"p\"\n[[upstream]]\nname = \"u\"\nurl = \"http://127.0.0.1:1\"\n";

    fn parse(extra: &str) -> Result<ProxyConfig, String> {
        ProxyConfig::parse(&format!("{BASE}{extra}"), Path::new("/etc/authz"))
    }

    #[test]
    fn paths_are_relative_to_the_file_and_client_auth_defaults_to_required() {
        let config = parse(
            "[proxy.tls]\ncert = \"s.pem\"\nkey = \"/keys/s.key\"\nclient_ca = \"ca.pem\"\n\
             [identity.mtls]\nprincipal_type = \"Service\"\n",
        )
        .unwrap();
        let tls = config.proxy.tls.unwrap();
        assert_eq!(tls.cert, Path::new("/etc/authz/s.pem"));
        assert_eq!(tls.key, Path::new("/keys/s.key"));
        assert_eq!(
            tls.client_ca.as_deref(),
            Some(Path::new("/etc/authz/ca.pem"))
        );
        assert_eq!(tls.client_auth, None);
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (
                "[proxy.tls]\ncert = \"s.pem\"\nkey = \"k\"\ncipher = \"x\"\n",
                "cipher",
            ),
            ("[proxy.tls]\ncert = \"s.pem\"\n", "key"),
            (
                "[proxy.tls]\ncert = \"s\"\nkey = \"k\"\nclient_auth = \"sometimes\"\n",
                "sometimes",
            ),
            (
                "[proxy.tls]\ncert = \"s\"\nkey = \"k\"\nclient_auth = \"required\"\n",
                "`proxy.tls.client_auth`",
            ),
            (
                "[proxy.tls]\ncert = \"s\"\nkey = \"k\"\nhandshake_timeout_ms = 0\n",
                "`proxy.tls.handshake_timeout_ms`",
            ),
            ("[identity.mtls]\nid_from = \"spiffe\"\n", "`identity.mtls`"),
            (
                "[proxy.tls]\ncert = \"s\"\nkey = \"k\"\n[identity.mtls]\n",
                "`proxy.tls.client_ca`",
            ),
            (
                "[proxy]\nmode = \"ext_authz\"\n[proxy.tls]\ncert = \"s\"\nkey = \"k\"\n\
                 client_ca = \"ca\"\n[identity.mtls]\n",
                "ext_authz",
            ),
            ("[identity.mtls]\nid_from = \"email\"\n", "email"),
        ];
        for (text, expected) in cases {
            let error = parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn missing_files_are_named() {
        let config = parse("[proxy.tls]\ncert = \"missing.pem\"\nkey = \"missing.key\"\n").unwrap();
        let error =
            super::TlsListener::from_config(config.proxy.tls.as_ref().unwrap(), None).unwrap_err();
        assert!(error.starts_with("`proxy.tls.cert`"), "{error}");
        assert!(error.contains("/etc/authz/missing.pem"), "{error}");
    }
}

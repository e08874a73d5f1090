//! The `tls` config block: which certificates the client trusts.
//!
//! `{"tls":{"roots":"webpki"|"system"|"both","ca_pem":"...","ca_file":"/path"}}`.
//! Without the block the client trusts the bundled web roots, as it always
//! did. Everything is read and parsed when the instance is created, so a bad
//! PEM or an unreadable file fails `create`, not the first request.

use std::fmt;

use serde::Deserialize;
use ureq::tls::{parse_pem, Certificate, PemItem, RootCerts, TlsConfig};

use crate::error::{ErrorKind, ProviderError};

/// The block as written in the JSON.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct TlsSettings {
    roots: Option<String>,
    ca_pem: Option<String>,
    ca_file: Option<String>,
}

/// Where the trusted roots come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootSource {
    /// The Mozilla roots bundled in the library.
    WebPki,
    /// The operating system's certificate store.
    System,
    Both,
}

/// The resolved trust: what the agent's TLS config is built from.
#[derive(Clone)]
pub struct Trust {
    pub source: RootSource,
    /// Certificates from `ca_pem` and `ca_file`.
    pub extra_cas: usize,
    roots: RootCerts,
}

impl Default for Trust {
    fn default() -> Trust {
        Trust {
            source: RootSource::WebPki,
            extra_cas: 0,
            roots: RootCerts::WebPki,
        }
    }
}

impl PartialEq for Trust {
    fn eq(&self, other: &Trust) -> bool {
        let same_roots = match (&self.roots, &other.roots) {
            (RootCerts::Specific(a), RootCerts::Specific(b)) => {
                a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x.der() == y.der())
            }
            (RootCerts::WebPki, RootCerts::WebPki) => true,
            _ => false,
        };
        self.source == other.source && self.extra_cas == other.extra_cas && same_roots
    }
}

impl fmt::Debug for Trust {
    // Not the certificates: hundreds of kilobytes of DER.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trust")
            .field("source", &self.source)
            .field("extra_cas", &self.extra_cas)
            .finish()
    }
}

impl Trust {
    pub(crate) fn from_settings(s: TlsSettings) -> Result<Trust, ProviderError> {
        let source = match s.roots.as_deref() {
            None | Some("webpki") => RootSource::WebPki,
            Some("system") => RootSource::System,
            Some("both") => RootSource::Both,
            Some(_) => {
                return Err(ProviderError::invalid_argument(
                    "config 'tls.roots' must be \"webpki\", \"system\" or \"both\"",
                ))
            }
        };
        let mut extra = Vec::new();
        if let Some(pem) = &s.ca_pem {
            extra.extend(certificates(pem.as_bytes(), "tls.ca_pem")?);
        }
        if let Some(path) = &s.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                ProviderError::invalid_argument(format!(
                    "config 'tls.ca_file' could not be read: {}",
                    e.kind()
                ))
            })?;
            extra.extend(certificates(&pem, "tls.ca_file")?);
        }
        if source == RootSource::WebPki && extra.is_empty() {
            return Ok(Trust::default());
        }
        let mut roots: Vec<Certificate<'static>> = Vec::new();
        if matches!(source, RootSource::WebPki | RootSource::Both) {
            roots.extend(
                webpki_root_certs::TLS_SERVER_ROOT_CERTS
                    .iter()
                    .map(|der| Certificate::from_der(der.as_ref())),
            );
        }
        if matches!(source, RootSource::System | RootSource::Both) {
            let system = system_roots();
            if system.is_empty() && extra.is_empty() {
                return Err(ProviderError::invalid_argument(
                    "config 'tls.roots' asks for the system's certificates, but none were found \
                     (set SSL_CERT_FILE or SSL_CERT_DIR, or give 'tls.ca_file')",
                ));
            }
            roots.extend(system);
        }
        let extra_cas = extra.len();
        roots.extend(extra);
        Ok(Trust {
            source,
            extra_cas,
            roots: RootCerts::Specific(std::sync::Arc::new(roots)),
        })
    }

    pub fn tls_config(&self) -> TlsConfig {
        TlsConfig::builder().root_certs(self.roots.clone()).build()
    }
}

/// The certificates of a PEM text; an error when it holds none or is broken.
fn certificates(pem: &[u8], field: &str) -> Result<Vec<Certificate<'static>>, ProviderError> {
    let mut found = Vec::new();
    for item in parse_pem(pem) {
        match item {
            Ok(PemItem::Certificate(cert)) => found.push(cert),
            Ok(_) => {}
            Err(_) => {
                return Err(ProviderError::invalid_argument(format!(
                    "config '{field}' is not valid PEM"
                )))
            }
        }
    }
    if found.is_empty() {
        return Err(ProviderError::invalid_argument(format!(
            "config '{field}' holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        )));
    }
    Ok(found)
}

/// The system store as rustls-native-certs finds it (SSL_CERT_FILE and
/// SSL_CERT_DIR, else the distribution's bundle). Unreadable entries are
/// skipped, as a browser would.
fn system_roots() -> Vec<Certificate<'static>> {
    rustls_native_certs::load_native_certs()
        .certs
        .into_iter()
        .map(|der| Certificate::from_der(der.as_ref()).to_owned())
        .collect()
}

/// Names a TLS failure inside an I/O error (where ureq's rustls transport
/// puts it): an untrusted certificate, one for another host, or a failed
/// handshake. None when the error is not about TLS. Never retryable: the
/// next attempt would meet the same certificate.
pub fn failure(e: &std::io::Error) -> Option<ProviderError> {
    let tls = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(describe(tls))
}

pub fn describe(e: &rustls::Error) -> ProviderError {
    use rustls::CertificateError as Cert;
    use rustls::Error as Tls;
    let refused = |message: String| ProviderError::new(ErrorKind::Transport, message);
    match e {
        Tls::InvalidCertificate(Cert::UnknownIssuer | Cert::BadSignature) => refused(
            "the server's TLS certificate is not trusted: its issuer is not among the trusted \
             roots (add the CA with 'tls.ca_pem' or 'tls.ca_file', or choose 'tls.roots')"
                .to_string(),
        )
        .with_code("tls_untrusted_certificate"),
        Tls::InvalidCertificate(Cert::NotValidForNameContext {
            expected,
            presented,
        }) => refused(format!(
            "the server's TLS certificate is not valid for host \"{}\": it names {}",
            expected.to_str(),
            presented.join(", ")
        ))
        .with_code("tls_wrong_host"),
        Tls::InvalidCertificate(Cert::NotValidForName) => refused(
            "the server's TLS certificate is not valid for the host name in 'base_url'".to_string(),
        )
        .with_code("tls_wrong_host"),
        Tls::InvalidCertificate(other) => {
            refused(format!("the server's TLS certificate was refused: {other}"))
                .with_code("tls_invalid_certificate")
        }
        other => {
            refused(format!("the TLS handshake failed: {other}")).with_code("tls_handshake_failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: &str) -> TlsSettings {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn no_block_keeps_the_bundled_roots() {
        let trust = Trust::from_settings(settings("{}")).unwrap();
        assert_eq!(trust, Trust::default());
        assert!(matches!(trust.roots, RootCerts::WebPki));
    }

    #[test]
    fn bad_values_are_refused_without_echo() {
        let err = Trust::from_settings(settings(r#"{"roots":"sk-secret"}"#)).unwrap_err();
        assert!(err.message.contains("tls.roots"), "{}", err.message);
        assert!(!err.message.contains("sk-secret"));
        let err = Trust::from_settings(settings(r#"{"ca_pem":"sk-secret"}"#)).unwrap_err();
        assert!(
            err.message.contains("no PEM certificate"),
            "{}",
            err.message
        );
        assert!(!err.message.contains("sk-secret"));
        let err =
            Trust::from_settings(settings(r#"{"ca_file":"/nonexistent/ca.pem"}"#)).unwrap_err();
        assert!(err.message.contains("tls.ca_file"), "{}", err.message);
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<TlsSettings>(r#"{"ca":"x"}"#).is_err());
    }

    #[test]
    fn webpki_plus_a_ca_lists_both() {
        // Only the PEM framing is read here (rustls parses the DER when it
        // connects); the end-to-end tests use a generated certificate.
        let trust = Trust::from_settings(settings(&format!(
            r#"{{"ca_pem":{}}}"#,
            serde_json::to_string(TEST_CA).unwrap()
        )))
        .unwrap();
        assert_eq!(trust.extra_cas, 1);
        let RootCerts::Specific(roots) = &trust.roots else {
            panic!("expected a specific list")
        };
        assert_eq!(
            roots.len(),
            webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() + 1
        );
    }

    const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBdzCCAR2gAwIBAgIUbq8JVqE0GJ0Ykh6o2Z0H3Y7V7mAwCgYIKoZIzj0EAwIw
EjEQMA4GA1UEAwwHdGVzdC1jYTAeFw0yNjAxMDEwMDAwMDBaFw0zNjAxMDEwMDAw
MDBaMBIxEDAOBgNVBAMMB3Rlc3QtY2EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC
AAQ3h4Rz7Wc3mS1p5m3y0o9bC4p2n2qk6mJ2w2Hq1m0c3oQpV9p1wq2e9c6k2gq7
t8m3V6y2k3h7n2c3p4v5q6r7o1MwUTAdBgNVHQ4EFgQU5m3nKZ8c2m3c2e1wq9Vn
k0m2x0IwHwYDVR0jBBgwFoAU5m3nKZ8c2m3c2e1wq9Vnk0m2x0IwDwYDVR0TAQH/
BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEA0nY8w3l6q4m2k1b8c9d0e1f2a3b4
c5d6e7f8a9b0c1d2AiB3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6
-----END CERTIFICATE-----
";
}

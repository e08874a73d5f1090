//! HTTPS for the simulator: a certificate authority made up on the spot and
//! a server certificate it signed, so tests can prove the plugin's TLS with
//! a CA they hand it (and without it, or for the wrong name, that it fails).

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// A fresh CA and one server certificate it signed.
#[derive(Clone)]
pub struct TestCa {
    ca_pem: String,
    names: Vec<String>,
    pub(crate) server: Arc<ServerConfig>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl TestCa {
    /// A CA and a server certificate for `names`: host names (`localhost`)
    /// or IP addresses (`127.0.0.1`, written into the certificate as IP
    /// subject alternative names).
    pub fn new(names: &[&str]) -> TestCa {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "moonshot-simulator test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().expect("CA key");
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA certificate");

        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut leaf_params = CertificateParams::new(names.clone()).expect("server params");
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "moonshot-simulator");
        let leaf_key = KeyPair::generate().expect("server key");
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca)
            .expect("server certificate");

        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)
            .expect("server TLS config");
        TestCa {
            ca_pem: ca.pem(),
            names,
            server: Arc::new(server),
        }
    }

    /// The CA certificate, PEM: what a client must trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }
}

/// One accepted connection, plain or TLS, readable and writable through a
/// shared reference (as `&TcpStream` is), so the request reader and the
/// `100 Continue` writer can use it in turn.
pub(crate) enum Conn {
    Plain(TcpStream),
    Tls(Box<RefCell<StreamOwned<ServerConnection, TcpStream>>>),
}

impl Conn {
    pub(crate) fn tls(stream: TcpStream, config: &Arc<ServerConfig>) -> io::Result<Conn> {
        let conn = ServerConnection::new(config.clone()).map_err(io::Error::other)?;
        Ok(Conn::Tls(Box::new(RefCell::new(StreamOwned::new(
            conn, stream,
        )))))
    }

    /// Ends the TLS session properly (close_notify), so a client reading a
    /// close-delimited body sees its end rather than a truncation attack.
    pub(crate) fn finish(&self) {
        if let Conn::Tls(tls) = self {
            let mut tls = tls.borrow_mut();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    }
}

impl Read for &Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => (&*s).read(buf),
            Conn::Tls(t) => t.borrow_mut().read(buf),
        }
    }
}

impl Write for &Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => (&*s).write(buf),
            Conn::Tls(t) => t.borrow_mut().write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => (&*s).flush(),
            Conn::Tls(t) => t.borrow_mut().flush(),
        }
    }
}

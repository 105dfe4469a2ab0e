//! TLS: the deployment's name-constrained CA ([`ca`]), host certificates minted from it
//! and cached ([`leaf`]), and the rustls configurations for both sides of the proxy.

pub mod ca;
pub mod leaf;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

pub use ca::{CaFiles, CertificateAuthority};
pub use leaf::LeafCache;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "{0} already holds a CA; pass --force to replace it (agents must then trust the new ca.pem)"
    )]
    CaExists(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Bad { path: PathBuf, message: String },
    #[error("{path} has mode {mode:o}; the CA key must be readable by its owner only (chmod 600)")]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error("certificate generation failed: {0}")]
    Mint(rcgen::Error),
    #[error("TLS: {0}")]
    Rustls(rustls::Error),
}

impl TlsError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        TlsError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn bad(path: &Path, message: impl std::fmt::Display) -> Self {
        TlsError::Bad {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }
}

/// The one crypto provider (aws-lc-rs) used on both sides, chosen explicitly so that no
/// other crate's feature flags can change it.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Every certificate in a PEM file; a file with none is an error.
pub fn load_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::bad(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::bad(path, e))?;
    if certs.is_empty() {
        return Err(TlsError::bad(path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

/// The agent-facing TLS configuration: certificates from `leaves`, HTTP/2 and HTTP/1.1
/// by ALPN, session tickets for cheap resumption.
pub fn server_config(leaves: Arc<LeafCache>) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = crypto_provider();
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Rustls)?
        .with_no_client_auth()
        .with_cert_resolver(leaves);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new().map_err(TlsError::Rustls)?;
    Ok(Arc::new(config))
}

/// The upstream-facing TLS configuration: the web PKI roots plus `extra` (from
/// `upstream.ca_file`). ALPN (h2, http/1.1) is set by the HTTPS connector.
pub fn client_config(extra: &[CertificateDer<'static>]) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for cert in extra {
        roots.add(cert.clone()).map_err(TlsError::Rustls)?;
    }
    Ok(ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Rustls)?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests;

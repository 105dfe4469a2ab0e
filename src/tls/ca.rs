//! The deployment's root CA: created once by `airlock init`, loaded by `serve`.
//!
//! The CA carries X.509 NameConstraints: it may vouch only for the intercepted DNS
//! suffixes, and for no IP address at all. Even a stolen `ca.key` cannot impersonate a
//! bank or a code host to anyone who trusts `ca.pem`, because every standard verifier
//! (OpenSSL, webpki, browsers) enforces the constraints.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints, PKCS_ECDSA_P256_SHA256, SerialNumber,
};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::PrivateKeyDer;
use time::OffsetDateTime;

use super::{TlsError, crypto_provider};
use crate::hosts::HostSuffix;

pub const CA_CERT_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca.key";
/// A root per deployment; rotate it by re-running `airlock init --force`.
const CA_VALIDITY: Duration = Duration::from_secs(5 * 365 * 24 * 3600);
/// Certificates are back-dated a little so a client whose clock runs slow accepts them.
const BACKDATE: Duration = Duration::from_secs(3600);

/// A loaded CA, able to mint host certificates.
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    permitted: Vec<String>,
    provider: Arc<CryptoProvider>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The signing key is never printed.
        f.debug_struct("CertificateAuthority")
            .field("permitted", &self.permitted)
            .finish()
    }
}

/// Where `init` wrote the CA.
#[derive(Debug, Clone)]
pub struct CaFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CaFiles {
    pub fn in_dir(dir: &Path) -> Self {
        CaFiles {
            cert: dir.join(CA_CERT_FILE),
            key: dir.join(CA_KEY_FILE),
        }
    }
}

impl CertificateAuthority {
    /// Generate a fresh P-256 CA for `permitted` and write it to `dir` (`ca.key` mode
    /// 0600). Refuses to replace an existing CA unless `force`.
    pub fn create(dir: &Path, permitted: &[HostSuffix], force: bool) -> Result<CaFiles, TlsError> {
        let files = CaFiles::in_dir(dir);
        if !force && (files.cert.exists() || files.key.exists()) {
            return Err(TlsError::CaExists(dir.to_path_buf()));
        }
        let (cert_pem, key_pem) = generate(permitted)?;
        fs::create_dir_all(dir).map_err(|e| TlsError::io(dir, e))?;
        // Key first, through a 0600 temporary file renamed into place: the key is never
        // readable by others, not even for an instant, and a crash leaves no half file.
        write_atomically(&files.key, key_pem.as_bytes(), 0o600)?;
        write_atomically(&files.cert, cert_pem.as_bytes(), 0o644)?;
        Ok(files)
    }

    /// Load the CA from `dir`. Fails closed if the key is readable by group or others.
    pub fn load(dir: &Path) -> Result<Self, TlsError> {
        let files = CaFiles::in_dir(dir);
        let meta = fs::metadata(&files.key).map_err(|e| TlsError::io(&files.key, e))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(TlsError::KeyPermissions {
                path: files.key,
                mode,
            });
        }
        let key_pem = fs::read_to_string(&files.key).map_err(|e| TlsError::io(&files.key, e))?;
        let cert_pem = fs::read_to_string(&files.cert).map_err(|e| TlsError::io(&files.cert, e))?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| TlsError::bad(&files.key, e))?;
        if key.algorithm() != &PKCS_ECDSA_P256_SHA256 {
            return Err(TlsError::bad(&files.key, "not an ECDSA P-256 key"));
        }
        let permitted = inspect_ca(&cert_pem, key.public_key_raw())
            .map_err(|e| TlsError::bad(&files.cert, e))?;
        let issuer =
            Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| TlsError::bad(&files.cert, e))?;
        Ok(CertificateAuthority {
            issuer,
            permitted,
            provider: crypto_provider(),
        })
    }

    /// The DNS suffixes the CA's NameConstraints permit.
    pub fn permitted(&self) -> &[String] {
        &self.permitted
    }

    /// Mint a certificate and fresh P-256 key for exactly `host`, valid for `validity`.
    pub fn mint(&self, host: &str, validity: Duration) -> Result<CertifiedKey, TlsError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(TlsError::Mint)?;
        let mut params = CertificateParams::new(vec![host.to_string()]).map_err(TlsError::Mint)?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, host);
        let now = OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = now + validity;
        params.serial_number = Some(self.serial());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(TlsError::Mint)?;
        let der = PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let signer = self
            .provider
            .key_provider
            .load_private_key(der)
            .map_err(TlsError::Rustls)?;
        Ok(CertifiedKey::new(vec![cert.der().clone()], signer))
    }

    fn serial(&self) -> SerialNumber {
        let mut bytes = [0u8; 16];
        // A failing system RNG leaves zeros; serials need only be unique per CA, and the
        // subject key is fresh anyway, so this degrades nothing that matters.
        let _ = self.provider.secure_random.fill(&mut bytes);
        bytes[0] &= 0x7f; // positive INTEGER
        bytes[0] |= 0x01; // and never a leading zero byte
        SerialNumber::from_slice(&bytes)
    }
}

/// A fresh CA certificate and key, both PEM.
fn generate(permitted: &[HostSuffix]) -> Result<(String, String), TlsError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(TlsError::Mint)?;
    let mut params = CertificateParams::default();
    let mut id = [0u8; 4];
    let _ = crypto_provider().secure_random.fill(&mut id);
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Airlock");
    dn.push(
        DnType::CommonName,
        format!(
            "Airlock intercepting CA {:02x}{:02x}{:02x}{:02x}",
            id[0], id[1], id[2], id[3]
        ),
    );
    params.distinguished_name = dn;
    // Path length 0: it signs host certificates only, never another CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: permitted
            .iter()
            .map(|s| GeneralSubtree::DnsName(s.as_str().to_string()))
            .collect(),
        // No permitted IP subtree alone would leave IP SANs unconstrained: exclude them all.
        excluded_subtrees: vec![
            GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix([0; 4], 0)),
            GeneralSubtree::IpAddress(CidrSubnet::from_v6_prefix([0; 16], 0)),
        ],
    });
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + CA_VALIDITY;
    let cert = params.self_signed(&key).map_err(TlsError::Mint)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Check that `cert_pem` is a CA whose public key is `public_key`, and return the DNS
/// suffixes its NameConstraints permit (a CA without them is refused).
fn inspect_ca(cert_pem: &str, public_key: &[u8]) -> Result<Vec<String>, String> {
    use x509_parser::extensions::GeneralName;
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .map_err(|e| format!("not a PEM certificate: {e}"))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    if cert.public_key().subject_public_key.data.as_ref() != public_key {
        return Err("the certificate does not belong to ca.key".into());
    }
    if !cert.is_ca() {
        return Err("not a CA certificate".into());
    }
    let constraints = cert
        .name_constraints()
        .map_err(|e| format!("unreadable NameConstraints: {e}"))?
        .and_then(|ext| ext.value.permitted_subtrees.clone())
        .ok_or("the CA has no NameConstraints; re-create it with `airlock init --force`")?;
    Ok(constraints
        .iter()
        .filter_map(|s| match &s.base {
            GeneralName::DNSName(name) => Some(name.to_ascii_lowercase()),
            _ => None,
        })
        .collect())
}

fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let write = || -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| TlsError::io(path, e))
}

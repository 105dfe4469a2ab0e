//! The CA's name constraints hold outside our own code: OpenSSL accepts a leaf Airlock
//! minted for an AWS host and rejects leaves the same CA key signs for anything else.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use rcgen::{CertificateParams, Issuer, KeyPair, SanType};
use support::{Airlock, TestPki};

/// `openssl verify`: (success, combined output).
fn openssl_verify(ca: &Path, leaf: &Path, hostname: &str) -> (bool, String) {
    let out = Command::new("openssl")
        .args([
            "verify",
            "-purpose",
            "sslserver",
            "-verify_hostname",
            hostname,
            "-CAfile",
        ])
        .arg(ca)
        .arg(leaf)
        .output()
        .expect("run openssl verify");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A leaf for `san` signed with the deployment's own CA key, as an attacker holding
/// ca.key would make it.
fn forge_leaf(airlock: &Airlock, san: SanType) -> String {
    let dir = airlock.dir.path().join("certs");
    let ca_key = KeyPair::from_pem(&std::fs::read_to_string(dir.join("ca.key")).unwrap()).unwrap();
    let issuer = Issuer::from_ca_cert_pem(&airlock.ca_pem(), ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.subject_alt_names = vec![san];
    params.signed_by(&key, &issuer).unwrap().pem()
}

#[tokio::test(flavor = "multi_thread")]
async fn openssl_accepts_minted_aws_leaves_and_rejects_anything_else_from_the_same_ca() {
    let pki = TestPki::new();
    let airlock = Airlock::start(&pki, "");

    // The leaf Airlock serves for sts.amazonaws.com, captured by OpenSSL's own client
    // through the proxy.
    let out = Command::new("openssl")
        .args(["s_client", "-proxy", &airlock.proxy.to_string()])
        .args([
            "-connect",
            "sts.amazonaws.com:443",
            "-servername",
            "sts.amazonaws.com",
            "-showcerts",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run openssl s_client");
    let shown = String::from_utf8_lossy(&out.stdout);
    let begin = shown
        .find("-----BEGIN CERTIFICATE-----")
        .expect("a certificate in s_client output");
    let end = shown[begin..].find("-----END CERTIFICATE-----").unwrap() + begin + 25;
    let leaf = airlock.dir.path().join("sts.pem");
    std::fs::write(&leaf, &shown[begin..end]).unwrap();

    let (ok, text) = openssl_verify(&airlock.ca_pem_path(), &leaf, "sts.amazonaws.com");
    assert!(
        ok,
        "OpenSSL rejected Airlock's leaf for sts.amazonaws.com: {text}"
    );

    let forged = airlock.dir.path().join("example.pem");
    std::fs::write(
        &forged,
        forge_leaf(
            &airlock,
            SanType::DnsName("example.com".try_into().unwrap()),
        ),
    )
    .unwrap();
    let (ok, text) = openssl_verify(&airlock.ca_pem_path(), &forged, "example.com");
    assert!(
        !ok,
        "OpenSSL accepted a leaf for example.com from Airlock's CA"
    );
    assert!(text.contains("subtree violation"), "{text}");

    let ip = airlock.dir.path().join("ip.pem");
    std::fs::write(
        &ip,
        forge_leaf(
            &airlock,
            SanType::IpAddress("52.94.236.248".parse().unwrap()),
        ),
    )
    .unwrap();
    let out = Command::new("openssl")
        .args(["verify", "-purpose", "sslserver", "-CAfile"])
        .arg(airlock.ca_pem_path())
        .arg(&ip)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "OpenSSL accepted an IP-address leaf from Airlock's CA"
    );
}

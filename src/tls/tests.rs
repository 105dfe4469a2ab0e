use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use super::*;
use crate::hosts::HostSuffix;

fn suffixes() -> Vec<HostSuffix> {
    ["amazonaws.com", "googleapis.com"]
        .iter()
        .map(|s| HostSuffix::parse(s).unwrap())
        .collect()
}

#[test]
fn create_writes_a_0600_key_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let files = CertificateAuthority::create(dir.path(), &suffixes(), false).unwrap();
    let mode = std::fs::metadata(&files.key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let before = std::fs::read(&files.cert).unwrap();
    assert!(matches!(
        CertificateAuthority::create(dir.path(), &suffixes(), false),
        Err(TlsError::CaExists(_))
    ));
    assert_eq!(
        std::fs::read(&files.cert).unwrap(),
        before,
        "a refused init changed the CA"
    );
    CertificateAuthority::create(dir.path(), &suffixes(), true).unwrap();
    assert_ne!(
        std::fs::read(&files.cert).unwrap(),
        before,
        "--force did not replace the CA"
    );
}

#[test]
fn load_reads_back_the_name_constraints() {
    let dir = tempfile::tempdir().unwrap();
    CertificateAuthority::create(dir.path(), &suffixes(), false).unwrap();
    let ca = CertificateAuthority::load(dir.path()).unwrap();
    assert_eq!(ca.permitted(), ["amazonaws.com", "googleapis.com"]);
}

#[test]
fn load_refuses_a_key_readable_by_others() {
    let dir = tempfile::tempdir().unwrap();
    let files = CertificateAuthority::create(dir.path(), &suffixes(), false).unwrap();
    std::fs::set_permissions(&files.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(
        CertificateAuthority::load(dir.path()),
        Err(TlsError::KeyPermissions { mode: 0o644, .. })
    ));
}

#[test]
fn load_refuses_a_key_that_does_not_match_the_certificate() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    CertificateAuthority::create(one.path(), &suffixes(), false).unwrap();
    let other = CertificateAuthority::create(two.path(), &suffixes(), false).unwrap();
    std::fs::copy(&other.key, one.path().join(ca::CA_KEY_FILE)).unwrap();
    let err = CertificateAuthority::load(one.path()).unwrap_err();
    assert!(err.to_string().contains("does not belong"), "{err}");
}

fn cache(
    dir: &std::path::Path,
    capacity: usize,
) -> (LeafCache, prometheus::IntCounter, prometheus::IntCounter) {
    CertificateAuthority::create(dir, &suffixes(), false).unwrap();
    let hits = prometheus::IntCounter::new("h", "h").unwrap();
    let misses = prometheus::IntCounter::new("m", "m").unwrap();
    let ca = CertificateAuthority::load(dir).unwrap();
    (
        LeafCache::new(
            ca,
            Duration::from_secs(3600),
            capacity,
            hits.clone(),
            misses.clone(),
        ),
        hits,
        misses,
    )
}

#[test]
fn leaves_are_cached_per_host() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, hits, misses) = cache(dir.path(), 10);
    let a = cache.get("sts.amazonaws.com").unwrap();
    let b = cache.get("sts.amazonaws.com").unwrap();
    let c = cache.get("iam.amazonaws.com").unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    assert!(!std::sync::Arc::ptr_eq(&a, &c));
    assert_eq!((hits.get(), misses.get()), (1, 2));
}

#[test]
fn the_cache_never_exceeds_its_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, _, _) = cache(dir.path(), 3);
    for i in 0..10 {
        cache.get(&format!("b{i}.s3.amazonaws.com")).unwrap();
        assert!(cache.len() <= 3);
    }
}

#[test]
fn a_minted_leaf_names_exactly_its_host() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, _, _) = cache(dir.path(), 10);
    let leaf = cache.get("sts.amazonaws.com").unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.cert[0].as_ref()).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    let names: Vec<String> = san
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(names, ["DNSName(sts.amazonaws.com)"]);
    let lifetime = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
    assert_eq!(
        lifetime,
        2 * 3600,
        "one hour back-dated plus one hour of validity"
    );
}

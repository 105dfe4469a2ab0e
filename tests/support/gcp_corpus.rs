//! The Google corpus: one request per discovery method of every document that
//! google-api-python-client ships, serialized by the client itself with a google-auth
//! token and captured offline (tests/gcp/make_corpus.py), plus host, media, batch and
//! hand-written gcloud forms.

use std::path::PathBuf;
use std::process::Command;

use super::python;

/// The client version the corpus is made with (pinned in tests/requirements.txt).
pub const CLIENT_VERSION: &str = "2.202.0";
/// The access token every corpus request carries.
pub const TOKEN: &str = "ya29.airlock-corpus-access-token";

/// FNV-1a of the generator script: a changed script makes a new corpus file.
fn script_digest(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The corpus file, generated once per client version and generator script (and shared
/// by parallel tests) under `target/`.
pub fn corpus() -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("tests/gcp/make_corpus.py");
    let digest = script_digest(&std::fs::read(&script).expect("read make_corpus.py"));
    let out = root.join(format!(
        "target/gcp-corpus-google-api-python-client-{CLIENT_VERSION}-{digest:016x}.jsonl"
    ));
    if !out.exists() {
        let tmp = out.with_extension(format!("tmp{}", std::process::id()));
        let output = Command::new(python())
            .arg(&script)
            .arg(&tmp)
            .output()
            .expect("run tests/gcp/make_corpus.py");
        assert!(
            output.status.success(),
            "make_corpus.py failed (tests/run.sh installs google-api-python-client): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::rename(&tmp, &out).expect("rename corpus");
        // Corpora of older scripts or client versions are stale: drop them.
        let name = out.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        for entry in std::fs::read_dir(root.join("target"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let other = entry.file_name().to_string_lossy().into_owned();
            if other.starts_with("gcp-corpus-") && other.ends_with(".jsonl") && other != name {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    out
}

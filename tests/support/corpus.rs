//! The botocore corpus: one request per AWS operation, serialized and signed by botocore
//! itself (tests/aws/make_corpus.py) with the documented example key at a fixed time, then
//! variants (accelerate hosts, gzip bodies, wire twins) labelled in `expect.variant`.

use std::path::PathBuf;
use std::process::Command;

use super::python;

/// The example credentials botocore signed the corpus with.
pub const ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// The corpus's signing time, 2026-01-01T00:00:00Z, as Unix seconds.
pub const SIGNED_AT: u64 = 1_767_225_600;

/// The generator; its hash names the corpus file, so a changed script makes a new corpus.
const GENERATOR: &[u8] = include_bytes!("../aws/make_corpus.py");

/// The corpus file, generated once per botocore version and generator script (and shared
/// by parallel tests).
pub fn corpus() -> PathBuf {
    use sha2::{Digest, Sha256};
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let script = hex::encode(&Sha256::digest(GENERATOR)[..6]);
    let out = root.join(format!("target/aws-corpus-botocore-1.44.5-{script}.jsonl"));
    if !out.exists() {
        let tmp = out.with_extension(format!("tmp{}", std::process::id()));
        let status = Command::new(python())
            .arg(root.join("tests/aws/make_corpus.py"))
            .arg(&tmp)
            .args(["--presigned", "4"])
            .status()
            .expect("run make_corpus.py");
        assert!(status.success(), "make_corpus.py failed");
        std::fs::rename(&tmp, &out).expect("rename corpus");
    }
    out
}

use std::path::Path;
use std::time::Duration;

use super::note::{NoteSigner, NoteVerifier};
use super::verify::verify;
use super::*;

const ORIGIN: &str = "test/audit";

fn signer() -> NoteSigner {
    NoteSigner::new(ORIGIN, &[9u8; 32])
}

fn verifier() -> NoteVerifier {
    NoteVerifier::parse(&signer().verifier_key()).unwrap()
}

fn entry(i: u32) -> Entry {
    Entry {
        event: Some(Event::Allowed),
        request_id: format!("req-{i}"),
        agent: Some("ci".into()),
        operation: Some("GetObject".into()),
        ..Default::default()
    }
}

/// A log of `n` records with a checkpoint every `every`, written through the writer.
async fn write_log(path: &Path, n: u32, every: u64) {
    let log = AuditLog::open(
        AuditSettings {
            file: path.to_path_buf(),
            origin: ORIGIN.into(),
            checkpoint_every: every,
            checkpoint_interval: Duration::from_secs(3600),
        },
        signer(),
    )
    .unwrap();
    for i in 0..n {
        log.append_durable(entry(i)).await.unwrap();
    }
    drop(log);
    // The writer writes a final checkpoint when its last handle is dropped.
    tokio::time::sleep(Duration::from_millis(200)).await;
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(
        path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

#[tokio::test]
async fn a_written_log_verifies_and_every_kind_of_tampering_names_its_first_bad_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_log(&path, 10, 4).await;
    let report = verify(&path, &verifier(), Some(ORIGIN)).unwrap();
    assert_eq!((report.records, report.unsigned_tail), (10, 0));
    assert!(report.checkpoints >= 3, "{report:?}");
    let original = lines(&path);
    let record: Record = serde_json::from_str(&original[0]).unwrap();
    assert_eq!((record.seq, record.prev.as_str()), (1, GENESIS));

    let check = |lines: &[String]| {
        write_lines(&path, lines);
        verify(&path, &verifier(), Some(ORIGIN))
            .map(|_| ())
            .unwrap_err()
    };
    // Edited (a value changed in record 5).
    let mut edited = original.clone();
    edited[4] = edited[4].replace("req-4", "req-X");
    let failure = check(&edited);
    assert_eq!(failure.record, 5, "{failure}");
    assert!(failure.message.contains("changed"), "{failure}");
    // Deleted (record 6 removed).
    let mut deleted = original.clone();
    deleted.remove(5);
    let failure = check(&deleted);
    assert_eq!(failure.record, 6, "{failure}");
    assert!(failure.message.contains("missing"), "{failure}");
    // Reordered (records 7 and 8 swapped).
    let mut reordered = original.clone();
    reordered.swap(6, 7);
    let failure = check(&reordered);
    assert_eq!(failure.record, 7, "{failure}");
    assert!(failure.message.contains("reordered"), "{failure}");
    // Truncated (the last two records cut, though a checkpoint covers them).
    let failure = check(&original[..8]);
    assert_eq!(failure.record, 9, "{failure}");
    assert!(failure.message.contains("truncated"), "{failure}");
    // The newest record edited: only its checkpoint can tell.
    let mut last = original.clone();
    last[9] = last[9].replace("req-9", "req-Y");
    let failure = check(&last);
    assert_eq!(failure.record, 10, "{failure}");
    // Cut mid-record.
    write_lines(&path, &original);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    assert_eq!(verify(&path, &verifier(), None).unwrap_err().record, 10);
    // A checkpoint signed by another key.
    write_lines(&path, &original);
    let other = NoteVerifier::parse(&NoteSigner::new(ORIGIN, &[1u8; 32]).verifier_key()).unwrap();
    assert!(
        verify(&path, &other, None)
            .unwrap_err()
            .message
            .contains("not signed")
    );
    // Untouched again: verifies.
    assert!(verify(&path, &verifier(), Some(ORIGIN)).is_ok());
}

#[tokio::test]
async fn a_reopened_log_continues_its_chain_and_cuts_an_unacknowledged_partial_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_log(&path, 3, 100).await;
    // A crash mid-write leaves a partial line (never acknowledged).
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(br#"{"seq":4,"ti"#);
    std::fs::write(&path, bytes).unwrap();
    write_log(&path, 2, 100).await;
    let report = verify(&path, &verifier(), Some(ORIGIN)).unwrap();
    assert_eq!(report.records, 5);
    // A broken chain is not papered over: the log refuses to open.
    let mut broken = lines(&path);
    broken.remove(1);
    write_lines(&path, &broken);
    let error = AuditLog::open(
        AuditSettings {
            file: path.clone(),
            origin: ORIGIN.into(),
            checkpoint_every: 10,
            checkpoint_interval: Duration::from_secs(60),
        },
        signer(),
    )
    .err()
    .expect("a broken log must not be appended to");
    assert!(
        error.to_string().contains("chain breaks at record 2"),
        "{error}"
    );
}

#[tokio::test]
async fn concurrent_appends_are_group_committed_in_one_unbroken_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = std::sync::Arc::new(
        AuditLog::open(
            AuditSettings {
                file: path.clone(),
                origin: ORIGIN.into(),
                checkpoint_every: 1000,
                checkpoint_interval: Duration::from_secs(3600),
            },
            signer(),
        )
        .unwrap(),
    );
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let log = std::sync::Arc::clone(&log);
            tokio::spawn(async move { log.append_durable(entry(i)).await.unwrap() })
        })
        .collect();
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=200).collect::<Vec<u64>>());
    drop(log);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(verify(&path, &verifier(), None).unwrap().records, 200);
}

//! `airlock audit verify`: check a log and its checkpoints offline, with the verifier key
//! alone, and name the first bad position.
//!
//! - The chain: record *n* has `seq` = *n* and `prev` = SHA-256 of line *n−1*. An edited
//!   record breaks the next record's link; a deleted one leaves a gap in `seq`; a moved
//!   one puts `seq` out of order.
//! - The checkpoints: each is signed by the audit key and names a record count and the
//!   hash of that record; the log must still have that record, unchanged. This is what
//!   catches an edit of the newest records and a truncated log.

use std::path::Path;

use super::note::NoteVerifier;
use super::{GENESIS, Record, checkpoints_path, hex_to_b64, line_hash};

/// A log that checks out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub records: u64,
    pub checkpoints: usize,
    /// Records after the newest checkpoint (protected by the chain only).
    pub unsigned_tail: u64,
}

/// The first problem found: the 1-based record (line) where the log stops being trustworthy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {record}: {message}")]
pub struct Failure {
    pub record: u64,
    pub message: String,
}

pub fn verify(
    log: &Path,
    verifier: &NoteVerifier,
    origin: Option<&str>,
) -> Result<Verified, Failure> {
    let fail = |record: u64, message: String| Failure { record, message };
    let bytes =
        std::fs::read(log).map_err(|e| fail(0, format!("cannot read {}: {e}", log.display())))?;
    // Every complete line, parsed, before judging order (a moved record is told from a
    // deleted one by whether it turns up later).
    let mut parsed: Vec<(&[u8], Record)> = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let n = parsed.len() as u64 + 1;
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return Err(fail(
                n,
                "the last record is incomplete (the log was cut mid-record)".into(),
            ));
        };
        let line = &rest[..end];
        rest = &rest[end + 1..];
        let record: Record = serde_json::from_slice(line)
            .map_err(|e| fail(n, format!("not an audit record ({e})")))?;
        parsed.push((line, record));
    }
    let mut hashes = Vec::with_capacity(parsed.len());
    let mut head = GENESIS.to_string();
    for (i, (line, record)) in parsed.iter().enumerate() {
        let n = i as u64 + 1;
        if record.seq != n {
            let later = parsed[i..].iter().any(|(_, r)| r.seq == n);
            return Err(fail(
                n,
                if later || record.seq < n {
                    format!(
                        "found record {} here: records were reordered or duplicated",
                        record.seq
                    )
                } else {
                    format!("records {n}..{} are missing (deleted)", record.seq - 1)
                },
            ));
        }
        if record.prev != head {
            return Err(fail(
                n - 1,
                "changed after it was written (the next record's link to it does not match)".into(),
            ));
        }
        head = line_hash(line);
        hashes.push(head.clone());
    }
    let records = hashes.len() as u64;

    let text = std::fs::read_to_string(checkpoints_path(log)).unwrap_or_default();
    let mut checkpoints = 0;
    let mut newest = 0u64;
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let note: String = serde_json::from_str(line)
            .map_err(|e| fail(0, format!("checkpoint {}: not a checkpoint ({e})", i + 1)))?;
        let body = verifier
            .open(&note)
            .map_err(|e| fail(0, format!("checkpoint {}: {e}", i + 1)))?;
        let mut lines = body.lines();
        let (Some(name), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(fail(0, format!("checkpoint {}: malformed body", i + 1)));
        };
        if origin.is_some_and(|o| o != name) {
            return Err(fail(0, format!("checkpoint {}: for log `{name}`", i + 1)));
        }
        let size: u64 = size
            .parse()
            .map_err(|_| fail(0, format!("checkpoint {}: bad size", i + 1)))?;
        if size > records {
            return Err(fail(
                records + 1,
                format!(
                    "missing: a signed checkpoint covers {size} records, the log has {records} (truncated)"
                ),
            ));
        }
        if size > 0 && hex_to_b64(&hashes[size as usize - 1]) != root {
            return Err(fail(
                size,
                "does not match the signed checkpoint that covers it (changed)".into(),
            ));
        }
        checkpoints += 1;
        newest = newest.max(size);
    }
    Ok(Verified {
        records,
        checkpoints,
        unsigned_tail: records - newest,
    })
}

/// `airlock audit export`: the records at or after `since` (RFC 3339, UTC), as JSON Lines
/// (the lines exactly as written) or CSV.
pub fn export(
    log: &Path,
    since: Option<&str>,
    csv: bool,
    out: &mut dyn std::io::Write,
) -> Result<usize, String> {
    let text = std::fs::read_to_string(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let since = since
        .map(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map_err(|e| format!("--since `{s}`: {e}"))
        })
        .transpose()?;
    let io = |e: std::io::Error| e.to_string();
    if csv {
        writeln!(
            out,
            "seq,time,event,request_id,agent,owner,service,operation,actions,resources,rule,rules_version,outcome,params_digest,fingerprint,approval_id,approvers"
        )
        .map_err(io)?;
    }
    let mut count = 0;
    for line in text.lines() {
        let record: Record = serde_json::from_str(line).map_err(|e| e.to_string())?;
        if let Some(since) = since {
            let at = time::OffsetDateTime::parse(
                &record.time,
                &time::format_description::well_known::Rfc3339,
            )
            .map_err(|e| e.to_string())?;
            if at < since {
                continue;
            }
        }
        count += 1;
        if !csv {
            writeln!(out, "{line}").map_err(io)?;
            continue;
        }
        let e = &record.entry;
        let event = e
            .event
            .map(|ev| {
                serde_json::to_value(ev)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
            })
            .unwrap_or_default()
            .unwrap_or_default();
        let fields = [
            record.seq.to_string(),
            record.time.clone(),
            event,
            e.request_id.clone(),
            e.agent.clone().unwrap_or_default(),
            e.owner.clone().unwrap_or_default(),
            e.service.clone().unwrap_or_default(),
            e.operation.clone().unwrap_or_default(),
            e.actions.join(" "),
            e.resources.join(" "),
            e.rule.clone().unwrap_or_default(),
            e.rules_version.clone().unwrap_or_default(),
            e.outcome.clone().unwrap_or_default(),
            e.params_digest.clone().unwrap_or_default(),
            e.fingerprint.clone().unwrap_or_default(),
            e.approval_id.clone().unwrap_or_default(),
            e.approvers.join(" "),
        ];
        let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        writeln!(out, "{}", row.join(",")).map_err(io)?;
    }
    Ok(count)
}

/// RFC 4180 quoting; a leading `=`, `+`, `-` or `@` is prefixed with `'` so spreadsheets
/// do not run agent-controlled text as a formula.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

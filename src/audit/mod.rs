//! The tamper-evident audit log: one JSON line per event, each naming the SHA-256 of the
//! line before it (`prev`), with Ed25519-signed checkpoints ([`note`]) every
//! `checkpoint_every` records or `checkpoint_interval`. `airlock audit verify` checks it
//! offline with the verifier key alone.
//!
//! Writes go through one writer thread that batches concurrent appends into one write and
//! one `fsync` (group commit). [`AuditLog::append_durable`] returns once the record is on
//! disk: the pipeline forwards nothing before that, and a failed write fails the request.

pub mod note;
pub mod verify;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use note::NoteSigner;

/// What happened, one record each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// The rules allowed the call (written before it is forwarded).
    Allowed,
    /// The rules denied it.
    Denied,
    /// The rules want an approval (not available yet: refused).
    Held,
    /// The upstream answered (its status in `outcome`).
    Forwarded,
    /// Airlock answered the request itself (a token grant; its status in `outcome`).
    Answered,
    /// Refused before any decision (authentication, malformed) or failed after one.
    Failed,
    /// A reviewer's vote (`outcome`: approve or deny, the channel, the approval's state
    /// after it).
    Voted,
    /// An approval expired undecided.
    Expired,
}

/// One audit record as written: fields in this order, no whitespace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    /// Hex SHA-256 of the previous line (64 zeros for the first).
    pub prev: String,
    #[serde(flatten)]
    pub entry: Entry,
}

/// What a caller records; the writer adds sequence, time and chain link.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub event: Option<Event>,
    pub request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Hex SHA-256 of the call's parameters (JSON): proves what was asked without storing
    /// values that may be sensitive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params_digest: Option<String>,
    /// What an approval binds to (each cloud's fingerprint, e.g. `cloud::aws::fingerprint`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// How that fingerprint binds the request body: `sha256`, `params`, or `unbound` (a
    /// streamed body nothing declares a hash for: the approval does not pin its bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_binding: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    /// Who approved (the forwarded call's approvers; a vote's reviewer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// `200`, `AccessDenied`, `SignatureDoesNotMatch`, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hex SHA-256 of one line (without its newline): the next record's `prev`.
pub fn line_hash(line: &[u8]) -> String {
    hex::encode(Sha256::digest(line))
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("audit log {path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("the audit writer has stopped")]
    Stopped,
}

/// Settings of the log.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub file: PathBuf,
    /// Name in checkpoints and the verifier key (e.g. `airlock.example.com/audit`).
    pub origin: String,
    pub checkpoint_every: u64,
    pub checkpoint_interval: Duration,
}

/// The checkpoints of `log`: `<log>.checkpoints`, one JSON string (a signed note) per line.
pub fn checkpoints_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".checkpoints");
    PathBuf::from(name)
}

type Ack = oneshot::Sender<Result<u64, String>>;

/// A handle to the writer thread.
pub struct AuditLog {
    tx: mpsc::Sender<(Entry, Option<Ack>)>,
}

impl AuditLog {
    /// Open (or create, 0600) the log, recover its chain head, and start the writer.
    pub fn open(settings: AuditSettings, signer: NoteSigner) -> Result<AuditLog, AuditError> {
        let path = settings.file.clone();
        let io = |source| AuditError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = settings.file.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&settings.file)
            .map_err(io)?;
        let (seq, head) = recover(&mut file, &settings.file)?;
        let checkpoints = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(checkpoints_path(&settings.file))
            .map_err(io)?;
        let (tx, rx) = mpsc::channel::<(Entry, Option<Ack>)>();
        let writer = Writer {
            file,
            checkpoints,
            signer,
            settings,
            seq,
            head,
            checkpointed: seq,
            last_checkpoint: Instant::now(),
        };
        std::thread::Builder::new()
            .name("airlock-audit".into())
            .spawn(move || writer.run(rx))
            .map_err(io)?;
        Ok(AuditLog { tx })
    }

    /// Append and wait until the record is on disk; its sequence number.
    pub async fn append_durable(&self, entry: Entry) -> Result<u64, AuditError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send((entry, Some(ack)))
            .map_err(|_| AuditError::Stopped)?;
        match done.await {
            Ok(Ok(seq)) => Ok(seq),
            Ok(Err(message)) => Err(AuditError::Corrupt {
                path: PathBuf::new(),
                message,
            }),
            Err(_) => Err(AuditError::Stopped),
        }
    }

    /// Append without waiting (outcomes after the fact); a failure is logged by the writer.
    pub fn append(&self, entry: Entry) {
        let _ = self.tx.send((entry, None));
    }
}

/// The last sequence number and chain head of an existing log. A final line without its
/// newline was never acknowledged (a crash mid-write): it is cut off, and said so.
fn recover(file: &mut File, path: &Path) -> Result<(u64, String), AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    };
    if !file.metadata().map_err(io)?.is_file() {
        // A device or pipe (e.g. /dev/full in tests): nothing to recover.
        return Ok((0, GENESIS.to_string()));
    }
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut reader = BufReader::new(&mut *file);
    let (mut seq, mut head, mut good_len) = (0u64, GENESIS.to_string(), 0u64);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(io)?;
        if n == 0 {
            break;
        }
        if line.last() != Some(&b'\n') {
            tracing::warn!(file = %path.display(), bytes = n,
                "the audit log ends in a partial record (a crash mid-write); it was never acknowledged and is cut off");
            file.set_len(good_len).map_err(io)?;
            break;
        }
        let text = &line[..line.len() - 1];
        let record: Record = serde_json::from_slice(text).map_err(|e| AuditError::Corrupt {
            path: path.to_path_buf(),
            message: format!("record {}: {e}; run `airlock audit verify`", seq + 1),
        })?;
        if record.seq != seq + 1 || record.prev != head {
            return Err(AuditError::Corrupt {
                path: path.to_path_buf(),
                message: format!(
                    "the chain breaks at record {}; run `airlock audit verify` and keep the file as evidence",
                    seq + 1
                ),
            });
        }
        seq = record.seq;
        head = line_hash(text);
        good_len += n as u64;
    }
    Ok((seq, head))
}

struct Writer {
    file: File,
    checkpoints: File,
    signer: NoteSigner,
    settings: AuditSettings,
    seq: u64,
    head: String,
    checkpointed: u64,
    last_checkpoint: Instant,
}

/// Most records written (and acknowledged) per batch.
const MAX_BATCH: usize = 512;

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<(Entry, Option<Ack>)>) {
        loop {
            let first = match rx.recv_timeout(self.settings.checkpoint_interval) {
                Ok(item) => item,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.checkpoint_if_due(true);
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.checkpoint_if_due(true);
                    return;
                }
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(item) => batch.push(item),
                    Err(_) => break,
                }
            }
            let result = self.write(&batch);
            if let Err(e) = &result {
                tracing::error!(error = %e, records = batch.len(), "audit write failed");
            }
            for (i, (_, ack)) in batch.into_iter().enumerate() {
                if let Some(ack) = ack {
                    let _ = ack.send(match &result {
                        Ok(first_seq) => Ok(first_seq + i as u64),
                        Err(e) => Err(e.to_string()),
                    });
                }
            }
            self.checkpoint_if_due(false);
        }
    }

    /// Write a batch and fsync; the first sequence number. On failure nothing in the batch
    /// counts as written (the chain head stays where it was).
    fn write(&mut self, batch: &[(Entry, Option<Ack>)]) -> std::io::Result<u64> {
        let first = self.seq + 1;
        let (mut seq, mut head) = (self.seq, self.head.clone());
        let mut buffer = Vec::with_capacity(batch.len() * 512);
        for (entry, _) in batch {
            seq += 1;
            let record = Record {
                seq,
                time: now_rfc3339(),
                prev: head,
                entry: entry.clone(),
            };
            let line = serde_json::to_vec(&record).map_err(std::io::Error::other)?;
            head = line_hash(&line);
            buffer.extend_from_slice(&line);
            buffer.push(b'\n');
        }
        let before = self.file.metadata()?.len();
        if let Err(e) = self
            .file
            .write_all(&buffer)
            .and_then(|()| self.file.sync_data())
        {
            // Leave no partial batch behind: the next batch must follow the chain head.
            let _ = self.file.set_len(before);
            return Err(e);
        }
        self.seq = seq;
        self.head = head;
        Ok(first)
    }

    fn checkpoint_if_due(&mut self, timer: bool) {
        let new = self.seq - self.checkpointed;
        let due = new >= self.settings.checkpoint_every
            || (new > 0
                && (timer || self.last_checkpoint.elapsed() >= self.settings.checkpoint_interval));
        if !due {
            return;
        }
        let head = hex_to_b64(&self.head);
        let body = format!("{}\n{}\n{}\n", self.settings.origin, self.seq, head);
        let note = self.signer.sign(&body);
        let line = match serde_json::to_string(&note) {
            Ok(line) => line,
            Err(_) => return,
        };
        let written = self
            .checkpoints
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| self.checkpoints.sync_data());
        match written {
            Ok(()) => {
                self.checkpointed = self.seq;
                self.last_checkpoint = Instant::now();
            }
            Err(e) => tracing::error!(error = %e, "audit checkpoint write failed"),
        }
    }
}

/// The checkpoint signer from `key_file` (created, 0600, when `create` and absent). Its
/// verifier key is written beside it as `<key_file>.pub` for auditors.
pub fn signer(
    key_file: &Path,
    origin: &str,
    create: bool,
) -> Result<NoteSigner, crate::keyfile::KeyFileError> {
    let seed = crate::keyfile::load(key_file, create)?;
    let signer = NoteSigner::new(origin, &seed);
    let public = verifier_key_path(key_file);
    let text = format!("{}\n", signer.verifier_key());
    if std::fs::read_to_string(&public).ok().as_deref() != Some(text.as_str()) {
        std::fs::write(&public, text).map_err(|source| crate::keyfile::KeyFileError::Io {
            path: public,
            source,
        })?;
    }
    Ok(signer)
}

/// Where the verifier key of `key_file` is written: `<key_file>.pub`.
pub fn verifier_key_path(key_file: &Path) -> PathBuf {
    let mut name = key_file.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

pub fn hex_to_b64(hex: &str) -> String {
    use base64::Engine;
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    now.format(format).unwrap_or_default()
}

#[cfg(test)]
mod tests;

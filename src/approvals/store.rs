//! Approvals, votes and grants in SQLite (WAL, `synchronous=FULL`): a pending approval
//! survives a `kill -9`, and a grant is consumed in one transaction, so an approved call
//! is forwarded at most once (or, with `reuse`, repeatedly within its window).
//!
//! Every state change is one transaction on one connection (a mutex); callers run these
//! on the blocking pool.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Approved,
    Denied,
    Expired,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Approved => "approved",
            State::Denied => "denied",
            State::Expired => "expired",
        }
    }

    fn parse(text: &str) -> State {
        match text {
            "approved" => State::Approved,
            "denied" => State::Denied,
            "expired" => State::Expired,
            _ => State::Pending,
        }
    }

    pub fn parse_filter(text: &str) -> Option<State> {
        match text {
            "pending" => Some(State::Pending),
            "approved" => Some(State::Approved),
            "denied" => Some(State::Denied),
            "expired" => Some(State::Expired),
            _ => None,
        }
    }
}

/// One vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vote {
    pub approver: String,
    pub approve: bool,
    pub reason: Option<String>,
    pub at: i64,
    /// Where the vote was cast: `api`, `web`, `slack`, `teams`.
    pub via: String,
}

/// An approval request with everything a reviewer needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Approval {
    pub id: String,
    pub state: State,
    pub fingerprint: String,
    pub agent: String,
    pub owner: String,
    pub rule: String,
    pub message: Option<String>,
    pub groups: Vec<String>,
    pub quorum: u32,
    /// The call: cloud, service, operation, actions, resources, params, region, account.
    pub call: serde_json::Value,
    /// Why the agent says it makes the call (`x-airlock-reason`), if it said.
    pub reason: Option<String>,
    pub requested_at: i64,
    pub expires_at: i64,
    pub decided_at: Option<i64>,
    pub votes: Vec<Vote>,
    /// The grant was used (forwarded).
    pub consumed: bool,
    /// Seconds the same call may be repeated after approval without a new one.
    pub reuse: Option<i64>,
}

/// A new approval request.
pub struct NewApproval<'a> {
    pub fingerprint: &'a str,
    pub agent: &'a str,
    pub owner: &'a str,
    pub rule: &'a str,
    pub message: Option<&'a str>,
    pub groups: &'a [String],
    pub quorum: u32,
    pub call: &'a serde_json::Value,
    pub reason: Option<&'a str>,
    pub expires_in: i64,
    pub reuse: Option<i64>,
}

/// What parking a call found.
#[derive(Debug, Clone, PartialEq)]
pub enum Parked {
    /// Approved and now consumed (or within `reuse`): forward.
    Go(Approval),
    /// Waiting for reviewers: a new approval request…
    Opened(Approval),
    /// …or one already pending for the same call (a retry or a re-run).
    Wait(Approval),
    /// Denied (and not yet expired): refuse, saying who and why.
    Denied(Approval),
}

/// Why a vote was not counted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoteError {
    #[error("no approval `{0}`")]
    NotFound(String),
    #[error("approval `{id}` is already {state}")]
    Decided { id: String, state: &'static str },
    #[error("approval `{0}` has expired")]
    Expired(String),
    #[error("`{approver}` is not in an approver group of this approval ({groups})")]
    NotInGroup { approver: String, groups: String },
    #[error("`{0}` owns the agent that asked: nobody approves their own agent's calls")]
    SelfApproval(String),
    #[error("`{0}` has already voted on this approval")]
    AlreadyVoted(String),
    #[error("store: {0}")]
    Store(String),
}

pub struct Store {
    db: Mutex<Connection>,
    /// A second connection, for WAL checkpoints off the request path.
    checkpointer: Mutex<Connection>,
}

fn store_err(e: rusqlite::Error) -> VoteError {
    VoteError::Store(e.to_string())
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    agent TEXT NOT NULL,
    owner TEXT NOT NULL,
    rule TEXT NOT NULL,
    message TEXT,
    groups TEXT NOT NULL,
    quorum INTEGER NOT NULL,
    call TEXT NOT NULL,
    reason TEXT,
    requested_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    decided_at INTEGER,
    consumed INTEGER NOT NULL DEFAULT 0,
    reuse INTEGER,
    -- An expiry is announced (audited, channels told) exactly once.
    announced INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS approvals_by_fingerprint ON approvals (fingerprint, requested_at);
CREATE INDEX IF NOT EXISTS approvals_by_state ON approvals (state, expires_at);
CREATE TABLE IF NOT EXISTS votes (
    approval_id TEXT NOT NULL REFERENCES approvals (id),
    approver TEXT NOT NULL,
    approve INTEGER NOT NULL,
    reason TEXT,
    at INTEGER NOT NULL,
    via TEXT NOT NULL DEFAULT 'api',
    PRIMARY KEY (approval_id, approver)
);
-- A channel's message about an approval (a Slack ts, a Teams activity), to update it.
CREATE TABLE IF NOT EXISTS posts (
    approval_id TEXT NOT NULL REFERENCES approvals (id),
    channel TEXT NOT NULL,
    reference TEXT NOT NULL,
    PRIMARY KEY (approval_id, channel)
);
";

impl Store {
    /// Open (or create, 0600) the database.
    pub fn open(path: &Path) -> Result<Store, String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let fresh = !path.exists();
        let db = Connection::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if fresh {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        // Commits fsync (FULL); the WAL is checkpointed by `checkpoint`, not by whichever
        // commit happens to cross the threshold.
        db.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
             PRAGMA wal_autocheckpoint = 0;",
        )
        .and_then(|()| db.execute_batch(SCHEMA))
        .map_err(|e| format!("{}: {e}", path.display()))?;
        let checkpointer = Connection::open(path)
            .and_then(|c| {
                c.execute_batch("PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0;")?;
                Ok(c)
            })
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Store {
            db: Mutex::new(db),
            checkpointer: Mutex::new(checkpointer),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, VoteError>,
    ) -> Result<T, VoteError> {
        let mut db = self
            .db
            .lock()
            .map_err(|_| VoteError::Store("the store lock is poisoned".into()))?;
        f(&mut db)
    }

    /// Park a call: use an approved grant for its fingerprint if there is one (consuming it
    /// in the same transaction), else join the pending approval, else open a new one.
    pub fn park(&self, new: &NewApproval<'_>, now: i64) -> Result<Parked, VoteError> {
        self.with(|db| {
            let tx = db.transaction().map_err(store_err)?;
            expire(&tx, now)?;
            let latest: Option<String> = tx
                .query_row(
                    "SELECT id FROM approvals WHERE fingerprint = ?1
                     ORDER BY requested_at DESC, rowid DESC LIMIT 1",
                    params![new.fingerprint],
                    |r| r.get(0),
                )
                .optional()
                .map_err(store_err)?;
            if let Some(id) = latest {
                let latest = load(&tx, &id)?;
                let outcome = match latest.state {
                    State::Approved => {
                        let in_reuse = match (latest.reuse, latest.decided_at) {
                            (Some(r), Some(at)) => now < at + r,
                            _ => false,
                        };
                        if in_reuse {
                            Some(Parked::Go(latest))
                        } else if !latest.consumed && now < latest.expires_at {
                            tx.execute(
                                "UPDATE approvals SET consumed = 1 WHERE id = ?1 AND consumed = 0",
                                params![id],
                            )
                            .map_err(store_err)?;
                            Some(Parked::Go(load(&tx, &id)?))
                        } else {
                            None
                        }
                    }
                    State::Pending => Some(Parked::Wait(latest)),
                    State::Denied if now < latest.expires_at => Some(Parked::Denied(latest)),
                    State::Denied | State::Expired => None,
                };
                if let Some(outcome) = outcome {
                    tx.commit().map_err(store_err)?;
                    return Ok(outcome);
                }
            }
            let id = new_id()?;
            tx.execute(
                "INSERT INTO approvals (id, fingerprint, state, agent, owner, rule, message, groups,
                    quorum, call, reason, requested_at, expires_at, reuse)
                 VALUES (?1, ?2, 'pending', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    id,
                    new.fingerprint,
                    new.agent,
                    new.owner,
                    new.rule,
                    new.message,
                    serde_json::to_string(new.groups).unwrap_or_default(),
                    new.quorum,
                    new.call.to_string(),
                    new.reason,
                    now,
                    now + new.expires_in,
                    new.reuse,
                ],
            )
            .map_err(store_err)?;
            let approval = load(&tx, &id)?;
            tx.commit().map_err(store_err)?;
            Ok(Parked::Opened(approval))
        })
    }

    /// Consume the grant of approval `id` (approved, unconsumed, unexpired): true once.
    pub fn consume(&self, id: &str, now: i64) -> Result<bool, VoteError> {
        self.with(|db| {
            let changed = db
                .execute(
                    "UPDATE approvals SET consumed = 1
                     WHERE id = ?1 AND state = 'approved' AND consumed = 0 AND expires_at > ?2",
                    params![id, now],
                )
                .map_err(store_err)?;
            let reusable: Option<(Option<i64>, Option<i64>)> = db
                .query_row(
                    "SELECT reuse, decided_at FROM approvals WHERE id = ?1 AND state = 'approved'",
                    params![id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(store_err)?;
            let in_reuse = matches!(reusable, Some((Some(r), Some(at))) if now < at + r);
            Ok(changed == 1 || in_reuse)
        })
    }

    /// Give back a grant consumed for a held call that left before taking it.
    pub fn release(&self, id: &str) -> Result<(), VoteError> {
        self.with(|db| {
            db.execute(
                "UPDATE approvals SET consumed = 0 WHERE id = ?1 AND state = 'approved'",
                params![id],
            )
            .map(|_| ())
            .map_err(store_err)
        })
    }

    /// Record `approver`'s vote with every server-side check; the approval after it. With
    /// `claim`, a vote that approves also consumes the grant (for a held call).
    #[allow(clippy::too_many_arguments)]
    pub fn vote(
        &self,
        id: &str,
        approver: &str,
        approver_groups: &[String],
        approve: bool,
        reason: Option<&str>,
        via: &str,
        claim: bool,
        now: i64,
    ) -> Result<Approval, VoteError> {
        self.with(|db| {
            let tx = db.transaction().map_err(store_err)?;
            expire(&tx, now)?;
            let approval = load(&tx, id).map_err(|_| VoteError::NotFound(id.to_string()))?;
            match approval.state {
                State::Pending => {}
                State::Expired => return Err(VoteError::Expired(id.to_string())),
                state => {
                    return Err(VoteError::Decided {
                        id: id.to_string(),
                        state: state.as_str(),
                    });
                }
            }
            if approver.eq_ignore_ascii_case(&approval.owner) {
                return Err(VoteError::SelfApproval(approver.to_string()));
            }
            if !approval.groups.iter().any(|g| approver_groups.contains(g)) {
                return Err(VoteError::NotInGroup {
                    approver: approver.to_string(),
                    groups: approval.groups.join(", "),
                });
            }
            if approval.votes.iter().any(|v| v.approver == approver) {
                return Err(VoteError::AlreadyVoted(approver.to_string()));
            }
            tx.execute(
                "INSERT INTO votes (approval_id, approver, approve, reason, at, via)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, approver, approve, reason, now, via],
            )
            .map_err(store_err)?;
            let approvals =
                approval.votes.iter().filter(|v| v.approve).count() + usize::from(approve);
            let state = if !approve {
                Some("denied")
            } else if approvals >= approval.quorum as usize {
                Some("approved")
            } else {
                None
            };
            if let Some(state) = state {
                // `claim`: a held call takes the grant now (not with `reuse`, whose
                // grant is not used up).
                let consumed = state == "approved" && claim && approval.reuse.is_none();
                tx.execute(
                    "UPDATE approvals SET state = ?2, decided_at = ?3, consumed = ?4 WHERE id = ?1",
                    params![id, state, now, consumed],
                )
                .map_err(store_err)?;
            }
            let approval = load(&tx, id)?;
            tx.commit().map_err(store_err)?;
            Ok(approval)
        })
    }

    /// Run `f` in a transaction that first marks overdue approvals expired.
    fn after_expiry<T>(
        &self,
        now: i64,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, VoteError>,
    ) -> Result<T, VoteError> {
        self.with(|db| {
            let tx = db.transaction().map_err(store_err)?;
            expire(&tx, now)?;
            let out = f(&tx)?;
            tx.commit().map_err(store_err)?;
            Ok(out)
        })
    }

    /// Approvals that expired (now or earlier, by any reader) and were not yet announced:
    /// each is returned once, even across restarts.
    pub fn newly_expired(&self, now: i64) -> Result<Vec<Approval>, VoteError> {
        self.after_expiry(now, |tx| {
            let ids: Vec<String> = {
                let mut stmt = tx
                    .prepare(
                        "UPDATE approvals SET announced = 1
                         WHERE state = 'expired' AND announced = 0 RETURNING id",
                    )
                    .map_err(store_err)?;
                let rows = stmt.query_map([], |r| r.get(0)).map_err(store_err)?;
                rows.collect::<Result<_, _>>().map_err(store_err)?
            };
            load_all(tx, &ids)
        })
    }

    /// Remember `channel`'s message about approval `id` (to update it later).
    pub fn set_post(&self, id: &str, channel: &str, reference: &str) -> Result<(), VoteError> {
        self.with(|db| {
            db.execute(
                "INSERT INTO posts (approval_id, channel, reference) VALUES (?1, ?2, ?3)
                 ON CONFLICT (approval_id, channel) DO UPDATE SET reference = excluded.reference",
                params![id, channel, reference],
            )
            .map(|_| ())
            .map_err(store_err)
        })
    }

    /// `channel`'s message about approval `id`, if it posted one.
    pub fn post(&self, id: &str, channel: &str) -> Result<Option<String>, VoteError> {
        self.with(|db| {
            db.query_row(
                "SELECT reference FROM posts WHERE approval_id = ?1 AND channel = ?2",
                params![id, channel],
                |r| r.get(0),
            )
            .optional()
            .map_err(store_err)
        })
    }

    /// How many approvals are open: pending, or expired but not yet announced (the
    /// announcement closes them).
    pub fn pending(&self) -> Result<i64, VoteError> {
        self.with(|db| {
            db.query_row(
                "SELECT (SELECT COUNT(*) FROM approvals WHERE state = 'pending')
                      + (SELECT COUNT(*) FROM approvals WHERE state = 'expired' AND announced = 0)",
                [],
                |r| r.get(0),
            )
            .map_err(store_err)
        })
    }

    /// Copy the write-ahead log into the database, from a connection of its own, so that
    /// no request's commit pays for it (automatic checkpoints are off).
    pub fn checkpoint(&self) -> Result<(), VoteError> {
        let db = self
            .checkpointer
            .lock()
            .map_err(|_| VoteError::Store("the checkpoint lock is poisoned".into()))?;
        db.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(store_err)
    }

    pub fn get(&self, id: &str, now: i64) -> Result<Option<Approval>, VoteError> {
        self.after_expiry(now, |tx| Ok(load(tx, id).ok()))
    }

    /// Approvals, newest first, optionally in one state.
    pub fn list(&self, state: Option<State>, now: i64) -> Result<Vec<Approval>, VoteError> {
        self.after_expiry(now, |tx| {
            let ids: Vec<String> = {
                let mut stmt = tx
                    .prepare(
                        "SELECT id FROM approvals WHERE ?1 IS NULL OR state = ?1
                         ORDER BY requested_at DESC, rowid DESC LIMIT 500",
                    )
                    .map_err(store_err)?;
                let rows = stmt
                    .query_map(params![state.map(State::as_str)], |r| r.get(0))
                    .map_err(store_err)?;
                rows.collect::<Result<_, _>>().map_err(store_err)?
            };
            load_all(tx, &ids)
        })
    }
}

/// Pending approvals past their expiry become expired.
fn expire(tx: &rusqlite::Transaction<'_>, now: i64) -> Result<(), VoteError> {
    tx.execute(
        "UPDATE approvals SET state = 'expired', decided_at = expires_at
         WHERE state = 'pending' AND expires_at <= ?1",
        params![now],
    )
    .map(|_| ())
    .map_err(store_err)
}

fn load_all(tx: &rusqlite::Transaction<'_>, ids: &[String]) -> Result<Vec<Approval>, VoteError> {
    ids.iter().map(|id| load(tx, id)).collect()
}

fn load(tx: &rusqlite::Transaction<'_>, id: &str) -> Result<Approval, VoteError> {
    let mut approval = tx
        .query_row(
            "SELECT id, state, fingerprint, agent, owner, rule, message, groups, quorum, call,
                    reason, requested_at, expires_at, decided_at, consumed, reuse
             FROM approvals WHERE id = ?1",
            params![id],
            |r| {
                Ok(Approval {
                    id: r.get(0)?,
                    state: State::parse(&r.get::<_, String>(1)?),
                    fingerprint: r.get(2)?,
                    agent: r.get(3)?,
                    owner: r.get(4)?,
                    rule: r.get(5)?,
                    message: r.get(6)?,
                    groups: serde_json::from_str(&r.get::<_, String>(7)?).unwrap_or_default(),
                    quorum: r.get(8)?,
                    call: serde_json::from_str(&r.get::<_, String>(9)?).unwrap_or_default(),
                    reason: r.get(10)?,
                    requested_at: r.get(11)?,
                    expires_at: r.get(12)?,
                    decided_at: r.get(13)?,
                    consumed: r.get::<_, i64>(14)? != 0,
                    reuse: r.get(15)?,
                    votes: Vec::new(),
                })
            },
        )
        .map_err(store_err)?;
    let mut stmt = tx
        .prepare(
            "SELECT approver, approve, reason, at, via FROM votes WHERE approval_id = ?1
             ORDER BY at, rowid",
        )
        .map_err(store_err)?;
    approval.votes = stmt
        .query_map(params![id], |r| {
            Ok(Vote {
                approver: r.get(0)?,
                approve: r.get::<_, i64>(1)? != 0,
                reason: r.get(2)?,
                at: r.get(3)?,
                via: r.get(4)?,
            })
        })
        .map_err(store_err)?
        .collect::<Result<_, _>>()
        .map_err(store_err)?;
    Ok(approval)
}

/// `apr-` and 26 random base32 characters (128 bits): unguessable, so an id can be
/// handed to the agent to wait on.
fn new_id() -> Result<String, VoteError> {
    let mut bytes = [0u8; 16];
    crate::tls::crypto_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| VoteError::Store("the system random generator failed".into()))?;
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bits: u128 = u128::from_le_bytes(bytes);
    let mut id = String::from("apr-");
    for _ in 0..26 {
        id.push(ALPHABET[(bits & 31) as usize] as char);
        bits >>= 5;
    }
    Ok(id)
}

//! Agents: who may call through Airlock, with Airlock-issued keys (never real cloud keys).
//!
//! `agents.yaml` lists each agent (name, owner, its cloud identities, labels, access key
//! id) and holds no secret, so the security team can review it. An agent has an AWS
//! identity (the IAM role Airlock assumes for it), a Google identity (the service account
//! Airlock mints tokens of), or both. Each agent's secret is derived:
//! `HMAC-SHA256(server key, "airlock-agent-secret-v1:" + access key id)`, where the server
//! key is 32 random bytes in a 0600 file. Nothing secret is stored elsewhere, rotation is a
//! new access key id, and removal deletes the entry.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub mod google;

/// Prefix of every Airlock access key id: never confused with AWS's `AKIA`/`ASIA` keys.
pub const KEY_ID_PREFIX: &str = "AIRL";
const KEY_ID_RANDOM_CHARS: usize = 16;
const SECRET_LEN: usize = 40;
const SERVER_KEY_LEN: usize = crate::keyfile::KEY_LEN;
const DERIVATION_LABEL: &[u8] = b"airlock-agent-secret-v1:";

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("agent key: {0}")]
    Key(#[from] crate::keyfile::KeyFileError),
    #[error("{0}")]
    Usage(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AgentError + '_ {
    move |source| AgentError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An agent as `agents.yaml` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    pub name: String,
    /// The human responsible (an e-mail address); never an approver of the agent's calls.
    pub owner: String,
    /// AWS: the IAM role Airlock assumes for this agent's calls (none: no AWS calls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The agent's AWS account (defaults to the role's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Google: the service account whose short-lived tokens carry this agent's calls
    /// (none: no Google calls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp_service_account: Option<String>,
    /// The agent's Google project (defaults to the service account's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp_project: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    pub access_key_id: String,
    pub created: String,
}

/// An agent's secret access key. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The 32-byte key agent secrets are derived from.
pub struct ServerKey([u8; SERVER_KEY_LEN]);

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerKey(***)")
    }
}

impl ServerKey {
    /// Load the key, creating it (0600) if `create` and it does not exist. Refuses a key
    /// file readable by group or others.
    pub fn load(path: &Path, create: bool) -> Result<ServerKey, AgentError> {
        crate::keyfile::load(path, create)
            .map(ServerKey)
            .map_err(AgentError::Key)
    }

    /// The secret for `access_key_id`.
    pub fn secret(&self, access_key_id: &str) -> Secret {
        let digest = self.mac(DERIVATION_LABEL, &[access_key_id.as_bytes()]);
        let encoded = base64::engine::general_purpose::STANDARD.encode(digest);
        Secret(encoded[..SECRET_LEN].to_string())
    }

    /// `HMAC-SHA256(key, label ‖ parts…)`: every value derived from the key has its own label.
    pub fn mac(&self, label: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail for a 32-byte key.
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        mac.update(label);
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// The Google token of `kind` for the agent holding `access_key_id`.
    pub fn google_token(&self, kind: google::TokenKind, access_key_id: &str) -> Secret {
        Secret(google::issue(self, kind, access_key_id))
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentsFile {
    #[serde(default)]
    agents: Vec<Agent>,
}

const HEADER: &str = "# Airlock agents, managed with `airlock agents add|rotate|remove`.\n\
# No secrets here: each agent's secret is derived from the 0600 agent key.\n";

/// The agents and the key their secrets derive from.
#[derive(Debug)]
pub struct Registry {
    path: PathBuf,
    agents: Vec<Arc<Agent>>,
    by_key: HashMap<String, usize>,
}

impl Registry {
    /// Load `path` (an absent file is an empty registry).
    pub fn load(path: &Path) -> Result<Registry, AgentError> {
        let file: AgentsFile = match fs::read_to_string(path) {
            Ok(text) => serde_yaml_ng::from_str(&text).map_err(|e| AgentError::Invalid {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => AgentsFile::default(),
            Err(e) => return Err(io(path)(e)),
        };
        let mut registry = Registry {
            path: path.to_path_buf(),
            agents: Vec::new(),
            by_key: HashMap::new(),
        };
        for agent in file.agents {
            registry.insert(agent)?;
        }
        Ok(registry)
    }

    fn insert(&mut self, agent: Agent) -> Result<(), AgentError> {
        let invalid = |message: String| AgentError::Invalid {
            path: self.path.clone(),
            message,
        };
        if self.agents.iter().any(|a| a.name == agent.name) {
            return Err(invalid(format!("agent `{}` is listed twice", agent.name)));
        }
        if self.by_key.contains_key(&agent.access_key_id) {
            return Err(invalid(format!(
                "access key {} is listed twice",
                agent.access_key_id
            )));
        }
        self.by_key
            .insert(agent.access_key_id.clone(), self.agents.len());
        self.agents.push(Arc::new(agent));
        Ok(())
    }

    pub fn agents(&self) -> &[Arc<Agent>] {
        &self.agents
    }

    /// The agent holding `access_key_id`.
    pub fn by_access_key(&self, access_key_id: &str) -> Option<&Arc<Agent>> {
        self.by_key.get(access_key_id).map(|&i| &self.agents[i])
    }

    /// Add an agent with a fresh access key id; returns it.
    pub fn add(
        &mut self,
        name: &str,
        owner: &str,
        identities: &Identities<'_>,
        labels: BTreeMap<String, String>,
    ) -> Result<&Agent, AgentError> {
        validate_name(name)?;
        validate_owner(owner)?;
        let (role, account) = match (identities.role, identities.account) {
            (Some(role), account) => {
                let role_account = validate_role(role)?;
                let account = match account {
                    Some(a) if a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) => {
                        a.to_string()
                    }
                    Some(a) => {
                        return Err(AgentError::Usage(format!(
                            "--account `{a}` is not a 12-digit AWS account id"
                        )));
                    }
                    None => role_account,
                };
                (Some(role.to_string()), Some(account))
            }
            (None, Some(_)) => {
                return Err(AgentError::Usage(
                    "--account goes with --role (the agent's AWS identity)".into(),
                ));
            }
            (None, None) => (None, None),
        };
        let (gcp_service_account, gcp_project) =
            match (identities.gcp_service_account, identities.gcp_project) {
                (Some(sa), project) => {
                    let sa_project = validate_service_account(sa)?;
                    let project = match project {
                        Some(p) => {
                            validate_project(p)?;
                            Some(p.to_string())
                        }
                        None => sa_project,
                    };
                    (Some(sa.to_string()), project)
                }
                (None, Some(_)) => {
                    return Err(AgentError::Usage(
                    "--gcp-project goes with --gcp-service-account (the agent's Google identity)"
                        .into(),
                ));
                }
                (None, None) => (None, None),
            };
        if role.is_none() && gcp_service_account.is_none() {
            return Err(AgentError::Usage(
                "an agent needs a cloud identity: --role (AWS), --gcp-service-account (Google), or both"
                    .into(),
            ));
        }
        if self.agents.iter().any(|a| a.name == name) {
            return Err(AgentError::Usage(format!(
                "an agent named `{name}` exists; rotate or remove it"
            )));
        }
        let agent = Agent {
            name: name.to_string(),
            owner: owner.to_string(),
            role,
            account,
            gcp_service_account,
            gcp_project,
            labels,
            access_key_id: new_key_id()?,
            created: now_rfc3339(),
        };
        self.insert(agent)?;
        Ok(&self.agents[self.agents.len() - 1])
    }

    /// Give `name` a new access key id (the old key stops working).
    pub fn rotate(&mut self, name: &str) -> Result<&Agent, AgentError> {
        let i = self.position(name)?;
        let new_id = new_key_id()?;
        let agent = Arc::make_mut(&mut self.agents[i]);
        let old = std::mem::replace(&mut agent.access_key_id, new_id.clone());
        self.by_key.remove(&old);
        self.by_key.insert(new_id, i);
        Ok(&self.agents[i])
    }

    pub fn remove(&mut self, name: &str) -> Result<Arc<Agent>, AgentError> {
        let i = self.position(name)?;
        let agent = self.agents.remove(i);
        self.by_key = self
            .agents
            .iter()
            .enumerate()
            .map(|(i, a)| (a.access_key_id.clone(), i))
            .collect();
        Ok(agent)
    }

    fn position(&self, name: &str) -> Result<usize, AgentError> {
        self.agents
            .iter()
            .position(|a| a.name == name)
            .ok_or_else(|| AgentError::Usage(format!("no agent named `{name}`")))
    }

    /// Write the registry back atomically.
    pub fn save(&self) -> Result<(), AgentError> {
        let body = serde_yaml_ng::to_string(&AgentsFile {
            agents: self.agents.iter().map(|a| Agent::clone(a)).collect(),
        })
        .map_err(|e| AgentError::Invalid {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        let tmp = self.path.with_extension("tmp");
        fs::write(&tmp, format!("{HEADER}{body}")).map_err(io(&tmp))?;
        fs::rename(&tmp, &self.path).map_err(io(&self.path))
    }
}

/// Agent names become STS role session names: 2–64 of `[A-Za-z0-9+=,.@_-]`.
/// The agents a running Airlock accepts: the registry, swapped whole when `agents.yaml`
/// changes (so `agents add|rotate|remove` take effect without a restart), and the key
/// their secrets derive from.
pub struct Directory {
    path: PathBuf,
    registry: ArcSwap<Registry>,
    key: ServerKey,
}

impl Directory {
    /// Load the registry and the server key (created, 0600, on first use).
    pub fn load(file: &Path, key_file: &Path) -> Result<Directory, AgentError> {
        Ok(Directory {
            path: file.to_path_buf(),
            registry: ArcSwap::from_pointee(Registry::load(file)?),
            key: ServerKey::load(key_file, true)?,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The agent holding `access_key_id`, and its secret.
    pub fn lookup(&self, access_key_id: &str) -> Option<(Arc<Agent>, Secret)> {
        let agent = Arc::clone(self.registry.load().by_access_key(access_key_id)?);
        let secret = self.key.secret(access_key_id);
        Some((agent, secret))
    }

    /// The agent a Google bearer token was issued to, and its kind. A token whose key id
    /// names no agent (rotated, removed) fails like a forged one.
    pub fn google_token(
        &self,
        token: &str,
        now: u64,
    ) -> Result<(Arc<Agent>, google::TokenKind), google::TokenError> {
        let presented = google::parse(token)?;
        let kind = presented.verify(&self.key, now)?;
        let registry = self.registry.load();
        let agent = registry
            .by_access_key(presented.key_id)
            .ok_or(google::TokenError::UnknownKey)?;
        Ok((Arc::clone(agent), kind))
    }

    /// Issue a Google token of `kind` to `agent` (the token endpoint's access tokens).
    pub fn issue_google(&self, agent: &Agent, kind: google::TokenKind) -> Secret {
        self.key.google_token(kind, &agent.access_key_id)
    }

    pub fn len(&self) -> usize {
        self.registry.load().agents().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl crate::reload::Reloadable for Directory {
    const NAME: &'static str = "agents";

    fn reload(&self) -> Result<(), String> {
        let fresh = Registry::load(&self.path).map_err(|e| e.to_string())?;
        self.registry.store(Arc::new(fresh));
        Ok(())
    }
}

fn validate_name(name: &str) -> Result<(), AgentError> {
    let ok = (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(AgentError::Usage(format!(
            "agent name `{name}` must be 2-64 of A-Z a-z 0-9 + = , . @ _ - (it becomes the STS session name)"
        )))
    }
}

fn validate_owner(owner: &str) -> Result<(), AgentError> {
    let ok = owner
        .split_once('@')
        .is_some_and(|(user, domain)| !user.is_empty() && domain.contains('.'))
        && !owner.chars().any(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(AgentError::Usage(format!(
            "--owner `{owner}` is not an e-mail address"
        )))
    }
}

/// An agent's cloud identities, as `airlock agents add` takes them.
#[derive(Debug, Default, Clone, Copy)]
pub struct Identities<'a> {
    pub role: Option<&'a str>,
    pub account: Option<&'a str>,
    pub gcp_service_account: Option<&'a str>,
    pub gcp_project: Option<&'a str>,
}

impl Agent {
    /// The account (AWS) or project (Google) the agent works in, for rules that match on
    /// it when the call itself does not name one.
    pub fn home(&self, cloud: crate::cloud::Cloud) -> Option<&str> {
        match cloud {
            crate::cloud::Cloud::Aws => self.account.as_deref(),
            crate::cloud::Cloud::Gcp => self.gcp_project.as_deref(),
        }
    }
}

/// A Google service account e-mail (`name@project.iam.gserviceaccount.com`, or a
/// Google-managed `…@….gserviceaccount.com`); its project on success, when it names one.
fn validate_service_account(email: &str) -> Result<Option<String>, AgentError> {
    let bad = || {
        AgentError::Usage(format!(
            "--gcp-service-account `{email}` is not a service account e-mail \
             (name@project.iam.gserviceaccount.com)"
        ))
    };
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let valid_local = (6..=30).contains(&local.len())
        && local
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid_local && !local.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if let Some(project) = domain.strip_suffix(".iam.gserviceaccount.com") {
        validate_project(project).map_err(|_| bad())?;
        return Ok(Some(project.to_string()));
    }
    if domain.ends_with(".gserviceaccount.com") && crate::hosts::is_dns_name(domain) {
        return Ok(None);
    }
    Err(bad())
}

/// A Google project id: 6–30 of lower-case letters, digits and hyphens, starting with a
/// letter, not ending with a hyphen.
fn validate_project(project: &str) -> Result<(), AgentError> {
    let ok = (6..=30).contains(&project.len())
        && project.starts_with(|c: char| c.is_ascii_lowercase())
        && !project.ends_with('-')
        && project
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(AgentError::Usage(format!(
            "--gcp-project `{project}` is not a Google project id"
        )))
    }
}

/// `arn:<partition>:iam::<12 digits>:role/<path/name>`; the account on success.
fn validate_role(role: &str) -> Result<String, AgentError> {
    let parts: Vec<&str> = role.splitn(6, ':').collect();
    match parts.as_slice() {
        [
            "arn",
            "aws" | "aws-cn" | "aws-us-gov",
            "iam",
            "",
            account,
            resource,
        ] if account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && resource.starts_with("role/")
            && resource.len() > 5 =>
        {
            Ok(account.to_string())
        }
        _ => Err(AgentError::Usage(format!(
            "--role `{role}` is not an IAM role ARN (arn:aws:iam::123456789012:role/name)"
        ))),
    }
}

fn new_key_id() -> Result<String, AgentError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bytes = [0u8; KEY_ID_RANDOM_CHARS];
    crate::tls::crypto_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| AgentError::Usage("the system random generator failed".into()))?;
    let random: String = bytes
        .iter()
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect();
    Ok(format!("{KEY_ID_PREFIX}{random}"))
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::Cloud;
    use std::os::unix::fs::PermissionsExt;

    fn registry(dir: &Path) -> Registry {
        Registry::load(&dir.join("agents.yaml")).unwrap()
    }

    #[test]
    fn add_rotate_remove_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = registry(dir.path());
        let id = r
            .add(
                "ci-deployer",
                "alice@example.com",
                &aws("arn:aws:iam::123456789012:role/ci", None),
                BTreeMap::new(),
            )
            .unwrap()
            .access_key_id
            .clone();
        assert!(id.starts_with("AIRL") && id.len() == 20, "{id}");
        r.save().unwrap();
        let mut r = registry(dir.path());
        assert_eq!(
            r.by_access_key(&id).unwrap().account.as_deref(),
            Some("123456789012")
        );
        let new_id = r.rotate("ci-deployer").unwrap().access_key_id.clone();
        assert_ne!(new_id, id);
        assert!(
            r.by_access_key(&id).is_none(),
            "the old key still works after rotation"
        );
        r.remove("ci-deployer").unwrap();
        assert!(r.by_access_key(&new_id).is_none());
        let text = std::fs::read_to_string(dir.path().join("agents.yaml")).unwrap();
        assert!(text.contains("owner: alice@example.com"));
    }

    #[test]
    fn bad_input_is_refused_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = registry(dir.path());
        let role = "arn:aws:iam::123456789012:role/ci";
        let sa = "deployer@my-project.iam.gserviceaccount.com";
        let bad: [(&str, &str, Identities<'_>); 11] = [
            ("x y", "a@b.c", aws(role, None)),
            ("ci", "alice", aws(role, None)),
            ("ci", "a@b.c", aws("arn:aws:iam::123:role/ci", None)),
            (
                "ci",
                "a@b.c",
                aws("arn:aws:iam::123456789012:user/ci", None),
            ),
            ("ci", "a@b.c", aws(role, Some("12"))),
            ("ci", "a@b.c", Identities::default()),
            ("ci", "a@b.c", gcp("deployer@gmail.com", None)),
            (
                "ci",
                "a@b.c",
                gcp("x@my-project.iam.gserviceaccount.com", None),
            ),
            ("ci", "a@b.c", gcp(sa, Some("Not_A_Project"))),
            (
                "ci",
                "a@b.c",
                Identities {
                    gcp_project: Some("my-project"),
                    ..aws(role, None)
                },
            ),
            (
                "ci",
                "a@b.c",
                Identities {
                    account: Some("123456789012"),
                    ..gcp(sa, None)
                },
            ),
        ];
        for (name, owner, identities) in bad {
            assert!(
                r.add(name, owner, &identities, BTreeMap::new()).is_err(),
                "{name} {owner} {identities:?}"
            );
        }
        assert!(r.agents().is_empty());
        r.add("ci", "a@b.c", &aws(role, None), BTreeMap::new())
            .unwrap();
        assert!(
            r.add("ci", "a@b.c", &aws(role, None), BTreeMap::new())
                .is_err(),
            "duplicate name"
        );
    }

    #[test]
    fn an_agent_may_have_a_google_identity_an_aws_one_or_both() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = registry(dir.path());
        let sa = "deployer@my-project.iam.gserviceaccount.com";
        let google = r
            .add("google-only", "a@b.c", &gcp(sa, None), BTreeMap::new())
            .unwrap()
            .clone();
        assert_eq!(google.role, None);
        assert_eq!(google.gcp_project.as_deref(), Some("my-project"));
        assert_eq!(google.home(Cloud::Gcp), Some("my-project"));
        assert_eq!(google.home(Cloud::Aws), None);
        let both = Identities {
            gcp_service_account: Some(sa),
            gcp_project: Some("other-project"),
            ..aws("arn:aws:iam::123456789012:role/ci", None)
        };
        let both = r
            .add("both-clouds", "a@b.c", &both, BTreeMap::new())
            .unwrap()
            .clone();
        assert_eq!(both.home(Cloud::Aws), Some("123456789012"));
        assert_eq!(both.home(Cloud::Gcp), Some("other-project"));
        r.save().unwrap();
        let text = std::fs::read_to_string(dir.path().join("agents.yaml")).unwrap();
        assert!(text.contains("gcp_service_account: deployer@my-project.iam.gserviceaccount.com"));
        let again = registry(dir.path());
        assert_eq!(again.agents().len(), 2);
        assert_eq!(again.agents()[0].gcp_service_account.as_deref(), Some(sa));
    }

    fn aws<'a>(role: &'a str, account: Option<&'a str>) -> Identities<'a> {
        Identities {
            role: Some(role),
            account,
            ..Identities::default()
        }
    }

    fn gcp<'a>(sa: &'a str, project: Option<&'a str>) -> Identities<'a> {
        Identities {
            gcp_service_account: Some(sa),
            gcp_project: project,
            ..Identities::default()
        }
    }

    #[test]
    fn secrets_are_derived_stable_and_distinct_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agents.key");
        let key = ServerKey::load(&path, true).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let again = ServerKey::load(&path, false).unwrap();
        assert_eq!(key.secret("AIRLA"), again.secret("AIRLA"));
        assert_ne!(key.secret("AIRLA"), key.secret("AIRLB"));
        assert_eq!(key.secret("AIRLA").expose().len(), 40);
        assert_eq!(
            format!("{:?} {key:?}", key.secret("AIRLA")),
            "Secret(***) ServerKey(***)"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            ServerKey::load(&path, false),
            Err(AgentError::Key(
                crate::keyfile::KeyFileError::Permissions { .. }
            ))
        ));
    }
}

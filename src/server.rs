//! Assembly: from a validated [`Config`] to bound listeners and a running proxy.
//! `bind` does everything that can fail (CA, upstream TLS roots, sockets) before any
//! traffic is accepted; `run` serves until shutdown and drains.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::agents::Directory;
use crate::approvals::{Approvals, Approver, Approvers, Store};
use crate::audit::{AuditLog, AuditSettings};
use crate::channels::Channels;
use crate::config::Config;
use crate::control::Control;
use crate::credentials::{Broker, BrokerSettings, GoogleBroker, GoogleSettings};
use crate::health::Health;
use crate::hosts::{HostPolicy, HostSuffix};
use crate::metrics::Metrics;
use crate::proxy::Proxy;
use crate::proxy::pipeline::{Pipeline, PipelineDeps};
use crate::proxy::upstream::Upstream;
use crate::reload;
use crate::rules::LiveRules;
use crate::tls::{self, CertificateAuthority, LeafCache, TlsError, load_pem_certs};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("{0}")]
    Tls(#[from] TlsError),
    #[error(
        "the CA in {dir} cannot vouch for intercepted `{suffix}` (its name constraints permit {permitted}); re-create it with `airlock init --force`"
    )]
    CaCoverage {
        dir: String,
        suffix: String,
        permitted: String,
    },
    #[error("config: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

pub struct Server {
    proxy: Arc<Proxy>,
    control: Arc<Control>,
    proxy_listener: TcpListener,
    control_listener: TcpListener,
    watched: Watched,
    drain_timeout: Duration,
}

/// What is reloaded from disk while serving.
struct Watched {
    agents: Arc<Directory>,
    rules: Arc<LiveRules>,
}

impl Server {
    pub async fn bind(config: &Config) -> Result<Self, ServerError> {
        let metrics = Arc::new(Metrics::new()?);
        let policy =
            HostPolicy::new(&config.intercept, &config.tunnel).map_err(ServerError::Config)?;

        let ca_dir = config.ca_dir();
        let ca = CertificateAuthority::load(&ca_dir)?;
        check_coverage(&ca, policy.intercepted(), &ca_dir)?;
        let leaves = Arc::new(LeafCache::new(
            ca,
            config.ca.leaf_validity,
            config.ca.max_cached_leaves,
            metrics.cert_cache_hits_total.clone(),
            metrics.cert_cache_misses_total.clone(),
        ));
        let tls = tls::server_config(leaves)?;

        let ca_file = config.upstream.ca_file.as_ref().map(|f| config.resolve(f));
        let upstream = Upstream::new(&config.upstream, ca_file.as_deref())?;
        let agents_file = config.resolve(&config.agents.file);
        let agents = Arc::new(
            Directory::load(&agents_file, &config.resolve(&config.agents.key_file))
                .map_err(|e| ServerError::Config(format!("agents: {e}")))?,
        );
        if agents.is_empty() {
            tracing::warn!(file = %agents_file.display(),
                "no agents yet: every request is refused until `airlock agents add` creates one");
        }
        let broker = Broker::new(BrokerSettings::from(&config.credentials))
            .await
            .counted(metrics.sessions_total.clone());
        // Google's token service is reached with the upstream client's trust: the public
        // roots plus `upstream.ca_file` (a TLS-inspecting egress, a private endpoint's CA).
        let extra = match &ca_file {
            Some(path) => load_pem_certs(path)?,
            None => Vec::new(),
        };
        let google = GoogleBroker::new(
            GoogleSettings::from(&config.credentials.google),
            tls::client_config(&extra)?,
        )
        .await
        .map_err(|e| ServerError::Config(format!("credentials.google: {e}")))?
        .counted(metrics.google_tokens_total.clone());
        // The AWS catalog (~50 ms, ~45 MiB) loads now rather than inside the first request,
        // where it would stall a runtime worker and that request.
        crate::cloud::aws::catalog::catalog();
        let audit = &config.audit;
        let signer = crate::audit::signer(&config.resolve(&audit.key_file), &audit.origin, true)
            .map_err(|e| ServerError::Config(format!("audit key: {e}")))?;
        let audit = Arc::new(
            AuditLog::open(
                AuditSettings {
                    file: config.resolve(&audit.file),
                    origin: audit.origin.clone(),
                    checkpoint_every: audit.checkpoint_every,
                    checkpoint_interval: audit.checkpoint_interval,
                },
                signer,
            )
            .map_err(|e| ServerError::Config(e.to_string()))?,
        );
        let approvers = Approvers::new(config.approvals.approvers.iter().map(|a| Approver {
            name: a.name.clone(),
            groups: a.groups.clone(),
            token_sha256: a.token_sha256.clone(),
            slack_user: a.slack_user.clone(),
            teams_aad_object_id: a.teams_aad_object_id.clone(),
        }));
        let store = Store::open(&config.resolve(&config.approvals.db))
            .map_err(|e| ServerError::Config(format!("approvals store: {e}")))?;
        let approvals = Arc::new(
            Approvals::new(store, approvers, Some(Arc::clone(&audit)))
                .counted(Arc::clone(&metrics)),
        );
        let rules = Arc::new(LiveRules::load(&config.rules_dir()).map_err(|e| {
            ServerError::Config(format!("rules (nothing is served without them):\n{e}"))
        })?);
        let pipeline = Pipeline::new(PipelineDeps {
            upstream,
            metrics: Arc::clone(&metrics),
            agents: Arc::clone(&agents),
            broker,
            google,
            google_token_lifetime: config.agents.google_token_lifetime,
            rules: Arc::clone(&rules),
            audit,
            approvals: Arc::clone(&approvals),
            body_idle_timeout: config.limits.body_idle_timeout,
            max_buffered_body: config.limits.max_buffered_body,
        });

        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind { addr, source })
        };
        let proxy_listener = bind(config.proxy.listen).await?;
        let control_listener = bind(config.control.listen).await?;

        let proxy = Arc::new(Proxy::new(
            policy,
            tls,
            pipeline,
            Arc::clone(&metrics),
            config.limits.clone(),
        ));
        let channels = Arc::new(
            Channels::new(
                &config.channels,
                config.channels_base_url(),
                |path| config.resolve(path),
                Arc::clone(&approvals),
                Arc::clone(&metrics),
            )
            .map_err(|e| ServerError::Config(format!("channels: {e}")))?,
        );
        let control = Arc::new(Control {
            metrics,
            health: Arc::new(Health::default()),
            approvals,
            channels,
        });
        let watched = Watched { agents, rules };
        Ok(Server {
            proxy,
            control,
            proxy_listener,
            control_listener,
            watched,
            drain_timeout: config.shutdown.drain_timeout,
        })
    }

    pub fn proxy_addr(&self) -> std::io::Result<SocketAddr> {
        self.proxy_listener.local_addr()
    }

    pub fn control_addr(&self) -> std::io::Result<SocketAddr> {
        self.control_listener.local_addr()
    }

    /// Serve until `shutdown` is cancelled; then `/readyz` turns 503, the proxy stops
    /// accepting and drains. Returns how many connections the drain deadline cut.
    pub async fn run(self, shutdown: CancellationToken) -> usize {
        let stop_control = CancellationToken::new();
        let control = tokio::spawn(
            Arc::clone(&self.control).serve(self.control_listener, stop_control.clone()),
        );
        tokio::spawn(reload::watch(
            self.watched.agents.path().to_path_buf(),
            Arc::clone(&self.watched.agents),
            self.control.metrics.reloads_total.clone(),
            Arc::clone(&self.control.health),
            stop_control.clone(),
        ));
        tokio::spawn(reload::watch(
            self.watched.rules.dir().to_path_buf(),
            Arc::clone(&self.watched.rules),
            self.control.metrics.reloads_total.clone(),
            Arc::clone(&self.control.health),
            stop_control.clone(),
        ));
        tokio::spawn(Arc::clone(&self.control.approvals).upkeep(stop_control.clone()));
        self.control.channels.start(&stop_control);
        let health = Arc::clone(&self.control.health);
        let draining = shutdown.clone();
        tokio::spawn(async move {
            draining.cancelled().await;
            health.set_draining();
        });
        let cut = self
            .proxy
            .run(self.proxy_listener, shutdown, self.drain_timeout)
            .await;
        stop_control.cancel();
        let _ = control.await;
        cut
    }
}

/// Every intercepted suffix must lie inside the CA's NameConstraints, or agents would
/// reject every certificate minted for it: fail at start-up, not per request.
fn check_coverage(
    ca: &CertificateAuthority,
    intercepted: &[HostSuffix],
    dir: &std::path::Path,
) -> Result<(), ServerError> {
    let permitted: Vec<HostSuffix> = ca
        .permitted()
        .iter()
        .filter_map(|p| HostSuffix::parse(p).ok())
        .collect();
    for suffix in intercepted {
        if !permitted.iter().any(|p| p.matches(suffix.as_str())) {
            return Err(ServerError::CaCoverage {
                dir: dir.display().to_string(),
                suffix: suffix.to_string(),
                permitted: ca.permitted().join(", "),
            });
        }
    }
    Ok(())
}

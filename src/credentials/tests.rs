//! The shared per-agent cache, with a fetch that counts its calls: single flight, refresh,
//! identity changes, failure backoff (the failure's time moved back rather than slept
//! through), counting.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

#[derive(Debug)]
struct Fake {
    serial: usize,
    expiration: SystemTime,
    role: String,
}

impl Expiring for Fake {
    fn expiration(&self) -> SystemTime {
        self.expiration
    }
}

fn agent(role: &str) -> Agent {
    Agent {
        name: "ci".into(),
        owner: "dev@example.com".into(),
        role: Some(role.into()),
        account: None,
        gcp_service_account: None,
        gcp_project: None,
        labels: BTreeMap::new(),
        access_key_id: "AIRLEXAMPLE000000000".into(),
        created: "2026-01-01T00:00:00Z".into(),
    }
}

/// A fetch that counts its calls and yields (so concurrent callers really overlap).
struct Source {
    calls: AtomicUsize,
    lifetime: Duration,
}

impl Source {
    fn new(lifetime: Duration) -> Self {
        Source {
            calls: AtomicUsize::new(0),
            lifetime,
        }
    }

    async fn fetch(&self, agent: &Agent) -> Result<Fake, CredentialsError> {
        let serial = self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        Ok(Fake {
            serial,
            expiration: SystemTime::now() + self.lifetime,
            role: agent.role.clone().unwrap_or_default(),
        })
    }

    async fn fail(&self, agent: &Agent) -> Result<Fake, CredentialsError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(CredentialsError::Unavailable {
            agent: agent.name.clone(),
            principal: Principal::Role(agent.role.clone().unwrap_or_default()),
            message: "down".into(),
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

const HOUR: Duration = Duration::from_secs(3600);

async fn get(cache: &Cache<Fake>, source: &Source, agent: &Agent) -> Arc<Fake> {
    cache
        .get(
            agent,
            |f| Some(&f.role) == agent.role.as_ref(),
            source.fetch(agent),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn concurrent_callers_of_one_agent_share_one_fetch() {
    let cache = Cache::new(Duration::from_secs(300));
    let source = Source::new(HOUR);
    let agent = agent("r");
    let all = futures_util::future::join_all((0..16).map(|_| get(&cache, &source, &agent))).await;
    assert_eq!(source.calls(), 1);
    assert!(all.iter().all(|f| Arc::ptr_eq(f, &all[0])));
}

#[tokio::test]
async fn a_credential_is_reused_until_refresh_before_its_expiry() {
    let source = Source::new(Duration::from_secs(600));
    let agent = agent("r");

    let relaxed = Cache::new(Duration::from_secs(300));
    let a = get(&relaxed, &source, &agent).await;
    let b = get(&relaxed, &source, &agent).await;
    assert_eq!((a.serial, b.serial), (0, 0));

    // 10 minutes left is within a 20-minute refresh window: fetched again.
    let eager = Cache::new(Duration::from_secs(1200));
    let c = get(&eager, &source, &agent).await;
    let d = get(&eager, &source, &agent).await;
    assert_eq!((c.serial, d.serial), (1, 2));
}

#[tokio::test]
async fn an_agent_whose_identity_changed_never_gets_the_old_credential() {
    let cache = Cache::new(Duration::from_secs(300));
    let source = Source::new(HOUR);
    let first = get(&cache, &source, &agent("old")).await;
    let second = get(&cache, &source, &agent("new")).await;
    assert_eq!(first.role, "old");
    assert_eq!(second.role, "new");
    assert_eq!(source.calls(), 2);
}

#[tokio::test]
async fn a_failure_is_answered_from_memory_for_the_backoff_then_retried() {
    let mut cache = Cache::new(Duration::from_secs(300));
    let fetches =
        prometheus::IntCounterVec::new(prometheus::Opts::new("fetches_total", "test"), &["result"])
            .unwrap();
    cache.fetches = Some(fetches.clone());
    let source = Source::new(HOUR);
    let ci = agent("r");

    let first = cache.get(&ci, |_| true, source.fail(&ci)).await;
    assert!(first.unwrap_err().is_transient());
    let again = cache.get(&ci, |_| true, source.fail(&ci)).await;
    assert!(again.is_err());
    assert_eq!(
        source.calls(),
        1,
        "a caller within the backoff called again"
    );

    // The backoff has passed.
    {
        let slot = Arc::clone(&*cache.slots.get("ci").unwrap());
        let mut state = slot.lock().await;
        let at = &mut state.failed.as_mut().unwrap().0;
        *at = at.checked_sub(FAILURE_BACKOFF).unwrap();
    }
    let retried = cache.get(&ci, |_| true, source.fail(&ci)).await;
    assert!(retried.is_err());
    assert_eq!(source.calls(), 2, "no retry after the backoff");

    // The same agent with another role is not answered with the old role's failure.
    let edited = agent("other");
    let fresh = get(&cache, &source, &edited).await;
    assert_eq!(fresh.role, "other");
    assert_eq!(source.calls(), 3);
    assert_eq!(fetches.with_label_values(&["error"]).get(), 2);
    assert_eq!(fetches.with_label_values(&["ok"]).get(), 1);
}

#[test]
fn errors_read_well_and_only_unavailable_is_transient() {
    let unavailable = CredentialsError::Unavailable {
        agent: "ci".into(),
        principal: Principal::ServiceAccount("ci@p.iam.gserviceaccount.com".into()),
        message: "iamcredentials answered 503".into(),
    };
    assert_eq!(
        unavailable.to_string(),
        "cannot obtain credentials for agent `ci` (service account \
         ci@p.iam.gserviceaccount.com): iamcredentials answered 503"
    );
    assert!(unavailable.is_transient());
    let refused = CredentialsError::Impersonate {
        agent: "ci".into(),
        service_account: "ci@p.iam.gserviceaccount.com".into(),
        message: "denied".into(),
    };
    assert_eq!(
        refused.to_string(),
        "cannot impersonate service account ci@p.iam.gserviceaccount.com for agent `ci`: denied"
    );
    assert!(!refused.is_transient());
    let none = CredentialsError::NoIdentity {
        agent: "ci".into(),
        missing: "Google service account",
        cloud: "Google Cloud",
    };
    assert_eq!(
        none.to_string(),
        "agent `ci` has no Google service account, so Airlock cannot make its Google Cloud calls"
    );
    assert!(!none.is_transient());
}

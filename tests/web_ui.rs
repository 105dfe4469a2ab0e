//! The web page (`/ui`) through the binary. A reviewer in headless Chromium (Debian's
//! chromium driven by Playwright, `tests/ui/web_ui.py`) signs in, is refused with a wrong
//! token and as the agent's owner, denies a call with hostile parameters (shown as text)
//! and approves `aws iam attach-role-policy`, which the real AWS CLI was waiting on: it
//! completes against moto. Screenshots of every step are kept in `target/ui-artifacts/`.
//! Without a browser: forms without the session's CSRF token (or from another site)
//! change nothing, cookies and security headers are as documented, and `enabled: false`
//! hides the page.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};
use support::relay::CountingRelay;
use support::{Airlock, BASE_ENV, TestPki, upstream};

fn hash(token: &str) -> String {
    upstream::hex(&Sha256::digest(token.as_bytes()))
}

const BOB: &str = "airlock_bob-token-for-the-web-page-tests";
const OWNER: &str = "airlock_owner-token-for-the-web-page-tests";

fn approvers() -> String {
    format!(
        "approvals:\n  approvers:\n    - {{name: bob@example.com, groups: [security], token_sha256: {}}}\n    - {{name: {}, groups: [security], token_sha256: {}}}\n",
        hash(BOB),
        support::TEST_OWNER,
        hash(OWNER)
    )
}

/// Where a test's screenshots go: `target/ui-artifacts/<test>/`.
fn artifacts(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("ui-artifacts")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The approvals API as bob: the pending approvals.
async fn pending(airlock: &Airlock) -> Vec<serde_json::Value> {
    let response = reqwest::Client::new()
        .get(format!(
            "http://{}/v1/approvals?state=pending",
            airlock.control
        ))
        .bearer_auth(BOB)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    body["approvals"].as_array().unwrap().clone()
}

async fn approval(airlock: &Airlock, id: &str) -> serde_json::Value {
    let response = reqwest::Client::new()
        .get(format!("http://{}/v1/approvals/{id}", airlock.control))
        .bearer_auth(BOB)
        .send()
        .await
        .unwrap();
    response.json().await.unwrap()
}

/// Wait (bounded) until `count` approvals are pending.
async fn until_pending(airlock: &Airlock, count: usize) -> Vec<serde_json::Value> {
    for _ in 0..300 {
        let list = pending(airlock).await;
        if list.len() >= count {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{count} approvals never became pending\n{}",
        airlock.logs().join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn in_the_browser_a_reviewer_approves_and_the_clis_waiting_call_completes() {
    let rules = "defaults: {unmatched: allow, unclassified: deny}\nrules:\n  - {id: iam-policies, match: {action: 'iam:AttachRolePolicy'}, effect: approve, approvers: [security], hold: 120s, expires: 1h, message: Attaching a policy.}\n";
    let stack = support::aws::stack_with(Some(rules), &approvers()).await;
    stack.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "web-held",
        "--assume-role-policy-document",
        "{}",
    ]);
    let policy = stack.aws_json(&[
        "iam", "create-policy", "--policy-name", "web-held-policy", "--policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#,
    ]);
    let arn = policy["Policy"]["Arn"].as_str().unwrap().to_string();

    // The CLI's call is held until a reviewer decides (the hold outlasts the browser).
    let attach = stack.aws_command(
        stack.airlock.key(),
        &[
            "iam",
            "attach-role-policy",
            "--role-name",
            "web-held",
            "--policy-arn",
            &arn,
            "--cli-read-timeout",
            "200",
        ],
    );
    let cli = std::thread::spawn(move || {
        let mut attach = attach;
        attach.output().unwrap()
    });
    // A second call, with parameters and a reason that try to be markup.
    let hostile = {
        let airlock_client = stack.airlock.client(false);
        let request = stack.airlock.signed(
            airlock_client
                .post("https://iam.amazonaws.com/")
                .header("content-type", "application/x-www-form-urlencoded")
                .header(
                    "x-airlock-reason",
                    r#"<a href="https://evil.example/">click to approve</a>"#,
                )
                .body(
                    form_urlencoded::Serializer::new(String::new())
                        .append_pair("Action", "AttachRolePolicy")
                        .append_pair("Version", "2010-05-08")
                        .append_pair(
                            "RoleName",
                            "<script>window.__pwned=1;console.log('pwned')</script>",
                        )
                        .append_pair("PolicyArn", r#"<img src=x onerror="alert(1)">"#)
                        .finish(),
                ),
            "iam",
        );
        tokio::spawn(async move {
            let response = airlock_client.execute(request).await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        })
    };
    let list = until_pending(&stack.airlock, 2).await;
    let id_of = |role: &str| {
        list.iter()
            .find(|a| {
                a["call"]["params"]["RoleName"]
                    .as_str()
                    .unwrap()
                    .contains(role)
            })
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (attach_id, xss_id) = (id_of("web-held"), id_of("<script>"));

    let dir = artifacts("approve-in-the-browser");
    let spec = serde_json::json!({
        "base": format!("http://{}", stack.airlock.control),
        "bob": BOB,
        "owner": OWNER,
        "attach_id": attach_id,
        "xss_id": xss_id,
        "policy_arn": arn,
        "artifacts": dir,
    });
    let spec_path = stack.home.path().join("spec.json");
    std::fs::write(&spec_path, spec.to_string()).unwrap();
    let browser = tokio::task::spawn_blocking(move || {
        std::process::Command::new(support::python())
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ui/web_ui.py"))
            .arg(spec_path)
            .output()
            .expect("run tests/ui/web_ui.py (playwright from tests/run.sh)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&browser.stdout);
    println!("{stdout}");
    assert!(
        browser.status.success() && stdout.contains("passed, 0 failed"),
        "the reviewer's browser session failed (screenshots in {}):\n{stdout}\n{}",
        dir.display(),
        String::from_utf8_lossy(&browser.stderr)
    );
    assert!(std::fs::read_dir(&dir).unwrap().count() >= 10);

    // The CLI, held all along, completed: the policy is attached in moto.
    stack.assert_held_call_attached(cli, "web-held", &arn);
    let decided = approval(&stack.airlock, &attach_id).await;
    assert_eq!(decided["state"], "approved");
    assert_eq!(decided["votes"][0]["via"], "web");
    assert_eq!(decided["votes"][0]["reason"], "read-only policy");

    // The hostile call was denied, and the agent was told by whom and why.
    let (status, body) = hostile.await.unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("denied by bob@example.com: not this role"),
        "{body}"
    );

    let web = |result: &str, reason: &str| {
        format!(
            "airlock_channel_callbacks_total{{channel=\"web\",reason=\"{reason}\",result=\"{result}\"}}"
        )
    };
    for (result, reason, count) in [
        ("accepted", "approve", 1.0),
        ("accepted", "deny", 1.0),
        ("rejected", "self_approval", 1.0),
        ("rejected", "bad_token", 1.0),
    ] {
        assert_eq!(
            stack.airlock.metric(&web(result, reason)).await,
            count,
            "{result} {reason}"
        );
    }
}

/// A browser-less client of the web page: keeps cookies by hand, never follows redirects.
struct Visitor {
    base: String,
    client: reqwest::Client,
    cookies: Vec<(String, String)>,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> String {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The first hidden `csrf` field.
    fn csrf(&self) -> String {
        let at = self.body.find(r#"name="csrf" value=""#).unwrap() + 19;
        self.body[at..].split('"').next().unwrap().to_string()
    }
}

impl Visitor {
    fn new(airlock: &Airlock) -> Visitor {
        Visitor {
            base: format!("http://{}", airlock.control),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Vec::new(),
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Answer {
        let cookie = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let request = if cookie.is_empty() {
            request
        } else {
            request.header("cookie", cookie)
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        for set in headers.get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let (name, value) = set.split(';').next().unwrap().split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !value.is_empty() {
                self.cookies.push((name.to_string(), value.to_string()));
            }
        }
        Answer {
            status,
            headers,
            body: response.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Answer {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)], origin: Option<&str>) -> Answer {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish(),
            );
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        self.send(request).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn forms_without_the_sessions_csrf_token_or_from_another_site_change_nothing() {
    let pki = TestPki::new();
    let up = upstream::start_tls(&pki).await;
    let relay = CountingRelay::start(up).await;
    let config = format!(
        "upstream:\n  routes:\n    - host: \"*.amazonaws.com\"\n      to: https://{}\n{}channels:\n  web:\n    session_ttl: 1h\n    secure_cookie: true\n",
        relay.addr,
        approvers()
    );
    let rules = "defaults: {unmatched: allow, unclassified: allow}\nrules:\n  - {id: bucket-deletes, match: {action: s3:DeleteBucket}, effect: approve, approvers: [security], hold: 1s, expires: 1h}\n";
    let airlock = Airlock::start_with_rules(&pki, &config, &BASE_ENV, Some(rules));
    let response = airlock.delete_bucket().await;
    assert_eq!(response.status().as_u16(), 403);
    let id = pending(&airlock).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let own = format!("http://{}", airlock.control);
    let mut visitor = Visitor::new(&airlock);

    // Signed out: to the sign-in form, which is framed by nothing and cached nowhere.
    let answer = visitor.get("/ui").await;
    assert_eq!(
        (answer.status, answer.header("location")),
        (303, "/ui/sign-in".into())
    );
    let page = format!("/ui/approvals/{id}");
    let answer = visitor.get(&page).await;
    assert_eq!(
        (answer.status, answer.header("location")),
        (303, format!("/ui/sign-in?next={page}"))
    );
    let form = visitor.get("/ui/sign-in").await;
    assert_eq!(form.status, 200);
    let csp = form.header("content-security-policy");
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("frame-ancestors 'none'")
            && !csp.contains("unsafe-inline")
            && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(form.header("x-frame-options"), "DENY");
    assert_eq!(form.header("referrer-policy"), "no-referrer");
    assert_eq!(form.header("cache-control"), "no-store");
    assert!(!form.body.contains("<script"));
    let sign_in_csrf = form.csrf();

    // Sign-in: without the form's cookie, with a wrong token, from another site: refused.
    let mut stranger = Visitor::new(&airlock);
    let answer = stranger
        .post(
            "/ui/sign-in",
            &[("csrf", &sign_in_csrf), ("token", BOB)],
            None,
        )
        .await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert!(stranger.cookies.iter().all(|(n, _)| n != "airlock_session"));
    let answer = visitor
        .post(
            "/ui/sign-in",
            &[("csrf", &sign_in_csrf), ("token", BOB)],
            Some("https://evil.example"),
        )
        .await;
    assert_eq!(answer.status, 403);
    let answer = visitor
        .post(
            "/ui/sign-in",
            &[("csrf", &sign_in_csrf), ("token", "airlock_wrong")],
            Some(&own),
        )
        .await;
    assert_eq!(answer.status, 401);
    assert!(answer.body.contains("That is not an approver token"));

    // Signed in: an HttpOnly, SameSite=Strict, Secure cookie for /ui only.
    let csrf = answer.csrf();
    let answer = visitor
        .post(
            "/ui/sign-in",
            &[("csrf", &csrf), ("token", BOB), ("next", &page)],
            Some(&own),
        )
        .await;
    assert_eq!(
        (answer.status, answer.header("location")),
        (303, page.clone()),
        "{}",
        answer.body
    );
    let set = answer.header("set-cookie");
    let session = set
        .lines()
        .find(|c| c.starts_with("airlock_session="))
        .unwrap();
    let id_len = session.split(';').next().unwrap().len() - "airlock_session=".len();
    assert!(id_len >= 43, "{session}");
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/ui",
        "Max-Age=3600",
        "Secure",
    ] {
        assert!(
            session.split("; ").any(|a| a == attribute),
            "{attribute} in {session}"
        );
    }
    let list = visitor.get("/ui").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains(&format!("/ui/approvals/{id}")));
    let csrf = list.csrf();

    // Votes without the session's CSRF token, with a wrong one, or from another site.
    let vote = page;
    let wrong = "x".repeat(43);
    for (form, origin, status) in [
        (vec![("decision", "approve")], None, 403),
        (
            vec![("decision", "approve"), ("csrf", wrong.as_str())],
            None,
            403,
        ),
        (
            vec![("decision", "approve"), ("csrf", csrf.as_str())],
            Some("https://evil.example"),
            403,
        ),
        (
            vec![("decision", "approve"), ("csrf", csrf.as_str())],
            Some("null"),
            403,
        ),
        (
            vec![
                ("decision", "deny"),
                ("csrf", csrf.as_str()),
                ("reason", " "),
            ],
            None,
            400,
        ),
    ] {
        let answer = visitor.post(&vote, &form, origin).await;
        assert_eq!(
            answer.status, status,
            "{form:?} {origin:?}: {}",
            answer.body
        );
        assert!(
            answer.body.contains("Nothing was changed")
                || answer.body.contains("A denial needs a reason"),
            "{}",
            answer.body
        );
    }
    let unchanged = approval(&airlock, &id).await;
    assert_eq!(unchanged["state"], "pending");
    assert_eq!(unchanged["votes"], serde_json::json!([]));

    // Signed out, the old cookie is worth nothing, even with the right CSRF token.
    let old = visitor.cookies.clone();
    let answer = visitor.post("/ui/sign-out", &[("csrf", &csrf)], None).await;
    assert_eq!(answer.status, 303);
    assert!(answer.header("set-cookie").contains("airlock_session=;"));
    visitor.cookies = old;
    let answer = visitor
        .post(
            &vote,
            &[("decision", "approve"), ("csrf", csrf.as_str())],
            None,
        )
        .await;
    assert_eq!(answer.status, 401);
    assert_eq!(visitor.get("/ui").await.status, 303);
    assert_eq!(approval(&airlock, &id).await["state"], "pending");
    assert_eq!(relay.connections(), 0, "nothing reached the upstream");

    let rejected = |reason: &str| {
        format!(
            "airlock_channel_callbacks_total{{channel=\"web\",reason=\"{reason}\",result=\"rejected\"}}"
        )
    };
    for (reason, count) in [
        ("csrf", 3.0),
        ("cross_site", 3.0),
        ("bad_token", 1.0),
        ("bad_request", 1.0),
        ("unauthenticated", 1.0),
    ] {
        assert_eq!(airlock.metric(&rejected(reason)).await, count, "{reason}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_web_page_off_ui_is_not_found() {
    let airlock = Airlock::start(
        &TestPki::new(),
        &format!("{}channels:\n  web:\n    enabled: false\n", approvers()),
    );
    let mut visitor = Visitor::new(&airlock);
    for path in ["/ui", "/ui/sign-in", "/ui/style.css"] {
        assert_eq!(visitor.get(path).await.status, 404, "{path}");
    }
    let answer = visitor.post("/ui/sign-in", &[("token", BOB)], None).await;
    assert_eq!(answer.status, 404);
    assert_eq!(airlock.control_get("/healthz").await.0, 200);
}

impl Visitor {
    /// A visitor signed in with `token` through the sign-in form.
    async fn signed_in(airlock: &Airlock, token: &str) -> Visitor {
        let mut visitor = Visitor::new(airlock);
        let own = visitor.base.clone();
        let form = visitor.get("/ui/sign-in").await;
        let answer = visitor
            .post(
                "/ui/sign-in",
                &[("csrf", &form.csrf()), ("token", token)],
                Some(&own),
            )
            .await;
        assert_eq!(answer.status, 303, "{}", answer.body);
        visitor
    }

    /// Vote on approval `id` from its page, as a reviewer in a browser would submit it.
    async fn vote(&mut self, id: &str, decision: &str, reason: Option<&str>) -> Answer {
        let page = format!("/ui/approvals/{id}");
        let detail = self.get(&page).await;
        assert_eq!(detail.status, 200, "{}", detail.body);
        let csrf = detail.csrf();
        let mut form = vec![("decision", decision), ("csrf", csrf.as_str())];
        if let Some(reason) = reason {
            form.push(("reason", reason));
        }
        let own = self.base.clone();
        self.post(&page, &form, Some(&own)).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn on_the_web_page_a_deny_after_an_approval_wins_and_the_agent_hears_why() {
    const CAROL: &str = "airlock_carol-token-for-the-web-page-tests";
    let pki = TestPki::new();
    let up = upstream::start_tls(&pki).await;
    let relay = CountingRelay::start(up).await;
    let config = format!(
        "upstream:\n  routes:\n    - host: \"*.amazonaws.com\"\n      to: https://{}\n{}    - {{name: carol@example.com, groups: [security], token_sha256: {}}}\n",
        relay.addr,
        approvers(),
        hash(CAROL)
    );
    let rules = "defaults: {unmatched: allow, unclassified: allow}\nrules:\n  - {id: bucket-deletes, match: {action: s3:DeleteBucket}, effect: approve, approvers: [security], quorum: 2, hold: 1s, expires: 1h}\n";
    let airlock = Airlock::start_with_rules(&pki, &config, &BASE_ENV, Some(rules));
    assert_eq!(airlock.delete_bucket().await.status().as_u16(), 403);
    let id = until_pending(&airlock, 1).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let mut bob = Visitor::signed_in(&airlock, BOB).await;
    let answer = bob.vote(&id, "approve", None).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(approval(&airlock, &id).await["state"], "pending");
    let mut carol = Visitor::signed_in(&airlock, CAROL).await;
    let answer = carol
        .vote(&id, "deny", Some("that bucket holds the audit trail"))
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let page = carol.get(&format!("/ui/approvals/{id}")).await;
    assert!(
        page.body
            .contains("You denied this call. It is now denied."),
        "{}",
        page.body
    );
    let decided = approval(&airlock, &id).await;
    assert_eq!(decided["state"], "denied");
    assert_eq!(decided["votes"][0]["approve"], true);
    assert_eq!(decided["votes"][1]["approve"], false);
    assert_eq!(decided["votes"][1]["via"], "web");

    let response = airlock.delete_bucket().await;
    assert_eq!(response.status().as_u16(), 403);
    let body = response.text().await.unwrap();
    assert!(
        body.contains(&format!(
            "Approval {id} for this call was denied by carol@example.com: that bucket holds the audit trail"
        )),
        "{body}"
    );
    assert_eq!(relay.connections(), 0, "nothing was forwarded");
}

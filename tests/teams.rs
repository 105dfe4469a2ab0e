//! Microsoft Teams through the real binary, against a local Bot Framework
//! (`support::fake_teams`: token issuer, OpenID metadata + JWKS with RSA keys made here,
//! and a connector that records activities): a held call posts an Adaptive Card with the
//! whole context; only a correctly signed invoke from a permitted approver decides it;
//! every forged token is refused and changes nothing; the card follows every change; an
//! outage of the connector approves nothing and is retried. The last test drives the real
//! AWS CLI against moto.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
// Only this suite uses the fake Bot Framework (kept out of `support` for the others).
#[path = "support/fake_teams.rs"]
mod fake_teams;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use fake_teams::{FakeTeams, Recorded, Signer};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::relay::CountingRelay;
use support::{Airlock, BASE_ENV, TestPki, upstream};

const BOB_AAD: &str = "00000000-0000-0000-0000-00000000b0b0";
const OWNER_AAD: &str = "00000000-0000-0000-0000-0000000000e1";
const EVE_AAD: &str = "00000000-0000-0000-0000-00000000e7e0";
const CAROL_AAD: &str = "00000000-0000-0000-0000-0000000ca201";
const BOB_TOKEN: &str = "bob-api-token";
const CONVERSATION: &str = "19:security@thread.tacv2";
/// What the agent says, full of Markdown, a mention and a line break.
const HOSTILE_REASON: &str =
    "cleanup [Approve now](https://evil.example/) **urgent** <at>bob</at>\t- done";

struct Setup {
    fake: FakeTeams,
    airlock: Airlock,
    relay: CountingRelay,
    _secrets: tempfile::TempDir,
}

fn password_file() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("teams-app-password");
    std::fs::write(&path, fake_teams::APP_PASSWORD).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (dir, path.display().to_string())
}

fn approvers() -> String {
    let hash = |t: &str| support::upstream::hex(&Sha256::digest(t.as_bytes()));
    format!(
        "approvals:\n  approvers:\n    - {{name: bob@example.com, groups: [security], token_sha256: {}, teams_aad_object_id: {BOB_AAD}}}\n    - {{name: {}, groups: [security], teams_aad_object_id: {OWNER_AAD}}}\n    - {{name: eve@example.com, groups: [finance], teams_aad_object_id: {EVE_AAD}}}\n    - {{name: carol@example.com, groups: [security], teams_aad_object_id: {CAROL_AAD}}}\n",
        hash(BOB_TOKEN),
        support::TEST_OWNER,
    )
}

/// Airlock with Teams (and an S3 upstream behind a counting relay); deleting a bucket
/// needs one approval from `security`.
async fn setup(hold: &str, expires: &str) -> Setup {
    setup_quorum(hold, expires, 1).await
}

/// As [`setup`], with `quorum` approvals needed.
async fn setup_quorum(hold: &str, expires: &str, quorum: u32) -> Setup {
    let fake = FakeTeams::start().await;
    let pki = TestPki::new();
    let up = upstream::start_tls(&pki).await;
    let relay = CountingRelay::start(up).await;
    let (secrets, password) = password_file();
    let config = format!(
        "upstream:\n  routes:\n    - host: \"*.amazonaws.com\"\n      to: https://{}\n{}{}",
        relay.addr,
        approvers(),
        fake.config(&password, &format!("{{security: \"{CONVERSATION}\"}}")),
    );
    let rules = format!(
        "defaults: {{unmatched: allow, unclassified: allow}}\nrules:\n  - id: bucket-deletes\n    match: {{action: s3:DeleteBucket}}\n    effect: approve\n    approvers: [security]\n    quorum: {quorum}\n    hold: {hold}\n    expires: {expires}\n    message: Deleting a bucket.\n"
    );
    let airlock = Airlock::start_with_rules(&pki, &config, &BASE_ENV, Some(&rules));
    Setup {
        fake,
        airlock,
        relay,
        _secrets: secrets,
    }
}

impl Setup {
    /// DELETE the bucket as the agent: (status, body).
    async fn delete_bucket(&self) -> (u16, String) {
        let client = self.airlock.client(false);
        let response = self
            .airlock
            .send(
                &client,
                client
                    .delete("https://doomed.s3.amazonaws.com/")
                    .header("x-airlock-reason", HOSTILE_REASON),
                "s3",
            )
            .await;
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// The approval, as the API shows it.
    async fn approval(&self, id: &str) -> Value {
        self.airlock.approval(id, BOB_TOKEN).await
    }

    async fn callbacks(&self, result: &str, reason: &str) -> f64 {
        self.airlock
            .channel_callbacks("teams", result, reason)
            .await
    }

    async fn messages(&self, result: &str) -> f64 {
        self.airlock.channel_messages("teams", result).await
    }

    /// The first card posted, once it is there.
    async fn posted_card(&self) -> Recorded {
        self.fake.posted().await
    }

    /// Click `verb` as `aad` with a genuine token: (status, body).
    async fn click(&self, aad: &str, verb: &str, data: Value) -> (u16, Value) {
        let token = self
            .fake
            .signer
            .sign(&fake_teams::claims(&self.fake.service_url()));
        self.fake
            .invoke(
                self.airlock.control,
                Some(&token),
                &self.fake.action(aad, verb, data),
            )
            .await
    }
}

fn approval_id(card: &Recorded) -> String {
    card.card()["actions"][0]["data"]["approval"]
        .as_str()
        .expect("the Approve button names the approval")
        .to_string()
}

fn texts_contain(texts: &[String], wanted: &str) -> bool {
    texts.iter().any(|t| t.contains(wanted))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_call_posts_the_full_context_and_refusals_change_nothing() {
    let setup = setup("1s", "1h").await;
    let (status, body) = setup.delete_bucket().await;
    assert_eq!(status, 403, "{body}");
    let posted = setup.posted_card().await;
    assert_eq!(posted.conversation, CONVERSATION);
    let card = posted.card();
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.4");
    let id = approval_id(&posted);
    assert!(body.contains(&id), "{body}");

    // The whole context: agent and owner, the call, its action with its access level,
    // resources, rule and message, the agent's reason, where, expiry, progress.
    let texts = posted.texts();
    for wanted in [
        "test-agent (owner dev@example.com)",
        "aws s3 DeleteBucket",
        "s3:DeleteBucket (Write)",
        "arn:aws:s3:::doomed",
        "Bucket = doomed",
        "bucket-deletes: Deleting a bucket.",
        "region us-east-1",
        "0 of 1 approval from security",
        "Pending: 0 of 1 approval from security",
    ] {
        assert!(texts_contain(&texts, wanted), "no {wanted:?} in {texts:#?}");
    }
    let expires = setup.approval(&id).await["expires_at"].as_i64().unwrap();
    let expiry = time::OffsetDateTime::from_unix_timestamp(expires)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert!(
        texts_contain(&texts, &expiry),
        "no expiry {expiry} in {texts:#?}"
    );
    // The agent's Markdown is shown as plain text (a TextRun), never as a link.
    let reason_shown = HOSTILE_REASON.replace('\t', " ");
    let runs = text_runs(card);
    assert!(runs.contains(&reason_shown), "{runs:#?}");
    let mut urls = Vec::new();
    fake_teams::collect(card, "url", &mut urls);
    assert!(
        urls.iter()
            .all(|u| *u == format!("https://airlock.example.com/ui/approvals/{id}")),
        "{urls:?}"
    );
    assert_eq!(posted.buttons(), ["Approve", "Deny", "Open in Airlock"]);
    let input = card["body"].as_array().unwrap().last().unwrap();
    assert_eq!(
        (&input["type"], &input["id"], &input["isRequired"]),
        (&json!("Input.Text"), &json!("reason"), &json!(true)),
        "the deny reason is asked for in the card"
    );

    // Refusals: explained to the reviewer, counted, and nothing changes.
    let data = json!({"approval": id});
    let refusals = [
        (OWNER_AAD, "approve", data.clone(), 403, "self_approval"),
        (EVE_AAD, "approve", data.clone(), 403, "not_in_group"),
        (
            "11111111-2222-3333-4444-555555555555",
            "approve",
            data.clone(),
            403,
            "unknown_user",
        ),
        (BOB_AAD, "deny", data.clone(), 400, "no_reason"),
        (
            BOB_AAD,
            "deny",
            json!({"approval": id, "reason": "   "}),
            400,
            "no_reason",
        ),
        (
            BOB_AAD,
            "approve",
            json!({"approval": "apr-nope"}),
            404,
            "not_found",
        ),
    ];
    for (aad, verb, data, code, reason) in refusals {
        let (status, body) = setup.click(aad, verb, data).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["statusCode"], code, "{reason}: {body}");
        assert_eq!(body["type"], "application/vnd.microsoft.error", "{body}");
        assert_eq!(body["value"]["code"], reason, "{body}");
        assert!(!body["value"]["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(setup.callbacks("rejected", "no_reason").await, 2.0);
    assert_eq!(setup.callbacks("rejected", "self_approval").await, 1.0);
    let approval = setup.approval(&id).await;
    assert_eq!(approval["state"], "pending");
    assert_eq!(approval["votes"], json!([]));
    assert_eq!(
        setup.fake.recorded().len(),
        1,
        "no card update for refusals"
    );
    assert_eq!(setup.relay.connections(), 0);

    // Bob denies with a reason: the answer is the decided card; the posted one is updated.
    let (status, body) = setup
        .click(
            BOB_AAD,
            "deny",
            json!({"approval": id, "reason": "not **this** bucket"}),
        )
        .await;
    assert_eq!((status, &body["statusCode"]), (200, &json!(200)), "{body}");
    assert_eq!(body["type"], "application/vnd.microsoft.card.adaptive");
    assert!(
        text_runs(&body["value"])
            .contains(&"Denied by bob@example.com: not **this** bucket".to_string())
    );
    let update = setup.fake.update(1).await;
    assert_eq!(update.activity, posted.activity);
    assert_eq!(
        update.buttons(),
        ["Open in Airlock"],
        "no buttons once decided"
    );
    assert!(texts_contain(&update.texts(), "Airlock: denied"));
    assert!(
        text_runs(update.card())
            .contains(&"Denied by bob@example.com: not **this** bucket".to_string())
    );
    let approval = setup.approval(&id).await;
    assert_eq!(approval["state"], "denied");
    assert_eq!(approval["votes"][0]["via"], "teams");
    assert_eq!(setup.callbacks("accepted", "deny").await, 1.0);
    let (status, body) = setup.delete_bucket().await;
    assert_eq!(status, 403);
    assert!(
        body.contains("denied by bob@example.com: not **this** bucket"),
        "{body}"
    );

    // A click on a decided approval is refused.
    let (_, body) = setup
        .click(BOB_AAD, "approve", json!({"approval": id}))
        .await;
    assert_eq!(body["value"]["code"], "decided", "{body}");
    assert_eq!(setup.relay.connections(), 0, "nothing reached S3");
}

/// Every `TextRun` text (what Teams shows as plain text).
fn text_runs(card: &Value) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if map.get("type") == Some(&json!("TextRun"))
                    && let Some(text) = map.get("text").and_then(Value::as_str)
                {
                    out.push(text.to_string());
                }
                map.values().for_each(|v| walk(v, out));
            }
            Value::Array(list) => list.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(card, &mut out);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_tokens_are_refused_and_change_nothing() {
    let setup = setup("1s", "1h").await;
    setup.delete_bucket().await;
    let posted = setup.posted_card().await;
    let id = approval_id(&posted);
    let fake = &setup.fake;
    let service = fake.service_url();
    let approve = fake.action(BOB_AAD, "approve", json!({"approval": id}));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let with = |key: &str, value: Value| {
        let mut claims = fake_teams::claims(&service);
        claims[key] = value;
        claims
    };
    let other = Signer::generate("key-1");
    let stranger = Signer::generate("key-9");
    let forged: Vec<(&str, Option<String>, Value)> = vec![
        ("no token", None, approve.clone()),
        ("not a JWT", Some("garbage".into()), approve.clone()),
        (
            "another key, same kid",
            Some(other.sign(&fake_teams::claims(&service))),
            approve.clone(),
        ),
        (
            "unknown kid",
            Some(stranger.sign(&fake_teams::claims(&service))),
            approve.clone(),
        ),
        (
            "alg none",
            Some(fake_teams::unsigned("key-1", &fake_teams::claims(&service))),
            approve.clone(),
        ),
        (
            "wrong issuer",
            Some(
                fake.signer
                    .sign(&with("iss", json!("https://sts.windows.net/x/"))),
            ),
            approve.clone(),
        ),
        (
            "wrong audience",
            Some(fake.signer.sign(&with("aud", json!("some-other-bot")))),
            approve.clone(),
        ),
        (
            "expired",
            Some(fake.signer.sign(&with("exp", json!(now - 900)))),
            approve.clone(),
        ),
        (
            "not yet valid",
            Some(fake.signer.sign(&with("nbf", json!(now + 900)))),
            approve.clone(),
        ),
        (
            "no serviceurl",
            Some(fake.signer.sign(&{
                let mut c = fake_teams::claims(&service);
                c.as_object_mut().unwrap().remove("serviceurl");
                c
            })),
            approve.clone(),
        ),
        (
            "serviceurl mismatch",
            Some(
                fake.signer
                    .sign(&with("serviceurl", json!("https://smba.evil.example/"))),
            ),
            approve.clone(),
        ),
        (
            "activity from another service",
            Some(fake.signer.sign(&fake_teams::claims(&service))),
            {
                let mut a = approve.clone();
                a["serviceUrl"] = json!("https://smba.evil.example/");
                a
            },
        ),
        (
            "key not endorsed for the channel",
            Some(fake.signer.sign(&fake_teams::claims(&service))),
            {
                let mut a = approve.clone();
                a["channelId"] = json!("webchat");
                a
            },
        ),
    ];
    let count = forged.len();
    for (case, token, activity) in forged {
        let (status, body) = fake
            .invoke(setup.airlock.control, token.as_deref(), &activity)
            .await;
        assert_eq!(status, 401, "{case}: {body}");
        assert_eq!(body, json!({"error": "unauthorized"}), "{case}");
    }
    assert_eq!(
        setup.callbacks("rejected", "unauthenticated").await,
        count as f64
    );
    let approval = setup.approval(&id).await;
    assert_eq!(approval["state"], "pending");
    assert_eq!(approval["votes"], json!([]));
    assert_eq!(fake.recorded().len(), 1, "the card was not touched");
    assert_eq!(setup.relay.connections(), 0);
    // Unknown kids fetch the keys again, but not on every forged token: a flood of them
    // costs at most one fetch per pause.
    let flood: Vec<_> = (0..100)
        .map(|i| {
            let token = stranger.sign_as(&format!("kid-{i}"), &fake_teams::claims(&service));
            let approve = approve.clone();
            let control = setup.airlock.control;
            let fake = &fake;
            async move { fake.invoke(control, Some(&token), &approve).await.0 }
        })
        .collect();
    let statuses = futures_util::future::join_all(flood).await;
    assert!(statuses.iter().all(|s| *s == 401));
    assert!(fake.jwks_fetches() <= 3, "{} fetches", fake.jwks_fetches());

    // A rotated key is picked up (once the refetch pause has passed).
    let rotated = Signer::generate("key-2");
    fake.publish(&rotated);
    tokio::time::sleep(Duration::from_millis(5200)).await;
    let token = rotated.sign(&fake_teams::claims(&service));
    let (status, body) = fake
        .invoke(setup.airlock.control, Some(&token), &approve)
        .await;
    assert_eq!((status, &body["statusCode"]), (200, &json!(200)), "{body}");
    assert_eq!(setup.approval(&id).await["state"], "approved");
    assert!(text_runs(&body["value"]).contains(&"Approved by bob@example.com".to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connector_outage_approves_nothing_and_the_card_arrives_later() {
    let setup = setup("1s", "1h").await;
    setup.fake.set_down(true);
    let (status, body) = setup.delete_bucket().await;
    assert_eq!(status, 403, "{body}");
    for _ in 0..100 {
        if setup.fake.refused() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(setup.fake.refused() >= 2, "delivery was not retried");
    assert!(setup.messages("retried").await >= 1.0);
    assert_eq!(setup.messages("sent").await, 0.0);
    let (status, _) = setup.delete_bucket().await;
    assert_eq!(status, 403, "still held: nothing approved it");
    assert_eq!(setup.relay.connections(), 0);

    setup.fake.set_down(false);
    let posted = setup.posted_card().await;
    let id = approval_id(&posted);
    assert_eq!(setup.approval(&id).await["state"], "pending");
    for _ in 0..50 {
        if setup.messages("sent").await >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(setup.messages("sent").await, 1.0);
    assert_eq!(setup.fake.token_requests(), 1, "the bot token is cached");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_approval_is_shown_as_expired() {
    let setup = setup("1s", "2s").await;
    setup.delete_bucket().await;
    let posted = setup.posted_card().await;
    let update = setup.fake.update(1).await;
    assert_eq!(update.activity, posted.activity);
    assert_eq!(update.buttons(), ["Open in Airlock"]);
    assert!(text_runs(update.card()).contains(&"Expired undecided".to_string()));
    let (_, body) = setup
        .click(
            BOB_AAD,
            "approve",
            json!({"approval": approval_id(&posted)}),
        )
        .await;
    assert_eq!(body["value"]["code"], "expired", "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_aws_cli_waits_while_a_teams_reviewer_approves_and_the_card_says_so() {
    let moto = support::moto::Moto::shared();
    let fake = FakeTeams::start().await;
    let (_secrets, password) = password_file();
    let config = format!(
        "upstream:\n  routes:\n    - host: \"*.amazonaws.com\"\n      to: {}\n{}{}",
        moto.url(),
        approvers(),
        fake.config(&password, &format!("{{security: \"{CONVERSATION}\"}}")),
    );
    let rules = "defaults: {unmatched: allow, unclassified: deny}\nrules:\n  - {id: iam-policies, match: {action: 'iam:AttachRolePolicy'}, effect: approve, approvers: [security], hold: 40s, expires: 1h, message: Attaching a policy.}\n";
    let airlock = Airlock::start_with_rules(&TestPki::new(), &config, &BASE_ENV, Some(rules));
    let home = tempfile::tempdir().unwrap();
    support::run_ok(airlock.aws_cli(
        home.path(),
        &[
            "iam",
            "create-role",
            "--role-name",
            "teams-e2e",
            "--assume-role-policy-document",
            "{}",
        ],
    ));
    let policy: Value = serde_json::from_str(&support::run_ok(airlock.aws_cli(home.path(), &[
        "iam", "create-policy", "--policy-name", "teams-e2e-policy", "--output", "json",
        "--policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#,
    ])))
    .unwrap();
    let arn = policy["Policy"]["Arn"].as_str().unwrap().to_string();

    // The CLI's call parks; the card arrives with what it would do.
    let held = std::thread::spawn({
        let command = airlock.aws_cli(
            home.path(),
            &[
                "iam",
                "attach-role-policy",
                "--role-name",
                "teams-e2e",
                "--policy-arn",
                &arn,
            ],
        );
        move || {
            let mut command = command;
            command.output().unwrap()
        }
    });
    let posted = fake.posted().await;
    let texts = posted.texts();
    for wanted in [
        "test-agent (owner dev@example.com)".to_string(),
        "aws iam AttachRolePolicy".into(),
        "iam:AttachRolePolicy (Permissions management)".into(),
        "arn:aws:iam::*:role/teams-e2e".into(),
        format!("PolicyArn = {arn}"),
        "RoleName = teams-e2e".into(),
        "iam-policies: Attaching a policy.".into(),
        "0 of 1 approval from security".into(),
    ] {
        assert!(
            texts_contain(&texts, &wanted),
            "no {wanted:?} in {texts:#?}"
        );
    }
    let id = approval_id(&posted);
    let click = |aad: &str| {
        let token = fake.signer.sign(&fake_teams::claims(&fake.service_url()));
        let activity = fake.action(aad, "approve", json!({"approval": id}));
        let control = airlock.control;
        let fake = &fake;
        async move { fake.invoke(control, Some(&token), &activity).await }
    };

    // The agent's owner is refused, and nothing changes.
    let (_, body) = click(OWNER_AAD).await;
    assert_eq!(body["value"]["code"], "self_approval", "{body}");
    assert!(!held.is_finished(), "the CLI still waits");
    assert_eq!(fake.recorded().len(), 1);

    // Bob approves: the CLI's call completes, and the card shows who approved.
    let (_, body) = click(BOB_AAD).await;
    assert_eq!(body["statusCode"], 200, "{body}");
    let out = held.join().unwrap();
    assert!(
        out.status.success(),
        "the held call: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let attached: Value = serde_json::from_str(&support::run_ok(airlock.aws_cli(
        home.path(),
        &[
            "iam",
            "list-attached-role-policies",
            "--role-name",
            "teams-e2e",
            "--output",
            "json",
        ],
    )))
    .unwrap();
    assert_eq!(attached["AttachedPolicies"][0]["PolicyArn"], arn.as_str());
    let update = fake.update(1).await;
    assert_eq!(update.activity, posted.activity);
    assert!(text_runs(update.card()).contains(&"Approved by bob@example.com".to_string()));
    assert_eq!(update.buttons(), ["Open in Airlock"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_vote_updates_the_card_until_the_quorum_decides() {
    let setup = setup_quorum("1s", "1h", 2).await;
    setup.delete_bucket().await;
    let posted = setup.posted_card().await;
    let id = approval_id(&posted);
    assert!(texts_contain(
        &posted.texts(),
        "0 of 2 approvals from security"
    ));

    let (_, body) = setup
        .click(BOB_AAD, "approve", json!({"approval": id}))
        .await;
    assert_eq!(body["statusCode"], 200, "{body}");
    let voted = setup.fake.update(1).await;
    let runs = text_runs(voted.card());
    assert!(
        runs.contains(&"Pending: 1 of 2 approvals from security".to_string()),
        "{runs:#?}"
    );
    assert!(
        runs.contains(&"bob@example.com approved via teams".to_string()),
        "{runs:#?}"
    );
    assert_eq!(
        voted.buttons(),
        ["Approve", "Deny", "Open in Airlock"],
        "still open"
    );
    let (_, body) = setup
        .click(BOB_AAD, "approve", json!({"approval": id}))
        .await;
    assert_eq!(body["value"]["code"], "already_voted", "{body}");

    let (_, body) = setup
        .click(CAROL_AAD, "approve", json!({"approval": id}))
        .await;
    assert_eq!(body["statusCode"], 200, "{body}");
    let decided = setup.fake.update(2).await;
    assert!(
        text_runs(decided.card())
            .contains(&"Approved by bob@example.com, carol@example.com".to_string())
    );
    assert_eq!(decided.buttons(), ["Open in Airlock"]);
    let (status, _) = setup.delete_bucket().await;
    assert_eq!(status, 200, "the approved call goes through");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_bot_token_is_replaced_and_a_wrong_password_posts_nothing() {
    let setup = setup("1s", "1h").await;
    setup.delete_bucket().await;
    let posted = setup.posted_card().await;
    setup.fake.revoke_tokens();
    let (_, body) = setup
        .click(
            BOB_AAD,
            "approve",
            json!({"approval": approval_id(&posted)}),
        )
        .await;
    assert_eq!(body["statusCode"], 200, "{body}");
    setup.fake.update(1).await;
    assert_eq!(setup.fake.token_requests(), 2, "a new token after the 401");
    assert!(setup.messages("retried").await >= 1.0);

    // A wrong bot password: the token endpoint refuses, nothing is posted, the failure
    // is counted, and the call stays held.
    let fake = FakeTeams::start().await;
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong-password");
    std::fs::write(&wrong, "not-the-password").unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = format!(
        "{}{}",
        approvers(),
        fake.config(&wrong.display().to_string(), "{}").replace(
            "conversations: {}",
            &format!("conversations: {{}}\n    default_conversation: \"{CONVERSATION}\""),
        ),
    );
    let rules = "defaults: {unmatched: allow, unclassified: allow}\nrules:\n  - {id: deletes, match: {action: s3:DeleteBucket}, effect: approve, approvers: [security], hold: 1s}\n";
    let airlock = Airlock::start_with_rules(&pki, &config, &BASE_ENV, Some(rules));
    let response = airlock.delete_bucket().await;
    assert_eq!(response.status(), 403);
    let failed = "airlock_channel_messages_total{channel=\"teams\",result=\"failed\"}";
    for _ in 0..50 {
        if airlock.metric(failed).await >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(airlock.metric(failed).await, 1.0);
    assert!(fake.token_requests() >= 1);
    assert!(fake.recorded().is_empty());
    let logs = airlock.logs().join("\n");
    assert!(
        logs.contains("channel delivery failed; giving up"),
        "{logs}"
    );
    assert!(!logs.contains("not-the-password"), "the secret was logged");
}

/// Not a test: how long an authenticated invoke takes end to end (token check, approver
/// lookup, answer). `cargo test --test teams -- --ignored --nocapture invoke_latency`.
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn invoke_latency() {
    let setup = setup("1s", "1h").await;
    setup.delete_bucket().await;
    let id = approval_id(&setup.posted_card().await);
    let stranger = "11111111-2222-3333-4444-555555555555";
    let mut times = Vec::new();
    for _ in 0..500 {
        let started = std::time::Instant::now();
        let (_, body) = setup
            .click(stranger, "approve", json!({"approval": id}))
            .await;
        times.push(started.elapsed());
        assert_eq!(body["value"]["code"], "unknown_user");
    }
    times.sort();
    println!(
        "500 signed invokes (RS256 check, refused as unknown_user): p50 {:?}, p99 {:?}, max {:?}",
        times[250], times[495], times[499]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deny_after_an_approval_wins_and_the_agent_hears_why() {
    let setup = setup_quorum("1s", "1h", 2).await;
    let (status, _) = setup.delete_bucket().await;
    assert_eq!(status, 403, "held, then told it is pending");
    let posted = setup.posted_card().await;
    let id = approval_id(&posted);

    // Bob approves (one of two), then carol denies: the deny decides.
    let (_, body) = setup
        .click(BOB_AAD, "approve", json!({"approval": id}))
        .await;
    assert_eq!(body["statusCode"], 200, "{body}");
    assert_eq!(setup.approval(&id).await["state"], "pending");
    let (status, body) = setup
        .click(
            CAROL_AAD,
            "deny",
            json!({"approval": id, "reason": "that bucket holds the audit trail"}),
        )
        .await;
    assert_eq!((status, &body["statusCode"]), (200, &json!(200)), "{body}");
    assert!(
        text_runs(&body["value"]).contains(
            &"Denied by carol@example.com: that bucket holds the audit trail".to_string()
        ),
        "{body}"
    );
    let approval = setup.approval(&id).await;
    assert_eq!(approval["state"], "denied");
    let votes: Vec<(&str, bool)> = approval["votes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["approver"].as_str().unwrap(),
                v["approve"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        votes,
        [("bob@example.com", true), ("carol@example.com", false)]
    );
    let decided = setup.fake.update(2).await;
    assert!(texts_contain(&decided.texts(), "Airlock: denied"));
    assert_eq!(decided.buttons(), ["Open in Airlock"]);

    // The agent's retry hears the denial and its reason; nothing was forwarded.
    let (status, body) = setup.delete_bucket().await;
    assert_eq!(status, 403);
    assert!(
        body.contains(&format!(
            "Approval {id} for this call was denied by carol@example.com: that bucket holds the audit trail"
        )),
        "{body}"
    );
    assert_eq!(setup.relay.connections(), 0, "nothing was forwarded");
}

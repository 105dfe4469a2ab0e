//! Slack through the binary, against a local fake Slack (`support/fake_slack.rs`, the
//! documented Web API, Socket Mode and click payloads): the real AWS CLI's call is parked,
//! the approvers' channel gets the whole context with Approve and Deny, signed clicks
//! become votes (and only those: forged, stale, replayed clicks and the agent's owner are
//! refused and change nothing), the message follows every vote and the outcome, a Slack
//! outage approves nothing and the message arrives once Slack is back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/fake_slack.rs"]
mod fake_slack;
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use fake_slack::{APP_TOKEN, BOT_TOKEN, FakeSlack, Posted, SIGNING_SECRET, eventually, form, sign};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::moto::Moto;
use support::{Airlock, BASE_ENV, TEST_OWNER, TestPki};

const SECURITY: &str = "C0SECURITY";
const GENERAL: &str = "C0GENERAL";
/// Slack users: bob is matched by e-mail (users.info), carol by `slack_user`; the agent's
/// owner is a security approver too; eve is in another group; mallory is no reviewer;
/// the impostor has carol's e-mail address, but carol is known by her Slack id only.
const USERS: [(&str, &str); 6] = [
    ("UBOB", "bob@example.com"),
    ("UCAROL", "carol@example.com"),
    ("UIMPOSTOR", "carol@example.com"),
    ("UOWNER", TEST_OWNER),
    ("UEVE", "eve@example.com"),
    ("UMALLORY", "mallory@example.com"),
];
/// A token to read approvals over the API (a reviewer of no group that votes here).
const WATCHER: &str = "watcher-token";
const WAIT: Duration = Duration::from_secs(20);

fn hash(token: &str) -> String {
    support::upstream::hex(&Sha256::digest(token.as_bytes()))
}

fn secret_file(dir: &Path, name: &str, value: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, value).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

/// The rule that parks `iam:AttachRolePolicy` for the security group.
fn rules(quorum: u32, hold: &str) -> String {
    format!(
        "defaults: {{unmatched: allow, unclassified: allow}}\nrules:\n  - {{id: iam-policies, match: {{action: 'iam:AttachRolePolicy'}}, effect: approve, approvers: [security], quorum: {quorum}, hold: {hold}, expires: 1h, message: Attaching a policy changes what the role may do.}}\n"
    )
}

struct Stack {
    slack: FakeSlack,
    airlock: Airlock,
    _secrets: tempfile::TempDir,
}

/// A fake Slack, and an Airlock in front of moto posting to it. `slack` is extra YAML
/// under `channels.slack` (e.g. Socket Mode); `signed`: clicks over HTTP are enabled.
async fn stack(rules: &str, slack_extra: &str, bot_token: &str, signed: bool) -> Stack {
    let slack = FakeSlack::start(&[SECURITY, GENERAL], &USERS).await;
    let secrets = tempfile::tempdir().unwrap();
    let bot = secret_file(secrets.path(), "bot-token", bot_token);
    let signing = if signed {
        format!(
            "    signing_secret_file: {}\n",
            secret_file(secrets.path(), "signing-secret", SIGNING_SECRET)
        )
    } else {
        String::new()
    };
    let moto = Moto::shared();
    let config = format!(
        "upstream:\n  routes:\n    - host: \"*.amazonaws.com\"\n      to: {moto}\napprovals:\n  approvers:\n    - {{name: bob@example.com, groups: [security]}}\n    - {{name: carol@example.com, groups: [security], slack_user: UCAROL}}\n    - {{name: {TEST_OWNER}, groups: [security], slack_user: UOWNER}}\n    - {{name: eve@example.com, groups: [finance], slack_user: UEVE}}\n    - {{name: watcher@example.com, groups: [audit], token_sha256: {watcher}}}\nchannels:\n  base_url: https://airlock.example.com\n  slack:\n    api_url: {api}\n    bot_token_file: {bot}\n{signing}    channels: {{security: {SECURITY}}}\n    default_channel: {GENERAL}\n{slack_extra}",
        moto = moto.url(),
        watcher = hash(WATCHER),
        api = slack.api_url(),
    );
    let airlock = Airlock::start_with_rules(&TestPki::new(), &config, &BASE_ENV, Some(rules));
    Stack {
        slack,
        airlock,
        _secrets: secrets,
    }
}

impl Stack {
    /// POST a click to the interactivity endpoint, signed with `secret` at `timestamp`.
    async fn post_signed(&self, body: &str, secret: &str, timestamp: i64) -> (u16, String) {
        let response = reqwest::Client::new()
            .post(format!(
                "http://{}/slack/interactivity",
                self.airlock.control
            ))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", timestamp.to_string())
            .header("x-slack-signature", sign(secret, timestamp, body))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.text().await.unwrap_or_default(),
        )
    }

    /// Send `payload` as Slack would: form-encoded, correctly signed, now.
    async fn send(&self, payload: &Value) -> (u16, String) {
        self.post_signed(&form(payload), SIGNING_SECRET, now())
            .await
    }

    /// The approval, as the API shows it.
    async fn approval(&self, id: &str) -> Value {
        self.airlock.approval(id, WATCHER).await
    }

    async fn callbacks(&self, result: &str, reason: &str) -> f64 {
        self.airlock
            .channel_callbacks("slack", result, reason)
            .await
    }

    async fn messages_total(&self, result: &str) -> f64 {
        self.airlock.channel_messages("slack", result).await
    }

    /// Wait for an ephemeral reply that contains `text`.
    async fn reply_containing(&self, text: &str) -> Value {
        eventually(
            WAIT,
            || format!("no reply with {text:?}: {:#?}", self.slack.responses()),
            async || {
                self.slack.responses().into_iter().find(|r| {
                    r["body"]["text"]
                        .as_str()
                        .unwrap_or_default()
                        .contains(text)
                })
            },
        )
        .await
    }

    /// Wait until the metric `sample` reaches `at_least`.
    async fn metric_reaches(&self, sample: &str, at_least: f64) -> f64 {
        eventually(
            Duration::from_secs(30),
            || format!("{sample} stayed under {at_least}"),
            async || Some(self.airlock.metric(sample).await).filter(|v| *v >= at_least),
        )
        .await
    }

    /// Wait for `count` acks of Socket Mode envelope `id`; the last.
    async fn acked(&self, id: &str, count: usize) -> Value {
        eventually(
            WAIT,
            || format!("no ack of {id}; acks: {:?}", self.slack.acks()),
            async || {
                let acks: Vec<Value> = self
                    .slack
                    .acks()
                    .into_iter()
                    .filter(|a| a["envelope_id"] == id)
                    .collect();
                (acks.len() >= count).then(|| acks[count - 1].clone())
            },
        )
        .await
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The only message in `channel` so far (waits for it).
async fn first_message(slack: &FakeSlack, channel: &str) -> Posted {
    slack
        .wait_for(WAIT, "a posted message", |all| {
            all.iter().find(|m| m.channel == channel).cloned()
        })
        .await
}

fn approval_id(message: &Posted) -> String {
    message.buttons()[0].1.clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_is_approved_from_slack_and_only_by_a_valid_click_of_a_permitted_reviewer() {
    let stack = stack(&rules(1, "40s"), "", BOT_TOKEN, true).await;
    let home = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| stack.airlock.aws_cli(home.path(), args);
    support::run_ok(cli(&[
        "iam",
        "create-role",
        "--role-name",
        "slack-e2e",
        "--assume-role-policy-document",
        "{}",
    ]));
    let policy: Value = serde_json::from_str(&support::run_ok(cli(&[
        "iam", "create-policy", "--policy-name", "slack-e2e-policy", "--output", "json",
        "--policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#,
    ])))
    .unwrap();
    let arn = policy["Policy"]["Arn"].as_str().unwrap().to_string();

    // The agent's call is parked (the CLI waits) and the security channel hears of it.
    let attach = cli(&[
        "iam",
        "attach-role-policy",
        "--role-name",
        "slack-e2e",
        "--policy-arn",
        &arn,
    ]);
    let parked = std::thread::spawn(move || {
        let mut attach = attach;
        attach.output().unwrap()
    });
    let message = first_message(&stack.slack, SECURITY).await;
    let id = approval_id(&message);
    assert!(id.starts_with("apr-"), "{id}");
    let text = message.text();
    for shown in [
        "Approval needed: iam:AttachRolePolicy",
        "*test-agent* (owner dev@example.com)",
        "`iam:AttachRolePolicy` (Permissions management)",
        // The classifier names the role without its account (the request does not say).
        "*Resources*\n`arn:aws:iam::*:role/slack-e2e`",
        &format!("*PolicyArn*\n`{arn}`"),
        "*RoleName*\n`slack-e2e`",
        "*Account*\n",
        "*Region*\n`us-east-1`",
        "*Rule*\n`iam-policies`",
        "Attaching a policy changes what the role may do.",
        "*The agent's reason*\n_none given_",
        "0 of 1 approval from security",
        "<!date^",
        &format!("<https://airlock.example.com/ui/approvals/{id}|Details in Airlock>"),
    ] {
        assert!(text.contains(shown), "the message lacks {shown:?}:\n{text}");
    }
    assert_eq!(
        message.buttons(),
        [
            ("airlock_approve".to_string(), id.clone()),
            ("airlock_deny".to_string(), id.clone())
        ]
    );
    assert!(stack.slack.messages().iter().all(|m| m.channel == SECURITY));

    // Refused, each changing nothing: a forged signature, a stale timestamp, the agent's
    // owner, someone in another group, someone who is no reviewer.
    let bob = stack.slack.click(&message, "UBOB", "airlock_approve");
    let (status, _) = stack
        .post_signed(&form(&bob), "not-the-secret", now())
        .await;
    assert_eq!(status, 401);
    let (status, _) = stack
        .post_signed(&form(&bob), SIGNING_SECRET, now() - 400)
        .await;
    assert_eq!(status, 401);
    let (status, _) = stack
        .post_signed(&form(&bob), SIGNING_SECRET, now() + 400)
        .await;
    assert_eq!(status, 401);
    let owner = stack.slack.click(&message, "UOWNER", "airlock_approve");
    assert_eq!(stack.send(&owner).await.0, 200);
    stack.reply_containing("owns the agent").await;
    let eve = stack.slack.click(&message, "UEVE", "airlock_approve");
    assert_eq!(stack.send(&eve).await.0, 200);
    stack.reply_containing("not in an approver group").await;
    let mallory = stack.slack.click(&message, "UMALLORY", "airlock_approve");
    assert_eq!(stack.send(&mallory).await.0, 200);
    stack
        .reply_containing("does not know Slack user UMALLORY")
        .await;
    let approval = stack.approval(&id).await;
    assert_eq!(approval["state"], "pending", "{approval}");
    assert_eq!(approval["votes"], json!([]), "{approval}");
    assert!(!parked.is_finished(), "the CLI is still waiting");
    for reason in [
        "bad_signature",
        "stale",
        "self_approval",
        "not_in_group",
        "unknown_user",
    ] {
        assert!(
            stack.callbacks("rejected", reason).await >= 1.0,
            "{reason} counted"
        );
    }
    assert_eq!(stack.callbacks("rejected", "stale").await, 2.0);

    // Bob (known by his Slack e-mail address) approves: the parked call completes.
    let body = form(&bob);
    let at = now();
    let (status, _) = stack.post_signed(&body, SIGNING_SECRET, at).await;
    assert_eq!(status, 200);
    let out = parked.join().unwrap();
    assert!(
        out.status.success(),
        "the parked call: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let attached: Value = serde_json::from_str(&support::run_ok(cli(&[
        "iam",
        "list-attached-role-policies",
        "--role-name",
        "slack-e2e",
        "--output",
        "json",
    ])))
    .unwrap();
    assert_eq!(attached["AttachedPolicies"][0]["PolicyArn"], arn.as_str());
    let approval = stack.approval(&id).await;
    assert_eq!(approval["state"], "approved");
    assert_eq!(approval["votes"][0]["approver"], "bob@example.com");
    assert_eq!(approval["votes"][0]["via"], "slack");

    // The same request again (a replay) is refused and changes nothing.
    let (status, answer) = stack.post_signed(&body, SIGNING_SECRET, at).await;
    assert_eq!((status, answer.as_str()), (401, "refused: replayed"));
    assert_eq!(
        stack.approval(&id).await["votes"].as_array().unwrap().len(),
        1
    );

    // The message says who approved, and has no buttons any more.
    let updated = stack
        .slack
        .wait_for(WAIT, "the outcome", |all| {
            all.iter()
                .find(|m| m.ts == message.ts && m.text().contains("Approved by bob@example.com"))
                .cloned()
        })
        .await;
    assert!(updated.buttons().is_empty(), "{:#?}", updated.latest());
    assert_eq!(stack.slack.messages().len(), 1, "updated, not posted again");
    assert_eq!(stack.callbacks("accepted", "approve").await, 1.0);
    assert_eq!(stack.callbacks("rejected", "replayed").await, 1.0);
}

/// An IAM call signed as the test agent with a reason, straight through Airlock (no CLI:
/// the reason header is Airlock's own).
async fn attach_with_reason(airlock: &Airlock, role: &str, reason: &str) -> reqwest::Response {
    let client = airlock.client(false);
    let body = format!(
        "Action=AttachRolePolicy&Version=2010-05-08&RoleName={}&PolicyArn=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2FAdministratorAccess",
        percent(role)
    );
    let request = client
        .post("https://iam.amazonaws.com/")
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .header("x-airlock-reason", reason)
        .body(body);
    airlock.send(&client, request, "iam").await
}

fn percent(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn votes_update_the_message_a_deny_asks_why_and_agent_text_forges_nothing() {
    let stack = stack(&rules(2, "1s"), "", BOT_TOKEN, true).await;
    let evil = "<!channel> see <https://evil.example/approve|Approve here> <@U0ADMIN>";
    let response = attach_with_reason(&stack.airlock, "app<!here>", evil).await;
    assert_eq!(response.status(), 403, "held, then told it is pending");
    let message = first_message(&stack.slack, SECURITY).await;
    let id = approval_id(&message);
    let raw = message.latest().to_string();
    assert!(
        !raw.contains("<!channel>") && !raw.contains("<!here>") && !raw.contains("<@U0ADMIN>"),
        "{raw}"
    );
    assert!(!raw.contains("<https://evil"), "{raw}");
    let text = message.text();
    assert!(
        text.contains("*The agent's reason*\n&lt;!channel&gt; see &lt;https://evil.example/approve|Approve here&gt; &lt;@U0ADMIN&gt;"),
        "{text}"
    );
    assert!(text.contains("`app&lt;!here&gt;`"), "{text}");
    assert_eq!(message.buttons().len(), 2, "only Airlock's buttons");

    // Someone with carol's e-mail address is not carol: she is known by her Slack id.
    let impostor = stack.slack.click(&message, "UIMPOSTOR", "airlock_approve");
    assert_eq!(stack.send(&impostor).await.0, 200);
    stack
        .reply_containing("does not know Slack user UIMPOSTOR")
        .await;
    // Carol (slack_user) approves: one of two; the message shows her vote, buttons stay.
    let carol = form(&stack.slack.click(&message, "UCAROL", "airlock_approve"));
    let at = now();
    assert_eq!(stack.post_signed(&carol, SIGNING_SECRET, at).await.0, 200);
    let voted = stack
        .slack
        .message_containing("1 of 2 approvals from security")
        .await;
    assert!(
        voted
            .text()
            .contains("✅ *carol@example.com* approved via slack")
    );
    assert_eq!(voted.buttons().len(), 2);
    // Her click replayed: refused, still one vote.
    assert_eq!(stack.post_signed(&carol, SIGNING_SECRET, at).await.0, 401);
    let approval = stack.approval(&id).await;
    assert_eq!(
        (
            approval["state"].as_str(),
            approval["votes"].as_array().unwrap().len()
        ),
        (Some("pending"), 1)
    );

    // Deny opens a modal asking why; eve's submission is refused in the modal, bob's
    // denies with his reason.
    let deny = stack.slack.click(&voted, "UBOB", "airlock_deny");
    assert_eq!(stack.send(&deny).await.0, 200);
    let view = stack.slack.view(1).await;
    assert_eq!(view["trigger_id"], deny["trigger_id"]);
    assert_eq!(view["view"]["private_metadata"], id.as_str());
    let (status, answer) = stack.send(&stack.slack.submit(&view, "UEVE", "no")).await;
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(status, 200);
    assert_eq!(answer["response_action"], "errors", "{answer}");
    assert!(
        answer["errors"]["reason"]
            .as_str()
            .unwrap()
            .contains("not in an approver group")
    );
    let (status, answer) = stack
        .send(&stack.slack.submit(&view, "UBOB", "not <!everyone> today"))
        .await;
    assert_eq!((status, answer.as_str()), (200, ""), "the modal closes");
    let approval = stack.approval(&id).await;
    assert_eq!(approval["state"], "denied");
    assert_eq!(approval["votes"][1]["reason"], "not <!everyone> today");
    let denied = stack.slack.message_containing("Denied by").await;
    assert!(
        denied
            .text()
            .contains("*Denied by bob@example.com: not &lt;!everyone&gt; today*")
    );
    assert!(denied.buttons().is_empty());

    // A click on a decided approval is refused, and told.
    let late = stack.slack.click(&voted, "UBOB", "airlock_approve");
    assert_eq!(stack.send(&late).await.0, 200);
    stack.reply_containing("is already denied").await;
    assert_eq!(stack.callbacks("accepted", "deny").await, 1.0);
    assert_eq!(stack.callbacks("accepted", "deny_form").await, 1.0);
    assert_eq!(stack.callbacks("rejected", "decided").await, 1.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn while_slack_is_down_nothing_is_approved_and_the_message_arrives_once_it_is_back() {
    let stack = stack(&rules(1, "1s"), "", BOT_TOKEN, true).await;
    stack.slack.set_failing(Some(500));
    let response = attach_with_reason(&stack.airlock, "down", "testing an outage").await;
    assert_eq!(response.status(), 403);
    let body = response.text().await.unwrap();
    let id = body[body.find("apr-").unwrap()..][..30].to_string();
    stack
        .metric_reaches(
            "airlock_channel_messages_total{channel=\"slack\",result=\"retried\"}",
            2.0,
        )
        .await;
    assert!(stack.slack.messages().is_empty());
    assert_eq!(stack.approval(&id).await["state"], "pending");

    // Then unreachable: connections closed without an answer.
    stack.slack.set_failing(None);
    stack.slack.set_unreachable(true);
    let retried = stack.messages_total("retried").await;
    stack
        .metric_reaches(
            "airlock_channel_messages_total{channel=\"slack\",result=\"retried\"}",
            retried + 1.0,
        )
        .await;
    assert!(stack.slack.messages().is_empty());
    assert_eq!(stack.approval(&id).await["state"], "pending");

    stack.slack.set_unreachable(false);
    let message = first_message(&stack.slack, SECURITY).await;
    assert_eq!(approval_id(&message), id);
    assert!(message.text().contains("testing an outage"));
    stack
        .metric_reaches(
            "airlock_channel_messages_total{channel=\"slack\",result=\"sent\"}",
            1.0,
        )
        .await;
    let approval = stack.approval(&id).await;
    assert_eq!(
        (approval["state"].as_str(), approval["votes"].clone()),
        (Some("pending"), json!([]))
    );
    assert_eq!(stack.messages_total("failed").await, 0.0);
    assert_eq!(stack.slack.messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_is_waited_out_and_a_bad_token_is_not_retried() {
    let stack = stack(&rules(1, "1s"), "", BOT_TOKEN, true).await;
    stack.slack.rate_limit(1);
    attach_with_reason(&stack.airlock, "limited", "r").await;
    first_message(&stack.slack, SECURITY).await;
    assert_eq!(stack.messages_total("retried").await, 1.0);
    assert_eq!(
        stack.slack.calls()[0],
        ("chat.postMessage".into(), "http 429".into())
    );

    let bad = stack_with_token("xoxb-wrong").await;
    attach_with_reason(&bad.airlock, "badtoken", "r").await;
    bad.metric_reaches(
        "airlock_channel_messages_total{channel=\"slack\",result=\"failed\"}",
        1.0,
    )
    .await;
    assert_eq!(bad.messages_total("retried").await, 0.0);
    assert_eq!(
        bad.slack.calls(),
        [("chat.postMessage".to_string(), "invalid_auth".to_string())]
    );
    assert!(bad.slack.messages().is_empty());
}

async fn stack_with_token(token: &str) -> Stack {
    stack(&rules(1, "1s"), "", token, true).await
}

#[tokio::test(flavor = "multi_thread")]
async fn socket_mode_takes_clicks_over_the_websocket() {
    let secrets = tempfile::tempdir().unwrap();
    let app = secret_file(secrets.path(), "app-token", APP_TOKEN);
    let stack = stack(
        &rules(2, "1s"),
        &format!("    app_token_file: {app}\n"),
        BOT_TOKEN,
        false,
    )
    .await;
    attach_with_reason(&stack.airlock, "socket", "over the socket").await;
    let message = first_message(&stack.slack, SECURITY).await;
    let id = approval_id(&message);
    eventually(
        WAIT,
        || "no socket connection".into(),
        async || (stack.slack.connected() > 0).then_some(()),
    )
    .await;
    // Without a signing secret, the HTTP endpoint takes nothing.
    let (status, _) = stack
        .send(&stack.slack.click(&message, "UCAROL", "airlock_approve"))
        .await;
    assert_eq!(status, 404);

    let envelope = stack.slack.push(
        "interactive",
        stack.slack.click(&message, "UCAROL", "airlock_approve"),
    );
    let ack = stack.acked(&envelope, 1).await;
    assert!(ack.get("payload").is_none(), "{ack}");
    let voted = stack.slack.message_containing("1 of 2 approvals").await;
    // Slack redelivers an envelope it thinks was not acknowledged: handled once.
    stack.slack.push_again(&envelope);
    stack.acked(&envelope, 2).await;
    assert_eq!(stack.callbacks("accepted", "approve").await, 1.0);
    assert_eq!(
        stack.approval(&id).await["votes"].as_array().unwrap().len(),
        1
    );

    // Deny through the modal, over the socket: a refusal comes back in the ack.
    let deny = stack.slack.click(&voted, "UBOB", "airlock_deny");
    let envelope = stack.slack.push("interactive", deny);
    stack.acked(&envelope, 1).await;
    let view = stack.slack.view(1).await;
    let envelope = stack
        .slack
        .push("interactive", stack.slack.submit(&view, "UOWNER", "mine"));
    let ack = stack.acked(&envelope, 1).await;
    assert_eq!(ack["payload"]["response_action"], "errors", "{ack}");
    let envelope = stack.slack.push(
        "interactive",
        stack.slack.submit(&view, "UBOB", "not over the socket"),
    );
    stack.acked(&envelope, 1).await;
    let approval = stack.approval(&id).await;
    assert_eq!(approval["state"], "denied", "{approval}");
    // Slack asks for a new connection: Airlock opens one.
    stack.slack.disconnect();
    eventually(
        WAIT,
        || "no second socket".into(),
        async || (stack.slack.sockets_opened() >= 2).then_some(()),
    )
    .await;
    stack
        .slack
        .message_containing("Denied by bob@example.com: not over the socket")
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expiry_closes_the_message_and_a_late_deny_is_told() {
    let rules = rules(1, "1s").replace("expires: 1h", "expires: 2s");
    let stack = stack(&rules, "", BOT_TOKEN, true).await;
    attach_with_reason(&stack.airlock, "expiring", "r").await;
    let message = first_message(&stack.slack, SECURITY).await;
    let expired = stack
        .slack
        .message_containing("⌛ *Expired undecided*")
        .await;
    assert!(expired.buttons().is_empty());
    assert!(
        expired.latest()["text"]
            .as_str()
            .unwrap()
            .starts_with("Expired: ")
    );
    // A click on the old buttons (a stale client): no form, the clicker is told.
    let deny = stack.slack.click(&message, "UBOB", "airlock_deny");
    assert_eq!(stack.send(&deny).await.0, 200);
    stack.reply_containing("is already expired").await;
    assert!(stack.slack.views().is_empty());
    assert_eq!(stack.callbacks("rejected", "expired").await, 1.0);
}

/// How long the interactivity endpoint takes to answer a click (signature check, replay
/// check, reviewer lookup, vote or refusal). A measurement, not a test:
/// `cargo test --test slack -- --ignored --nocapture click_latency`.
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn click_latency() {
    let stack = stack(&rules(1, "1s"), "", BOT_TOKEN, true).await;
    attach_with_reason(&stack.airlock, "latency", "r").await;
    let message = first_message(&stack.slack, SECURITY).await;
    let measure = async |what: &str, user: &str, secret: &str| {
        let mut times = Vec::new();
        for _ in 0..500 {
            let body = form(&stack.slack.click(&message, user, "airlock_approve"));
            let started = std::time::Instant::now();
            stack.post_signed(&body, secret, now()).await;
            times.push(started.elapsed());
        }
        times.sort();
        println!(
            "500 {what}: p50 {:?}, p99 {:?}, max {:?}",
            times[250], times[495], times[499]
        );
    };
    measure("forged clicks (refused: bad_signature)", "UBOB", "wrong").await;
    measure(
        "signed clicks by a non-reviewer (refused: unknown_user, e-mail cached)",
        "UMALLORY",
        SIGNING_SECRET,
    )
    .await;
    measure(
        "signed clicks by the owner (refused by the store: self_approval)",
        "UOWNER",
        SIGNING_SECRET,
    )
    .await;
}

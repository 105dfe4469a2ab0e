use super::*;
use crate::approvals::{Approval, Vote};

/// The context module's sample approval, with a reason and a region.
fn approval(reason: Option<&str>, params: Value) -> Approval {
    let mut a = crate::channels::context::tests::approval(params);
    a.id = "apr-0123456789abcdef0123456789".into();
    a.reason = reason.map(str::to_string);
    a.call["region"] = json!("us-east-1");
    a
}

fn rendered(a: &Approval) -> (String, Vec<Value>) {
    let c = Context::of(a, "https://airlock.example.com");
    (fallback(&c), message(&c))
}

/// Every text object in the blocks: (type, text).
fn texts(value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            if let (Some(kind), Some(text)) = (map.get("type"), map.get("text"))
                && let (Some(kind), Some(text)) = (kind.as_str(), text.as_str())
            {
                out.push((kind.to_string(), text.to_string()));
            }
            map.values().for_each(|v| texts(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| texts(v, out)),
        _ => {}
    }
}

fn buttons(blocks: &[Value]) -> Vec<(String, String)> {
    blocks
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .map(|e| {
            (
                e["action_id"].as_str().unwrap_or_default().to_string(),
                e["value"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_message_shows_the_whole_context_and_two_buttons() {
    let a = approval(
        Some("rotating the app role"),
        json!({"RoleName": "app", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
    );
    let (fallback, blocks) = rendered(&a);
    assert_eq!(
        fallback,
        "Approval needed: ci wants iam:AttachRolePolicy (rule iam-changes)"
    );
    let mut all = Vec::new();
    texts(&Value::Array(blocks.clone()), &mut all);
    let text: String = all
        .iter()
        .map(|(_, t)| t.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for shown in [
        "*ci* (owner alice@example.com)",
        "`AttachRolePolicy`",
        "`iam:AttachRolePolicy` (Permissions management)",
        "`arn:aws:iam::123456789012:role/app`",
        "*PolicyArn*\n`arn:aws:iam::aws:policy/ReadOnlyAccess`",
        "*RoleName*\n`app`",
        "*Account*\n`123456789012`",
        "*Region*\n`us-east-1`",
        "*Rule*\n`iam-changes`",
        "IAM changes need security",
        "*The agent's reason*\nrotating the app role",
        "0 of 2 approvals from security",
        "<!date^1767618000^{date_short_pretty} {time}|2026-01-05T13:00:00Z>",
        "<https://airlock.example.com/ui/approvals/apr-0123456789abcdef0123456789|Details in Airlock>",
    ] {
        assert!(text.contains(shown), "missing {shown:?} in:\n{text}");
    }
    assert_eq!(
        buttons(&blocks),
        [
            (APPROVE.to_string(), a.id.clone()),
            (DENY.to_string(), a.id.clone())
        ]
    );
}

#[test]
fn agent_text_cannot_forge_mentions_links_or_buttons() {
    let evil = "<!channel> <@U0ADMIN> <https://evil.example|Approve here> & `code` *bold*";
    let mut a = approval(
        Some(evil),
        json!({"RoleName": evil, "PolicyDocument": "x>y"}),
    );
    a.agent = "<!here>".into();
    a.call["resources"] = json!([evil]);
    a.call["operation"] = json!("Attach<@U1>");
    a.message = Some(evil.into());
    let (fallback, blocks) = rendered(&a);
    let mut all = Vec::new();
    texts(&Value::Array(blocks.clone()), &mut all);
    all.push(("mrkdwn".into(), fallback));
    for (kind, text) in &all {
        if kind != "mrkdwn" {
            continue;
        }
        // The only `<…>` sequences are Airlock's own date and link.
        let mut rest = text.as_str();
        while let Some(start) = rest.find('<') {
            let inner = &rest[start + 1..];
            assert!(
                inner.starts_with("!date^") || inner.starts_with("https://airlock.example.com/"),
                "markup from agent text in {text:?}"
            );
            rest = inner;
        }
        assert!(!text.contains("<!channel>") && !text.contains("<@U0ADMIN>"));
    }
    let joined: String = all.iter().map(|(_, t)| t.as_str()).collect();
    assert!(joined.contains(
        "&lt;!channel&gt; &lt;@U0ADMIN&gt; &lt;https://evil.example|Approve here&gt; &amp;"
    ));
    // Inside code spans, a backtick cannot close the span.
    assert!(joined.contains("`&lt;!channel&gt; &lt;@U0ADMIN&gt; &lt;https://evil.example|Approve here&gt; &amp; ˋcodeˋ *bold*`"));
    // Every mrkdwn object is verbatim (no auto-linking of URLs, #channels, @names).
    let mut verbatim = true;
    fn walk(v: &Value, ok: &mut bool) {
        match v {
            Value::Object(m) => {
                if m.get("type") == Some(&json!("mrkdwn"))
                    && m.get("verbatim") != Some(&json!(true))
                {
                    *ok = false;
                }
                m.values().for_each(|x| walk(x, ok));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, ok)),
            _ => {}
        }
    }
    walk(&Value::Array(blocks.clone()), &mut verbatim);
    assert!(verbatim);
    assert_eq!(
        buttons(&blocks).len(),
        2,
        "still exactly Airlock's two buttons"
    );
}

#[test]
fn long_and_many_values_stay_within_slacks_limits() {
    let huge = "&".repeat(5000);
    let mut a = approval(Some(&huge), json!({"RoleName": huge}));
    a.call["resources"] = json!(
        (0..200)
            .map(|i| format!("arn:aws:s3:::bucket-{i}/{huge}"))
            .collect::<Vec<_>>()
    );
    a.message = Some(huge.clone());
    let (_, blocks) = rendered(&a);
    assert!(blocks.len() <= 50);
    for block in &blocks {
        if let Some(t) = block["text"]["text"].as_str() {
            assert!(t.len() <= SECTION_CHARS, "{} chars", t.len());
        }
        for field in block["fields"].as_array().into_iter().flatten() {
            assert!(field["text"].as_str().unwrap_or_default().len() <= FIELD_CHARS);
        }
    }
    let text = blocks.iter().map(|b| b.to_string()).collect::<String>();
    assert!(text.contains("more (on the web page)"));
}

#[test]
fn a_decided_message_has_no_buttons_and_says_who_decided() {
    let mut a = approval(None, json!({}));
    a.state = State::Denied;
    a.decided_at = Some(1_767_615_000);
    a.votes = vec![Vote {
        approver: "bob@example.com".into(),
        approve: false,
        reason: Some("not <!everyone> today".into()),
        at: 1_767_615_000,
        via: "slack".into(),
    }];
    let (fallback, blocks) = rendered(&a);
    assert!(fallback.starts_with("Denied: "));
    assert!(buttons(&blocks).is_empty());
    let text = blocks.iter().map(|b| b.to_string()).collect::<String>();
    assert!(
        text.contains("❌ *Denied by bob@example.com: not &lt;!everyone&gt; today*"),
        "{text}"
    );
    assert!(text.contains("_none given_"));
}

#[test]
fn the_deny_form_asks_for_a_reason() {
    let a = approval(None, json!({}));
    let view = deny_view(&Context::of(&a, "http://a"));
    assert_eq!(view["callback_id"], DENY_VIEW);
    assert_eq!(view["private_metadata"], a.id.as_str());
    let input = &view["blocks"][1];
    assert_eq!(input["block_id"], REASON);
    assert_eq!(input["element"]["action_id"], REASON);
    assert!(
        view["title"]["text"]
            .as_str()
            .unwrap_or_default()
            .chars()
            .count()
            <= 24
    );
}

/// The exact message reviewers get for the sample approval (one vote in): any change to
/// what they read shows up here. Regenerate with `AIRLOCK_UPDATE_SNAPSHOTS=1`.
#[test]
fn the_message_snapshot() {
    let mut a = approval(
        Some("rotate the app role's policy (ticket OPS-42)"),
        json!({"RoleName": "app", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
    );
    a.votes = vec![Vote {
        approver: "carol@example.com".into(),
        approve: true,
        reason: None,
        at: 1_767_614_500,
        via: "slack".into(),
    }];
    let c = Context::of(&a, "https://airlock.example.com");
    let got = serde_json::to_string_pretty(&json!({"text": fallback(&c), "blocks": message(&c)}))
        .unwrap_or_default()
        + "\n";
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/channels/slack/blocks/message.json"
    );
    if std::env::var_os("AIRLOCK_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(path, &got).unwrap_or_default();
    }
    assert_eq!(got, include_str!("message.json"), "snapshot {path}");
}

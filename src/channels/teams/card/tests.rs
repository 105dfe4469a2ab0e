use super::*;
use crate::approvals::{Approval, Vote};

fn approval(reason: &str, params: Value) -> Approval {
    Approval {
        id: "apr-0123456789abcdef01234567".into(),
        state: State::Pending,
        fingerprint: "f".into(),
        agent: "ci".into(),
        owner: "alice@example.com".into(),
        rule: "iam-changes".into(),
        message: Some("IAM changes need security.".into()),
        groups: vec!["security".into()],
        quorum: 2,
        call: json!({
            "cloud": "aws", "service": "iam", "operation": "AttachRolePolicy",
            "actions": [{"name": "iam:AttachRolePolicy", "access": "Permissions management"}],
            "resources": ["arn:aws:iam::123456789012:role/app"],
            "params": params,
            "account": "123456789012", "region": "us-east-1",
        }),
        reason: Some(reason.into()),
        requested_at: 1_767_614_400,
        expires_at: 1_767_618_000,
        decided_at: None,
        votes: Vec::new(),
        consumed: false,
        reuse: None,
    }
}

/// Every string at `key` anywhere in `value`, with the `type` of the object holding it.
fn strings<'a>(value: &'a Value, key: &str, out: &mut Vec<(&'a str, &'a str)>) {
    match value {
        Value::Object(map) => {
            let kind = map.get("type").and_then(Value::as_str).unwrap_or("");
            for (k, v) in map {
                if k == key
                    && let Some(s) = v.as_str()
                {
                    out.push((kind, s));
                }
                strings(v, key, out);
            }
        }
        Value::Array(list) => list.iter().for_each(|v| strings(v, key, out)),
        _ => {}
    }
}

#[test]
fn the_pending_card_is_exactly_this() {
    let card = card(&Context::of(
        &approval(
            "rotate the app's access",
            json!({"RoleName": "app", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
        ),
        "https://airlock.example.com",
    ));
    let expected: Value =
        serde_json::from_str(include_str!("pending.json")).expect("snapshot is JSON");
    assert_eq!(
        card,
        expected,
        "got:\n{}",
        serde_json::to_string_pretty(&card).unwrap_or_default()
    );
}

#[test]
fn agent_text_never_reaches_markdown_and_cannot_make_links_or_mentions() {
    let hostile = "[Approve here](https://evil.example/) **now** <at>bob</at>\n- item\n\
                   \u{202E}txt.exe {{DATE(2017-02-14T06:08:00Z)}} _x_";
    let context = Context::of(
        &approval(hostile, json!({"RoleName": hostile, "PolicyArn": "a"})),
        "https://airlock.example.com",
    );
    let card = card(&context);

    // TextBlocks (Markdown) hold only Airlock's own words.
    let mut texts = Vec::new();
    strings(&card, "text", &mut texts);
    for (kind, text) in &texts {
        if *kind == "TextBlock" {
            for marker in ["evil", "**", "<at>", "[", "DATE", "_x_"] {
                assert!(!text.contains(marker), "TextBlock with agent text: {text}");
            }
        } else {
            assert_eq!(*kind, "TextRun", "text outside a TextRun: {text}");
            assert!(!text.contains('\n') && !text.contains('\u{202E}') && !text.contains("{{"));
        }
    }
    // The agent's text is shown, verbatim apart from the neutralised characters.
    let shown = plain(hostile);
    assert!(shown.contains("[Approve here](https://evil.example/) **now** <at>bob</at> - item"));
    assert!(texts.iter().any(|(_, t)| t.contains(&shown)));
    // No FactSet (Markdown too), no link but the web page, no extra buttons.
    assert!(!card.to_string().contains("FactSet"));
    let mut urls = Vec::new();
    strings(&card, "url", &mut urls);
    assert!(urls.iter().all(|(_, u)| *u == context.link), "{urls:?}");
    let mut titles = Vec::new();
    for action in card["actions"].as_array().into_iter().flatten() {
        titles.push(action["title"].as_str().unwrap_or_default());
    }
    assert_eq!(titles, ["Approve", "Deny", "Open in Airlock"]);
    assert!(!card.to_string().contains("msteams\":{\"entities"));
}

#[test]
fn a_decided_card_has_no_buttons_and_says_who_and_why() {
    let mut denied = approval("r", json!({}));
    denied.state = State::Denied;
    denied.votes = vec![Vote {
        approver: "bob@example.com".into(),
        approve: false,
        reason: Some("not in prod".into()),
        at: 1_767_614_500,
        via: "teams".into(),
    }];
    let card = card(&Context::of(&denied, "http://a"));
    let actions = card["actions"].as_array().expect("actions");
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0]["type"], "Action.OpenUrl");
    assert!(!card.to_string().contains("Input.Text"));
    let mut texts = Vec::new();
    strings(&card, "text", &mut texts);
    assert!(texts.contains(&("TextBlock", "Airlock: denied")));
    assert!(texts.contains(&("TextRun", "Denied by bob@example.com: not in prod")));

    let mut expired = approval("r", json!({}));
    expired.state = State::Expired;
    let card = super::card(&Context::of(&expired, "http://a"));
    let mut texts = Vec::new();
    strings(&card, "text", &mut texts);
    assert!(texts.contains(&("TextRun", "Expired undecided")));
    assert_eq!(card["actions"].as_array().map(Vec::len), Some(1));
}

#[test]
fn plain_keeps_ordinary_text_and_neutralises_the_rest() {
    assert_eq!(plain("arn:aws:s3:::b/k*"), "arn:aws:s3:::b/k*");
    assert_eq!(plain("a\r\nb\tc"), "a  b c");
    assert_eq!(plain("x\u{202E}y\u{200B}z"), "x\u{FFFD}y\u{FFFD}z");
    assert_eq!(plain("{{DATE(x)}}"), "{ {DATE(x)}}");
    assert_eq!(plain("{{{"), "{ { {");
}

//! The Block Kit message reviewers see, and the modal that asks a denier for a reason.
//!
//! Nearly everything shown comes from the agent (operation, resources, parameters, its
//! reason) or from reviewers (deny reasons). Such text goes out either as `plain_text` or
//! as `mrkdwn` with `&`, `<` and `>` escaped and `verbatim: true`: Slack's links,
//! mentions (`<!channel>`, `<@U…>`) and dates all start with `<`, so escaped text can
//! never become one, and `verbatim` stops Slack from turning bare URLs, `#channels` and
//! `@names` into links. Inline code spans hold identifiers (backticks inside are swapped
//! for a look-alike so a value cannot close its span). Only Airlock's own text (labels,
//! the date, the link to the web page) is markup.

use serde_json::{Value, json};

use crate::approvals::State;
use crate::channels::Context;
use crate::channels::context::rfc3339;

/// `action_id`s of the buttons, and the deny modal's `callback_id`.
pub const APPROVE: &str = "airlock_approve";
pub const DENY: &str = "airlock_deny";
pub const DENY_VIEW: &str = "airlock_deny_reason";
/// The modal's input: `view.state.values[REASON][REASON].value`.
pub const REASON: &str = "reason";

/// Slack's limits: a section's text, a field, a header, a modal title.
const SECTION_CHARS: usize = 3000;
const FIELD_CHARS: usize = 2000;
const HEADER_CHARS: usize = 150;
/// How much of a free-text value (the agent's reason, the rule's message) is shown.
const FREE_TEXT_CHARS: usize = 1200;
/// The longest deny reason the modal accepts.
pub const MAX_REASON_CHARS: usize = 500;

/// `&`, `<`, `>` as Slack's mrkdwn wants them: escaped text can start no link, mention
/// or date.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        c => out.push(c),
    }
}

/// Escape `text`, stopping (with `…`) before the escaped form passes `budget` bytes.
fn escape_cut(text: &str, budget: usize) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let before = out.len();
        push_escaped(&mut out, c);
        if out.len() + 3 > budget {
            out.truncate(before);
            out.push('…');
            break;
        }
    }
    out
}

/// An identifier as inline code: escaped, on one line, unable to close its span.
fn code(text: &str, budget: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| match c {
            '`' => 'ˋ',
            '\n' | '\r' => ' ',
            c => c,
        })
        .collect();
    format!("`{}`", escape_cut(&flat, budget.saturating_sub(2)))
}

/// Plain text, cut to `max` characters.
fn plain(text: &str, max: usize) -> Value {
    let text: String = if text.chars().count() > max {
        text.chars().take(max - 1).chain(['…']).collect()
    } else {
        text.to_string()
    };
    json!({ "type": "plain_text", "text": text, "emoji": false })
}

/// mrkdwn whose variable parts the caller escaped.
fn mrkdwn(text: String) -> Value {
    json!({ "type": "mrkdwn", "text": text, "verbatim": true })
}

fn section(text: String) -> Value {
    json!({ "type": "section", "text": mrkdwn(text) })
}

/// `*label*` and one line per item, as many as fit in `budget`, then how many more.
fn listed(label: &str, items: &[String], budget: usize) -> String {
    let mut text = format!("*{label}*");
    for (i, item) in items.iter().enumerate() {
        let more = format!("\n… and {} more (on the web page)", items.len() - i);
        if text.len() + 1 + item.len() + more.len() > budget {
            text.push_str(&more);
            break;
        }
        text.push('\n');
        text.push_str(item);
    }
    text
}

/// Slack shows a `<!date^…>` in each reader's own time zone; the fallback is UTC.
fn date(unix: i64) -> String {
    format!(
        "<!date^{unix}^{{date_short_pretty}} {{time}}|{}>",
        rfc3339(unix)
    )
}

/// The notification text (shown where blocks are not: notifications, old clients).
pub fn fallback(c: &Context) -> String {
    let what = format!(
        "{} wants {}:{} (rule {})",
        c.agent, c.service, c.operation, c.rule
    );
    let head = match c.state {
        State::Pending => "Approval needed",
        State::Approved => "Approved",
        State::Denied => "Denied",
        State::Expired => "Expired",
    };
    escape_cut(&format!("{head}: {what}"), SECTION_CHARS)
}

/// The message about an approval as it stands: the whole context, the votes, and either
/// the buttons (pending) or the outcome.
pub fn message(c: &Context) -> Vec<Value> {
    let mut blocks = Vec::new();
    let title = match c.state {
        State::Pending => "Approval needed",
        State::Approved => "Approved",
        State::Denied => "Denied",
        State::Expired => "Expired",
    };
    blocks.push(json!({
        "type": "header",
        "text": plain(&format!("{title}: {}:{}", c.service, c.operation), HEADER_CHARS),
    }));
    blocks.push(section(format!(
        "*{}* (owner {}) asks to call {} on {} `{}`",
        escape_cut(&c.agent, 200),
        escape_cut(&c.owner, 200),
        code(&c.operation, 300),
        escape_cut(&c.cloud, 50),
        escape_cut(&c.service, 100),
    )));
    let actions: Vec<String> = c
        .actions
        .iter()
        .map(|a| format!("{} ({})", code(&a.name, 300), escape_cut(&a.access, 100)))
        .collect();
    let optional = |v: &Option<String>| v.as_deref().map_or("—".into(), |v| code(v, 200));
    let fields = [
        listed("IAM actions", &actions, FIELD_CHARS),
        format!("*Account*\n{}", optional(&c.account)),
        format!("*Region*\n{}", optional(&c.region)),
        format!("*Rule*\n{}", code(&c.rule, 500)),
        format!("*Expires*\n{}", date(c.expires_at)),
        format!("*Votes*\n{}", escape_cut(&c.progress(), 1000)),
    ];
    blocks.push(json!({
        "type": "section",
        "fields": fields.into_iter().map(mrkdwn).collect::<Vec<_>>(),
    }));
    if !c.resources.is_empty() {
        let resources: Vec<String> = c.resources.iter().map(|r| code(r, 600)).collect();
        blocks.push(section(listed("Resources", &resources, SECTION_CHARS)));
    }
    if !c.params.is_empty() {
        let mut fields: Vec<Value> = c
            .params
            .iter()
            .map(|p| {
                mrkdwn(format!(
                    "*{}*\n{}",
                    escape_cut(&p.name, 200),
                    code(&p.value, 1200)
                ))
            })
            .collect();
        if c.more_params > 0 {
            fields.push(mrkdwn(format!(
                "*… {} more parameter{}*\non the web page",
                c.more_params,
                if c.more_params == 1 { "" } else { "s" }
            )));
        }
        blocks.push(json!({ "type": "section", "fields": fields }));
    }
    if let Some(message) = &c.message {
        blocks.push(section(format!(
            "*The rule says*\n{}",
            escape_cut(message, FREE_TEXT_CHARS)
        )));
    }
    blocks.push(section(match &c.reason {
        Some(reason) => format!(
            "*The agent's reason*\n{}",
            escape_cut(reason, FREE_TEXT_CHARS)
        ),
        None => "*The agent's reason*\n_none given_".into(),
    }));
    if !c.votes.is_empty() {
        let votes: Vec<Value> = c
            .votes
            .iter()
            .take(9)
            .map(|v| {
                let reason = v
                    .reason
                    .as_deref()
                    .map(|r| format!(": {}", escape_cut(r, 600)))
                    .unwrap_or_default();
                mrkdwn(format!(
                    "{} *{}* {} via {} at {}{reason}",
                    if v.approve { "✅" } else { "❌" },
                    escape_cut(&v.approver, 200),
                    if v.approve { "approved" } else { "denied" },
                    escape_cut(&v.via, 20),
                    rfc3339(v.at),
                ))
            })
            .collect();
        blocks.push(json!({ "type": "context", "elements": votes }));
    }
    let link = escape(&c.link);
    if c.state == State::Pending {
        blocks.push(json!({
            "type": "actions",
            "block_id": "airlock_decide",
            "elements": [
                {
                    "type": "button", "action_id": APPROVE, "style": "primary",
                    "text": plain("Approve", 75), "value": c.id,
                    "confirm": {
                        "title": plain("Approve this call?", 100),
                        "text": plain(&format!(
                            "{} will be allowed to call {}:{} as shown.",
                            c.agent, c.service, c.operation
                        ), 300),
                        "confirm": plain("Approve", 30),
                        "deny": plain("Cancel", 30),
                    },
                },
                {
                    "type": "button", "action_id": DENY, "style": "danger",
                    "text": plain("Deny…", 75), "value": c.id,
                },
            ],
        }));
        blocks.push(json!({
            "type": "context",
            "elements": [mrkdwn(format!("<{link}|Details in Airlock> · `{}`", c.id))],
        }));
    } else {
        let mark = match c.state {
            State::Approved => "✅",
            State::Denied => "❌",
            _ => "⌛",
        };
        let when = c.decided_at.unwrap_or(c.expires_at);
        blocks.push(section(format!(
            "{mark} *{}* ({})\n<{link}|Details in Airlock> · `{}`",
            escape_cut(&c.outcome(), 2000),
            date(when),
            c.id
        )));
    }
    blocks
}

/// The modal a denier fills in; the approval id rides in `private_metadata`.
pub fn deny_view(c: &Context) -> Value {
    json!({
        "type": "modal",
        "callback_id": DENY_VIEW,
        "private_metadata": c.id,
        "title": plain("Deny the call", 24),
        "submit": plain("Deny", 24),
        "close": plain("Cancel", 24),
        "blocks": [
            section(format!(
                "Deny *{}*'s call to {}? The agent is told who denied it and why.",
                escape_cut(&c.agent, 200),
                code(&format!("{}:{}", c.service, c.operation), 300),
            )),
            {
                "type": "input",
                "block_id": REASON,
                "label": plain("Reason", 2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON,
                    "multiline": true,
                    "min_length": 1,
                    "max_length": MAX_REASON_CHARS,
                },
            },
        ],
    })
}

#[cfg(test)]
mod tests;

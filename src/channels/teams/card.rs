//! The Adaptive Card (1.4, for `Action.Execute`) reviewers see in Teams.
//!
//! Teams renders Markdown in `TextBlock` text and in `FactSet` titles and values, and its
//! clients disagree on backslash escapes. So no text that came from the agent (or a
//! reviewer) ever goes there: every such value is a `TextRun` in a `RichTextBlock`, which
//! Teams shows as plain text (no links, emphasis, lists or mentions). `TextBlock`s carry
//! only Airlock's own labels. On top of that, [`plain`] turns control characters (line
//! breaks among them) into spaces, drops bidirectional overrides and invisible characters
//! that could disguise a value, and breaks up `{{`, which would otherwise start an
//! Adaptive Card date/time function.

use serde_json::{Value, json};

use crate::approvals::State;
use crate::channels::Context;
use crate::channels::context::rfc3339;

pub const CONTENT_TYPE: &str = "application/vnd.microsoft.card.adaptive";
/// The id of the deny reason input: its value arrives as `data.reason`.
pub const REASON_INPUT: &str = "reason";
/// Longest deny reason the input accepts.
pub const MAX_REASON: usize = 500;

/// The card for `context` as it stands: buttons while pending, the outcome once decided.
pub fn card(context: &Context) -> Value {
    let pending = context.state == State::Pending;
    let (title, color) = match context.state {
        State::Pending => ("Airlock: approval needed", "Warning"),
        State::Approved => ("Airlock: approved", "Good"),
        State::Denied => ("Airlock: denied", "Attention"),
        State::Expired => ("Airlock: expired", "Default"),
    };
    let mut body = vec![json!({
        "type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium",
        "color": color, "wrap": true,
    })];
    body.push(row("Status", &[context.outcome()]));
    body.push(row(
        "Agent",
        &[format!("{} (owner {})", context.agent, context.owner)],
    ));
    body.push(row(
        "Call",
        &[format!(
            "{} {} {}",
            context.cloud, context.service, context.operation
        )],
    ));
    body.push(row("Actions", &[context.actions_line()]));
    body.push(row("Resources", &or_none(context.resources.clone())));
    let mut params: Vec<String> = context
        .params
        .iter()
        .map(|p| format!("{} = {}", p.name, p.value))
        .collect();
    if context.more_params > 0 {
        params.push(format!("and {} more on the web page", context.more_params));
    }
    body.push(row("Parameters", &or_none(params)));
    let place = [
        context.account.as_ref().map(|a| format!("account {a}")),
        context.region.as_ref().map(|r| format!("region {r}")),
    ];
    let place: Vec<String> = place.into_iter().flatten().collect();
    body.push(row("Where", &[or_dash(place.join(", "))]));
    let rule = match &context.message {
        Some(message) => format!("{}: {message}", context.rule),
        None => context.rule.clone(),
    };
    body.push(row("Rule", &[rule]));
    body.push(row(
        "Reason",
        &[context
            .reason
            .clone()
            .unwrap_or_else(|| "(the agent gave none)".into())],
    ));
    let votes: Vec<String> = context
        .votes
        .iter()
        .map(|v| {
            let verb = if v.approve { "approved" } else { "denied" };
            match &v.reason {
                Some(reason) => format!("{} {verb} via {}: {reason}", v.approver, v.via),
                None => format!("{} {verb} via {}", v.approver, v.via),
            }
        })
        .collect();
    body.push(row("Votes", &or_none(votes)));
    body.push(row("Progress", &[context.progress()]));
    body.push(row("Expires", &[rfc3339(context.expires_at)]));
    let open = json!({"type": "Action.OpenUrl", "title": "Open in Airlock", "url": context.link});
    let actions = if pending {
        body.push(json!({
            "type": "Input.Text", "id": REASON_INPUT, "label": "Reason (required to deny)",
            "placeholder": "Why deny?", "isMultiline": true, "maxLength": MAX_REASON,
            "isRequired": true, "errorMessage": "A denial needs a reason.",
        }));
        vec![
            execute("Approve", "approve", "positive", "none", context),
            execute("Deny", "deny", "destructive", "auto", context),
            open,
        ]
    } else {
        vec![open]
    };
    json!({
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": body,
        "actions": actions,
    })
}

/// An `Action.Execute` button; hosts without Universal Actions fall back to the web page.
/// `inputs`: `none` (Approve: the deny reason is not asked for) or `auto` (Deny: the
/// reason input, which is required, must be filled in).
fn execute(title: &str, verb: &str, style: &str, inputs: &str, context: &Context) -> Value {
    json!({
        "type": "Action.Execute", "title": title, "verb": verb, "style": style,
        "associatedInputs": inputs,
        "data": {"approval": context.id},
        "fallback": {
            "type": "Action.OpenUrl", "title": format!("{title} in Airlock"), "url": context.link,
        },
    })
}

/// A labelled row: Airlock's label as a `TextBlock`, the values (which may come from the
/// agent) as plain `TextRun`s, one line each.
fn row(label: &'static str, lines: &[String]) -> Value {
    let values: Vec<Value> = lines
        .iter()
        .map(|line| {
            json!({
                "type": "RichTextBlock",
                "inlines": [{"type": "TextRun", "text": plain(line)}],
            })
        })
        .collect();
    json!({
        "type": "ColumnSet",
        "spacing": "Small",
        "columns": [
            {"type": "Column", "width": "90px", "items": [
                {"type": "TextBlock", "text": label, "weight": "Bolder", "wrap": true},
            ]},
            {"type": "Column", "width": "stretch", "items": values},
        ],
    })
}

fn or_none(lines: Vec<String>) -> Vec<String> {
    if lines.is_empty() {
        vec!["(none)".into()]
    } else {
        lines
    }
}

fn or_dash(text: String) -> String {
    if text.is_empty() { "-".into() } else { text }
}

/// Text for a `TextRun`: one line, nothing invisible, no date/time functions.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            c if c.is_control() => out.push(' '),
            // Bidirectional embeddings, overrides and isolates; zero-width characters.
            '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2060}'
            | '\u{FEFF}' => out.push('\u{FFFD}'),
            '{' if out.ends_with('{') => {
                // `{{DATE(…)}}` would be evaluated: keep the braces apart.
                out.push(' ');
                out.push('{');
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;

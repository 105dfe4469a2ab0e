//! The web page's HTML, with maud: every `(value)` is escaped, so nothing an agent sent
//! (parameters, resources, reason) can become markup. No scripts: plain forms.

use maud::{DOCTYPE, Markup, html};

use crate::approvals::State;
use crate::channels::Context;
use crate::channels::context::rfc3339;

/// The page's only stylesheet (served at `/ui/style.css`; the CSP allows no inline style).
pub const STYLE: &str = include_str!("style.css");

/// Who is signed in, and the CSRF token their forms carry.
pub struct SignedIn {
    pub name: String,
    pub csrf: String,
}

/// A message at the top of a page.
#[derive(Debug, Clone)]
pub struct Notice {
    pub ok: bool,
    pub text: String,
}

impl Notice {
    pub fn ok(text: &str) -> Notice {
        Notice {
            ok: true,
            text: text.into(),
        }
    }

    pub fn error(text: &str) -> Notice {
        Notice {
            ok: false,
            text: text.into(),
        }
    }
}

fn layout(title: &str, who: Option<&SignedIn>, notice: Option<&Notice>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Airlock" }
                link rel="stylesheet" href="/ui/style.css";
            }
            body {
                header {
                    a.brand href="/ui" { "Airlock approvals" }
                    @if let Some(who) = who {
                        form.sign-out method="post" action="/ui/sign-out" {
                            span.who { "Signed in as " strong { (who.name) } }
                            input type="hidden" name="csrf" value=(who.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main {
                    @if let Some(notice) = notice {
                        div.notice.ok[notice.ok].error[!notice.ok] role="alert" id="notice" {
                            (notice.text)
                        }
                    }
                    (body)
                }
            }
        }
    }
}

/// A page with one message (not found, refused, signed out).
pub fn message(title: &str, text: &str, who: Option<&SignedIn>) -> Markup {
    layout(
        title,
        who,
        Some(&Notice::error(text)),
        html! {
            h1 { (title) }
            p { a href="/ui" { "Back to the approvals" } }
        },
    )
}

pub fn sign_in(csrf: &str, error: Option<&str>, next: Option<&str>) -> Markup {
    let notice = error.map(Notice::error);
    layout(
        "Sign in",
        None,
        notice.as_ref(),
        html! {
            h1 { "Sign in" }
            p {
                "Paste your approver token (the one " code { "airlock approvals token" }
                " made for you)."
            }
            form.sign-in method="post" action="/ui/sign-in" autocomplete="off" {
                input type="hidden" name="csrf" value=(csrf);
                @if let Some(next) = next {
                    input type="hidden" name="next" value=(next);
                }
                label for="token" { "Approver token" }
                input type="password" id="token" name="token" required autofocus;
                button type="submit" { "Sign in" }
            }
        },
    )
}

fn state_badge(state: State) -> Markup {
    html! { span class=(format!("state {}", state.as_str())) { (state.as_str()) } }
}

pub fn list(
    who: &SignedIn,
    pending: &[Context],
    decided: &[Context],
    notice: Option<&Notice>,
) -> Markup {
    layout(
        "Approvals",
        Some(who),
        notice,
        html! {
            h1 { "Pending approvals" }
            @if pending.is_empty() {
                p.empty { "Nothing is waiting for a decision." }
            } @else {
                table #pending {
                    thead { tr { th { "Call" } th { "Agent" } th { "Owner" } th { "Rule" } th { "Votes" } th { "Expires" } } }
                    tbody {
                        @for c in pending {
                            tr {
                                td { a href=(format!("/ui/approvals/{}", c.id)) { (c.service) ":" (c.operation) } }
                                td { (c.agent) }
                                td { (c.owner) }
                                td { (c.rule) }
                                td { (c.progress()) }
                                td { (rfc3339(c.expires_at)) }
                            }
                        }
                    }
                }
            }
            h2 { "Recent decisions" }
            @if decided.is_empty() {
                p.empty { "None yet." }
            } @else {
                table #history {
                    thead { tr { th { "Call" } th { "Agent" } th { "State" } th { "Outcome" } th { "When" } } }
                    tbody {
                        @for c in decided {
                            tr {
                                td { a href=(format!("/ui/approvals/{}", c.id)) { (c.service) ":" (c.operation) } }
                                td { (c.agent) }
                                td { (state_badge(c.state)) }
                                td { (c.outcome()) }
                                td { (rfc3339(c.decided_at.unwrap_or(c.expires_at))) }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// One approval: everything a reviewer needs, all parameters in full (`params_json`), and
/// the approve/deny forms while it is pending.
pub fn detail(who: &SignedIn, c: &Context, params_json: &str, notice: Option<&Notice>) -> Markup {
    let title = format!("{}:{}", c.service, c.operation);
    layout(
        &title,
        Some(who),
        notice,
        html! {
            h1 { (title) " " (state_badge(c.state)) }
            p.outcome #outcome { (c.outcome()) }
            dl.facts {
                dt { "Agent" } dd #agent { (c.agent) }
                dt { "Owner" } dd #owner { (c.owner) }
                dt { "Call" } dd { (c.cloud) " · " (c.service) " · " (c.operation) }
                dt { "Account" } dd { (c.account.as_deref().unwrap_or("unknown")) }
                dt { "Region" } dd { (c.region.as_deref().unwrap_or("global")) }
                dt { "Rule" } dd #rule { (c.rule) }
                dt { "Rule's message" } dd #message { (c.message.as_deref().unwrap_or("none")) }
                dt { "Agent's reason" } dd #reason {
                    @match &c.reason {
                        Some(reason) => { (reason) }
                        None => { em { "The agent gave none (header x-airlock-reason)." } }
                    }
                }
                dt { "Requested" } dd { (rfc3339(c.requested_at)) }
                dt { "Expires" } dd #expires { (rfc3339(c.expires_at)) }
                @if let Some(at) = c.decided_at {
                    dt { "Decided" } dd { (rfc3339(at)) }
                }
                dt { "Approvers" } dd #progress { (c.progress()) }
            }
            h2 { "IAM actions" }
            table #actions {
                thead { tr { th { "Action" } th { "Access level" } } }
                tbody {
                    @for a in &c.actions {
                        tr { td { code { (a.name) } } td { (a.access) } }
                    }
                }
            }
            h2 { "Resources" }
            @if c.resources.is_empty() {
                p.empty { "None named." }
            } @else {
                ul #resources { @for r in &c.resources { li { code { (r) } } } }
            }
            h2 { "Parameters" }
            pre #params { (params_json) }
            h2 { "Votes" }
            @if c.votes.is_empty() {
                p.empty { "No votes yet." }
            } @else {
                table #votes {
                    thead { tr { th { "Reviewer" } th { "Vote" } th { "Reason" } th { "Via" } th { "When" } } }
                    tbody {
                        @for v in &c.votes {
                            tr {
                                td { (v.approver) }
                                td { @if v.approve { "approve" } @else { "deny" } }
                                td { (v.reason.as_deref().unwrap_or("")) }
                                td { (v.via) }
                                td { (rfc3339(v.at)) }
                            }
                        }
                    }
                }
            }
            @if c.state == State::Pending {
                h2 { "Decide" }
                div.decide {
                    form #approve method="post" action=(format!("/ui/approvals/{}", c.id)) {
                        input type="hidden" name="csrf" value=(who.csrf);
                        input type="hidden" name="decision" value="approve";
                        label for="approve-reason" { "Reason (optional)" }
                        textarea id="approve-reason" name="reason" maxlength="2000" {}
                        button.approve type="submit" { "Approve" }
                    }
                    form #deny method="post" action=(format!("/ui/approvals/{}", c.id)) {
                        input type="hidden" name="csrf" value=(who.csrf);
                        input type="hidden" name="decision" value="deny";
                        label for="deny-reason" { "Reason (required)" }
                        textarea id="deny-reason" name="reason" maxlength="2000" required {}
                        button.deny type="submit" { "Deny" }
                    }
                }
            }
        },
    )
}

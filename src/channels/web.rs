//! The web page: `/ui` on the control listener, for reviewers who decide in a browser.
//!
//! | request | answer |
//! |---|---|
//! | `GET /ui` | pending approvals and recent decisions (signed in), else to sign-in |
//! | `GET /ui/sign-in`, `POST /ui/sign-in` `token, csrf` | the form; a session cookie |
//! | `POST /ui/sign-out` `csrf` | the session ends |
//! | `GET /ui/approvals/{id}` | everything about one approval, all parameters in full |
//! | `POST /ui/approvals/{id}` `csrf, decision=approve\|deny, reason` | a vote (`via: web`) |
//! | `GET /ui/style.css` | the page's only stylesheet |
//!
//! Security, and why:
//! - Reviewers sign in with their approver token in a POST body, never a URL (URLs end up
//!   in logs and histories). The session id is 256 random bits in an `HttpOnly`,
//!   `SameSite=Strict`, `Path=/ui` cookie (`Secure` with `channels.web.secure_cookie`);
//!   the server keeps only its SHA-256, so a memory dump yields no usable session.
//! - Every POST carries a per-session CSRF token in a hidden field, compared in constant
//!   time, and is refused if an `Origin` header names another site. The sign-in form, which
//!   has no session yet, uses a double-submit cookie instead (so no one can sign a victim
//!   into their own session).
//! - Votes go through [`Approvals::vote`]: groups, self-approval, quorum, expiry and
//!   decided approvals are checked there, never here. A refusal is shown on the page and
//!   counted in `airlock_channel_callbacks_total{channel="web"}`.
//! - Everything the agent sent is rendered by maud, which escapes every value: a parameter
//!   `<script>` is text. No JavaScript at all: the CSP allows only the stylesheet, and no
//!   framing (`frame-ancestors 'none'`, `X-Frame-Options: DENY`).

pub mod pages;
mod sessions;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use maud::Markup;
use subtle::ConstantTimeEq;

use super::{Context, count_callback, refusal_reason};
use crate::approvals::{Approvals, Approver, State, VoteError};
use crate::metrics::Metrics;
use sessions::{Sessions, random_token};

/// The session cookie.
const SESSION_COOKIE: &str = "airlock_session";
/// The sign-in form's double-submit cookie.
const SIGN_IN_COOKIE: &str = "airlock_sign_in";
/// How long a sign-in form stays usable.
const SIGN_IN_FORM_TTL: Duration = Duration::from_secs(3600);
/// Forms are small: a token, a CSRF token, a decision and a reason.
const MAX_FORM: usize = 16 * 1024;
/// A vote's reason, at most (characters).
const MAX_REASON: usize = 2000;
/// Decided approvals shown under "Recent decisions".
const HISTORY: usize = 50;

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// Whether `path` is the web page's.
pub fn owns(path: &str) -> bool {
    path == "/ui" || path.starts_with("/ui/")
}

/// The answer under `/ui` when the web page is off (`channels.web.enabled: false`).
pub fn disabled() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(
        b"not found: the web page is off (channels.web.enabled: false)\n",
    )));
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// The web page's state: configuration and the server-side sessions.
pub struct Web {
    approvals: Arc<Approvals>,
    metrics: Arc<Metrics>,
    secure_cookie: bool,
    /// The origin of `channels.base_url`, also accepted as a POST's `Origin`.
    base_origin: Option<String>,
    sessions: Sessions,
}

/// What a request's session cookie found.
struct Reviewer {
    key: String,
    approver: Approver,
    csrf: String,
}

impl Web {
    pub fn new(
        config: &super::ChannelsConfig,
        approvals: Arc<Approvals>,
        metrics: Arc<Metrics>,
    ) -> Web {
        let base_origin = config.base_url.as_deref().and_then(origin_of);
        Web {
            approvals,
            metrics,
            secure_cookie: config.web.secure_cookie,
            base_origin,
            sessions: Sessions::new(config.web.session_ttl),
        }
    }

    /// Answer a request under `/ui`.
    pub async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path().to_string();
        let method = request.method().clone();
        let rest = path.trim_start_matches("/ui").trim_start_matches('/');
        let segments: Vec<&str> = rest.split('/').collect();
        match (&method, segments.as_slice()) {
            (&Method::GET, [""]) => self.list(&request).await,
            (&Method::GET, ["style.css"]) => stylesheet(),
            (&Method::GET, ["sign-in"]) => self.sign_in_form(&request),
            (&Method::POST, ["sign-in"]) => self.sign_in(request).await,
            (&Method::POST, ["sign-out"]) => self.sign_out(request).await,
            (&Method::GET, ["approvals", id]) => {
                let id = id.to_string();
                self.detail(&request, &id).await
            }
            (&Method::POST, ["approvals", id]) => {
                let id = id.to_string();
                self.vote(request, &id).await
            }
            (&Method::GET, _) => page(
                StatusCode::NOT_FOUND,
                pages::message("Not found", "There is no such page.", None),
            ),
            _ => page(
                StatusCode::METHOD_NOT_ALLOWED,
                pages::message("Not allowed", "That method is not used here.", None),
            ),
        }
    }

    async fn list(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        let Some(reviewer) = self.reviewer(request) else {
            return redirect("/ui/sign-in");
        };
        let flash = self.take_flash(&reviewer.key);
        let (pending, decided) = match (
            self.approvals.list(Some(State::Pending)).await,
            self.approvals.list(None).await,
        ) {
            (Ok(p), Ok(all)) => (p, all),
            (Err(e), _) | (_, Err(e)) => return internal(&e),
        };
        let pending: Vec<Context> = pending.iter().map(|a| Context::of(a, "")).collect();
        let decided: Vec<Context> = decided
            .iter()
            .filter(|a| a.state != State::Pending)
            .take(HISTORY)
            .map(|a| Context::of(a, ""))
            .collect();
        page(
            StatusCode::OK,
            pages::list(&reviewer.signed_in(), &pending, &decided, flash.as_ref()),
        )
    }

    async fn detail(&self, request: &Request<Incoming>, id: &str) -> Response<Full<Bytes>> {
        let Some(reviewer) = self.reviewer(request) else {
            // Back to this approval after signing in (links in chat messages land here).
            return match safe_next(&format!("/ui/approvals/{id}")) {
                Some(next) => redirect(&format!("/ui/sign-in?next={next}")),
                None => redirect("/ui/sign-in"),
            };
        };
        let flash = self.take_flash(&reviewer.key);
        self.render_detail(&reviewer, id, StatusCode::OK, flash.as_ref())
            .await
    }

    async fn render_detail(
        &self,
        reviewer: &Reviewer,
        id: &str,
        status: StatusCode,
        notice: Option<&pages::Notice>,
    ) -> Response<Full<Bytes>> {
        let approval = match self.approvals.get(id).await {
            Ok(Some(a)) => a,
            Ok(None) => {
                return page(
                    StatusCode::NOT_FOUND,
                    pages::message(
                        "Not found",
                        "There is no such approval.",
                        Some(&reviewer.signed_in()),
                    ),
                );
            }
            Err(e) => return internal(&e),
        };
        let context = Context::of(&approval, "");
        // A batch shows every part's operation, resources and parameters in full.
        let shown = match approval.call.get("parts").and_then(|p| p.as_array()) {
            Some(parts) if !parts.is_empty() => Some(serde_json::Value::Array(
                parts
                    .iter()
                    .map(|part| {
                        serde_json::json!({
                            "operation": part["operation"],
                            "resources": part["resources"],
                            "params": part["params"],
                        })
                    })
                    .collect(),
            )),
            _ => approval.call.get("params").cloned(),
        };
        let params = shown
            .map(|p| serde_json::to_string_pretty(&p).unwrap_or_default())
            .unwrap_or_else(|| "{}".into());
        page(
            status,
            pages::detail(&reviewer.signed_in(), &context, &params, notice),
        )
    }

    /// A signed-in reviewer's form: the session, the origin and the CSRF token checked.
    async fn signed_in_form(
        &self,
        request: Request<Incoming>,
    ) -> Result<(Reviewer, Vec<(String, String)>), Response<Full<Bytes>>> {
        let Some(reviewer) = self.reviewer(&request) else {
            return Err(self.signed_out_post());
        };
        if !self.same_origin(&request) {
            return Err(self.cross_site());
        }
        let form = read_form(request).await?;
        if !matches(field(&form, "csrf"), &reviewer.csrf) {
            return Err(self.csrf_refused(Some(&reviewer)));
        }
        Ok((reviewer, form))
    }

    async fn vote(&self, request: Request<Incoming>, id: &str) -> Response<Full<Bytes>> {
        let (reviewer, form) = match self.signed_in_form(request).await {
            Ok(checked) => checked,
            Err(refused) => return refused,
        };
        let approve = match field(&form, "decision") {
            Some("approve") => true,
            Some("deny") => false,
            _ => {
                count_callback(&self.metrics, "web", false, "bad_request");
                let notice = pages::Notice::error("Choose approve or deny.");
                return self
                    .render_detail(&reviewer, id, StatusCode::BAD_REQUEST, Some(&notice))
                    .await;
            }
        };
        let reason = field(&form, "reason")
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_string);
        let problem = match &reason {
            None if !approve => Some("A denial needs a reason: say why, for the agent's owner."),
            Some(r) if r.chars().count() > MAX_REASON => {
                Some("That reason is too long (at most 2000 characters).")
            }
            _ => None,
        };
        if let Some(problem) = problem {
            count_callback(&self.metrics, "web", false, "bad_request");
            let notice = pages::Notice::error(problem);
            return self
                .render_detail(&reviewer, id, StatusCode::BAD_REQUEST, Some(&notice))
                .await;
        }
        match self
            .approvals
            .vote(id, &reviewer.approver, approve, reason, "web")
            .await
        {
            Ok(approval) => {
                count_callback(
                    &self.metrics,
                    "web",
                    true,
                    if approve { "approve" } else { "deny" },
                );
                let text = format!(
                    "You {} this call. It is now {}.",
                    if approve { "approved" } else { "denied" },
                    approval.state.as_str()
                );
                self.sessions
                    .set_flash(&reviewer.key, pages::Notice::ok(&text));
                redirect(&format!("/ui/approvals/{id}"))
            }
            Err(error) => {
                count_callback(&self.metrics, "web", false, refusal_reason(&error));
                let status = match &error {
                    VoteError::NotFound(_) => StatusCode::NOT_FOUND,
                    VoteError::Decided { .. }
                    | VoteError::Expired(_)
                    | VoteError::AlreadyVoted(_) => StatusCode::CONFLICT,
                    VoteError::NotInGroup { .. } | VoteError::SelfApproval(_) => {
                        StatusCode::FORBIDDEN
                    }
                    VoteError::Store(_) => return internal(&error),
                };
                let notice = pages::Notice::error(&format!(
                    "Your vote was not counted: {}.",
                    refusal_text(&error)
                ));
                self.render_detail(&reviewer, id, status, Some(&notice))
                    .await
            }
        }
    }

    fn sign_in_form(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        if self.reviewer(request).is_some() {
            return redirect("/ui");
        }
        let next = request
            .uri()
            .query()
            .unwrap_or_default()
            .split('&')
            .find_map(|p| p.strip_prefix("next="))
            .and_then(safe_next);
        self.sign_in_page(StatusCode::OK, None, next.as_deref())
    }

    /// The sign-in form with a fresh double-submit token (in the cookie and the form).
    fn sign_in_page(
        &self,
        status: StatusCode,
        error: Option<&str>,
        next: Option<&str>,
    ) -> Response<Full<Bytes>> {
        let Ok(csrf) = random_token() else {
            return internal(&"the system random generator failed");
        };
        let mut response = page(status, pages::sign_in(&csrf, error, next));
        self.set_cookie(&mut response, SIGN_IN_COOKIE, &csrf, SIGN_IN_FORM_TTL);
        response
    }

    async fn sign_in(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        if !self.same_origin(&request) {
            return self.cross_site();
        }
        let expected = cookie(&request, SIGN_IN_COOKIE).map(str::to_string);
        let form = match read_form(request).await {
            Ok(form) => form,
            Err(response) => return response,
        };
        let next = field(&form, "next").and_then(safe_next);
        let fresh = expected.is_some_and(|e| matches(field(&form, "csrf"), &e));
        if !fresh {
            count_callback(&self.metrics, "web", false, "csrf");
            return self.sign_in_page(
                StatusCode::FORBIDDEN,
                Some("That sign-in form had expired or was not this page's. Try again."),
                next.as_deref(),
            );
        }
        let token = field(&form, "token").unwrap_or_default().trim();
        let Some(approver) = self.approvals.approvers().by_token(token) else {
            count_callback(&self.metrics, "web", false, "bad_token");
            return self.sign_in_page(
                StatusCode::UNAUTHORIZED,
                Some("That is not an approver token. Nothing was signed in."),
                next.as_deref(),
            );
        };
        let Some(id) = self.sessions.open(&approver.name, Instant::now()) else {
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                pages::message(
                    "Too many sessions",
                    "Too many reviewers are signed in (or no session could be made). Try \
                     again later.",
                    None,
                ),
            );
        };
        tracing::info!(approver = %approver.name, "reviewer signed in to the web page");
        let mut response = redirect(next.as_deref().unwrap_or("/ui"));
        self.set_cookie(&mut response, SESSION_COOKIE, &id, self.sessions.ttl);
        self.set_cookie(&mut response, SIGN_IN_COOKIE, "", Duration::ZERO);
        response
    }

    async fn sign_out(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let reviewer = match self.signed_in_form(request).await {
            Ok((reviewer, _)) => reviewer,
            Err(refused) => return refused,
        };
        self.sessions.end(&reviewer.key);
        let mut response = redirect("/ui/sign-in");
        self.set_cookie(&mut response, SESSION_COOKIE, "", Duration::ZERO);
        response
    }

    /// The signed-in reviewer, if the session cookie names a live session of a configured
    /// approver.
    fn reviewer(&self, request: &Request<Incoming>) -> Option<Reviewer> {
        let found = self
            .sessions
            .find(cookie(request, SESSION_COOKIE)?, Instant::now())?;
        let approver = self
            .approvals
            .approvers()
            .by_email(&found.approver)?
            .clone();
        Some(Reviewer {
            csrf: found.csrf,
            key: found.key,
            approver,
        })
    }

    fn take_flash(&self, key: &str) -> Option<pages::Notice> {
        self.sessions.take_flash(key)
    }

    /// A POST must come from this site. `Sec-Fetch-Site`, when sent, must say
    /// `same-origin`. An `Origin`, when sent, must be this site (the Host it was sent to,
    /// or `channels.base_url`), except `null`: browsers send `Origin: null` for their own
    /// form posts under `Referrer-Policy: no-referrer`, so `null` passes only with
    /// `Sec-Fetch-Site: same-origin`. The CSRF token is checked in any case.
    fn same_origin(&self, request: &Request<Incoming>) -> bool {
        let headers = request.headers();
        let fetch_site = headers.get("sec-fetch-site").map(|v| v.as_bytes());
        if fetch_site.is_some_and(|site| site != b"same-origin" && site != b"none") {
            return false;
        }
        let Some(origin) = headers.get(header::ORIGIN) else {
            return true;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let origin = origin.trim_end_matches('/');
        if origin == "null" {
            return fetch_site == Some(b"same-origin");
        }
        if self
            .base_origin
            .as_deref()
            .is_some_and(|base| base.eq_ignore_ascii_case(origin))
        {
            return true;
        }
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        match (origin.split_once("://"), host) {
            (Some(("http" | "https", authority)), Some(host)) => {
                authority.eq_ignore_ascii_case(host)
            }
            _ => false,
        }
    }

    fn cross_site(&self) -> Response<Full<Bytes>> {
        count_callback(&self.metrics, "web", false, "cross_site");
        page(
            StatusCode::FORBIDDEN,
            pages::message(
                "Refused",
                "This form was sent from another site. Nothing was changed.",
                None,
            ),
        )
    }

    fn csrf_refused(&self, reviewer: Option<&Reviewer>) -> Response<Full<Bytes>> {
        count_callback(&self.metrics, "web", false, "csrf");
        page(
            StatusCode::FORBIDDEN,
            pages::message(
                "Refused",
                "This form was stale or did not come from this page (its CSRF token did not \
                 match). Nothing was changed. Go back, reload the page and try again.",
                reviewer.map(Reviewer::signed_in).as_ref(),
            ),
        )
    }

    fn signed_out_post(&self) -> Response<Full<Bytes>> {
        count_callback(&self.metrics, "web", false, "unauthenticated");
        page(
            StatusCode::UNAUTHORIZED,
            pages::message(
                "Signed out",
                "You are not signed in (or your session ended). Nothing was changed.",
                None,
            ),
        )
    }

    fn set_cookie(
        &self,
        response: &mut Response<Full<Bytes>>,
        name: &str,
        value: &str,
        max_age: Duration,
    ) {
        let secure = if self.secure_cookie { "; Secure" } else { "" };
        let cookie = format!(
            "{name}={value}; HttpOnly; SameSite=Strict; Path=/ui; Max-Age={}{secure}",
            max_age.as_secs()
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
}

impl Reviewer {
    fn signed_in(&self) -> pages::SignedIn {
        pages::SignedIn {
            name: self.approver.name.clone(),
            csrf: self.csrf.clone(),
        }
    }
}

/// Why a vote was refused, in the reviewer's words.
fn refusal_text(error: &VoteError) -> String {
    match error {
        VoteError::SelfApproval(name) => format!(
            "{name} owns the agent that made this call, and nobody approves their own \
             agent's calls; another reviewer must decide"
        ),
        VoteError::NotInGroup { approver, groups } => {
            format!("{approver} is not in an approver group of this approval ({groups})")
        }
        VoteError::Expired(_) => "this approval has expired".into(),
        VoteError::Decided { state, .. } => format!("this approval is already {state}"),
        VoteError::AlreadyVoted(_) => "you have already voted on this approval".into(),
        VoteError::NotFound(_) => "there is no such approval".into(),
        VoteError::Store(e) => format!("the store failed: {e}"),
    }
}

fn page(status: StatusCode, markup: Markup) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(markup.into_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(&mut response);
    response
}

fn redirect(location: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    secure_headers(&mut response);
    response
}

fn stylesheet() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(pages::STYLE.as_bytes())));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    secure_headers(&mut response);
    response
}

fn internal(error: &dyn std::fmt::Display) -> Response<Full<Bytes>> {
    tracing::error!(error = %error, "web page failed");
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        pages::message(
            "Something failed",
            "Airlock could not read its approvals; the logs say why.",
            None,
        ),
    )
}

/// Every `/ui` answer: no scripts, no framing, no referrers, no caching.
fn secure_headers(response: &mut Response<Full<Bytes>>) {
    let headers = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
        ("x-content-type-options", "nosniff"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// A form body (`application/x-www-form-urlencoded`, at most 16 KiB) as name → value.
async fn read_form(
    request: Request<Incoming>,
) -> Result<Vec<(String, String)>, Response<Full<Bytes>>> {
    let body = Limited::new(request.into_body(), MAX_FORM)
        .collect()
        .await
        .map_err(|_| {
            page(
                StatusCode::PAYLOAD_TOO_LARGE,
                pages::message("Too large", "That form was over 16 KiB.", None),
            )
        })?
        .to_bytes();
    Ok(form_urlencoded::parse(&body).into_owned().collect())
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Where to go after signing in: only an approval's page of this site (never another
/// site: no open redirect).
fn safe_next(path: &str) -> Option<String> {
    let id = path.strip_prefix("/ui/approvals/")?;
    let safe = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    safe.then(|| path.to_string())
}

/// A submitted token equals the expected one (constant time; an empty one never does).
fn matches(submitted: Option<&str>, expected: &str) -> bool {
    let submitted = submitted.unwrap_or_default();
    !expected.is_empty() && bool::from(submitted.as_bytes().ct_eq(expected.as_bytes()))
}

/// The value of cookie `name`.
fn cookie<'a>(request: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    Some(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_exactly_and_never_empty() {
        assert!(matches(Some("abc"), "abc"));
        assert!(!matches(Some("abd"), "abc"));
        assert!(!matches(Some("ab"), "abc"));
        assert!(!matches(None, "abc"));
        assert!(!matches(Some(""), ""));
    }

    #[test]
    fn after_sign_in_only_an_approvals_page_of_this_site() {
        assert_eq!(
            safe_next("/ui/approvals/apr-abc123").as_deref(),
            Some("/ui/approvals/apr-abc123")
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/ui/approvals/x",
            "/ui/approvals/",
            "/ui/approvals/x/../../v1",
            "/ui/approvals/x?y=1",
            "/ui/sign-out",
        ] {
            assert_eq!(safe_next(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_base_urls_origin() {
        assert_eq!(
            origin_of("https://airlock.example.com/base/").as_deref(),
            Some("https://airlock.example.com")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:9090").as_deref(),
            Some("http://127.0.0.1:9090")
        );
        assert_eq!(origin_of("airlock"), None);
    }
}

use std::path::Path;

use super::*;

fn parse_str(text: &str) -> Result<Config, ConfigErrors> {
    parse(text, Path::new("/etc/airlock/airlock.yaml"))
}

#[test]
fn the_shipped_default_file_is_exactly_the_defaults() {
    let mut parsed = parse_str(DEFAULT_CONFIG_YAML).unwrap();
    parsed.base_dir = PathBuf::from(".");
    assert_eq!(parsed, Config::default());
}

#[test]
fn an_empty_file_is_the_defaults() {
    let parsed = parse_str("").unwrap();
    assert_eq!(parsed.proxy.listen, DEFAULT_PROXY_LISTEN);
    assert_eq!(parsed.base_dir, Path::new("/etc/airlock"));
}

#[test]
fn relative_paths_resolve_from_the_config_directory() {
    let parsed = parse_str("ca:\n  dir: tls\n").unwrap();
    assert_eq!(parsed.ca_dir(), Path::new("/etc/airlock/tls"));
}

#[test]
fn every_error_is_reported_with_its_line() {
    let text = "\
proxy:
  listen: not-an-address
control:
  listen: 127.0.0.1:9000
intercept:
  - amazonaws.com
  - '*.googleapis.com'
upstream:
  routes:
    - host: '*.amazonaws.com'
      to: https://moto.local:5000
limits:
  max_connections: 0
colour: blue
";
    let errors = parse_str(text).unwrap_err();
    let rendered = errors.to_string();
    let found: Vec<(Option<usize>, &str)> = errors
        .errors
        .iter()
        .map(|e| (e.line, e.path.as_str()))
        .collect();
    // Type errors and semantic errors, all in one pass, in file order.
    assert_eq!(
        found,
        [
            (Some(2), "proxy.listen"),
            (Some(7), "intercept[1]"),
            (Some(11), "upstream.routes[0].to"),
            (Some(13), "limits.max_connections"),
            (Some(14), "colour"),
        ],
        "{rendered}"
    );
    assert!(
        rendered.starts_with("5 errors in /etc/airlock/airlock.yaml:\n"),
        "{rendered}"
    );
    assert!(
        rendered.contains("airlock.yaml:2: proxy.listen:"),
        "{rendered}"
    );
    assert!(
        rendered.contains("airlock.yaml:14: colour: unknown section"),
        "{rendered}"
    );
}

#[test]
fn syntax_errors_have_a_line() {
    let errors = parse_str("proxy:\n  listen: [\n").unwrap_err();
    assert_eq!(errors.errors.len(), 1);
    assert!(errors.errors[0].line.is_some());
}

#[test]
fn durations_take_human_units() {
    let parsed = parse_str("limits:\n  header_read_timeout: 1500ms\n").unwrap();
    assert_eq!(
        parsed.limits.header_read_timeout,
        Duration::from_millis(1500)
    );
}

#[test]
fn intercept_and_tunnel_may_not_overlap() {
    let errors = parse_str("tunnel: [s3.amazonaws.com]\n").unwrap_err();
    assert_eq!(errors.errors[0].path, "tunnel[0]");
    assert_eq!(errors.errors[0].line, Some(1));
}

#[test]
fn a_missing_upstream_ca_file_is_an_error() {
    let errors = parse_str("upstream:\n  ca_file: /nonexistent/ca.pem\n").unwrap_err();
    assert_eq!(errors.errors[0].path, "upstream.ca_file");
    assert_eq!(errors.errors[0].line, Some(2));
}

#[test]
fn a_teams_section_loads_with_its_defaults_and_bad_urls_are_errors() {
    let text = "\
channels:
  teams:
    app_id: bot-app-id
    app_password_file: teams.secret
    service_url: https://smba.trafficmanager.net/emea/
    conversations: {security: '19:abc@thread.tacv2'}
";
    let teams = parse_str(text).unwrap().channels.teams.unwrap();
    assert_eq!(teams.issuer, "https://api.botframework.com");
    assert_eq!(
        teams.openid_metadata_url,
        "https://login.botframework.com/v1/.well-known/openidconfiguration"
    );
    assert!(
        teams
            .token_url
            .starts_with("https://login.microsoftonline.com/")
    );
    assert_eq!(teams.conversations["security"], "19:abc@thread.tacv2");

    let text = "\
channels:
  teams:
    app_id: ''
    app_password_file: teams.secret
    service_url: smba.trafficmanager.net
    token_url: ftp://login
    conversations: {}
";
    let errors = parse_str(text).unwrap_err();
    let mut paths: Vec<&str> = errors.errors.iter().map(|e| e.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "channels.teams.app_id",
            "channels.teams.conversations",
            "channels.teams.service_url",
            "channels.teams.token_url",
        ],
        "{errors}"
    );
}

#[test]
fn the_channels_section_is_read_and_the_web_pages_session_checked() {
    let parsed =
        parse_str("channels:\n  web:\n    session_ttl: 2h\n    secure_cookie: true\n").unwrap();
    assert_eq!(parsed.channels.web.session_ttl, Duration::from_secs(7200));
    assert!(parsed.channels.web.secure_cookie && parsed.channels.web.enabled);
    let errors = parse_str("channels:\n  web:\n    session_ttl: 0s\n").unwrap_err();
    assert_eq!(errors.errors[0].path, "channels.web.session_ttl");
    assert_eq!(errors.errors[0].line, Some(3));
}

#[test]
fn a_slack_section_needs_a_way_to_take_clicks_and_a_channel() {
    let text = "\
channels:
  slack:
    bot_token_file: slack-bot
    signing_secret_file: slack-signing
    channels: {security: C0SECURITY}
";
    let slack = parse_str(text).unwrap().channels.slack.unwrap();
    assert_eq!(slack.api_url, "https://slack.com/api");
    assert_eq!(slack.channels["security"], "C0SECURITY");
    assert_eq!(slack.app_token_file, None);

    let text = "\
channels:
  slack:
    api_url: slack.com/api
    bot_token_file: slack-bot
    channels: {}
";
    let errors = parse_str(text).unwrap_err();
    let mut paths: Vec<&str> = errors.errors.iter().map(|e| e.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "channels.slack",
            "channels.slack.api_url",
            "channels.slack.channels"
        ]
    );
}

#[test]
fn the_google_credentials_section_reads_durations_and_checks_every_field() {
    let text = "\
credentials:
  google:
    iamcredentials_endpoint: https://iamcredentials-psc.p.googleapis.com/
    scopes: [https://www.googleapis.com/auth/devstorage.read_write]
    token_lifetime: 30m
    refresh_before: 90s
";
    let google = parse_str(text).unwrap().credentials.google;
    assert_eq!(
        google.iamcredentials_endpoint,
        "https://iamcredentials-psc.p.googleapis.com/"
    );
    assert_eq!(
        google.scopes,
        ["https://www.googleapis.com/auth/devstorage.read_write"]
    );
    assert_eq!(google.token_lifetime, Duration::from_secs(1800));
    assert_eq!(google.refresh_before, Duration::from_secs(90));

    let text = "\
credentials:
  google:
    iamcredentials_endpoint: http://iamcredentials.googleapis.com
    scopes: []
    token_lifetime: 13h
    refresh_before: 13h
";
    let errors = parse_str(text).unwrap_err();
    let found: Vec<(Option<usize>, &str)> = errors
        .errors
        .iter()
        .map(|e| (e.line, e.path.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (Some(3), "credentials.google.iamcredentials_endpoint"),
            (Some(4), "credentials.google.scopes"),
            (Some(5), "credentials.google.token_lifetime"),
            (Some(6), "credentials.google.refresh_before"),
        ],
        "{errors}"
    );
    let rendered = errors.to_string();
    assert!(
        rendered.contains("token_lifetime: must be between 1s and 12h"),
        "{rendered}"
    );
    assert!(
        rendered.contains("is not an https URL (Airlock's own token is sent to it)"),
        "{rendered}"
    );

    let errors = parse_str("credentials:\n  google:\n    lifetime: 1h\n").unwrap_err();
    assert_eq!(errors.errors[0].path, "credentials.google.lifetime");
    assert_eq!(errors.errors[0].line, Some(3));
    assert!(
        errors.errors[0]
            .message
            .contains("unknown field `lifetime`"),
        "{errors}"
    );
}

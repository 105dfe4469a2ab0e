//! Which hosts Airlock intercepts, tunnels or refuses: the first decision on every
//! connection, made from the CONNECT target alone.

use std::fmt;

/// A DNS suffix such as `amazonaws.com`: matches the name itself and every name below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSuffix(String);

impl HostSuffix {
    /// Accepts a plain DNS name (case-insensitive; a leading `.` is tolerated). Wildcards
    /// and IP addresses are refused: a suffix already covers every name below it.
    pub fn parse(s: &str) -> Result<Self, String> {
        let name = s.trim().trim_start_matches('.').to_ascii_lowercase();
        if name.contains('*') {
            return Err(format!(
                "`{s}` has a wildcard; write the plain suffix (it already matches every name below it)"
            ));
        }
        if name.parse::<std::net::IpAddr>().is_ok() {
            return Err(format!(
                "`{s}` is an IP address; only DNS names can be listed"
            ));
        }
        if !is_dns_name(&name) {
            return Err(format!("`{s}` is not a DNS name"));
        }
        Ok(HostSuffix(name))
    }

    /// `host` (already lower-case) is this suffix or a name below it.
    pub fn matches(&self, host: &str) -> bool {
        host == self.0
            || (host.len() > self.0.len()
                && host.ends_with(self.0.as_str())
                && host.as_bytes()[host.len() - self.0.len() - 1] == b'.')
    }

    /// Either suffix covers names the other covers.
    pub fn overlaps(&self, other: &HostSuffix) -> bool {
        self.matches(&other.0) || other.matches(&self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HostSuffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Letters, digits and hyphens in dot-separated labels of 1–63 bytes, at most 253 in all.
/// Underscores are accepted because some AWS and Google hosts carry them.
pub fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// What to do with a CONNECT target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Intercept,
    Tunnel,
    Refuse(RefuseReason),
}

/// Why a CONNECT was refused; also the `reason` label of `airlock_connect_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseReason {
    NotIntercepted,
    IpLiteral,
    Port,
    BadTarget,
    PlainHttp,
    TooManyConnections,
}

impl RefuseReason {
    pub const ALL: [RefuseReason; 6] = [
        RefuseReason::NotIntercepted,
        RefuseReason::IpLiteral,
        RefuseReason::Port,
        RefuseReason::BadTarget,
        RefuseReason::PlainHttp,
        RefuseReason::TooManyConnections,
    ];

    pub fn label(self) -> &'static str {
        match self {
            RefuseReason::NotIntercepted => "not_intercepted",
            RefuseReason::IpLiteral => "ip_literal",
            RefuseReason::Port => "port",
            RefuseReason::BadTarget => "bad_target",
            RefuseReason::PlainHttp => "plain_http",
            RefuseReason::TooManyConnections => "too_many_connections",
        }
    }
}

/// The compiled `intercept` and `tunnel` lists.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    intercept: Vec<HostSuffix>,
    tunnel: Vec<HostSuffix>,
}

/// The only port Airlock accepts in CONNECT: cloud APIs are HTTPS on 443.
pub const HTTPS_PORT: u16 = 443;

impl HostPolicy {
    /// Compile validated lists (see `Config::validate`).
    pub fn new(intercept: &[String], tunnel: &[String]) -> Result<Self, String> {
        let parse = |list: &[String]| {
            list.iter()
                .map(|s| HostSuffix::parse(s))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(HostPolicy {
            intercept: parse(intercept)?,
            tunnel: parse(tunnel)?,
        })
    }

    pub fn intercepted(&self) -> &[HostSuffix] {
        &self.intercept
    }

    /// Decide for `host:port` from a CONNECT request line. `host` must be lower-case.
    pub fn decide(&self, host: &str, port: u16) -> Verdict {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if bare.parse::<std::net::IpAddr>().is_ok() {
            return Verdict::Refuse(RefuseReason::IpLiteral);
        }
        if !is_dns_name(host) {
            return Verdict::Refuse(RefuseReason::BadTarget);
        }
        if port != HTTPS_PORT {
            return Verdict::Refuse(RefuseReason::Port);
        }
        if self.intercept.iter().any(|s| s.matches(host)) {
            Verdict::Intercept
        } else if self.tunnel.iter().any(|s| s.matches(host)) {
            Verdict::Tunnel
        } else {
            Verdict::Refuse(RefuseReason::NotIntercepted)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> HostPolicy {
        HostPolicy::new(
            &["amazonaws.com".into(), "api.aws".into()],
            &["github.com".into()],
        )
        .unwrap()
    }

    #[test]
    fn suffixes_match_on_label_boundaries_only() {
        let s = HostSuffix::parse("amazonaws.com").unwrap();
        assert!(s.matches("amazonaws.com"));
        assert!(s.matches("sts.amazonaws.com"));
        assert!(s.matches("my.bucket.s3.us-east-1.amazonaws.com"));
        assert!(!s.matches("evilamazonaws.com"));
        assert!(!s.matches("amazonaws.com.evil.net"));
        assert!(!s.matches("com"));
    }

    #[test]
    fn decide_intercepts_tunnels_and_refuses() {
        let p = policy();
        assert_eq!(p.decide("sts.amazonaws.com", 443), Verdict::Intercept);
        assert_eq!(p.decide("iam.api.aws", 443), Verdict::Intercept);
        assert_eq!(p.decide("api.github.com", 443), Verdict::Tunnel);
        assert_eq!(
            p.decide("example.com", 443),
            Verdict::Refuse(RefuseReason::NotIntercepted)
        );
        assert_eq!(
            p.decide("sts.amazonaws.com", 8443),
            Verdict::Refuse(RefuseReason::Port)
        );
        assert_eq!(
            p.decide("52.94.1.1", 443),
            Verdict::Refuse(RefuseReason::IpLiteral)
        );
        assert_eq!(
            p.decide("[::1]", 443),
            Verdict::Refuse(RefuseReason::IpLiteral)
        );
        assert_eq!(
            p.decide("a b.amazonaws.com", 443),
            Verdict::Refuse(RefuseReason::BadTarget)
        );
    }

    #[test]
    fn suffix_parsing_refuses_wildcards_and_ips() {
        assert!(HostSuffix::parse("*.amazonaws.com").is_err());
        assert!(HostSuffix::parse("10.0.0.1").is_err());
        assert!(HostSuffix::parse("").is_err());
        assert_eq!(
            HostSuffix::parse(".AmazonAWS.com").unwrap().as_str(),
            "amazonaws.com"
        );
    }

    #[test]
    fn overlap_is_symmetric() {
        let a = HostSuffix::parse("amazonaws.com").unwrap();
        let b = HostSuffix::parse("s3.amazonaws.com").unwrap();
        let c = HostSuffix::parse("googleapis.com").unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
    }
}

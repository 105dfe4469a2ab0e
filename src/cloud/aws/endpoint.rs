//! What an AWS host name says: partition, region, endpoint prefix, account (account-ID
//! endpoints), and for S3 how the bucket is addressed.
//!
//! Forms handled: regional `svc.region.amazonaws.com`, global `svc.amazonaws.com`, FIPS
//! (`svc-fips.region…`, `fips` label), dual-stack (`svc.dualstack.region…`,
//! `svc.region.api.aws`), China (`….amazonaws.com.cn`), GovCloud (`us-gov-*` regions),
//! account-ID endpoints (`<acct>.ddb.region…`), host prefixes (`data.iot…`), and S3:
//! virtual-hosted (`bucket.s3.region…`, legacy `bucket.s3-region…`, `bucket.s3…`),
//! path-style, access points (`name-acct.s3-accesspoint.region…`), directory buckets
//! (`bucket--az--x-s3.s3express-az.region…`), S3 Control (`acct.s3-control.region…`),
//! multi-region access points (`alias.mrap.accesspoint.s3-global…`), Transfer
//! Acceleration (`bucket.s3-accelerate[.dualstack].amazonaws.com`), Object Lambda access
//! points (`name-acct.s3-object-lambda.region…`) and interface VPC endpoints
//! (`[bucket.]bucket.vpce-id.s3.region.vpce.amazonaws.com`, `accesspoint.…`, `control.…`).
//!
//! The proxy parses its connection's host once ([`ApiHost`], kept beside the connection);
//! `airlock explain` parses each request's.
//!
//! An S3 host this module does not fully understand (an unknown label beside the S3
//! label, a website endpoint, an accelerate host without a bucket) is
//! [`S3Addressing::Unsupported`] with the reason: reading its path as if it were another
//! form would put the wrong bucket and key — or the wrong operation — in the call.

/// Partition DNS suffixes, longest first.
const PARTITIONS: &[(&str, &str)] = &[
    ("amazonaws.com.cn", "aws-cn"),
    ("api.amazonwebservices.com.cn", "aws-cn"),
    ("amazonaws.com", "aws"),
    ("api.aws", "aws"),
    ("on.aws", "aws"),
];

/// How an S3 request names its bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3Addressing {
    /// `s3.region.amazonaws.com/bucket/key`.
    PathStyle,
    /// `bucket.s3.region.amazonaws.com/key`.
    VirtualHosted { bucket: String },
    /// `name-account.s3-accesspoint.region.amazonaws.com/key`.
    AccessPoint { alias: String },
    /// `bucket--azid--x-s3.s3express-azid.region.amazonaws.com/key`.
    Directory { bucket: String },
    /// `alias.mrap.accesspoint.s3-global.amazonaws.com/key` (SigV4a).
    MultiRegion { alias: String },
    /// `account.s3-control.region.amazonaws.com`.
    Control,
    /// `s3express-control.region.amazonaws.com` (directory buckets' control plane).
    ExpressControl,
    /// `name-account.s3-object-lambda.region.amazonaws.com/key` (an Object Lambda access
    /// point), also the host of `WriteGetObjectResponse` (`route.s3-object-lambda…`).
    ObjectLambda { alias: String },
    /// An S3 host whose form is not understood: why.
    Unsupported(&'static str),
}

/// An AWS host name, parsed once: what every request to it shares. The proxy makes one
/// per intercepted connection (its CONNECT host, the only host its requests may name);
/// `airlock explain` one per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiHost {
    name: String,
    /// `None`: not under an AWS partition domain.
    endpoint: Option<Endpoint>,
}

impl ApiHost {
    /// Parse `name` (lower-case, no port).
    pub fn parse(name: &str) -> ApiHost {
        ApiHost {
            name: name.to_string(),
            endpoint: Endpoint::parse(name),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn endpoint(&self) -> Option<&Endpoint> {
        self.endpoint.as_ref()
    }

    /// An S3 host (of any form, understood or not).
    pub fn is_s3(&self) -> bool {
        self.endpoint.as_ref().is_some_and(|e| e.s3.is_some())
    }

    /// These facts if they are `host`'s; else `host` parsed afresh. Facts are only ever
    /// read for the host a request is classified under, never another's.
    pub fn for_host(&self, host: &str) -> std::borrow::Cow<'_, ApiHost> {
        if self.name == host {
            std::borrow::Cow::Borrowed(self)
        } else {
            std::borrow::Cow::Owned(ApiHost::parse(host))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub partition: &'static str,
    pub region: Option<String>,
    /// Labels that may name the service's endpoint prefix (region, variant markers and
    /// account removed), outermost first: `runtime.sagemaker.us-east-1…` → `[runtime, sagemaker]`.
    pub labels: Vec<String>,
    /// A 12-digit account named by the host.
    pub account: Option<String>,
    pub fips: bool,
    pub dualstack: bool,
    pub s3: Option<S3Addressing>,
    /// [`Endpoint::prefix_candidates`], computed with the parse (the classifier reads
    /// them several times per request).
    prefixes: Vec<String>,
}

impl Endpoint {
    /// Parse an AWS API host (lower-case, no port). `None` if it is not under an AWS
    /// partition domain.
    pub fn parse(host: &str) -> Option<Endpoint> {
        let mut endpoint = Borrowed::parse(host)?;
        let labels = std::mem::take(&mut endpoint.labels);
        let prefixes = prefix_candidates(&labels);
        Some(Endpoint {
            partition: endpoint.partition,
            region: endpoint.region.map(str::to_string),
            labels: labels.into_iter().map(str::to_string).collect(),
            account: endpoint.account.map(str::to_string),
            fips: endpoint.fips,
            dualstack: endpoint.dualstack,
            s3: endpoint.s3,
            prefixes,
        })
    }

    /// Candidate endpoint prefixes, most specific first: `a.b.c` → `a.b.c`, `b.c`, `c`, `a.b`, `a`…
    pub fn prefix_candidates(&self) -> &[String] {
        &self.prefixes
    }
}

/// Candidate endpoint prefixes of `labels`, most specific first.
fn prefix_candidates(labels: &[&str]) -> Vec<String> {
    let n = labels.len();
    let mut out = Vec::new();
    for start in 0..n {
        for end in (start + 1..=n).rev() {
            out.push(labels[start..end].join("."));
        }
    }
    out
}

/// An [`Endpoint`] as parsed, borrowing the host's labels.
struct Borrowed<'h> {
    partition: &'static str,
    region: Option<&'h str>,
    labels: Vec<&'h str>,
    account: Option<&'h str>,
    fips: bool,
    dualstack: bool,
    s3: Option<S3Addressing>,
}

impl<'h> Borrowed<'h> {
    fn parse(host: &'h str) -> Option<Borrowed<'h>> {
        let (rest, mut partition) = PARTITIONS.iter().find_map(|(suffix, partition)| {
            let rest = host.strip_suffix(suffix)?.strip_suffix('.')?;
            Some((rest, *partition))
        })?;
        let dualstack_domain = host.ends_with(".api.aws");
        let all: Vec<&str> = rest.split('.').collect();
        let mut endpoint = Borrowed {
            partition,
            region: None,
            labels: Vec::new(),
            account: None,
            fips: false,
            dualstack: dualstack_domain,
            s3: None,
        };
        if let Some(s3) = s3_addressing(rest, &all) {
            endpoint.s3 = Some(s3.addressing);
            endpoint.account = s3.account;
            endpoint.labels = vec!["s3"];
            if matches!(endpoint.s3, Some(S3Addressing::Control)) {
                endpoint.labels = vec!["s3-control"];
            }
            endpoint.region = s3.region;
            endpoint.fips = s3.fips;
            endpoint.dualstack |= s3.dualstack;
        } else {
            for label in all {
                if is_region(label) && endpoint.region.is_none() {
                    endpoint.region = Some(label);
                } else if label == "fips" {
                    endpoint.fips = true;
                } else if label == "dualstack" {
                    endpoint.dualstack = true;
                } else if is_account(label) && endpoint.labels.is_empty() {
                    endpoint.account = Some(label);
                } else if let Some(prefix) = label.strip_suffix("-fips") {
                    endpoint.fips = true;
                    endpoint.labels.push(prefix);
                } else if let Some(prefix) = cell_of(label)
                    && endpoint.region.is_none()
                {
                    endpoint.labels.push(prefix);
                } else if endpoint.region.is_none() {
                    endpoint.labels.push(label);
                }
            }
        }
        if endpoint.region.is_some_and(|r| r.starts_with("us-gov-")) {
            partition = "aws-us-gov";
        }
        endpoint.partition = partition;
        Some(endpoint)
    }
}

struct S3Parse<'h> {
    addressing: S3Addressing,
    account: Option<&'h str>,
    region: Option<&'h str>,
    fips: bool,
    dualstack: bool,
}

/// Recognise S3 host forms from the labels left of the partition domain.
fn s3_addressing<'h>(rest: &'h str, labels: &[&'h str]) -> Option<S3Parse<'h>> {
    let position = labels.iter().rposition(|l| is_s3_label(l))?;
    let marker = labels[position];
    let mut before = &labels[..position];
    let after = &labels[position + 1..];
    let unsupported = |why: &'static str| S3Parse {
        addressing: S3Addressing::Unsupported(why),
        account: None,
        region: None,
        fips: false,
        dualstack: false,
    };
    if marker.starts_with("s3-website") {
        return Some(unsupported(
            "S3 website endpoints (`s3-website`) serve web pages, not S3 API calls",
        ));
    }
    // Right of the S3 label only a region and variant markers may appear
    // (`.vpce.amazonaws.com` closes an interface VPC endpoint's name).
    let vpce = after.last() == Some(&"vpce");
    let known_after = |l: &&str| is_region(l) || matches!(*l, "fips" | "dualstack");
    let after_ok = match after.split_last() {
        Some((_, inner)) if vpce => inner.iter().all(known_after),
        _ => after.iter().all(known_after),
    };
    if !after_ok {
        return Some(unsupported(
            "the S3 host has labels beside the S3 label that Airlock does not understand",
        ));
    }
    let mut region = after.iter().copied().find(|l| is_region(l));
    let fips = marker.contains("fips") || after.contains(&"fips");
    let dualstack = after.contains(&"dualstack");
    if let Some(legacy) = marker.strip_prefix("s3-").filter(|r| is_region(r)) {
        region = Some(legacy);
    }
    if marker == "s3-external-1" {
        region = Some("us-east-1");
    }
    // An interface VPC endpoint: `<kind>.vpce-<id>.s3.<region>.vpce.amazonaws.com`, with
    // a bucket (or access point, or account) in front of the kind when virtual-hosted.
    let mut vpce_kind = None;
    if vpce {
        let (Some(kind), Some(id)) = (
            before.len().checked_sub(2).map(|i| before[i]),
            before.last(),
        ) else {
            return Some(unsupported(
                "an S3 interface endpoint host without its `bucket.vpce-…`, `accesspoint.vpce-…` or `control.vpce-…` labels",
            ));
        };
        if marker != "s3" || !id.starts_with("vpce-") {
            return Some(unsupported(
                "an S3 interface endpoint host that is not `<kind>.vpce-<id>.s3.<region>.vpce.amazonaws.com`",
            ));
        }
        vpce_kind = Some(kind);
        before = &before[..before.len() - 2];
    }
    // Bucket names may hold dots: the bucket is the host text left of the S3 label.
    let offset: usize = before.iter().map(|l| l.len() + 1).sum();
    let joined_before = || -> Option<&'h str> { (offset > 0).then(|| &rest[..offset - 1]) };
    let (addressing, account) = match (vpce_kind, marker) {
        (Some("bucket"), _) => match joined_before() {
            Some(bucket) => (
                S3Addressing::VirtualHosted {
                    bucket: bucket.into(),
                },
                None,
            ),
            None => (S3Addressing::PathStyle, None),
        },
        (Some("accesspoint"), _) => {
            let Some(alias) = joined_before() else {
                return Some(unsupported(
                    "an S3 access point interface endpoint host that names no access point",
                ));
            };
            let account = alias.rsplit('-').next().filter(|a| is_account(a));
            (
                S3Addressing::AccessPoint {
                    alias: alias.into(),
                },
                account,
            )
        }
        (Some("control"), _) => (
            S3Addressing::Control,
            before.last().copied().filter(|a| is_account(a)),
        ),
        (Some(_), _) => {
            return Some(unsupported(
                "an S3 interface endpoint host whose kind is not `bucket`, `accesspoint` or `control`",
            ));
        }
        (None, "s3-control") => (
            S3Addressing::Control,
            before.last().copied().filter(|a| is_account(a)),
        ),
        (None, "s3express-control") => (S3Addressing::ExpressControl, None),
        (None, "s3-accesspoint" | "s3-accesspoint-fips") => {
            let alias = joined_before()?;
            let account = alias.rsplit('-').next().filter(|a| is_account(a));
            (
                S3Addressing::AccessPoint {
                    alias: alias.into(),
                },
                account,
            )
        }
        (None, "s3-object-lambda" | "s3-object-lambda-fips") => {
            let Some(alias) = joined_before() else {
                return Some(unsupported(
                    "an S3 Object Lambda host that names no access point",
                ));
            };
            let account = alias.rsplit('-').next().filter(|a| is_account(a));
            (
                S3Addressing::ObjectLambda {
                    alias: alias.into(),
                },
                account,
            )
        }
        (None, "s3-global") => {
            // alias.mrap.accesspoint.s3-global
            let alias = before.first().copied()?;
            (
                S3Addressing::MultiRegion {
                    alias: alias.into(),
                },
                None,
            )
        }
        (None, "s3-accelerate") => match joined_before() {
            // Transfer Acceleration is virtual-hosted only; the region is the scope's.
            Some(bucket) => (
                S3Addressing::VirtualHosted {
                    bucket: bucket.into(),
                },
                None,
            ),
            None => {
                return Some(unsupported(
                    "an S3 Transfer Acceleration host must name the bucket (`bucket.s3-accelerate…`)",
                ));
            }
        },
        (None, m) if m.starts_with("s3express") => match joined_before() {
            Some(bucket) => (
                S3Addressing::Directory {
                    bucket: bucket.into(),
                },
                None,
            ),
            None => (S3Addressing::PathStyle, None),
        },
        _ => match joined_before() {
            Some(bucket) => (
                S3Addressing::VirtualHosted {
                    bucket: bucket.into(),
                },
                None,
            ),
            None => (S3Addressing::PathStyle, None),
        },
    };
    Some(S3Parse {
        addressing,
        account,
        region,
        fips,
        dualstack,
    })
}

fn is_s3_label(label: &str) -> bool {
    label == "s3"
        || label == "s3-control"
        || label == "s3express-control"
        || label == "s3-accesspoint"
        || label == "s3-accesspoint-fips"
        || label == "s3-object-lambda"
        || label == "s3-object-lambda-fips"
        || label == "s3-global"
        || label == "s3-fips"
        || label == "s3-accelerate"
        || label == "s3-external-1"
        || label.starts_with("s3-website")
        || label.starts_with("s3express")
        || label.strip_prefix("s3-").is_some_and(is_region)
}

/// Endpoint discovery hands out cell hosts (Timestream: `ingest-cell2.timestream.…`):
/// `ingest-cell2` names the endpoint prefix label `ingest`.
fn cell_of(label: &str) -> Option<&str> {
    let (prefix, cell) = label.rsplit_once("-cell")?;
    (!prefix.is_empty() && !cell.is_empty() && cell.bytes().all(|b| b.is_ascii_digit()))
        .then_some(prefix)
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`, `us-iso-east-1`…
pub fn is_region(label: &str) -> bool {
    let mut parts = label.split('-');
    let Some(first) = parts.next() else {
        return false;
    };
    let rest: Vec<&str> = parts.collect();
    rest.len() >= 2
        && first.len() == 2
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && rest
            .last()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        && rest[..rest.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
}

pub fn is_account(label: &str) -> bool {
    label.len() == 12 && label.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(host: &str) -> Option<S3Addressing> {
        Endpoint::parse(host).and_then(|e| e.s3)
    }

    #[test]
    fn accelerate_hosts_are_virtual_hosted_and_need_a_bucket() {
        for host in [
            "my.bucket.s3-accelerate.amazonaws.com",
            "my.bucket.s3-accelerate.dualstack.amazonaws.com",
        ] {
            let e = Endpoint::parse(host).unwrap();
            assert_eq!(
                e.s3,
                Some(S3Addressing::VirtualHosted {
                    bucket: "my.bucket".into()
                })
            );
            assert_eq!(e.region, None, "the region is the signature scope's");
            assert_eq!(e.dualstack, host.contains("dualstack"));
        }
        assert!(matches!(
            s3("s3-accelerate.amazonaws.com"),
            Some(S3Addressing::Unsupported(_))
        ));
    }

    #[test]
    fn s3_hosts_with_unknown_parts_are_unsupported() {
        for host in [
            "b.s3-website-us-east-1.amazonaws.com",
            "b.s3-website.us-east-1.amazonaws.com",
            "b.s3.us-east-1.example.amazonaws.com",
            "b.s3.example.amazonaws.com",
            "b.vpce-1.s3.us-east-1.vpce.amazonaws.com",
            "x.bucket.vpce-1.s3-accesspoint.us-east-1.vpce.amazonaws.com",
            "s3-object-lambda.us-east-1.amazonaws.com",
        ] {
            assert!(
                matches!(s3(host), Some(S3Addressing::Unsupported(_))),
                "{host}: {:?}",
                s3(host)
            );
        }
    }

    #[test]
    fn interface_endpoints_and_legacy_forms() {
        let e = Endpoint::parse("bucket.vpce-1a2b-3c4d.s3.eu-west-1.vpce.amazonaws.com").unwrap();
        assert_eq!(
            (e.s3, e.region.as_deref()),
            (Some(S3Addressing::PathStyle), Some("eu-west-1"))
        );
        assert_eq!(
            s3("b.bucket.vpce-1a2b-3c4d.s3.eu-west-1.vpce.amazonaws.com"),
            Some(S3Addressing::VirtualHosted { bucket: "b".into() })
        );
        assert_eq!(
            s3("control.vpce-1a2b-3c4d.s3.eu-west-1.vpce.amazonaws.com"),
            Some(S3Addressing::Control)
        );
        let e = Endpoint::parse("b.s3-external-1.amazonaws.com").unwrap();
        assert_eq!(
            (e.s3, e.region.as_deref()),
            (
                Some(S3Addressing::VirtualHosted { bucket: "b".into() }),
                Some("us-east-1")
            )
        );
        assert_eq!(
            s3("ap-123456789012.s3-object-lambda.us-east-1.amazonaws.com"),
            Some(S3Addressing::ObjectLambda {
                alias: "ap-123456789012".into()
            })
        );
    }

    #[test]
    fn cell_hosts_name_their_endpoint_prefix() {
        let e = Endpoint::parse("ingest-cell2.timestream.us-east-1.amazonaws.com").unwrap();
        assert_eq!(e.labels, ["ingest", "timestream"]);
        assert!(
            e.prefix_candidates()
                .contains(&"ingest.timestream".to_string())
        );
        assert_eq!(cell_of("ingest-cell"), None);
        assert_eq!(cell_of("-cell1"), None);
        assert_eq!(cell_of("a-cellx"), None);
    }
}

#[cfg(test)]
mod api_host_tests {
    use super::*;

    #[test]
    fn facts_are_read_for_their_own_host_only() {
        let s3 = ApiHost::parse("b.s3.us-east-1.amazonaws.com");
        assert!(s3.is_s3());
        assert!(matches!(
            s3.for_host("b.s3.us-east-1.amazonaws.com"),
            std::borrow::Cow::Borrowed(_)
        ));
        // Another host (a request naming one the connection was not opened for): parsed
        // afresh, never answered with the connection's facts.
        let other = s3.for_host("iam.amazonaws.com");
        assert!(matches!(other, std::borrow::Cow::Owned(_)));
        assert_eq!(other.name(), "iam.amazonaws.com");
        assert!(!other.is_s3());
        assert_eq!(other.endpoint().unwrap().labels, ["iam"]);
        assert_eq!(ApiHost::parse("example.com").endpoint(), None);
    }
}

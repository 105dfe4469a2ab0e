//! Google API hosts. Every host a discovery document names is looked up directly: the
//! root (`storage.googleapis.com`, `www.googleapis.com`), mTLS (`*.mtls.googleapis.com`),
//! regional (`<api>.<region>.rep.googleapis.com`) and locational
//! (`<location>-<api>.googleapis.com`) endpoints. Regions added after the documents were
//! generated still resolve by form, when the rest of the host is a known root. Sandbox
//! hosts (`*.sandbox.googleapis.com`) are not named by any shipped document and stay
//! unknown.

use super::catalog::Catalog;

/// What a host says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Index of the host group in the catalog.
    pub group: usize,
    /// The region or location the host is pinned to.
    pub location: Option<String>,
}

const SUFFIX: &str = ".googleapis.com";

/// Resolve a host (lower-case, no port) to its API group.
pub fn resolve(catalog: &Catalog, host: &str) -> Option<Endpoint> {
    if let Some(entry) = catalog.host(host) {
        return Some(Endpoint {
            group: entry.group,
            location: entry.location.map(str::to_string),
        });
    }
    let name = host.strip_suffix(SUFFIX)?;
    let root = |api: &str| catalog.root_group(&format!("{api}{SUFFIX}"));
    // `<api>.mtls.googleapis.com`
    if let Some(api) = name.strip_suffix(".mtls") {
        return root(api).map(|group| Endpoint {
            group,
            location: None,
        });
    }
    // `<api>.<region>.rep.googleapis.com`
    if let Some(rest) = name.strip_suffix(".rep") {
        let (api, region) = rest.rsplit_once('.')?;
        if !is_location(region) || api.contains('.') {
            return None;
        }
        return root(api).map(|group| Endpoint {
            group,
            location: Some(region.to_string()),
        });
    }
    // `<location>-<api>.googleapis.com`: try each split of the first label.
    if name.contains('.') {
        return None;
    }
    name.match_indices('-').find_map(|(i, _)| {
        let (location, api) = (&name[..i], &name[i + 1..]);
        if !is_regional_location(location) {
            return None;
        }
        root(api).map(|group| Endpoint {
            group,
            location: Some(location.to_string()),
        })
    })
}

/// A location label: `us`, `eu`, `us-central1`, `europe-west4`, `me-central2`.
fn is_location(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 32
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A region with its number (`us-central1`): the only form a locational host is
/// accepted in when the documents do not list it (a bare `us-` would be ambiguous with
/// API names holding a hyphen).
fn is_regional_location(label: &str) -> bool {
    let Some((area, place)) = label.split_once('-') else {
        return false;
    };
    !area.is_empty()
        && area.bytes().all(|b| b.is_ascii_lowercase())
        && place.len() > 1
        && place.bytes().last().is_some_and(|b| b.is_ascii_digit())
        && place
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::super::catalog::catalog;
    use super::*;

    fn root_of(host: &str) -> Option<(String, Option<String>)> {
        let c = catalog();
        resolve(c, host).map(|e| (c.groups[e.group].root.to_string(), e.location))
    }

    #[test]
    fn host_forms_resolve_to_their_api() {
        let s = |x: &str| Some(x.to_string());
        assert_eq!(
            root_of("pubsub.googleapis.com"),
            Some(("pubsub.googleapis.com".into(), None))
        );
        assert_eq!(
            root_of("www.googleapis.com"),
            Some(("www.googleapis.com".into(), None))
        );
        assert_eq!(
            root_of("pubsub.mtls.googleapis.com"),
            Some(("pubsub.googleapis.com".into(), None))
        );
        // Listed regional endpoint, and one in a region the documents do not list.
        assert_eq!(
            root_of("artifactregistry.asia-east1.rep.googleapis.com"),
            Some(("artifactregistry.googleapis.com".into(), s("asia-east1")))
        );
        assert_eq!(
            root_of("pubsub.xx-newregion9.rep.googleapis.com"),
            Some(("pubsub.googleapis.com".into(), s("xx-newregion9")))
        );
        assert_eq!(
            root_of("europe-west4-aiplatform.googleapis.com"),
            Some(("aiplatform.googleapis.com".into(), s("europe-west4")))
        );
        assert_eq!(
            root_of("xx-newregion9-run.googleapis.com"),
            Some(("run.googleapis.com".into(), s("xx-newregion9")))
        );
        // An API whose own name holds a hyphen is not read as a location.
        assert_eq!(
            root_of("prod-tt-sasportal.googleapis.com").map(|r| r.1),
            Some(None)
        );
    }

    #[test]
    fn other_hosts_are_not_google_apis() {
        for host in [
            "storage.sandbox.googleapis.com",
            "evil.example.com",
            "googleapis.com",
            "nosuchapi.googleapis.com",
            "storage.googleapis.com.example.com",
            "a.b.rep.googleapis.com",
        ] {
            assert_eq!(root_of(host), None, "{host}");
        }
    }
}

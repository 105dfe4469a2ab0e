//! Discovery path templates (RFC 6570 as Google uses it): `{name}` is one path segment,
//! `{+name}` (reserved expansion) may span slashes; a variable may carry a literal prefix
//! or suffix inside its segment, which is how `:verb` methods look
//! (`v1/{+resource}:setIamPolicy`, flat `v1/projects/{projectsId}:setIamPolicy`).
//!
//! Routing matches the request against each method's `flatPath` (every variable one
//! segment), so the most specific template wins: literal segments outweigh a suffixed
//! variable (`{id}:cancel`), which outweighs a bare one. The parameters are then read by
//! matching the method's `path` (where `{+name}` captures `projects/p/topics/t` whole).

/// One segment of a compiled template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(&'static str),
    /// `prefix{name}suffix` within one segment.
    Var {
        prefix: &'static str,
        name: &'static str,
        suffix: &'static str,
    },
    /// `prefix{+name}suffix`: one or more whole segments.
    Greedy {
        prefix: &'static str,
        name: &'static str,
        suffix: &'static str,
    },
}

/// A compiled path template.
#[derive(Debug, Clone)]
pub struct Template {
    pub segments: Box<[Segment]>,
    greedy: Option<usize>,
}

/// What matching a template against a path captured.
#[derive(Debug, Default)]
pub struct Captures<'t> {
    /// Variable name → percent-decoded value, in template order.
    pub labels: Vec<(&'t str, String)>,
    /// The request segment holding the last variable, and the literal suffix that
    /// segment carries (`:setIamPolicy`): where the resource name ends.
    pub last_var: Option<(usize, usize)>,
}

impl Template {
    /// Compile a template; a leading `/` is ignored, empty segments are dropped. The
    /// segments borrow the (embedded, static) text: loading allocates no strings.
    pub fn parse(template: &'static str) -> Template {
        Template::from_parts(&[template])
    }

    /// Compile the concatenation of parts (`"storage/v1/"`, `"b/{bucket}"`), each split at
    /// its own slashes (every part ends at a segment boundary).
    pub fn from_parts(parts: &[&'static str]) -> Template {
        let segments: Box<[Segment]> = parts
            .iter()
            .flat_map(|p| p.split('/'))
            .filter(|s| !s.is_empty())
            .map(parse_segment)
            .collect();
        let greedy = segments
            .iter()
            .position(|s| matches!(s, Segment::Greedy { .. }));
        Template { segments, greedy }
    }

    pub fn has_greedy(&self) -> bool {
        self.greedy.is_some()
    }

    /// How specific the template is: literal segments weigh most, then a variable with
    /// a literal prefix/suffix (`{id}:cancel`), then a bare variable; greedy least.
    pub fn specificity(&self) -> u32 {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => 8 + l.len().min(64) as u32 / 16,
                Segment::Var { prefix, suffix, .. } if !prefix.is_empty() || !suffix.is_empty() => {
                    4
                }
                Segment::Var { .. } => 2,
                Segment::Greedy { prefix, suffix, .. } => {
                    u32::from(!prefix.is_empty() || !suffix.is_empty())
                }
            })
            .sum()
    }

    /// Does `path` (already split) match? Used for routing: flat templates (no greedy
    /// variable) are checked segment by segment without allocating.
    pub fn matches(&self, path: &[&str]) -> bool {
        if self.greedy.is_none() {
            return self.segments.len() == path.len()
                && self
                    .segments
                    .iter()
                    .zip(path)
                    .all(|(segment, actual)| segment_value(segment, actual).is_some());
        }
        self.capture(path).is_some()
    }

    /// Match and capture the variables. A greedy variable takes as few segments as it
    /// can (so `v1/{+endpoint}/invoke/{+invokeId}` splits at the first `invoke`).
    pub fn capture(&self, path: &[&str]) -> Option<Captures<'_>> {
        let mut captures = Captures::default();
        capture_from(&self.segments, path, 0, &mut captures).then_some(captures)
    }
}

/// Backtracking match of `segments` against `path` (which starts at request index
/// `offset`). Templates are short (≤ ~20 segments, ≤ 3 greedy variables), so the search is
/// small.
fn capture_from<'t>(
    segments: &'t [Segment],
    path: &[&str],
    offset: usize,
    captures: &mut Captures<'t>,
) -> bool {
    let Some((first, rest)) = segments.split_first() else {
        return path.is_empty();
    };
    let mark = (captures.labels.len(), captures.last_var);
    match first {
        Segment::Greedy {
            prefix,
            name,
            suffix,
        } => {
            // Leave at least one segment for every later template segment.
            let room = path.len().saturating_sub(rest.len());
            for take in 1..=room {
                let joined = path[..take].join("/");
                let Some(value) = joined
                    .strip_prefix(*prefix)
                    .and_then(|v| v.strip_suffix(*suffix))
                else {
                    continue;
                };
                if value.is_empty() || value.starts_with('/') || value.ends_with('/') {
                    continue;
                }
                captures.labels.push((name, decode(value)));
                captures.last_var = Some((offset + take - 1, suffix.len()));
                if capture_from(rest, &path[take..], offset + take, captures) {
                    return true;
                }
                captures.labels.truncate(mark.0);
                captures.last_var = mark.1;
            }
            false
        }
        segment => {
            let Some(actual) = path.first() else {
                return false;
            };
            let Some(value) = segment_value(segment, actual) else {
                return false;
            };
            if let Segment::Var { name, suffix, .. } = segment {
                captures.labels.push((name, decode(value)));
                captures.last_var = Some((offset, suffix.len()));
            }
            if capture_from(rest, &path[1..], offset + 1, captures) {
                return true;
            }
            captures.labels.truncate(mark.0);
            captures.last_var = mark.1;
            false
        }
    }
}

fn parse_segment(s: &'static str) -> Segment {
    match (s.find('{'), s.find('}')) {
        (Some(open), Some(close)) if open < close => {
            let name = &s[open + 1..close];
            let prefix = &s[..open];
            let suffix = &s[close + 1..];
            match name.strip_prefix('+') {
                Some(name) => Segment::Greedy {
                    prefix,
                    name,
                    suffix,
                },
                None => Segment::Var {
                    prefix,
                    name,
                    suffix,
                },
            }
        }
        _ => Segment::Literal(s),
    }
}

/// The raw value a one-segment template part takes from `actual` (`Some("")` for a
/// literal that matched), `None` when it does not match.
fn segment_value<'a>(segment: &Segment, actual: &'a str) -> Option<&'a str> {
    match segment {
        Segment::Literal(literal) => (*literal == actual).then_some(""),
        Segment::Var { prefix, suffix, .. } => {
            let value = actual.strip_prefix(*prefix)?.strip_suffix(*suffix)?;
            (!value.is_empty()).then_some(value)
        }
        Segment::Greedy { .. } => None,
    }
}

/// `/a/b/` → `[a, b]`; empty segments inside are kept (they then match nothing).
pub use crate::cloud::aws::rest::split_path;

pub fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(template: &'static str, path: &str) -> Option<Vec<(String, String)>> {
        Template::parse(template)
            .capture(&split_path(path))
            .map(|c| {
                c.labels
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect()
            })
    }

    #[test]
    fn reserved_expansion_spans_slashes_and_keeps_the_verb_apart() {
        assert_eq!(
            labels(
                "v1/{+resource}:setIamPolicy",
                "/v1/projects/p/topics/t:setIamPolicy"
            ),
            Some(vec![("resource".into(), "projects/p/topics/t".into())])
        );
        assert_eq!(
            labels("v1/{+parent}/topics", "/v1/projects/p/topics"),
            Some(vec![("parent".into(), "projects/p".into())])
        );
        // The verb must be there, and the reserved value must not be empty.
        assert_eq!(
            labels("v1/{+resource}:setIamPolicy", "/v1/projects/p"),
            None
        );
        assert_eq!(labels("v1/{+parent}/topics", "/v1/topics"), None);
    }

    #[test]
    fn simple_variables_take_one_segment_and_are_decoded() {
        assert_eq!(
            labels(
                "storage/v1/b/{bucket}/o/{object}",
                "/storage/v1/b/b1/o/a%2Fb%20c.txt"
            ),
            Some(vec![
                ("bucket".into(), "b1".into()),
                ("object".into(), "a/b c.txt".into())
            ])
        );
        assert_eq!(labels("storage/v1/b/{bucket}", "/storage/v1/b/b1/o"), None);
        assert_eq!(
            labels(
                "v1/projects/{projectsId}:getIamPolicy",
                "/v1/projects/p:getIamPolicy"
            ),
            Some(vec![("projectsId".into(), "p".into())])
        );
        assert_eq!(
            labels("v1/projects/{projectsId}:getIamPolicy", "/v1/projects/p"),
            None
        );
    }

    #[test]
    fn literal_outweighs_suffixed_variable_outweighs_bare_variable() {
        let literal = Template::parse("v1/projects/{p}/operations/cancelAll");
        let suffixed = Template::parse("v1/projects/{p}/operations/{o}:cancel");
        let bare = Template::parse("v1/projects/{p}/operations/{o}");
        assert!(literal.specificity() > suffixed.specificity());
        assert!(suffixed.specificity() > bare.specificity());
        let path = split_path("/v1/projects/p/operations/op:cancel");
        assert!(suffixed.matches(&path) && bare.matches(&path));
    }

    #[test]
    fn several_reserved_variables_split_at_the_literals_between_them() {
        assert_eq!(
            labels(
                "bigquery/v2/projects/{+projectId}/datasets/{+datasetId}",
                "/bigquery/v2/projects/p1/datasets/d1"
            ),
            Some(vec![
                ("projectId".into(), "p1".into()),
                ("datasetId".into(), "d1".into())
            ])
        );
        assert_eq!(
            labels(
                "v1/{+endpoint}/invoke/{+invokeId}",
                "/v1/projects/p/endpoints/e/invoke/a/b"
            ),
            Some(vec![
                ("endpoint".into(), "projects/p/endpoints/e".into()),
                ("invokeId".into(), "a/b".into())
            ])
        );
        assert!(Template::parse("v1/{+a}/x/{+b}").matches(&split_path("/v1/p/x/q")));
        assert!(!Template::parse("v1/{+a}/x/{+b}").matches(&split_path("/v1/p/x")));
    }

    #[test]
    fn last_variable_marks_the_end_of_the_resource_name() {
        let t = Template::parse("v1/{+name}:cancel");
        let path = split_path("/v1/projects/p/operations/o:cancel");
        let c = t.capture(&path).unwrap();
        assert_eq!(c.last_var, Some((4, ":cancel".len())));
    }
}

//! Where things are in a YAML file: maps a dotted path such as `upstream.routes[1].to` to
//! its line, so that config (and rule) errors found after deserialization still point at
//! the line a person has to fix.

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

/// Line numbers of the nodes of one YAML document.
pub struct SourceMap<'a> {
    root: Option<MarkedYaml<'a>>,
}

/// A YAML syntax error: the 1-based line and what is wrong.
#[derive(Debug)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

impl<'a> SourceMap<'a> {
    /// Parse `text`; the first document is the one mapped.
    pub fn parse(text: &'a str) -> Result<Self, SyntaxError> {
        let docs = MarkedYaml::load_from_str(text).map_err(|e| SyntaxError {
            line: e.marker().line(),
            message: e.info().to_string(),
        })?;
        Ok(SourceMap {
            root: docs.into_iter().next(),
        })
    }

    /// The line of the deepest node on `path` that exists (the key's line for mapping
    /// entries, since that is where a person looks). `None` for an empty document.
    pub fn line(&self, path: &str) -> Option<usize> {
        let mut node = self.root.as_ref()?;
        let mut line = node.span.start.line();
        for segment in segments(path) {
            let next = match (&node.data, segment) {
                (YamlData::Mapping(map), Segment::Key(key)) => map
                    .iter()
                    .find(|(k, _)| scalar_str(k) == Some(key))
                    .map(|(k, v)| (k.span.start.line(), v)),
                (YamlData::Sequence(seq), Segment::Index(i)) => {
                    seq.get(i).map(|v| (v.span.start.line(), v))
                }
                _ => None,
            };
            let Some((at, child)) = next else { break };
            line = at;
            node = child;
        }
        Some(line)
    }
}

fn scalar_str<'b>(node: &'b MarkedYaml<'_>) -> Option<&'b str> {
    match &node.data {
        YamlData::Value(Scalar::String(s)) => Some(s.as_ref()),
        _ => None,
    }
}

#[derive(Debug, PartialEq)]
enum Segment<'p> {
    Key(&'p str),
    Index(usize),
}

/// `a.b[2].c` → `a`, `b`, `2`, `c`. Anything unparsable ends the walk early, which only
/// makes the reported line less precise.
fn segments(path: &str) -> impl Iterator<Item = Segment<'_>> {
    path.split('.').filter(|s| !s.is_empty()).flat_map(|part| {
        let (key, rest) = part.split_once('[').unwrap_or((part, ""));
        let indices = rest
            .split('[')
            .filter_map(|i| i.trim_end_matches(']').parse().ok())
            .map(Segment::Index);
        std::iter::once(Segment::Key(key))
            .filter(|s| s != &Segment::Key(""))
            .chain(indices)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str =
        "a: 1\nb:\n  c: x\n  list:\n    - host: one\n      to: two\n    - host: three\n";

    #[test]
    fn finds_nested_keys_and_list_items() {
        let map = SourceMap::parse(DOC).unwrap();
        assert_eq!(map.line("a"), Some(1));
        assert_eq!(map.line("b.c"), Some(3));
        assert_eq!(map.line("b.list[0].to"), Some(6));
        assert_eq!(map.line("b.list[1]"), Some(7));
    }

    #[test]
    fn missing_paths_fall_back_to_the_deepest_existing_node() {
        let map = SourceMap::parse(DOC).unwrap();
        assert_eq!(map.line("b.nope"), Some(2));
        assert_eq!(map.line("b.list[9].host"), Some(4));
    }

    #[test]
    fn syntax_errors_carry_their_line() {
        let err = SourceMap::parse("a: 1\nb: [unclosed\nc: 2\n")
            .err()
            .unwrap();
        assert!(err.line >= 2, "line {}", err.line);
    }
}

//! Request parameters as JSON, whatever the wire format: query/EC2 forms, XML, CBOR (JSON
//! bodies are JSON already). Decoding is shape-free and total: any input yields a value
//! or an error, never a panic (fuzzed and property-tested).

use base64::Engine;
use serde_json::{Map, Value};

/// Limits that keep hostile bodies from costing much.
const MAX_DEPTH: usize = 32;
const MAX_INDEX: usize = 1000;

/// Form pairs (`Tags.member.1.Key=k`, `Filter.1.Name=n`) → nested JSON. Numeric segments
/// make lists (1-based); `member`/`entry` list markers are dropped.
pub fn form_to_json<'a>(
    pairs: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
) -> Value {
    let mut root = Value::Object(Map::new());
    for (key, value) in pairs {
        let segments: Vec<&str> = key
            .split('.')
            .filter(|s| !s.is_empty() && *s != "member" && *s != "entry")
            .take(MAX_DEPTH)
            .collect();
        if segments.is_empty() {
            continue;
        }
        insert(&mut root, &segments, Value::String(value.into_owned()));
    }
    root
}

fn insert(node: &mut Value, path: &[&str], value: Value) {
    let Some((head, rest)) = path.split_first() else {
        *node = value;
        return;
    };
    match head.parse::<usize>() {
        Ok(index) if (1..=MAX_INDEX).contains(&index) => {
            if !node.is_array() {
                *node = Value::Array(Vec::new());
            }
            if let Value::Array(items) = node {
                while items.len() < index {
                    items.push(Value::Null);
                }
                insert(&mut items[index - 1], rest, value);
            }
        }
        _ => {
            if !node.is_object() {
                *node = Value::Object(Map::new());
            }
            if let Value::Object(map) = node {
                insert(
                    map.entry(head.to_string()).or_insert(Value::Null),
                    rest,
                    value,
                );
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed XML: {0}")]
    Xml(String),
    #[error("malformed CBOR: {0}")]
    Cbor(String),
    #[error("nested too deeply")]
    TooDeep,
}

/// An XML document → JSON: an element with children becomes an object (repeated children
/// a list), a leaf its text. The root element's name is dropped: its children are the
/// operation's members.
pub fn xml_to_json(body: &[u8]) -> Result<Value, DecodeError> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    reader.config_mut().trim_text(true);
    // Stack of (element name, object so far, text so far).
    let mut stack: Vec<(String, Map<String, Value>, String)> = Vec::new();
    let mut root: Option<Value> = None;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(DecodeError::TooDeep);
                }
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                stack.push((name, Map::new(), String::new()));
            }
            Ok(Event::Empty(e)) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                match stack.last_mut() {
                    Some((_, map, _)) => add_child(map, name, Value::String(String::new())),
                    None => root = Some(Value::Object(Map::new())),
                }
            }
            Ok(Event::Text(t)) => {
                if let Some((_, _, text)) = stack.last_mut() {
                    text.push_str(&t.decode().map_err(|e| DecodeError::Xml(e.to_string()))?);
                }
            }
            // Entity and character references arrive as events of their own.
            Ok(Event::GeneralRef(r)) => {
                if let Some((_, _, text)) = stack.last_mut() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => text.push(c),
                        Ok(None) => {
                            let name = r.decode().map_err(|e| DecodeError::Xml(e.to_string()))?;
                            let value = quick_xml::escape::resolve_predefined_entity(&name)
                                .ok_or_else(|| {
                                    DecodeError::Xml(format!("unknown entity &{name};"))
                                })?;
                            text.push_str(value);
                        }
                        Err(e) => return Err(DecodeError::Xml(e.to_string())),
                    }
                }
            }
            Ok(Event::CData(t)) => {
                if let Some((_, _, text)) = stack.last_mut() {
                    text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Ok(Event::End(_)) => {
                let Some((name, map, text)) = stack.pop() else {
                    return Err(DecodeError::Xml("unbalanced end tag".into()));
                };
                let value = if map.is_empty() {
                    Value::String(text)
                } else {
                    Value::Object(map)
                };
                match stack.last_mut() {
                    Some((_, parent, _)) => add_child(parent, name, value),
                    None => root = Some(value),
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(DecodeError::Xml(e.to_string())),
        }
    }
    if !stack.is_empty() {
        return Err(DecodeError::Xml("unclosed element".into()));
    }
    Ok(root.unwrap_or(Value::Object(Map::new())))
}

fn add_child(map: &mut Map<String, Value>, name: String, value: Value) {
    match map.get_mut(&name) {
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
        None => {
            map.insert(name, value);
        }
    }
}

/// A CBOR document → JSON (byte strings as base64, tags dropped).
pub fn cbor_to_json(body: &[u8]) -> Result<Value, DecodeError> {
    let value: ciborium::Value = ciborium::de::from_reader_with_recursion_limit(body, MAX_DEPTH)
        .map_err(|e| DecodeError::Cbor(e.to_string()))?;
    Ok(cbor_value(value))
}

fn cbor_value(value: ciborium::Value) -> Value {
    use ciborium::Value as C;
    match value {
        C::Integer(i) => {
            let i = i128::from(i);
            i64::try_from(i)
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(i.to_string()))
        }
        C::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        C::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        C::Text(s) => Value::String(s),
        C::Bool(b) => Value::Bool(b),
        C::Null => Value::Null,
        C::Tag(_, inner) => cbor_value(*inner),
        C::Array(items) => Value::Array(items.into_iter().map(cbor_value).collect()),
        C::Map(entries) => Value::Object(
            entries
                .into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        C::Text(s) => s,
                        other => cbor_value(other).to_string(),
                    };
                    (key, cbor_value(v))
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn form(s: &str) -> Value {
        form_to_json(form_urlencoded::parse(s.as_bytes()))
    }

    #[test]
    fn query_lists_and_maps_nest() {
        let v = form("RoleName=r&Tags.member.1.Key=k1&Tags.member.1.Value=v1&Tags.member.2.Key=k2");
        assert_eq!(
            v,
            serde_json::json!({"RoleName":"r","Tags":[{"Key":"k1","Value":"v1"},{"Key":"k2"}]})
        );
        let v = form("InstanceId.1=i-1&InstanceId.2=i-2&Filter.1.Name=n&Filter.1.Value.1=x");
        assert_eq!(
            v,
            serde_json::json!({"InstanceId":["i-1","i-2"],"Filter":[{"Name":"n","Value":["x"]}]})
        );
    }

    #[test]
    fn hostile_forms_are_bounded() {
        let v = form_to_json([(Cow::from("A.999999999"), Cow::from("x"))].into_iter());
        assert_eq!(v, serde_json::json!({"A":{"999999999":"x"}}));
        let deep = "a.".repeat(10_000) + "b";
        let _ = form_to_json([(Cow::from(deep), Cow::from("x"))].into_iter());
    }

    #[test]
    fn xml_becomes_json() {
        let xml = br#"<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>a</Key></Object><Object><Key>b&amp;c&#x41;</Key></Object><Quiet>true</Quiet></Delete>"#;
        assert_eq!(
            xml_to_json(xml).unwrap(),
            serde_json::json!({"Object":[{"Key":"a"},{"Key":"b&cA"}],"Quiet":"true"})
        );
        assert!(xml_to_json(b"<a><b></a>").is_err());
    }

    #[test]
    fn cbor_becomes_json() {
        let mut buf = Vec::new();
        ciborium::ser::into_writer(
            &ciborium::Value::Map(vec![(
                ciborium::Value::Text("N".into()),
                ciborium::Value::Integer(3.into()),
            )]),
            &mut buf,
        )
        .unwrap();
        assert_eq!(cbor_to_json(&buf).unwrap(), serde_json::json!({"N":3}));
        assert!(cbor_to_json(&[0xff, 0x00]).is_err());
    }
}

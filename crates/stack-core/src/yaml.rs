//! YAML in and out.
//!
//! Stack files are parsed into a [`Node`] tree that keeps the source span of
//! every key and value, so that checks made after parsing (unknown keys,
//! template errors, bad types) still point at file:line:column. Values files
//! and rendered manifests, which need no positions, go straight to
//! `serde_json::Value`.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;

use crate::diagnostic::{SourceFile, Span};

/// A parsed YAML value with the place it came from.
#[derive(Debug, Clone)]
pub struct Node {
    pub kind: NodeKind,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum NodeKind {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Sequence(Vec<Node>),
    Mapping(Vec<(Key, Node)>),
}

/// A mapping key and its span.
#[derive(Debug, Clone)]
pub struct Key {
    pub name: String,
    pub span: Span,
}

/// A YAML syntax error, located.
#[derive(Debug, thiserror::Error)]
#[error("invalid YAML: {message}")]
pub struct SyntaxError {
    pub message: String,
    pub span: Span,
}

impl Node {
    /// The node at a path of mapping keys and list indexes.
    pub fn at(&self, pointer: &[String]) -> Option<&Node> {
        pointer
            .iter()
            .try_fold(self, |node, segment| match &node.kind {
                NodeKind::Mapping(entries) => entries
                    .iter()
                    .find(|(key, _)| key.name == *segment)
                    .map(|(_, value)| value),
                NodeKind::Sequence(items) => items.get(segment.parse::<usize>().ok()?),
                _ => None,
            })
    }

    pub(crate) fn kind_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Null => "null",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Number(_) => "a number",
            NodeKind::String(_) => "a string",
            NodeKind::Sequence(_) => "a list",
            NodeKind::Mapping(_) => "a map",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::String(text) => Some(text),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, NodeKind::Null)
    }

    /// The value without positions.
    pub fn to_value(&self) -> Value {
        match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Bool(flag) => Value::Bool(*flag),
            NodeKind::Number(number) => Value::Number(number.clone()),
            NodeKind::String(text) => Value::String(text.clone()),
            NodeKind::Sequence(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            NodeKind::Mapping(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(key, value)| (key.name.clone(), value.to_value()))
                    .collect(),
            ),
        }
    }
}

/// Parse one YAML document into a spanned tree. An empty file is `null`.
pub fn parse_node(source: &Arc<SourceFile>) -> Result<Node, SyntaxError> {
    let raw: RawNode = serde_saphyr::from_str_with_options(&source.text, options())
        .map_err(|error| syntax_error(source, &error))?;
    Ok(raw.attach(source))
}

/// Parse a values file (one document; empty means an empty map).
pub fn parse_values(source: &Arc<SourceFile>) -> Result<Value, SyntaxError> {
    let value: Option<Value> = serde_saphyr::from_str_with_options(&source.text, options())
        .map_err(|error| syntax_error(source, &error))?;
    Ok(value.unwrap_or_else(|| Value::Object(serde_json::Map::new())))
}

/// Parse a multi-document YAML stream; empty documents are dropped.
pub(crate) fn parse_documents(source: &Arc<SourceFile>) -> Result<Vec<Value>, SyntaxError> {
    let documents: Vec<Value> = serde_saphyr::from_multiple_with_options(&source.text, options())
        .map_err(|error| syntax_error(source, &error))?;
    Ok(documents.into_iter().filter(|doc| !doc.is_null()).collect())
}

/// Serialise a value as block-style YAML.
pub fn to_string(value: &Value) -> String {
    // Serialising a `serde_json::Value` cannot fail: every key is a string.
    serde_saphyr::to_string(value).unwrap_or_default()
}

/// Limits against runaway input, raised from the parser's defaults (1,024
/// documents, 250,000 nodes) to what real charts hold: CRD bundles of
/// thousands of documents, generated values files.
const MAX_DOCUMENTS: usize = 100_000;
const MAX_NODES: usize = 10_000_000;

fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_documents = MAX_DOCUMENTS;
    budget.max_nodes = MAX_NODES;
    budget.max_events = 4 * MAX_NODES;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// The parser's error, located, in our words: a duplicate key names the
/// line where the key was first set (the parser only knows the second).
fn syntax_error(source: &Arc<SourceFile>, error: &serde_saphyr::Error) -> SyntaxError {
    let span = error_span(source, error);
    let mut message = error_message(error);
    let duplicate = message.strip_prefix("duplicate mapping key: ").map(|rest| {
        rest.split_once(", set ")
            .map_or(rest, |(key, _)| key)
            .to_string()
    });
    if let Some(key) = duplicate {
        let (line, column) = source.line_column(span.range.start);
        message = match first_setting(&source.text, &key, line, column) {
            Some(first) => format!(
                "duplicate key `{key}`: set at line {first}, and again at line {line}; a mapping holds each key once"
            ),
            None => format!("duplicate key `{key}`: a mapping holds each key once"),
        };
    }
    SyntaxError { message, span }
}

/// The line (1-based) where `key` was first set in the block mapping whose
/// keys start at `column`, looking up from `line`.
fn first_setting(text: &str, key: &str, line: usize, column: usize) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    for number in (1..line).rev() {
        let content = lines.get(number - 1)?;
        let trimmed = content.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut start = content.len() - trimmed.len();
        let mut rest = trimmed;
        while let Some(item) = rest.strip_prefix("- ") {
            let inner = item.trim_start();
            start += rest.len() - inner.len();
            rest = inner;
        }
        if start + 1 < column {
            return None;
        }
        let quoted = |q: char| {
            rest.strip_prefix(q)
                .and_then(|r| r.strip_prefix(key))
                .and_then(|r| r.strip_prefix(q))
        };
        let after = rest
            .strip_prefix(key)
            .or_else(|| quoted('"'))
            .or_else(|| quoted('\''));
        if start + 1 == column && after.is_some_and(|a| a.trim_start().starts_with(':')) {
            return Some(number);
        }
    }
    None
}

fn error_message(error: &serde_saphyr::Error) -> String {
    let text = error.without_snippet().to_string();
    if let Some(breach) = text.strip_prefix("budget breached: ") {
        let limit = match breach.split([' ', '{']).next().unwrap_or_default() {
            "Documents" => format!("more than {MAX_DOCUMENTS} documents"),
            "Nodes" | "Events" => format!("more than {MAX_NODES} values"),
            "Depth" => "values nested more than 64 levels deep".to_string(),
            _ => breach.trim().to_string(),
        };
        return format!(
            "the file holds {limit}, more than stack reads from one file (a limit against runaway input); split it"
        );
    }
    // The location is shown by the diagnostic; drop the parser's own suffix.
    match text.rfind(" at line ") {
        Some(index) => text[..index].to_string(),
        None => text,
    }
}

fn error_span(source: &Arc<SourceFile>, error: &serde_saphyr::Error) -> Span {
    let offset = error.location().map_or(0, |location| {
        let line = usize::try_from(location.line()).unwrap_or(1);
        let column = usize::try_from(location.column()).unwrap_or(1);
        source.offset_of(line, column)
    });
    let end = source.text[offset..]
        .chars()
        .next()
        .map_or(offset, |c| offset + c.len_utf8());
    Span::new(source, offset..end)
}

/// What the YAML deserializer produces: a tree with byte ranges.
struct RawNode {
    kind: RawKind,
    start: usize,
    len: usize,
}

enum RawKind {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Sequence(Vec<RawNode>),
    Mapping(Vec<(Spanned<String>, RawNode)>),
}

impl RawNode {
    fn attach(self, source: &Arc<SourceFile>) -> Node {
        let kind = match self.kind {
            RawKind::Null => NodeKind::Null,
            RawKind::Bool(flag) => NodeKind::Bool(flag),
            RawKind::Number(number) => NodeKind::Number(number),
            RawKind::String(text) => NodeKind::String(text),
            RawKind::Sequence(items) => {
                NodeKind::Sequence(items.into_iter().map(|item| item.attach(source)).collect())
            }
            RawKind::Mapping(entries) => NodeKind::Mapping(
                entries
                    .into_iter()
                    .map(|(key, value)| {
                        let (start, len) = byte_range(&key.referenced);
                        let key = Key {
                            name: key.value,
                            span: Span::new(source, start..start + len),
                        };
                        (key, value.attach(source))
                    })
                    .collect(),
            ),
        };
        let end = (self.start + self.len).min(source.text.len());
        Node {
            kind,
            span: Span::new(source, self.start.min(end)..end),
        }
    }
}

fn byte_range(location: &serde_saphyr::Location) -> (usize, usize) {
    let span = location.span();
    let start = span.byte_offset().unwrap_or(0);
    let len = span.byte_len().unwrap_or(0);
    (
        usize::try_from(start).unwrap_or(0),
        usize::try_from(len).unwrap_or(0),
    )
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<RawKind>::deserialize(deserializer)?;
        let (start, len) = byte_range(&spanned.referenced);
        Ok(Self {
            kind: spanned.value,
            start,
            len,
        })
    }
}

impl<'de> Deserialize<'de> for RawKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawKind;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any YAML value")
    }

    fn visit_unit<E>(self) -> Result<RawKind, E> {
        Ok(RawKind::Null)
    }

    fn visit_none<E>(self) -> Result<RawKind, E> {
        Ok(RawKind::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawKind, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_bool<E>(self, value: bool) -> Result<RawKind, E> {
        Ok(RawKind::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<RawKind, E> {
        Ok(RawKind::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<RawKind, E> {
        Ok(RawKind::Number(value.into()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<RawKind, E> {
        serde_json::Number::from_f64(value)
            .map(RawKind::Number)
            .ok_or_else(|| E::custom(format!("{value} cannot be represented (NaN or infinite)")))
    }

    fn visit_str<E>(self, value: &str) -> Result<RawKind, E> {
        Ok(RawKind::String(value.to_string()))
    }

    fn visit_string<E>(self, value: String) -> Result<RawKind, E> {
        Ok(RawKind::String(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<RawKind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = access.next_element::<RawNode>()? {
            items.push(item);
        }
        Ok(RawKind::Sequence(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<RawKind, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = access.next_key::<Spanned<String>>()? {
            let value = access.next_value::<RawNode>()?;
            entries.push((key, value));
        }
        Ok(RawKind::Mapping(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_positions_of_keys_and_values() {
        let source = SourceFile::new("s.yaml", "a: 1\nbé:\n  - x\n");
        let node = parse_node(&source).unwrap();
        let NodeKind::Mapping(entries) = &node.kind else {
            panic!("expected a mapping")
        };
        assert_eq!(entries[1].0.span.location(), "s.yaml:2:1");
        let NodeKind::Sequence(items) = &entries[1].1.kind else {
            panic!("expected a list")
        };
        assert_eq!(items[0].span.text(), "x");
    }

    #[test]
    fn a_duplicate_key_names_both_lines_in_our_words() {
        let cases = [
            (
                "a: 1\nb:\n  c: 2\n  # note\n  d: 3\n  c: 4\n",
                "c",
                "set at line 3, and again at line 6",
            ),
            (
                "releases:\n  - name: web\n    chart: x\n    name: other\n",
                "name",
                "set at line 2, and again at line 4",
            ),
            (
                "x:\n  y:\n    k: 1\n  k: 2\n  k: 3\n",
                "k",
                "set at line 4, and again at line 5",
            ),
        ];
        for (text, key, lines) in cases {
            let source = SourceFile::new("s.yaml", text);
            let error = parse_node(&source).unwrap_err();
            assert_eq!(
                error.message,
                format!("duplicate key `{key}`: {lines}; a mapping holds each key once"),
                "{text}"
            );
            assert!(!error.to_string().contains("DuplicateKeyPolicy"));
            assert!(parse_values(&source).unwrap_err().message.contains(lines));
        }
    }

    #[test]
    fn many_documents_are_read_and_too_many_are_named_in_our_words() {
        let documents = |n: usize| "---\na: 1\n".repeat(n);
        let source = SourceFile::new("crds.yaml", documents(5_000));
        assert_eq!(parse_documents(&source).unwrap().len(), 5_000);
        let source = SourceFile::new("crds.yaml", documents(MAX_DOCUMENTS + 1));
        let error = parse_documents(&source).unwrap_err();
        assert!(
            error
                .message
                .starts_with("the file holds more than 100000 documents, more than stack reads"),
            "{}",
            error.message
        );
    }

    #[test]
    fn syntax_error_is_located() {
        let source = SourceFile::new("s.yaml", "a: 1\nb: [1,\n");
        let error = parse_node(&source).unwrap_err();
        assert!(error.span.location().starts_with("s.yaml:"));
    }
}

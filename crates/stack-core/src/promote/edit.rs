//! Surgical edits of a values file: the text of each promoted value is
//! replaced where it stands (keeping its quoting style), and keys the file
//! lacks are added at the end of their parent map with the parent's
//! indentation. Nothing else of the file — comments, key order, formatting —
//! is touched; the file is never re-serialised.

use std::ops::Range;

use serde_json::{Map, Value};

use crate::promote::paths::Change;
use crate::yaml::{Node, NodeKind};

/// Spaces per nesting level for keys this module adds.
const STEP: usize = 2;

/// One planned change of the text.
struct Edit<'a> {
    node: &'a Node,
    /// Add keys to this map (true), or replace the node (false).
    insert: bool,
    value: Value,
}

/// The file's text with `changes` made. `root` is the parsed file, a map or
/// empty.
pub fn apply(text: &str, root: &Node, changes: &[Change]) -> String {
    let mut edits: Vec<Edit> = Vec::new();
    for change in changes {
        let (node, depth) = deepest(root, &change.path);
        let rest = &change.path[depth..];
        let is_map = match node.kind {
            NodeKind::Mapping(_) => true,
            NodeKind::Null => std::ptr::eq(node, root),
            _ => false,
        };
        let insert = !rest.is_empty() && is_map;
        let value = crate::promote::nested(rest, change.after.clone());
        let same = |edit: &&mut Edit| std::ptr::eq(edit.node, node) && edit.insert == insert;
        match edits.iter_mut().find(|edit| same(edit)) {
            Some(edit) => crate::load::values::merge(&mut edit.value, value),
            None => edits.push(Edit {
                node,
                insert,
                value,
            }),
        }
    }
    let mut spliced: Vec<(Range<usize>, String)> = edits
        .iter()
        .map(|edit| {
            if edit.insert {
                insertion(text, edit.node, &edit.value)
            } else {
                replacement(text, edit.node, &edit.value)
            }
        })
        .collect();
    // From the end, so that earlier offsets stay valid; stable for equal ones.
    spliced.sort_by_key(|(range, _)| range.start);
    let mut out = text.to_string();
    for (range, replacement) in spliced.into_iter().rev() {
        out.replace_range(range, &replacement);
    }
    out
}

/// The deepest node of the file along `path`, and how many keys it took.
fn deepest<'a>(root: &'a Node, path: &[String]) -> (&'a Node, usize) {
    let mut node = root;
    for (depth, key) in path.iter().enumerate() {
        let NodeKind::Mapping(entries) = &node.kind else {
            return (node, depth);
        };
        match entries.iter().find(|(name, _)| &name.name == key) {
            Some((_, child)) => node = child,
            None => return (node, depth),
        }
    }
    (node, path.len())
}

/// Replace a node's text with `value`, in the node's quoting style.
fn replacement(text: &str, node: &Node, value: &Value) -> (Range<usize>, String) {
    let range = scalar_range(text, &node.span.range);
    let written = &text[range.clone()];
    let quote = written.chars().next().filter(|c| *c == '"' || *c == '\'');
    let rendered = match value {
        Value::Object(_) | Value::Array(_) => flow(value),
        scalar => render_scalar(scalar, quote),
    };
    if written.is_empty() {
        return (empty_value(text, range.start), format!(" {rendered}"));
    }
    (range, rendered)
}

/// Where the value of `key:` with nothing after it goes: right after the
/// colon (an empty node may be placed before or after it).
fn empty_value(text: &str, at: usize) -> Range<usize> {
    let rest = &text[at..];
    let colon = rest
        .find(|c: char| c != ' ')
        .filter(|&i| rest[i..].starts_with(':'))
        .map_or(at, |i| at + i + 1);
    colon..colon
}

/// A node's range, quotes included.
fn scalar_range(text: &str, range: &Range<usize>) -> Range<usize> {
    let before = text[..range.start].chars().next_back();
    let after = text[range.end..].chars().next();
    match (before, after) {
        (Some(open), Some(close)) if open == close && (open == '"' || open == '\'') => {
            range.start - 1..range.end + 1
        }
        _ => range.clone(),
    }
}

/// Add the keys of `value` (a map) to the map `node`.
fn insertion(text: &str, node: &Node, value: &Value) -> (Range<usize>, String) {
    let Value::Object(entries) = value else {
        return replacement(text, node, value);
    };
    let start = node.span.range.start;
    let is_flow = text[start..].starts_with('{');
    let end = subtree_end(node);
    if is_flow {
        let close = text[end..].find('}').map_or(end, |i| end + i);
        let empty = matches!(&node.kind, NodeKind::Mapping(e) if e.is_empty());
        let items: Vec<String> = entries
            .iter()
            .map(|(key, value)| format!("{}: {}", render_key(key), flow(value)))
            .collect();
        let separator = if empty { "" } else { ", " };
        return (close..close, format!("{separator}{}", items.join(", ")));
    }
    let (offset, indent) = match &node.kind {
        NodeKind::Mapping(children) if !children.is_empty() => {
            let key_start = children[0].0.span.range.start;
            let line_start = text[..key_start].rfind('\n').map_or(0, |i| i + 1);
            let indent = text[line_start..key_start].chars().count();
            let line_end = text[end..].find('\n').map_or(text.len(), |i| end + i + 1);
            (line_end, indent)
        }
        _ => (text.len(), 0),
    };
    let mut block = String::new();
    if offset == text.len() && !text.is_empty() && !text.ends_with('\n') {
        block.push('\n');
    }
    write_block(entries, indent, &mut block);
    (offset..offset, block)
}

/// Where a node's text ends, nested keys and values included.
fn subtree_end(node: &Node) -> usize {
    let own = node.span.range.end;
    match &node.kind {
        NodeKind::Mapping(entries) => entries
            .iter()
            .map(|(key, value)| key.span.range.end.max(subtree_end(value)))
            .fold(own, usize::max),
        NodeKind::Sequence(items) => items.iter().map(subtree_end).fold(own, usize::max),
        _ => own,
    }
}

fn write_block(entries: &Map<String, Value>, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for (key, value) in entries {
        match value {
            Value::Object(children) if !children.is_empty() => {
                out.push_str(&format!("{pad}{}:\n", render_key(key)));
                write_block(children, indent + STEP, out);
            }
            other => out.push_str(&format!("{pad}{}: {}\n", render_key(key), flow(other))),
        }
    }
}

/// A value in YAML flow style: `{repository: x, tag: "1.5.0"}`.
fn flow(value: &Value) -> String {
    match value {
        Value::Object(entries) => {
            let items: Vec<String> = entries
                .iter()
                .map(|(key, value)| format!("{}: {}", render_key(key), flow(value)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(flow).collect();
            format!("[{}]", items.join(", "))
        }
        scalar => render_scalar(scalar, None),
    }
}

fn render_key(key: &str) -> String {
    render_scalar(&Value::String(key.to_string()), None)
}

/// A scalar in the given quoting style, or plain when that reads back as
/// the same string, else double-quoted.
fn render_scalar(value: &Value, quote: Option<char>) -> String {
    let Value::String(text) = value else {
        return value.to_string();
    };
    let single = quote == Some('\'') && !text.chars().any(char::is_control);
    if single {
        format!("'{}'", text.replace('\'', "''"))
    } else if quote.is_none() && is_plain(text) {
        text.clone()
    } else {
        // JSON's escapes are YAML's double-quoted ones.
        value.to_string()
    }
}

/// Whether a string can be written without quotes and read back as itself.
fn is_plain(text: &str) -> bool {
    const INDICATORS: &[char] = &[
        '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@',
        '`',
    ];
    let Some(first) = text.chars().next() else {
        return false;
    };
    if INDICATORS.contains(&first)
        || text.trim() != text
        || text.contains(": ")
        || text.contains(" #")
        || text.chars().any(|c| c.is_control() || ",[]{}".contains(c))
    {
        return false;
    }
    serde_saphyr::from_str::<Value>(text).ok() == Some(Value::String(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::SourceFile;
    use serde_json::json;

    fn change(path: &str, after: Value) -> Change {
        Change {
            path: path.split('.').map(str::to_string).collect(),
            before: None,
            after,
        }
    }

    fn edited(text: &str, changes: &[Change]) -> String {
        let source = SourceFile::new("values.yaml", text);
        let root = crate::yaml::parse_node(&source).unwrap();
        apply(text, &root, changes)
    }

    #[test]
    fn a_scalar_is_replaced_in_its_own_quoting() {
        let text = "# Staging.\nimages:\n  backend: {repository: r, tag: \"1.4.2\"}  # pinned\n  frontend:\n    tag: '2.1'\n    pull: 3\nscale: 2\n";
        let changes = [
            change("images.backend.tag", json!("1.5.0")),
            change("images.frontend.tag", json!("2.2")),
            change("images.frontend.pull", json!(4)),
        ];
        assert_eq!(
            edited(text, &changes),
            "# Staging.\nimages:\n  backend: {repository: r, tag: \"1.5.0\"}  # pinned\n  frontend:\n    tag: '2.2'\n    pull: 4\nscale: 2\n"
        );
    }

    #[test]
    fn a_plain_scalar_stays_plain_unless_it_would_read_back_otherwise() {
        let text = "a: x\nb: y\n";
        let changes = [change("a", json!("z")), change("b", json!("16.4"))];
        assert_eq!(edited(text, &changes), "a: z\nb: \"16.4\"\n");
    }

    #[test]
    fn missing_keys_go_at_the_end_of_their_parent_with_its_indentation() {
        let text = "images:\n    backend: {tag: \"1\"}\n    # the web part\n    frontend: {tag: \"2\"}\nscale: 1\n";
        let changes = [
            change("images.worker.tag", json!("3")),
            change("images.worker.repository", json!("w")),
            change("versions", json!({"chart": "1.2.0"})),
        ];
        assert_eq!(
            edited(text, &changes),
            "images:\n    backend: {tag: \"1\"}\n    # the web part\n    frontend: {tag: \"2\"}\n    worker:\n      tag: \"3\"\n      repository: w\nscale: 1\nversions:\n  chart: 1.2.0\n"
        );
    }

    #[test]
    fn missing_keys_of_a_flow_map_go_inside_its_braces() {
        let text = "images:\n  backend: {repository: r}\n  empty: {}\n";
        let changes = [
            change("images.backend.tag", json!("1.5.0")),
            change("images.empty.tag", json!(true)),
        ];
        assert_eq!(
            edited(text, &changes),
            "images:\n  backend: {repository: r, tag: 1.5.0}\n  empty: {tag: true}\n"
        );
    }

    #[test]
    fn an_empty_file_gets_the_keys() {
        assert_eq!(
            edited(
                "# nothing yet\n",
                &[change("images.a", json!({"tag": "1"}))]
            ),
            "# nothing yet\nimages:\n  a:\n    tag: \"1\"\n"
        );
        assert_eq!(
            edited("", &[change("scale.web", json!(2))]),
            "scale:\n  web: 2\n"
        );
        assert_eq!(
            edited("images:\nscale: 1\n", &[change("images.a", json!("1.0"))]),
            "images: {a: \"1.0\"}\nscale: 1\n"
        );
    }
}

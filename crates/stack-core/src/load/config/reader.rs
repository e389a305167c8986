//! Typed access to a spanned YAML tree, reporting every problem with its
//! position: unknown keys (with the nearest valid key), wrong types, missing
//! required keys. Problems are collected, not returned one at a time, so that
//! `stack lint` can report them all.

use std::time::Duration;

use crate::load::config::ConfigError;
use crate::suggest::nearest;
use crate::yaml::{Key, Node, NodeKind};

/// A mapping whose keys have been checked against the keys allowed there.
pub(crate) struct MapReader<'a> {
    pub node: &'a Node,
    entries: &'a [(Key, Node)],
}

impl<'a> MapReader<'a> {
    /// Check that `node` is a map and that it has no unknown keys. `None` if it
    /// is not a map (reported).
    pub fn new(
        node: &'a Node,
        context: &'static str,
        valid: &[&'static str],
        errors: &mut Vec<ConfigError>,
    ) -> Option<Self> {
        let NodeKind::Mapping(entries) = &node.kind else {
            errors.push(ConfigError::WrongType {
                key: context.to_string(),
                expected: "a map",
                found: node.kind_name(),
                span: node.span.clone(),
            });
            return None;
        };
        for (key, _) in entries {
            if !valid.contains(&key.name.as_str()) {
                errors.push(ConfigError::UnknownKey {
                    key: key.name.clone(),
                    context,
                    span: key.span.clone(),
                    suggestion: nearest(&key.name, valid.iter().copied()).map(str::to_string),
                    valid: valid.to_vec(),
                });
            }
        }
        Some(Self { node, entries })
    }

    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(name, _)| name.name == key)
            .map(|(_, value)| value)
    }

    pub(crate) fn require(
        &self,
        key: &'static str,
        context: &str,
        errors: &mut Vec<ConfigError>,
    ) -> Option<&'a Node> {
        let found = self.get(key);
        if found.is_none() {
            errors.push(ConfigError::MissingKey {
                key,
                context: context.to_string(),
                span: self.node.span.clone(),
            });
        }
        found
    }

    pub fn string(&self, key: &'static str, errors: &mut Vec<ConfigError>) -> Option<&'a Node> {
        self.get(key)
            .and_then(|node| expect_string(node, key, errors))
    }

    pub fn bool(&self, key: &'static str, errors: &mut Vec<ConfigError>) -> Option<bool> {
        let node = self.get(key)?;
        if let NodeKind::Bool(flag) = node.kind {
            Some(flag)
        } else {
            errors.push(wrong_type(key, "true or false", node));
            None
        }
    }

    pub(crate) fn unsigned(&self, key: &'static str, errors: &mut Vec<ConfigError>) -> Option<u64> {
        let node = self.get(key)?;
        match &node.kind {
            NodeKind::Number(number) if number.as_u64().is_some() => number.as_u64(),
            _ => {
                errors.push(wrong_type(key, "a whole number", node));
                None
            }
        }
    }

    pub fn duration(&self, key: &'static str, errors: &mut Vec<ConfigError>) -> Option<Duration> {
        let node = self.get(key)?;
        let parsed = match &node.kind {
            NodeKind::Number(number) => number.as_u64().map(Duration::from_secs),
            NodeKind::String(text) => parse_duration(text),
            _ => None,
        };
        if parsed.is_none() {
            errors.push(ConfigError::Invalid {
                message: format!("`{key}` is not a duration"),
                span: node.span.clone(),
                hint: Some("write a duration such as 300s, 5m, 1h30m or 7d".into()),
            });
        }
        parsed
    }

    /// A list (a single item is not accepted: lists are explicit in YAML).
    pub fn list(&self, key: &'static str, errors: &mut Vec<ConfigError>) -> &'a [Node] {
        match self.get(key) {
            None => &[],
            Some(Node {
                kind: NodeKind::Sequence(items),
                ..
            }) => items,
            Some(node) if node.is_null() => &[],
            Some(node) => {
                errors.push(wrong_type(key, "a list", node));
                &[]
            }
        }
    }
}

pub(crate) fn expect_string<'a>(
    node: &'a Node,
    key: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<&'a Node> {
    if node.as_str().is_some() {
        Some(node)
    } else {
        errors.push(wrong_type(key, "a string", node));
        None
    }
}

pub(crate) fn wrong_type(key: &str, expected: &'static str, node: &Node) -> ConfigError {
    ConfigError::WrongType {
        key: key.to_string(),
        expected,
        found: node.kind_name(),
        span: node.span.clone(),
    }
}

/// `300s`, `5m`, `1h30m`, `7d`, `1500ms`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let amount: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(amount),
            "s" => Duration::from_secs(amount),
            "m" => Duration::from_secs(amount * 60),
            "h" => Duration::from_secs(amount * 3600),
            "d" => Duration::from_secs(amount * 86_400),
            _ => return None,
        };
        total += unit;
        rest = &rest[unit_len..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("300s"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("1500ms"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("42"), Some(Duration::from_secs(42)));
        assert_eq!(parse_duration("5 minutes"), None);
        assert_eq!(parse_duration("m"), None);
    }
}

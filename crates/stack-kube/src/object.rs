//! A Kubernetes object as `stack` renders and applies it.

use std::fmt;

use serde_json::{Map, Value};

/// Label every object `stack` applies carries (product.md §6).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "stack";
/// Label naming the owning release as `<namespace>.<name>`.
pub const RELEASE_LABEL: &str = "stack.dev/release";

/// `text` as a DNS label (RFC 1123: at most 63 lowercase alphanumerics and
/// `-`, starting and ending alphanumeric), so that it is valid in an object
/// name and as a label value: lowercased, other characters become `-`, the
/// ends trimmed; a longer one is cut and given a short digest of the whole,
/// so that two long names never meet. Empty or all-invalid gives `stack`.
pub fn dns_label(text: &str) -> String {
    use sha2::Digest as _;
    let mapped: String = text
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let trimmed = mapped.trim_matches('-');
    if trimmed.is_empty() {
        return "stack".into();
    }
    if trimmed.len() <= 63 {
        return trimmed.to_string();
    }
    let digest = sha2::Sha256::digest(text.as_bytes());
    let head = trimmed[..54].trim_end_matches('-');
    format!("{head}-{}", crate::hex::lower(&digest[..4]))
}

/// Whether `text` is a DNS label (RFC 1123), as a namespace's name must be.
pub fn is_dns_label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    /// `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    /// The whole manifest, with namespace and our labels filled in.
    pub body: Value,
    /// The chart template it came from.
    pub template: String,
}

/// What identifies an object in a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub group: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl Object {
    /// An object as a revision stored it (its body is all there is).
    pub fn from_body(body: &Value, template: &str) -> Self {
        let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
        Self {
            api_version: text(&body["apiVersion"]),
            kind: text(&body["kind"]),
            name: text(&body["metadata"]["name"]),
            namespace: body["metadata"]["namespace"].as_str().map(str::to_string),
            body: body.clone(),
            template: template.to_string(),
        }
    }

    pub fn key(&self) -> ObjectKey {
        ObjectKey {
            group: crate::kinds::group_of(&self.api_version).to_string(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    /// Add our ownership labels to `metadata.labels`.
    pub fn label(&mut self, release_label: &str) {
        self.set_metadata(
            "labels",
            [
                (MANAGED_BY_LABEL, MANAGED_BY_VALUE),
                (RELEASE_LABEL, release_label),
            ],
        );
    }

    /// Set entries of a string map of `metadata` (`labels`, `annotations`).
    pub fn set_metadata<'a>(
        &mut self,
        map: &str,
        entries: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        let Some(metadata) = self.body.get_mut("metadata").and_then(Value::as_object_mut) else {
            return;
        };
        let existing = metadata
            .entry(map)
            .or_insert_with(|| Value::Object(Map::new()));
        if !existing.is_object() {
            *existing = Value::Object(Map::new());
        }
        if let Some(existing) = existing.as_object_mut() {
            for (key, value) in entries {
                existing.insert(key.into(), value.into());
            }
        }
    }
}

impl fmt::Display for ObjectKey {
    /// `Deployment/backend/web`, or `Namespace/core` for cluster-scoped kinds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{}/{}/{}", self.kind, namespace, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels_are_valid_and_long_ones_do_not_collide() {
        assert_eq!(dns_label(".tmpAbC12"), "tmpabc12");
        assert_eq!(dns_label("My Shop"), "my-shop");
        assert_eq!(dns_label("..."), "stack");
        let a = dns_label(&format!("{}a", "x".repeat(80)));
        let b = dns_label(&format!("{}b", "x".repeat(80)));
        assert!(a.len() <= 63 && b.len() <= 63, "{a} {b}");
        assert_ne!(a, b);
    }
}

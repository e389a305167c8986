//! An environment's `previews:`: where a deployment group's releases go
//! (`namespace`, a template of `{namespace}` and `{group}`), the values
//! layered over the environment's for them, and how long a group lives
//! when `--ttl` does not say.

use std::path::Path;
use std::time::Duration;

use crate::diagnostic::Span;
use crate::load::config::reader::{MapReader, expect_string};
use crate::load::config::{ConfigError, ValuesSource};
use crate::yaml::Node;

const PREVIEWS_KEYS: &[&str] = &["namespace", "values", "ttl"];
/// Where a group's copy of a release goes unless `previews.namespace` says.
pub const DEFAULT_NAMESPACE: &str = "{namespace}-{group}";

/// An environment's `previews:`.
#[derive(Debug, Clone, Default)]
pub struct Previews {
    /// The namespace template and where it is written (`None`: the
    /// default, `{namespace}-{group}`).
    pub namespace: Option<(String, Span)>,
    /// Layered over the environment's values and secrets, lowest first.
    pub values: Vec<ValuesSource>,
    /// How long a group lives after its last deploy, unless `--ttl` says.
    pub ttl: Option<Duration>,
}

impl Previews {
    /// The namespace a group's copy of a release in `namespace` goes to.
    pub fn namespace_for(&self, namespace: &str, group: &str) -> String {
        let template = self
            .namespace
            .as_ref()
            .map_or(DEFAULT_NAMESPACE, |(text, _)| text.as_str());
        template
            .replace("{namespace}", namespace)
            .replace("{group}", group)
    }
}

/// `previews:` of an environment.
pub(crate) fn parse(node: &Node, base: &Path, errors: &mut Vec<ConfigError>) -> Previews {
    let Some(map) = MapReader::new(node, "previews", PREVIEWS_KEYS, errors) else {
        return Previews::default();
    };
    let namespace = map
        .get("namespace")
        .and_then(|node| expect_string(node, "namespace", errors))
        .and_then(|node| {
            let text = node.as_str()?.to_string();
            if text.contains("{group}") {
                Some((text, node.span.clone()))
            } else {
                errors.push(ConfigError::Invalid {
                    message: "`previews.namespace` has no `{group}`: every group would share one namespace".into(),
                    span: node.span.clone(),
                    hint: Some(format!("the default is `{DEFAULT_NAMESPACE}`; `preview-{{group}}` puts every release of a group in one namespace")),
                });
                None
            }
        });
    Previews {
        namespace,
        values: super::parse::parse_values_list(map.list("values", errors), base, errors),
        ttl: map.duration("ttl", errors),
    }
}

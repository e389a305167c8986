//! Release revisions as they are kept in the cluster (product.md §6): one
//! Secret per revision in the release namespace, `stack.v1.<release>.v<N>`,
//! holding the rendered objects (gzip-compressed JSON), the values digest,
//! the stack's git commit, timestamps and the state. Pure encoding here; the
//! engine reads and writes them.

use std::io::{Read as _, Write as _};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `<namespace>.<name>` of the release a revision belongs to.
pub const HISTORY_LABEL: &str = "stack.dev/history-of";
pub const NUMBER_LABEL: &str = "stack.dev/revision";
pub const STATE_LABEL: &str = "stack.dev/state";
pub const STACK_LABEL: &str = "stack.dev/stack";
pub const SECRET_TYPE: &str = "stack.dev/release.v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Pending,
    Deployed,
    Failed,
    RolledBack,
    Superseded,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Deployed => "deployed",
            Self::Failed => "failed",
            Self::RolledBack => "rolled-back",
            Self::Superseded => "superseded",
        }
    }
}

/// A revision's objects as JSON text, parsed when read: a plan holds the
/// latest revision of every release, and held as values they took as much
/// memory as the render itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Stored(Box<serde_json::value::RawValue>);

impl Stored {
    /// # Panics
    /// Never: JSON values always serialise.
    pub fn new<'a>(objects: impl IntoIterator<Item = &'a Value>) -> Self {
        let objects: Vec<&Value> = objects.into_iter().collect();
        Self(serde_json::value::to_raw_value(&objects).expect("JSON values serialise"))
    }

    /// The objects, parsed.
    pub fn parse(&self) -> Vec<Value> {
        serde_json::from_str(self.0.get()).unwrap_or_default()
    }

    /// Where each object is found — `(apiVersion, kind, namespace)` — read
    /// without building the rest of it.
    pub fn scopes(&self) -> Vec<(String, String, Option<String>)> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Place {
            #[serde(default)]
            api_version: String,
            #[serde(default)]
            kind: String,
            #[serde(default)]
            metadata: PlaceMetadata,
        }
        #[derive(Deserialize, Default)]
        struct PlaceMetadata {
            namespace: Option<String>,
        }
        serde_json::from_str::<Vec<Place>>(self.0.get())
            .unwrap_or_default()
            .into_iter()
            .map(|p| (p.api_version, p.kind, p.metadata.namespace))
            .collect()
    }
}

impl Default for Stored {
    fn default() -> Self {
        Self::new([])
    }
}

impl PartialEq for Stored {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get() || self.parse() == other.parse()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    /// `namespace/name`.
    pub release: String,
    /// The stack that deployed it (the folder holding its stack files).
    #[serde(default)]
    pub stack: String,
    pub number: u32,
    pub state: State,
    pub chart: String,
    pub values_digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub started: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// The rendered objects, as applied.
    pub objects: Stored,
    #[serde(default)]
    pub tests: Stored,
    /// A Helm chart's hooks (`helm.sh/hook`), kept for the steps after the
    /// deploy: `pre/post-rollback` when it is restored, `pre/post-delete`
    /// when it is destroyed.
    #[serde(default)]
    pub hooks: Stored,
    /// Where a blue/green release stands after this revision: which colour
    /// serves, which one still runs beside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests_passed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Objects this revision took over that existed before without our
    /// label (`Kind/namespace/name`): a rollback never deletes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adopted: Vec<String>,
}

/// A blue/green release's colours after a revision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    /// `blue` or `green`: what the switched Services select.
    pub active: String,
    /// The colour that served before, kept running for an instant
    /// rollback; `None` on a first deploy or once it is scaled away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// When the previous colour may be scaled away (RFC 3339); `None`:
    /// at the next deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_until: Option<String>,
    /// A canary paused (`pause: {}`) before this step (numbered from 0):
    /// `stack rollout promote` goes on from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    /// The paused canary's share of the traffic, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u8>,
    /// A paused canary with variants: each variant's share, by name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub weights: std::collections::BTreeMap<String, u8>,
    /// The variant promoted to be the stable version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The digest of the variants declared when the experiment ran: while
    /// the stack declares the same ones, the experiment is over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
}

/// Every object any of these revisions adopted.
pub fn adopted_in(revisions: &[std::sync::Arc<Revision>]) -> std::collections::BTreeSet<String> {
    revisions
        .iter()
        .flat_map(|r| r.adopted.iter().cloned())
        .collect()
}

/// `stack.v1.<release name>.v<N>`.
pub fn secret_name(release_name: &str, number: u32) -> String {
    format!("stack.v1.{release_name}.v{number}")
}

impl Revision {
    /// The Secret that stores this revision.
    pub fn to_secret(&self) -> Value {
        let (namespace, name) = self
            .release
            .split_once('/')
            .unwrap_or(("default", &self.release));
        let json = serde_json::to_vec(self).unwrap_or_default();
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = encoder.write_all(&json);
        let compressed = encoder.finish().unwrap_or_default();
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": secret_name(name, self.number),
                "namespace": namespace,
                "labels": {
                    HISTORY_LABEL: format!("{namespace}.{name}"),
                    NUMBER_LABEL: self.number.to_string(),
                    STATE_LABEL: self.state.as_str(),
                    STACK_LABEL: self.stack,
                    crate::object::MANAGED_BY_LABEL: crate::object::MANAGED_BY_VALUE,
                },
            },
            "type": SECRET_TYPE,
            "data": {"release": base64::engine::general_purpose::STANDARD.encode(compressed)},
        })
    }

    pub fn from_secret(secret: &Value) -> Option<Self> {
        let data = secret["data"]["release"].as_str()?;
        let compressed = base64::engine::general_purpose::STANDARD
            .decode(data)
            .ok()?;
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(compressed.as_slice())
            .read_to_end(&mut json)
            .ok()?;
        serde_json::from_slice(&json).ok()
    }
}

/// A short digest of merged values, to tell whether a revision was rendered
/// from exactly these values.
pub fn values_digest(values: &Value) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(serde_json::to_vec(values).unwrap_or_default());
    crate::hex::lower(&digest[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_objects_parse_back_and_tell_where_they_are() {
        let objects = [
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "web"}, "data": {"k": "v"}}),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}}),
        ];
        let stored = Stored::new(&objects);
        assert_eq!(stored.parse(), objects);
        assert_eq!(
            stored.scopes(),
            [
                ("v1".into(), "ConfigMap".into(), Some("web".into())),
                ("v1".into(), "Namespace".into(), None)
            ]
        );
        assert_eq!(Stored::default().parse(), Vec::<Value>::new());
    }

    #[test]
    fn a_revision_round_trips_through_its_secret() {
        let revision = Revision {
            release: "apps/web".into(),
            stack: "shop".into(),
            number: 3,
            state: State::Deployed,
            chart: "web".into(),
            values_digest: "abc".into(),
            commit: Some("deadbeef".into()),
            started: "2026-11-23T00:00:00Z".into(),
            finished: None,
            objects: Stored::new(&[json!({"kind": "ConfigMap"})]),
            tests: Stored::default(),
            hooks: Stored::default(),
            rollout: None,
            tests_passed: None,
            message: None,
            adopted: Vec::new(),
        };
        let secret = revision.to_secret();
        assert_eq!(secret["metadata"]["name"], "stack.v1.web.v3");
        assert_eq!(secret["metadata"]["labels"][STATE_LABEL], "deployed");
        assert_eq!(Revision::from_secret(&secret), Some(revision));
    }
}

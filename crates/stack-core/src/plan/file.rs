//! Plan files: what `stack diff --out FILE` saw — the stack, environment,
//! selection and commit, the digest of every rendered object, and for
//! every object it would touch the live `resourceVersion` (or absence) —
//! so that `stack apply --plan FILE` applies exactly what was reviewed,
//! or nothing. Digests only: no value of the render is in the file.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest as _;

use crate::cluster::live::LiveState;
use crate::error::Error;
use crate::execute::Planned;
use crate::load::project::Project;
use crate::load::render::RenderedRelease;
use crate::plan::Action;

const KIND: &str = "StackPlan";
const VERSION: u32 = 1;

/// A live object as the plan saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seen {
    /// `create`, `update` or `delete`.
    pub action: String,
    /// Its `resourceVersion`; `None`: it did not exist.
    pub resource_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanFile {
    pub kind: String,
    pub version: u32,
    pub stack: String,
    pub environment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The selected releases, by id.
    pub selection: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// RFC 3339, UTC.
    pub created: String,
    /// The SHA-256 of every rendered object, by `Kind/namespace/name`.
    pub digests: BTreeMap<String, String>,
    /// The objects it would touch, by `Kind/namespace/name`.
    pub touches: BTreeMap<String, Seen>,
    /// The file it was read from.
    #[serde(skip)]
    pub path: std::path::PathBuf,
}

/// An object's digest; a Secret's keyed with the run's secrets (see
/// `Masks::secrets_key`), so that the file cannot be used to test guesses
/// of a secret.
fn digest(object: &stack_kube::object::Object, key: &[u8; 32]) -> String {
    let mut hasher = sha2::Sha256::new();
    if object.kind == "Secret" {
        hasher.update(key);
    }
    hasher.update(object.body.to_string().as_bytes());
    stack_kube::hex::lower(&hasher.finalize())
}

/// The digests of a render, by object, as a plan holds them: taken right
/// after rendering, before the plan reads the cluster (whose Secrets it
/// registers too), in `stack diff --out` and in `stack apply --plan` alike.
pub fn rendered_digests(
    project: &Project,
    rendered: &[(usize, RenderedRelease)],
) -> BTreeMap<String, String> {
    digests(rendered, &project.masks.secrets_key())
}

fn digests(rendered: &[(usize, RenderedRelease)], key: &[u8; 32]) -> BTreeMap<String, String> {
    rendered
        .iter()
        .flat_map(|(_, release)| release.objects.iter())
        .map(|object| (object.key().to_string(), digest(object, key)))
        .collect()
}

fn resource_version(live: &LiveState, key: &stack_kube::object::ObjectKey) -> Option<String> {
    let object = live.objects.get(key)?.whole();
    object["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_string)
}

/// Who wrote an object last: the manager of its newest managed fields.
fn last_manager(object: &Value) -> Option<String> {
    object["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .max_by_key(|entry| entry["time"].as_str().unwrap_or_default().to_string())
        .and_then(|entry| entry["manager"].as_str().map(str::to_string))
}

impl PlanFile {
    /// The plan of a diff: the digests of its render (as rendered, before
    /// strategies shape it for the live state; see [`rendered_digests`])
    /// and what its plan would touch.
    pub fn new(project: &Project, digests: BTreeMap<String, String>, planned: &Planned) -> Self {
        let mut touches = BTreeMap::new();
        for release in &planned.plan.releases {
            for change in &release.changes {
                let action = match change.action {
                    Action::Create => "create",
                    Action::Update => "update",
                    Action::Delete => "delete",
                };
                touches.insert(
                    change.key.to_string(),
                    Seen {
                        action: action.into(),
                        resource_version: resource_version(&planned.live, &change.key),
                    },
                );
            }
        }
        Self {
            kind: KIND.into(),
            version: VERSION,
            stack: project.stack_name(),
            environment: project.environment_name().to_string(),
            group: project.environment.group.as_ref().map(|g| g.label.clone()),
            selection: selection(project),
            commit: project.git_commit(),
            created: stack_kube::clock::now(),
            digests,
            touches,
            path: std::path::PathBuf::new(),
        }
    }

    pub fn write(&self, path: &Path) -> Result<(), Error> {
        let text = serde_json::to_string_pretty(self).unwrap_or_default() + "\n";
        std::fs::write(path, text).map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Read a plan file, or say why it is not one.
    pub fn read(path: &Path) -> Result<Self, Error> {
        let refuse = |reason: String| Error::Failed {
            message: format!("{}: {reason}", path.display()),
            hint: Some("write a plan with `stack diff --out FILE`".into()),
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| refuse(format!("cannot read it: {e}")))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| refuse(format!("not a plan file (truncated, or not JSON: {e})")))?;
        if value["kind"] != KIND {
            return Err(refuse("not a plan file (no `kind: StackPlan`)".into()));
        }
        if value["version"] != VERSION {
            return Err(refuse(format!(
                "a plan of version {}, this stack reads {VERSION}",
                value["version"]
            )));
        }
        let mut plan: Self = serde_json::from_value(value)
            .map_err(|e| refuse(format!("not a whole plan file: {e}")))?;
        plan.path = path.to_path_buf();
        Ok(plan)
    }

    /// What keeps this plan from being applied to `project` now, before
    /// anything is read from a cluster: another stack, environment, group
    /// or selection, or an age over `max_age`.
    pub fn check_scope(&self, project: &Project, max_age: std::time::Duration) -> Vec<String> {
        let mut problems = Vec::new();
        let mut differs = |what: &str, planned: &str, now: &str| {
            if planned != now {
                problems.push(format!(
                    "the plan is of {what} `{planned}`, this run of `{now}`"
                ));
            }
        };
        differs("stack", &self.stack, &project.stack_name());
        differs("environment", &self.environment, project.environment_name());
        let group = project.environment.group.as_ref().map(|g| g.label.clone());
        differs(
            "group",
            self.group.as_deref().unwrap_or("(none)"),
            group.as_deref().unwrap_or("(none)"),
        );
        differs(
            "selection",
            &self.selection.join(" "),
            &selection(project).join(" "),
        );
        let created = self.created.parse::<jiff::Timestamp>().ok();
        let age = created.map(|t| jiff::Timestamp::now().as_second() - t.as_second());
        if age.is_none_or(|age| age > i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX)) {
            problems.push(format!(
                "the plan was made at {}, more than --max-age ({}s) ago",
                self.created,
                max_age.as_secs()
            ));
        }
        problems
    }

    /// How the render differs from the plan's (the stack files, values or
    /// secrets changed), object by object.
    pub fn check_render(
        &self,
        project: &Project,
        rendered: &[(usize, RenderedRelease)],
    ) -> Vec<String> {
        let now = rendered_digests(project, rendered);
        let mut problems = Vec::new();
        for (key, digest) in &self.digests {
            match now.get(key) {
                None => problems.push(format!("{key}: in the plan, no longer rendered")),
                Some(now) if now != digest => problems.push(format!(
                    "{key}: rendered otherwise than in the plan (the stack files, values or secrets changed)"
                )),
                Some(_) => {}
            }
        }
        for key in now.keys().filter(|key| !self.digests.contains_key(*key)) {
            problems.push(format!("{key}: rendered now, not in the plan"));
        }
        problems
    }

    /// How the cluster moved since the plan, for the objects it touches.
    pub fn check_live(&self, live: &LiveState) -> Vec<String> {
        let by_key: BTreeMap<String, &crate::cluster::live::LiveObject> = live
            .objects
            .iter()
            .map(|(key, object)| (key.to_string(), object))
            .collect();
        let mut problems = Vec::new();
        for (key, seen) in &self.touches {
            let object = by_key.get(key).map(|o| o.whole());
            let now = object.as_ref().and_then(|o| {
                o["metadata"]["resourceVersion"]
                    .as_str()
                    .map(str::to_string)
            });
            match (&seen.resource_version, &now) {
                (Some(before), Some(now)) if before != now => {
                    let manager = object
                        .as_ref()
                        .and_then(last_manager)
                        .unwrap_or_else(|| "an unknown manager".into());
                    problems.push(format!(
                        "{key}: changed in the cluster since the plan (resourceVersion {before} → {now}, by manager {manager})"
                    ));
                }
                (Some(before), None) => problems.push(format!(
                    "{key}: deleted from the cluster since the plan (it was at resourceVersion {before})"
                )),
                (None, Some(now)) => problems.push(format!(
                    "{key}: created in the cluster since the plan (now at resourceVersion {now})"
                )),
                _ => {}
            }
        }
        problems
    }
}

/// The ids of the selected releases.
fn selection(project: &Project) -> Vec<String> {
    project
        .selection
        .releases
        .iter()
        .map(|&i| project.releases[i].id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sha2::Digest as _;
    use stack_kube::object::Object;

    #[test]
    fn a_secrets_digest_is_keyed_and_other_objects_are_not() {
        let secret = Object::from_body(
            &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "apps"}, "stringData": {"password": "1234"}}),
            "test",
        );
        let config = Object::from_body(
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "apps"}}),
            "test",
        );
        let (one, two) = ([1u8; 32], [2u8; 32]);
        assert_ne!(super::digest(&secret, &one), super::digest(&secret, &two));
        assert_eq!(super::digest(&config, &one), super::digest(&config, &two));
        // Not the plain digest of the body, which anyone could compare a guess with.
        let plain =
            stack_kube::hex::lower(&sha2::Sha256::digest(secret.body.to_string().as_bytes()));
        assert_ne!(super::digest(&secret, &one), plain);
    }
}

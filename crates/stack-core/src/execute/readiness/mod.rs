//! Whether an object is ready: one rule per kind, each in its own file
//! behind `Rule`. A kind without a rule is ready once applied. Adding a
//! kind is a file and a line in `RULES`.

mod claim;
mod crd;
mod daemon_set;
mod deployment;
mod job;
mod service;
mod stateful_set;

use serde_json::Value;

/// Where an object stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Still converging; the text says how far (`1/3 ready`).
    Waiting(String),
    /// It will not become ready by itself.
    Failed(String),
}

/// How one kind tells whether an object of it is ready.
pub(crate) trait Rule: Sync {
    /// The kind it judges (`Deployment`).
    fn kind(&self) -> &'static str;
    /// Where `object` stands; `None` when this object needs no waiting (a
    /// Service that is not a load balancer).
    fn judge(&self, object: &Value) -> Option<Readiness>;
}

/// Every kind that is waited for.
static RULES: [&dyn Rule; 7] = [
    &deployment::Deployment,
    &stateful_set::StatefulSet,
    &daemon_set::DaemonSet,
    &job::Job,
    &claim::PersistentVolumeClaim,
    &crd::CustomResourceDefinition,
    &service::Service,
];

/// The readiness of an object, or `None` for kinds that are ready once applied.
pub fn readiness(object: &Value) -> Option<Readiness> {
    let kind = object["kind"].as_str()?;
    RULES.iter().find(|rule| rule.kind() == kind)?.judge(object)
}

/// The rule for test objects: a Job completes, a Pod succeeds.
pub(crate) fn test_readiness(object: &Value) -> Option<Readiness> {
    if object["kind"] != "Pod" {
        return readiness(object);
    }
    match object["status"]["phase"].as_str() {
        Some("Succeeded") => Some(Readiness::Ready),
        Some("Failed") => Some(Readiness::Failed("the pod failed".into())),
        phase => Some(Readiness::Waiting(phase.unwrap_or("Pending").to_string())),
    }
}

fn number(value: &Value) -> u64 {
    value.as_u64().unwrap_or(0)
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

fn is_true(object: &Value, kind: &str) -> bool {
    condition(object, kind).is_some_and(|c| c["status"] == "True")
}

/// Whether the controller has seen the object's newest generation.
pub(crate) fn generation_observed(object: &Value) -> bool {
    let generation = object["metadata"]["generation"].as_u64();
    let observed = object["status"]["observedGeneration"].as_u64();
    match (generation, observed) {
        (Some(generation), Some(observed)) => observed >= generation,
        (None, _) => true,
        (Some(_), None) => false,
    }
}

fn waiting(text: impl Into<String>) -> Option<Readiness> {
    Some(Readiness::Waiting(text.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_without_a_rule_are_ready_once_applied() {
        assert_eq!(readiness(&json!({"kind": "ConfigMap"})), None);
        assert_eq!(readiness(&json!({})), None);
    }

    #[test]
    fn a_test_pod_is_ready_when_it_succeeded() {
        let pod = |phase: &str| json!({"kind": "Pod", "status": {"phase": phase}});
        assert_eq!(test_readiness(&pod("Succeeded")), Some(Readiness::Ready));
        assert_eq!(
            test_readiness(&pod("Failed")),
            Some(Readiness::Failed("the pod failed".into()))
        );
        assert_eq!(
            test_readiness(&pod("Running")),
            Some(Readiness::Waiting("Running".into()))
        );
    }

    #[test]
    fn every_kind_has_one_rule() {
        let mut kinds: Vec<&str> = RULES.iter().map(|rule| rule.kind()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), RULES.len());
    }
}

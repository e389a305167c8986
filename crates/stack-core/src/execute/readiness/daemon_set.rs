//! A DaemonSet is ready when every node it is scheduled on runs an
//! updated, available pod.

use serde_json::Value;

use super::{Readiness, Rule, generation_observed, number, waiting};

pub(crate) struct DaemonSet;

impl Rule for DaemonSet {
    fn kind(&self) -> &'static str {
        "DaemonSet"
    }

    fn judge(&self, object: &Value) -> Option<Readiness> {
        let status = &object["status"];
        if !generation_observed(object) || status["desiredNumberScheduled"].is_null() {
            return waiting("waiting for the rollout to start");
        }
        let desired = number(&status["desiredNumberScheduled"]);
        let (updated, available) = (
            number(&status["updatedNumberScheduled"]),
            number(&status["numberAvailable"]),
        );
        if updated < desired || available < desired {
            return waiting(format!("{available}/{desired} ready"));
        }
        Some(Readiness::Ready)
    }
}

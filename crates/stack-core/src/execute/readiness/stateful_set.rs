//! A StatefulSet is ready when its pods are ready and updated as its
//! update strategy asks (`kubectl rollout status` judges the same).

use serde_json::Value;

use super::{Readiness, Rule, generation_observed, number, waiting};

pub struct StatefulSet;

impl Rule for StatefulSet {
    fn kind(&self) -> &'static str {
        "StatefulSet"
    }

    fn judge(&self, object: &Value) -> Option<Readiness> {
        let status = &object["status"];
        let replicas = object["spec"]["replicas"].as_u64().unwrap_or(1);
        if !generation_observed(object) {
            return waiting("waiting for the rollout to start");
        }
        let ready = number(&status["readyReplicas"]);
        // OnDelete updates no pod by itself, and a partition only the
        // pods at or above it.
        let strategy = &object["spec"]["updateStrategy"];
        if strategy["type"] == "OnDelete" {
            return if ready < replicas {
                waiting(format!("{ready}/{replicas} ready"))
            } else {
                Some(Readiness::Ready)
            };
        }
        let partition = strategy["rollingUpdate"]["partition"].as_u64().unwrap_or(0);
        let updated = number(&status["updatedReplicas"]);
        let revision_done = partition > 0 || status["currentRevision"] == status["updateRevision"];
        if ready < replicas || updated < replicas.saturating_sub(partition) || !revision_done {
            return waiting(format!("{ready}/{replicas} ready"));
        }
        Some(Readiness::Ready)
    }
}

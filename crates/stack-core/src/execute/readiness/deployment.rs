//! A Deployment is ready when its newest generation is rolled out: every
//! replica updated and available, no old one left.

use serde_json::Value;

use super::{Readiness, Rule, condition, generation_observed, number, waiting};

pub struct Deployment;

impl Rule for Deployment {
    fn kind(&self) -> &'static str {
        "Deployment"
    }

    fn judge(&self, object: &Value) -> Option<Readiness> {
        let status = &object["status"];
        if !generation_observed(object) {
            return waiting("waiting for the rollout to start");
        }
        if let Some(progressing) = condition(object, "Progressing")
            && progressing["reason"] == "ProgressDeadlineExceeded"
        {
            let message = progressing["message"]
                .as_str()
                .unwrap_or("progress deadline exceeded");
            return Some(Readiness::Failed(format!(
                "ProgressDeadlineExceeded: {message}"
            )));
        }
        let replicas = object["spec"]["replicas"].as_u64().unwrap_or(1);
        let (updated, total, available) = (
            number(&status["updatedReplicas"]),
            number(&status["replicas"]),
            number(&status["availableReplicas"]),
        );
        if updated < replicas || total > updated || available < updated {
            return waiting(format!("{available}/{replicas} ready"));
        }
        Some(Readiness::Ready)
    }
}

#[cfg(test)]
mod tests {
    use super::super::readiness;
    use super::*;
    use serde_json::json;

    #[test]
    fn a_rollout_is_judged_once_its_generation_is_observed() {
        let mut deployment = json!({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}});
        assert_eq!(
            readiness(&deployment),
            Some(Readiness::Waiting(
                "waiting for the rollout to start".into()
            ))
        );
        deployment["status"]["observedGeneration"] = json!(2);
        assert_eq!(readiness(&deployment), Some(Readiness::Ready));
        deployment["status"]["availableReplicas"] = json!(1);
        assert_eq!(
            readiness(&deployment),
            Some(Readiness::Waiting("1/2 ready".into()))
        );
        deployment["status"]["conditions"] = json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"web-1\" has timed out progressing."}]);
        assert!(matches!(readiness(&deployment), Some(Readiness::Failed(_))));
    }
}

//! A Job is ready when it completed, and failed when it failed (its
//! reason and message, e.g. `BackoffLimitExceeded`).

use serde_json::Value;

use super::{Readiness, Rule, condition, is_true, waiting};

pub struct Job;

impl Rule for Job {
    fn kind(&self) -> &'static str {
        "Job"
    }

    fn judge(&self, object: &Value) -> Option<Readiness> {
        if is_true(object, "Failed") {
            let failed = condition(object, "Failed").unwrap_or(&Value::Null);
            return Some(Readiness::Failed(format!(
                "{}: {}",
                failed["reason"].as_str().unwrap_or("Failed"),
                failed["message"].as_str().unwrap_or("the job failed")
            )));
        }
        if is_true(object, "Complete") {
            return Some(Readiness::Ready);
        }
        waiting("running")
    }
}

#[cfg(test)]
mod tests {
    use super::super::readiness;
    use super::*;
    use serde_json::json;

    #[test]
    fn a_job_is_ready_when_complete_and_fails_with_its_reason() {
        let done = json!({"kind": "Job", "status": {"conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(readiness(&done), Some(Readiness::Ready));
        let failed = json!({"kind": "Job", "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}});
        assert_eq!(
            readiness(&failed),
            Some(Readiness::Failed(
                "BackoffLimitExceeded: Job has reached the specified backoff limit".into()
            ))
        );
        assert_eq!(
            readiness(&json!({"kind": "Job"})),
            Some(Readiness::Waiting("running".into()))
        );
    }
}

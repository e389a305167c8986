//! A PersistentVolumeClaim is ready once bound to a volume.

use serde_json::Value;

use super::{Readiness, Rule, waiting};

pub struct PersistentVolumeClaim;

impl Rule for PersistentVolumeClaim {
    fn kind(&self) -> &'static str {
        "PersistentVolumeClaim"
    }

    fn judge(&self, object: &Value) -> Option<Readiness> {
        let phase = &object["status"]["phase"];
        if phase == "Bound" {
            Some(Readiness::Ready)
        } else {
            waiting(phase.as_str().unwrap_or("Pending"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::readiness;
    use super::*;
    use serde_json::json;

    #[test]
    fn a_claim_is_ready_once_bound() {
        let claim =
            |phase: &str| json!({"kind": "PersistentVolumeClaim", "status": {"phase": phase}});
        assert_eq!(readiness(&claim("Bound")), Some(Readiness::Ready));
        assert_eq!(
            readiness(&claim("Pending")),
            Some(Readiness::Waiting("Pending".into()))
        );
    }
}

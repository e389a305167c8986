//! A CustomResourceDefinition is ready once established: its kind is served.

use serde_json::Value;

use super::{Readiness, Rule, is_true, waiting};

pub struct CustomResourceDefinition;

impl Rule for CustomResourceDefinition {
    fn kind(&self) -> &'static str {
        "CustomResourceDefinition"
    }

    fn judge(&self, object: &Value) -> Option<Readiness> {
        if is_true(object, "Established") {
            Some(Readiness::Ready)
        } else {
            waiting("not established")
        }
    }
}

//! A Service of type LoadBalancer is ready once it has an address; any
//! other Service is ready once applied.

use serde_json::Value;

use super::{Readiness, Rule, waiting};

pub struct Service;

impl Rule for Service {
    fn kind(&self) -> &'static str {
        "Service"
    }

    fn judge(&self, object: &Value) -> Option<Readiness> {
        if object["spec"]["type"] != "LoadBalancer" {
            return None;
        }
        let addresses = object["status"]["loadBalancer"]["ingress"].as_array();
        if addresses.is_some_and(|a| !a.is_empty()) {
            Some(Readiness::Ready)
        } else {
            waiting("no load balancer address")
        }
    }
}

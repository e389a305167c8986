//! A request's `resources`: objects given as they are, deployed as one
//! release named after the team and the repository, in the team's
//! namespace, labelled so that the team's selector matches it. Objects a
//! team may not deploy this way are refused: cluster-scoped kinds,
//! another namespace, Secrets (they belong in the stack's SOPS files and
//! would otherwise be kept in the server's history).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Value, json};
use stack_core::load::release::AdHoc;
use stack_kube::object::dns_label;

use crate::request::DeployRequest;
use crate::teams::Team;

type Refusal = (StatusCode, String, String);

fn refuse(status: StatusCode, field: String, message: String) -> Refusal {
    (status, message, field)
}

/// The ad-hoc release of a request with `resources`, or why they are
/// refused (status, message, field).
pub(crate) fn of(team: &Team, request: &DeployRequest) -> Result<Option<AdHoc>, Refusal> {
    if request.resources.is_empty() {
        return Ok(None);
    }
    if request.selector.is_some() {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "selector".into(),
            "a request deploys either `resources` or the stack's releases its `selector` names, not both".into(),
        ));
    }
    let namespace = dns_label(&team.name);
    let scopes = stack_kube::kinds::Scopes::default();
    for (index, object) in request.resources.iter().enumerate() {
        check(object, index, &namespace, &scopes)?;
    }
    let repository = request
        .repository
        .trim_end_matches(".git")
        .rsplit(['/', ':'])
        .next()
        .unwrap_or(&request.repository);
    Ok(Some(AdHoc {
        name: dns_label(&format!("{}-{repository}", team.name)),
        namespace,
        labels: labels(team),
        objects: request.resources.clone(),
    }))
}

fn check(
    object: &Value,
    index: usize,
    namespace: &str,
    scopes: &stack_kube::kinds::Scopes,
) -> Result<(), Refusal> {
    let field = format!("resources[{index}]");
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
    };
    let (Some(api_version), Some(kind), Some(_)) =
        (text("/apiVersion"), text("/kind"), text("/metadata/name"))
    else {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            field,
            "each of `resources` needs `apiVersion`, `kind` and `metadata.name`".into(),
        ));
    };
    if kind == "Secret" {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            field,
            "`resources` may not hold Secrets: put them in the stack's SOPS files".into(),
        ));
    }
    if scopes.is_cluster_scoped(api_version, kind) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            field,
            format!(
                "{kind} is cluster-scoped: a team's resources go to its namespace `{namespace}`"
            ),
        ));
    }
    match text("/metadata/namespace") {
        Some(other) if other != namespace => Err(refuse(
            StatusCode::FORBIDDEN,
            field,
            format!(
                "its namespace is `{other}`: a team's resources go to its namespace `{namespace}`"
            ),
        )),
        _ => Ok(()),
    }
}

/// Labels the team's selector matches: its `key=value` terms.
fn labels(team: &Team) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([("resources".to_string(), "true".to_string())]);
    if let Some((text, _)) = &team.selector {
        for term in text.split(',') {
            if let Some((key, value)) = term.split_once('=')
                && !key.ends_with('!')
            {
                labels.insert(key.trim().to_string(), value.trim().to_string());
            }
        }
    }
    labels
}

/// The ad-hoc release as the deployment's record keeps it.
pub(crate) fn record(ad_hoc: &AdHoc) -> Value {
    json!({"name": ad_hoc.name, "namespace": ad_hoc.namespace, "labels": ad_hoc.labels, "objects": ad_hoc.objects})
}

/// The ad-hoc release from the deployment's record.
pub(crate) fn from_record(record: &Value) -> Option<AdHoc> {
    Some(AdHoc {
        name: record["name"].as_str()?.to_string(),
        namespace: record["namespace"].as_str()?.to_string(),
        labels: serde_json::from_value(record["labels"].clone()).unwrap_or_default(),
        objects: record["objects"].as_array()?.clone(),
    })
}

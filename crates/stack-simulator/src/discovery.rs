//! Discovery and OpenAPI: `/version`, legacy and aggregated discovery with
//! exact content negotiation (kube-api-subset.md §2), and the upstream
//! OpenAPI v3 documents so that `kubectl apply` validates.

use std::io::Read as _;
use std::sync::OnceLock;

use serde_json::{Value, json};
use sha2::{Digest, Sha512};

use crate::resources::{Registry, ResourceType};

pub const AGGREGATED_V2: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

pub fn version() -> Value {
    json!({
        "major": "1", "minor": "33", "emulationMajor": "1", "emulationMinor": "33",
        "minCompatibilityMajor": "1", "minCompatibilityMinor": "32",
        "gitVersion": "v1.33.0-stack-simulator",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean", "buildDate": "2026-11-23T00:00:00Z",
        "goVersion": "go1.24.2", "compiler": "gc", "platform": "linux/amd64"
    })
}

/// Whether one clause of an `Accept` header asks for aggregated discovery v2
/// (parameters compared exactly, in any order).
pub fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').any(|clause| {
        let mut parts = clause.split(';').map(str::trim);
        if parts.next() != Some("application/json") {
            return false;
        }
        let mut params: Vec<(String, String)> = parts
            .filter_map(|p| {
                p.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            })
            .filter(|(k, _)| k != "q")
            .collect();
        params.sort();
        params
            == vec![
                ("as".to_string(), "APIGroupDiscoveryList".to_string()),
                ("g".to_string(), "apidiscovery.k8s.io".to_string()),
                ("v".to_string(), "v2".to_string()),
            ]
    })
}

pub fn api_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]})
}

fn group_entry(group: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": versions, "preferredVersion": versions[0]})
}

pub fn api_group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .iter()
        .map(|(g, v)| group_entry(g, v))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn api_group(registry: &Registry, group: &str) -> Option<Value> {
    let groups = registry.groups();
    let versions = groups.get(group)?;
    let mut entry = group_entry(group, versions);
    entry["kind"] = json!("APIGroup");
    entry["apiVersion"] = json!("v1");
    Some(entry)
}

pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let types: Vec<&ResourceType> = registry
        .types()
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if types.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for t in types {
        let mut resource = json!({
            "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced,
            "kind": t.kind, "verbs": t.verbs(),
        });
        // Left out when empty, as the real server leaves them out.
        if !t.short_names.is_empty() {
            resource["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            resource["categories"] = json!(t.categories);
        }
        resources.push(resource);
        if t.status {
            resources.push(
                json!({"name": format!("{}/status", t.plural), "singularName": "",
                "namespaced": t.namespaced, "kind": t.kind, "verbs": ["get", "patch", "update"]}),
            );
        }
        if t.scale {
            resources.push(json!({"name": format!("{}/scale", t.plural), "singularName": "",
                "namespaced": t.namespaced, "group": "autoscaling", "version": "v1", "kind": "Scale",
                "verbs": ["get", "patch", "update"]}));
        }
        if t.kind == "Pod" {
            resources.push(
                json!({"name": "pods/log", "singularName": "", "namespaced": true,
                "kind": "Pod", "verbs": ["get"]}),
            );
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}

fn aggregated_version(registry: &Registry, group: &str, version: &str) -> Value {
    let resources: Vec<Value> = registry
        .types()
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .map(|t| {
            let mut subresources = Vec::new();
            if t.status {
                subresources.push(json!({"subresource": "status",
                    "responseKind": {"group": "", "version": "", "kind": t.kind}, "verbs": ["get", "patch", "update"]}));
            }
            if t.scale {
                subresources.push(json!({"subresource": "scale",
                    "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"}, "verbs": ["get", "patch", "update"]}));
            }
            json!({
                "resource": t.plural, "singularResource": t.singular,
                "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
                "responseKind": {"group": "", "version": "", "kind": t.kind},
                "verbs": t.verbs(), "shortNames": t.short_names, "categories": t.categories,
                "subresources": subresources,
            })
        })
        .collect();
    json!({"version": version, "freshness": "Current", "resources": resources})
}

/// `/api` (core only) or `/apis` (every other group) as `APIGroupDiscoveryList`.
pub fn aggregated(registry: &Registry, core: bool) -> Value {
    let items: Vec<Value> = if core {
        vec![
            json!({"metadata": {"name": ""}, "versions": [aggregated_version(registry, "", "v1")]}),
        ]
    } else {
        registry
            .groups()
            .iter()
            .map(|(group, versions)| {
                let versions: Vec<Value> = versions
                    .iter()
                    .map(|v| aggregated_version(registry, group, v))
                    .collect();
                json!({"metadata": {"name": group}, "versions": versions})
            })
            .collect()
    };
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

/// The OpenAPI v3 documents we have, by path (`api/v1`, `apis/apps/v1`, …).
const DOCUMENTS: &[(&str, &[u8])] = &[
    ("api/v1", include_bytes!("openapi/api__v1.json.gz")),
    (
        "apis/apps/v1",
        include_bytes!("openapi/apis__apps__v1.json.gz"),
    ),
    (
        "apis/batch/v1",
        include_bytes!("openapi/apis__batch__v1.json.gz"),
    ),
];

struct Document {
    path: &'static str,
    body: Vec<u8>,
    hash: String,
}

fn documents() -> &'static [Document] {
    static LOADED: OnceLock<Vec<Document>> = OnceLock::new();
    LOADED.get_or_init(|| {
        DOCUMENTS
            .iter()
            .map(|(path, compressed)| {
                let mut body = Vec::new();
                let _ = flate2::read::GzDecoder::new(*compressed).read_to_end(&mut body);
                let hash = stack_kube::hex::upper(&Sha512::digest(&body)[..32]);
                Document { path, body, hash }
            })
            .collect()
    })
}

/// Group-version paths (`api/v1`, `apis/apps/v1`) of everything served.
fn group_versions(registry: &Registry) -> Vec<String> {
    let mut paths: Vec<String> = registry
        .types()
        .iter()
        .map(|t| {
            if t.group.is_empty() {
                format!("api/{}", t.version)
            } else {
                format!("apis/{}/{}", t.group, t.version)
            }
        })
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// A minimal document for a group-version we have no upstream document
/// for: its PATCH operations with the `fieldValidation` parameter (so
/// kubectl leaves validation to the server) and permissive schemas.
fn generated_document(registry: &Registry, path: &str) -> Option<Vec<u8>> {
    let types: Vec<&ResourceType> = registry
        .types()
        .iter()
        .filter(|t| {
            let own = if t.group.is_empty() {
                format!("api/{}", t.version)
            } else {
                format!("apis/{}/{}", t.group, t.version)
            };
            own == path
        })
        .collect();
    if types.is_empty() {
        return None;
    }
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for t in types {
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        let scope = if t.namespaced {
            "namespaces/{namespace}/"
        } else {
            ""
        };
        let operation = json!({"patch": {
            "operationId": format!("patch{}", t.kind),
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk,
            "parameters": [
                {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}},
            ],
            "responses": {"200": {"description": "OK"}},
        }});
        paths.insert(format!("/{path}/{scope}{}/{{name}}", t.plural), operation);
        let schema_name = format!(
            "{}.{}.{}",
            if t.group.is_empty() { "core" } else { &t.group },
            t.version,
            t.kind
        );
        schemas.insert(
            schema_name,
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true,
            "x-kubernetes-group-version-kind": [gvk]}),
        );
    }
    let document = json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths, "components": {"schemas": schemas}});
    serde_json::to_vec(&document).ok()
}

pub fn openapi_index(registry: &Registry) -> Value {
    let mut paths = serde_json::Map::new();
    for path in group_versions(registry) {
        let hash = match documents().iter().find(|d| d.path == path) {
            Some(document) => document.hash.clone(),
            None => generated_document(registry, &path)
                .map(|body| stack_kube::hex::upper(&Sha512::digest(&body)[..32]))
                .unwrap_or_default(),
        };
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
        );
    }
    json!({"paths": paths})
}

pub fn openapi_document(registry: &Registry, path: &str) -> Option<Vec<u8>> {
    match documents().iter().find(|d| d.path == path) {
        Some(document) => Some(document.body.clone()),
        None => generated_document(registry, path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregated_negotiation_is_exact() {
        assert!(wants_aggregated(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
        ));
        assert!(wants_aggregated(
            "application/json;as=APIGroupDiscoveryList;v=v2;g=apidiscovery.k8s.io"
        ));
        assert!(!wants_aggregated(
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
        ));
        assert!(!wants_aggregated("application/json"));
    }

    #[test]
    fn openapi_documents_decompress() {
        let registry = Registry::default();
        let document: Value =
            serde_json::from_slice(&openapi_document(&registry, "apis/apps/v1").unwrap()).unwrap();
        assert!(document["paths"].is_object());
        let generated: Value = serde_json::from_slice(
            &openapi_document(&registry, "apis/networking.k8s.io/v1").unwrap(),
        )
        .unwrap();
        let path = "/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/{name}";
        assert!(generated["paths"][path]["patch"].is_object());
        assert!(openapi_index(&registry)["paths"]["apis/rbac.authorization.k8s.io/v1"].is_object());
    }
}

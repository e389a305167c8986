//! HTTP in, Kubernetes semantics out: routing of `/api` and `/apis` paths,
//! query parameters, content types, and the mapping of each verb onto the
//! store (`write` for writes, `watch` for watches). Fault injection and
//! request metrics happen here too.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use rand::Rng as _;
use serde_json::{Value, json};

use crate::discovery;
use crate::request::{Query, Request, Route};
use crate::resources::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::Store;
use crate::write::{self, DeleteOptions};
use crate::{Inner, ResponseBody, watch};

pub fn full(
    status: u16,
    content_type: &str,
    body: impl Into<Bytes>,
) -> http::Response<ResponseBody> {
    http::Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, content_type)
        .body(
            Full::new(body.into())
                .map_err(|never| match never {})
                .boxed(),
        )
        .unwrap_or_default()
}

pub fn json_response(status: u16, value: &Value) -> http::Response<ResponseBody> {
    full(
        status,
        "application/json",
        serde_json::to_vec(value).unwrap_or_default(),
    )
}

/// A write's answer: the object it stored, as the store serialised it.
fn stored_response(
    store: &Store,
    status: u16,
    object: &Arc<Value>,
) -> http::Response<ResponseBody> {
    full(status, "application/json", store.json_of(object))
}

fn error_response(error: &ApiError) -> http::Response<ResponseBody> {
    let mut response = json_response(error.code, &error.status());
    if let Some(seconds) = error.retry_after
        && let Ok(value) = seconds.to_string().parse()
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn not_found_text() -> http::Response<ResponseBody> {
    full(404, "text/plain; charset=utf-8", "404 page not found")
}

/// What the real server answers under a group it serves for a path it does
/// not (another version, resource or subresource, or a namespaced path of
/// a cluster-scoped resource): a NotFound Status, not the plain text of an
/// unknown group (or of a custom resource's group).
fn not_found_in_group(inner: &Inner, group: &str) -> http::Response<ResponseBody> {
    let served = group.is_empty()
        || inner
            .store()
            .registry
            .types()
            .iter()
            .any(|t| t.group == group && t.built_in());
    if !served {
        return not_found_text();
    }
    error_response(&ApiError::not_found_path())
}

/// Whether a resource has this subresource.
fn has_subresource(resource: &ResourceType, subresource: &str) -> bool {
    let core = resource.group.is_empty();
    match subresource {
        "status" => resource.status,
        "scale" => resource.scale,
        "log"
        | "eviction"
        | "binding"
        | "ephemeralcontainers"
        | "exec"
        | "attach"
        | "portforward" => core && resource.kind == "Pod",
        "finalize" => core && resource.kind == "Namespace",
        _ => false,
    }
}

fn route(inner: &Inner, group: &str, version: &str, rest: &[&str]) -> Option<Route> {
    let store = inner.store();
    let registry = &store.registry;
    let find = |plural: &str| registry.find(group, version, plural).cloned();
    match rest {
        ["namespaces", namespace, plural, tail @ ..]
            if find(plural).is_some_and(|r| r.namespaced) =>
        {
            let resource = find(plural)?;
            match tail {
                [] => Some(Route::Collection {
                    resource,
                    namespace: Some((*namespace).to_string()),
                }),
                [name] => Some(Route::Object {
                    resource,
                    namespace: (*namespace).to_string(),
                    name: (*name).to_string(),
                    subresource: None,
                }),
                [name, sub] => Some(Route::Object {
                    resource,
                    namespace: (*namespace).to_string(),
                    name: (*name).to_string(),
                    subresource: Some((*sub).to_string()),
                }),
                _ => None,
            }
        }
        [plural] => Some(Route::Collection {
            resource: find(plural)?,
            namespace: None,
        }),
        [plural, name] => {
            let resource = find(plural)?;
            (!resource.namespaced).then(|| Route::Object {
                resource,
                namespace: String::new(),
                name: (*name).to_string(),
                subresource: None,
            })
        }
        [plural, name, sub] => {
            let resource = find(plural)?;
            (!resource.namespaced).then(|| Route::Object {
                resource,
                namespace: String::new(),
                name: (*name).to_string(),
                subresource: Some((*sub).to_string()),
            })
        }
        _ => None,
    }
}

pub async fn handle(
    inner: &Arc<Inner>,
    request: http::Request<Bytes>,
) -> http::Response<ResponseBody> {
    if !inner.config.latency.is_zero() {
        tokio::time::sleep(inner.config.latency).await;
    }
    if std::env::var_os("STACK_SIMULATOR_TRACE").is_some() {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        eprintln!(
            "simulator: {} {} ({content_type})",
            request.method(),
            request.uri()
        );
    }
    let path = request.uri().path().trim_end_matches('/').to_string();
    let query = Query::parse(request.uri().query());
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    match path.as_str() {
        "/healthz" | "/livez" | "/readyz" => return full(200, "text/plain; charset=utf-8", "ok"),
        "/metrics" => return full(200, "text/plain; version=0.0.4", metrics_text(inner)),
        "/version" => return json_response(200, &discovery::version()),
        _ => {}
    }
    if let Some(response) = inject_fault(inner, &path) {
        return response;
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["openapi", "v3"] => json_response(200, &discovery::openapi_index(&inner.store().registry)),
        ["openapi", "v3", rest @ ..] => {
            match discovery::openapi_document(&inner.store().registry, &rest.join("/")) {
                Some(body) => full(200, "application/json", body),
                None => not_found_text(),
            }
        }
        ["api"] => discovery_response(&accept, true, inner),
        ["apis"] => discovery_response(&accept, false, inner),
        ["api", "v1"] => listing(discovery::resource_list(&inner.store().registry, "", "v1")),
        ["apis", group] => listing(discovery::api_group(&inner.store().registry, group)),
        ["apis", group, version] => {
            let document = discovery::resource_list(&inner.store().registry, group, version);
            match document {
                Some(document) => json_response(200, &document),
                None => not_found_in_group(inner, group),
            }
        }
        ["api", "v1", rest @ ..] => {
            resource_request(inner, "", "v1", rest, &request, &query, &accept)
        }
        ["apis", group, version, rest @ ..] => {
            let (group, version) = ((*group).to_string(), (*version).to_string());
            resource_request(inner, &group, &version, rest, &request, &query, &accept)
        }
        _ => not_found_text(),
    }
}

fn listing(document: Option<Value>) -> http::Response<ResponseBody> {
    document.map_or_else(not_found_text, |d| json_response(200, &d))
}

fn discovery_response(accept: &str, core: bool, inner: &Inner) -> http::Response<ResponseBody> {
    let store = inner.store();
    let mut response = if discovery::wants_aggregated(accept) {
        full(
            200,
            discovery::AGGREGATED_V2,
            serde_json::to_vec(&discovery::aggregated(&store.registry, core)).unwrap_or_default(),
        )
    } else if core {
        json_response(200, &discovery::api_versions())
    } else {
        json_response(200, &discovery::api_group_list(&store.registry))
    };
    response
        .headers_mut()
        .insert(header::VARY, http::HeaderValue::from_static("Accept"));
    response
}

fn inject_fault(inner: &Inner, path: &str) -> Option<http::Response<ResponseBody>> {
    if inner.config.fault_rate <= 0.0 || !(path.starts_with("/api/") || path.starts_with("/apis/"))
    {
        return None;
    }
    let mut rng = inner
        .rng
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !rng.random_bool(inner.config.fault_rate.clamp(0.0, 1.0)) {
        return None;
    }
    *inner
        .metrics
        .faults
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
    let error = if rng.random_bool(0.5) {
        ApiError::too_many_requests(1)
    } else {
        ApiError::internal("injected fault")
    };
    Some(error_response(&error))
}

fn verb_of(method: &Method, route: &Route, query: &Query, content_type: &str) -> &'static str {
    match (method, route) {
        (&Method::GET, Route::Collection { .. }) if query.flag("watch") => "watch",
        (&Method::GET, Route::Collection { .. }) => "list",
        (&Method::GET, Route::Object { .. }) => "get",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) if content_type.starts_with("application/apply-patch") => "apply",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, Route::Collection { .. }) => "deletecollection",
        (&Method::DELETE, _) => "delete",
        _ => "other",
    }
}

pub fn is_mutating(verb: &str) -> bool {
    matches!(
        verb,
        "create" | "update" | "apply" | "patch" | "delete" | "deletecollection"
    )
}

fn resource_request(
    inner: &Arc<Inner>,
    group: &str,
    version: &str,
    rest: &[&str],
    request: &http::Request<Bytes>,
    query: &Query,
    accept: &str,
) -> http::Response<ResponseBody> {
    let Some(route) = route(inner, group, version, rest) else {
        return not_found_in_group(inner, group);
    };
    if let Route::Object {
        resource,
        subresource: Some(subresource),
        ..
    } = &route
        && !has_subresource(resource, subresource)
    {
        return error_response(&ApiError::not_found_path());
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let verb = verb_of(request.method(), &route, query, &content_type);
    let resource = match &route {
        Route::Collection { resource, .. } | Route::Object { resource, .. } => {
            resource.plural.clone()
        }
    };
    let dry_run = query.get("dryRun").is_some();
    {
        let mut requests = inner
            .metrics
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *requests
            .entry((verb.to_string(), resource, dry_run))
            .or_default() += 1;
    }
    if verb == "watch" {
        return match watch::start(inner, &route, query) {
            Ok(body) => http::Response::builder()
                .status(200)
                .header(header::CONTENT_TYPE, "application/json")
                .body(body)
                .unwrap_or_default(),
            Err(error) => error_response(&error),
        };
    }
    if let Err(error) = check_options(request.method(), query) {
        return error_response(&error);
    }
    let result = dispatch(
        inner,
        &route,
        verb,
        request.body(),
        query,
        &content_type,
        accept,
    );
    match result {
        Ok(response) => response,
        Err(error) => error_response(&error),
    }
}

/// Query options of a write the real server refuses with 422 when they are
/// not among their values.
fn check_options(method: &Method, query: &Query) -> Result<(), ApiError> {
    let kind = match *method {
        Method::POST => "CreateOptions",
        Method::PUT => "UpdateOptions",
        Method::PATCH => "PatchOptions",
        Method::DELETE => "DeleteOptions",
        _ => return Ok(()),
    };
    if let Some(dry_run) = query.get("dryRun").filter(|d| *d != "All") {
        let shown = format!("[{}]", json!(dry_run));
        return Err(ApiError::unsupported_option(
            kind, "dryRun", &shown, "\"All\"",
        ));
    }
    if let Some(validation) = query
        .get("fieldValidation")
        .filter(|v| !["", "Ignore", "Strict", "Warn"].contains(v))
        .filter(|_| kind != "DeleteOptions")
    {
        let supported = "\"\", \"Ignore\", \"Strict\", \"Warn\"";
        return Err(ApiError::unsupported_option(
            kind,
            "fieldValidation",
            &json!(validation).to_string(),
            supported,
        ));
    }
    if let Some(policy) = query
        .get("propagationPolicy")
        .filter(|p| !["Foreground", "Background", "Orphan"].contains(p))
        .filter(|_| kind == "DeleteOptions")
    {
        let supported = "\"Foreground\", \"Background\", \"Orphan\", \"nil\"";
        return Err(ApiError::unsupported_option(
            kind,
            "propagationPolicy",
            &json!(policy).to_string(),
            supported,
        ));
    }
    Ok(())
}

fn parse_body(body: &Bytes, content_type: &str) -> Result<Value, ApiError> {
    if content_type.contains("protobuf") || content_type.contains("cbor") {
        return Err(ApiError::unsupported_media_type(
            content_type,
            "application/json, application/yaml",
        ));
    }
    if content_type.starts_with("application/apply-patch") {
        // JSON is YAML; clients (kube-rs, kubectl) send JSON, which parses faster as such.
        if body.trim_ascii_start().starts_with(b"{")
            && let Ok(value) = serde_json::from_slice(body)
        {
            return Ok(value);
        }
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
        return serde_saphyr::from_str::<Value>(text).map_err(|e| {
            ApiError::bad_request(format!("error decoding YAML: {}", e.without_snippet()))
        });
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

/// Check a request's field manager and dry run, and serve its verb.
fn dispatch(
    inner: &Arc<Inner>,
    route: &Route,
    verb: &str,
    body: &Bytes,
    query: &Query,
    content_type: &str,
    accept: &str,
) -> Result<http::Response<ResponseBody>, ApiError> {
    if let Some(value) = query.get("dryRun")
        && value != "All"
    {
        return Err(ApiError::bad_request(format!(
            "dryRun: Unsupported value: \"{value}\": supported values: \"All\""
        )));
    }
    let manager = field_manager(query)?;
    let dry_run = query.get("dryRun").is_some();
    match route {
        Route::Collection {
            resource,
            namespace,
        } => match verb {
            "list" => list_response(inner, resource, namespace.as_deref(), query, accept),
            "create" => {
                let namespace = match (resource.namespaced, namespace) {
                    (true, Some(namespace)) => namespace.as_str(),
                    (true, None) => return Err(ApiError::method_not_allowed()),
                    (false, _) => "",
                };
                let body = parse_body(body, content_type)?;
                create_object(inner, resource, namespace, body, manager, dry_run)
            }
            "deletecollection" => {
                let namespace = namespace.as_deref();
                delete_collection(inner, resource, namespace, query, manager, dry_run)
            }
            _ => Err(ApiError::method_not_allowed()),
        },
        Route::Object {
            resource,
            namespace,
            name,
            subresource,
        } => {
            let subresource = subresource.as_deref();
            if let Some(sub) = subresource
                && !(sub == "status" && resource.status
                    || sub == "log" && resource.kind == "Pod"
                    || sub == "finalize" && resource.kind == "Namespace"
                    || sub == "scale" && resource.scale)
            {
                return Err(ApiError::not_found(resource, name));
            }
            let request = Request {
                resource,
                namespace,
                name,
                manager,
                subresource,
                dry_run,
            };
            object_request(inner, &request, verb, body, query, content_type, accept)
        }
    }
}

/// The `fieldManager` a request names (empty if none), at most 128 bytes.
fn field_manager(query: &Query) -> Result<&str, ApiError> {
    let manager = query.get("fieldManager").unwrap_or_default();
    if manager.len() > 128 {
        return Err(ApiError::invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            "fieldManager",
            "FieldValueTooLong",
            "Too long: may not be more than 128 bytes",
        ));
    }
    Ok(manager)
}

/// A LIST's answer: the listing, or for `kubectl get` a table of it.
fn list_response(
    inner: &Arc<Inner>,
    resource: &ResourceType,
    namespace: Option<&str>,
    query: &Query,
    accept: &str,
) -> Result<http::Response<ResponseBody>, ApiError> {
    let store = inner.store();
    let list = list(&store, resource, namespace, query)?;
    if accept.contains("as=Table") {
        let mut table = table(resource, &list.items);
        table["metadata"] = list.metadata;
        return Ok(json_response(200, &table));
    }
    Ok(full(
        200,
        "application/json",
        serde_json::to_vec(&list).unwrap_or_default(),
    ))
}

/// Create an object in a collection, named by its body or after its `generateName`.
fn create_object(
    inner: &Arc<Inner>,
    resource: &ResourceType,
    namespace: &str,
    mut body: Value,
    manager: &str,
    dry_run: bool,
) -> Result<http::Response<ResponseBody>, ApiError> {
    let name = body["metadata"]["name"]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            body["metadata"]["generateName"]
                .as_str()
                .map(|prefix| format!("{prefix}{}", random_suffix()))
        });
    let Some(name) = name else {
        return Err(ApiError::invalid(
            &resource.kind,
            &resource.group,
            "",
            "metadata.name",
            "FieldValueRequired",
            "Required value: name or generateName is required",
        ));
    };
    body["metadata"]["name"] = json!(name);
    let manager = if manager.is_empty() {
        "unknown"
    } else {
        manager
    };
    let request = Request {
        resource,
        namespace,
        name: &name,
        manager,
        subresource: None,
        dry_run,
    };
    let mut store = inner.store();
    let (code, object) = write::create(&mut store, &request, body)?;
    Ok(stored_response(&store, code, &object))
}

/// Delete the selected objects of a collection, answering with the list of those deleted.
fn delete_collection(
    inner: &Arc<Inner>,
    resource: &ResourceType,
    namespace: Option<&str>,
    query: &Query,
    manager: &str,
    dry_run: bool,
) -> Result<http::Response<ResponseBody>, ApiError> {
    let mut store = inner.store();
    let names: Vec<(String, String)> = list(&store, resource, namespace, query)?
        .items
        .into_iter()
        .map(crate::store::object_id)
        .collect();
    let mut deleted = Vec::new();
    for (namespace, name) in names {
        let request = Request {
            resource,
            namespace: &namespace,
            name: &name,
            manager,
            subresource: None,
            dry_run,
        };
        if let Ok((_, object)) = write::delete(&mut store, &request, &DeleteOptions::default()) {
            deleted.push(Value::clone(&object));
        }
    }
    Ok(json_response(
        200,
        &json!({"kind": format!("{}List", resource.kind), "apiVersion": resource.api_version(), "metadata": {}, "items": deleted}),
    ))
}

/// Serve a verb on one object or one of its subresources.
fn object_request(
    inner: &Arc<Inner>,
    request: &Request,
    verb: &str,
    body: &Bytes,
    query: &Query,
    content_type: &str,
    accept: &str,
) -> Result<http::Response<ResponseBody>, ApiError> {
    let mut store = inner.store();
    match (verb, request.subresource) {
        ("get", subresource) => get_object(&store, request, subresource, accept),
        ("update", Some("finalize")) => {
            let body = parse_body(body, content_type)?;
            finalize(&mut store, request, &body)
        }
        ("update", _) => {
            let body = parse_body(body, content_type)?;
            let (code, object) = write::update(&mut store, &with_manager(request), body)?;
            Ok(stored_response(&store, code, &object))
        }
        ("apply", _) => {
            let body = parse_body(body, content_type)?;
            let (code, object) = write::apply(&mut store, request, body, query.flag("force"))?;
            Ok(stored_response(&store, code, &object))
        }
        ("patch", _) => patch_object(&mut store, request, body, query, content_type),
        ("delete", _) => delete_object(&mut store, request, body, query),
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// A GET of an object, or of its log or scale subresource.
fn get_object(
    store: &Store,
    request: &Request,
    subresource: Option<&str>,
    accept: &str,
) -> Result<http::Response<ResponseBody>, ApiError> {
    let resource = request.resource;
    let object = store
        .get(&resource.key(), request.namespace, request.name)
        .ok_or_else(|| ApiError::not_found(resource, request.name))?;
    match subresource {
        Some("log") => Ok(full(200, "text/plain", pod_log(object))),
        Some("scale") => Ok(json_response(200, &scale_of(object))),
        _ if accept.contains("as=Table") => Ok(json_response(200, &table(resource, &[object]))),
        _ => Ok(json_response(200, object)),
    }
}

/// Set a namespace's `spec.finalizers` (the finalize subresource), outside the write pipeline.
fn finalize(
    store: &mut Store,
    request: &Request,
    body: &Value,
) -> Result<http::Response<ResponseBody>, ApiError> {
    let resource = request.resource;
    let mut live = store
        .get(&resource.key(), request.namespace, request.name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(resource, request.name))?;
    live["spec"]["finalizers"] = body["spec"]["finalizers"].clone();
    let stored = store.put(&resource.key(), live, crate::store::Action::Modified);
    Ok(json_response(200, &stored))
}

/// A non-apply PATCH: JSON, merge or strategic merge.
fn patch_object(
    store: &mut Store,
    request: &Request,
    body: &Bytes,
    query: &Query,
    content_type: &str,
) -> Result<http::Response<ResponseBody>, ApiError> {
    if query.get("force").is_some() {
        return Err(ApiError::invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            "force",
            "FieldValueForbidden",
            "Forbidden: may not be specified for non-apply patch",
        ));
    }
    let known = [
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
    ];
    if !known.contains(&content_type) {
        return Err(ApiError::unsupported_patch_type());
    }
    let body = parse_body(body, content_type)?;
    let (code, object) = write::patch(store, &with_manager(request), content_type, &body)?;
    Ok(stored_response(store, code, &object))
}

/// A DELETE of an object, with the options of its body or query.
fn delete_object(
    store: &mut Store,
    request: &Request,
    body: &Bytes,
    query: &Query,
) -> Result<http::Response<ResponseBody>, ApiError> {
    let options: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body).unwrap_or(json!({}))
    };
    let options = DeleteOptions {
        propagation: options["propagationPolicy"]
            .as_str()
            .or(query.get("propagationPolicy"))
            .map(str::to_string),
        uid: options["preconditions"]["uid"].as_str().map(str::to_string),
        resource_version: options["preconditions"]["resourceVersion"]
            .as_str()
            .map(str::to_string),
    };
    let dry_run = request.dry_run || body_dry_run(body);
    let request = Request {
        dry_run,
        ..request.clone()
    };
    let (code, object) = write::delete(store, &request, &options)?;
    Ok(json_response(code, &object))
}

/// Non-apply writers without a `fieldManager` are recorded as `unknown`.
fn with_manager<'a>(request: &Request<'a>) -> Request<'a> {
    let manager = if request.manager.is_empty() {
        "unknown"
    } else {
        request.manager
    };
    Request {
        manager,
        ..request.clone()
    }
}

fn body_dry_run(body: &Bytes) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|options| {
        options["dryRun"]
            .as_array()
            .is_some_and(|v| v.iter().any(|x| x == "All"))
    })
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// LIST with selectors and `limit`/`continue` pagination.
/// A LIST's answer, borrowing the stored objects: serialised straight
/// from the store, never copied.
pub struct Listing<'a> {
    kind: String,
    api_version: String,
    metadata: Value,
    items: Vec<&'a Value>,
    /// A built-in kind's list carries `apiVersion` and `kind` once, on the
    /// list, not on its items (a list of custom resources carries them on
    /// each), as a real API server's does.
    built_in: bool,
}

impl serde::Serialize for Listing<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("kind", &self.kind)?;
        map.serialize_entry("apiVersion", &self.api_version)?;
        map.serialize_entry("metadata", &self.metadata)?;
        let items: Vec<Item> = self
            .items
            .iter()
            .map(|object| Item(object, self.built_in))
            .collect();
        map.serialize_entry("items", &items)?;
        map.end()
    }
}

/// One item of a listing: the object, without its type when the list has it.
struct Item<'a>(&'a Value, bool);

impl serde::Serialize for Item<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let Some(fields) = self.0.as_object().filter(|_| self.1) else {
            return self.0.serialize(serializer);
        };
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in fields {
            if key != "apiVersion" && key != "kind" {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

pub fn list<'a>(
    store: &'a crate::store::Store,
    resource: &ResourceType,
    namespace: Option<&'a str>,
    query: &Query,
) -> Result<Listing<'a>, ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or_default())?;
    let fields = FieldSelector::parse(
        query.get("fieldSelector").unwrap_or_default(),
        &resource.kind,
    )?;
    let start_after: Option<(String, String)> = match query.get("continue") {
        Some(token) => Some(decode_continue(token).ok_or_else(|| {
            ApiError::bad_request("invalid continue token: continue key is not valid")
        })?),
        None => None,
    };
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let built_in = resource.built_in();
    let mut items = Vec::new();
    let mut next = None;
    let mut remaining = 0;
    let key = resource.key();
    let candidates: Box<dyn Iterator<Item = &Value>> = match labels.equality() {
        Some((label, value)) => Box::new(store.list_labelled(&key, namespace, label, value)),
        None => Box::new(store.list(&key, namespace)),
    };
    for object in candidates {
        let id = crate::store::object_id(object);
        if start_after.as_ref().is_some_and(|after| &id <= after) {
            continue;
        }
        if !labels.matches(object["metadata"]["labels"].as_object()) || !fields.matches(object) {
            continue;
        }
        if limit.is_some_and(|limit| items.len() >= limit) {
            if next.is_none() {
                next =
                    crate::store::object_id(items.last().copied().unwrap_or(&Value::Null)).into();
            }
            remaining += 1;
            continue;
        }
        items.push(object);
    }
    let mut metadata = json!({"resourceVersion": store.revision.to_string()});
    if let Some((namespace, name)) = next {
        metadata["continue"] = json!(encode_continue(&namespace, &name));
        // The real server counts what is left only when nothing filters.
        let filtered = query.get("labelSelector").is_some_and(|s| !s.is_empty())
            || query.get("fieldSelector").is_some_and(|s| !s.is_empty());
        if !filtered {
            metadata["remainingItemCount"] = json!(remaining);
        }
    }
    Ok(Listing {
        kind: format!("{}List", resource.kind),
        api_version: resource.api_version(),
        metadata,
        items,
        built_in,
    })
}

fn encode_continue(namespace: &str, name: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{namespace}\u{0}{name}"))
}

fn decode_continue(token: &str) -> Option<(String, String)> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (namespace, name) = text.split_once('\u{0}')?;
    Some((namespace.to_string(), name.to_string()))
}

/// The kind-specific cells of a table row.
type Cells = fn(&Value) -> Vec<Value>;

/// What `kubectl get` prints: `Name`, kind-specific columns, `Age`.
/// A column of a table.
fn column(name: &str, kind: &str) -> Value {
    json!({"name": name, "type": kind, "format": if name == "Name" { "name" } else { "" }, "description": name, "priority": 0})
}

/// The kind-specific columns of `kubectl get`, and how a row fills them.
fn kind_columns(kind: &str) -> (Vec<Value>, Cells) {
    match kind {
        "Deployment" => (
            vec![
                column("Ready", "string"),
                column("Up-to-date", "integer"),
                column("Available", "integer"),
            ],
            |o| {
                vec![
                    json!(format!(
                        "{}/{}",
                        o["status"]["readyReplicas"].as_u64().unwrap_or(0),
                        o["spec"]["replicas"].as_u64().unwrap_or(1)
                    )),
                    json!(o["status"]["updatedReplicas"].as_u64().unwrap_or(0)),
                    json!(o["status"]["availableReplicas"].as_u64().unwrap_or(0)),
                ]
            },
        ),
        "Pod" => (
            vec![
                column("Ready", "string"),
                column("Status", "string"),
                column("Restarts", "string"),
            ],
            |o| {
                let statuses = o["status"]["containerStatuses"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let ready = statuses.iter().filter(|s| s["ready"] == true).count();
                let restarts: u64 = statuses
                    .iter()
                    .filter_map(|s| s["restartCount"].as_u64())
                    .sum();
                let waiting = statuses
                    .iter()
                    .find_map(|s| s["state"]["waiting"]["reason"].as_str().map(str::to_string));
                vec![
                    json!(format!("{ready}/{}", statuses.len().max(1))),
                    json!(waiting.unwrap_or_else(|| {
                        o["status"]["phase"]
                            .as_str()
                            .unwrap_or("Pending")
                            .to_string()
                    })),
                    json!(restarts.to_string()),
                ]
            },
        ),
        "Namespace" => (vec![column("Status", "string")], |o| {
            vec![o["status"]["phase"].clone()]
        }),
        "Job" => (
            vec![column("Status", "string"), column("Completions", "string")],
            |o| {
                let done = o["status"]["conditions"].as_array().and_then(|c| {
                    c.iter()
                        .find(|c| c["status"] == "True")
                        .and_then(|c| c["type"].as_str())
                        .map(str::to_string)
                });
                vec![
                    json!(done.unwrap_or_else(|| "Running".into())),
                    json!(format!(
                        "{}/{}",
                        o["status"]["succeeded"].as_u64().unwrap_or(0),
                        o["spec"]["completions"].as_u64().unwrap_or(1)
                    )),
                ]
            },
        ),
        _ => (Vec::new(), |_| Vec::new()),
    }
}

fn table(resource: &ResourceType, items: &[&Value]) -> Value {
    let (extra, cells) = kind_columns(&resource.kind);
    let mut columns = vec![column("Name", "string")];
    columns.extend(extra);
    columns.push(column("Age", "string"));
    let rows: Vec<Value> = items
        .iter()
        .map(|object| {
            let mut row = vec![object["metadata"]["name"].clone()];
            row.extend(cells(object));
            row.push(json!(age(object["metadata"]["creationTimestamp"].as_str().unwrap_or_default())));
            json!({"cells": row, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": object["metadata"]}})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": columns, "rows": rows})
}

fn age(timestamp: &str) -> String {
    let Ok(created) = timestamp.parse::<jiff::Timestamp>() else {
        return "<unknown>".into();
    };
    let seconds = (jiff::Timestamp::now().as_second() - created.as_second()).max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn scale_of(object: &Value) -> Value {
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": object["metadata"]["name"], "namespace": object["metadata"]["namespace"], "uid": object["metadata"]["uid"], "resourceVersion": object["metadata"]["resourceVersion"]},
        "spec": {"replicas": object["spec"]["replicas"]},
        "status": {"replicas": object["status"]["replicas"].as_u64().unwrap_or(0)}})
}

/// A pod's simulated log: `sim.stack.dev/log` from its annotations, else a
/// line saying how it ended.
fn pod_log(pod: &Value) -> String {
    if let Some(log) = pod["metadata"]["annotations"]["sim.stack.dev/log"].as_str() {
        return format!("{log}\n");
    }
    let waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"].as_str();
    let terminated = &pod["status"]["containerStatuses"][0]["state"]["terminated"];
    match (waiting, terminated["reason"].as_str()) {
        (Some(reason), _) => format!("simulated container is waiting: {reason}\n"),
        (_, Some(reason)) => format!(
            "simulated container exited with code {}: {reason}\n",
            terminated["exitCode"].as_i64().unwrap_or(0)
        ),
        _ => "simulated container is running\n".into(),
    }
}

pub fn metrics_text(inner: &Inner) -> String {
    let requests = inner
        .metrics
        .requests
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut out = String::from(
        "# HELP stack_simulator_requests_total Requests served, by verb and resource.\n# TYPE stack_simulator_requests_total counter\n",
    );
    for ((verb, resource, dry_run), count) in requests.iter() {
        out.push_str(&format!("stack_simulator_requests_total{{verb=\"{verb}\",resource=\"{resource}\",dry_run=\"{dry_run}\"}} {count}\n"));
    }
    let mutating: u64 = requests
        .iter()
        .filter(|((verb, _, dry), _)| is_mutating(verb) && !dry)
        .map(|(_, c)| c)
        .sum();
    let faults = *inner
        .metrics
        .faults
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    out.push_str(&format!("# TYPE stack_simulator_mutating_requests_total counter\nstack_simulator_mutating_requests_total {mutating}\n"));
    out.push_str(&format!("# TYPE stack_simulator_injected_faults_total counter\nstack_simulator_injected_faults_total {faults}\n"));
    let store = inner.store();
    out.push_str(&format!(
        "# TYPE stack_simulator_resource_version gauge\nstack_simulator_resource_version {}\n",
        store.revision
    ));
    out
}

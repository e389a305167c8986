//! API errors as the real server words them: a `Status` body with `reason`,
//! `code`, `message` and `details` (kube-api-subset.md §4).

use serde_json::{Value, json};

use crate::resources::ResourceType;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Value,
    /// `Retry-After` seconds, for 429s.
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>, details: Value) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details,
            retry_after: None,
        }
    }

    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        // The real server leaves an empty reason out (its 500s have none).
        if self.reason.is_empty()
            && let Some(map) = status.as_object_mut()
        {
            map.shift_remove("reason");
        }
        if !self.details.is_null() {
            status["details"] = self.details.clone();
        }
        status
    }

    pub fn not_found(resource: &ResourceType, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", resource.qualified()),
            details(resource, name),
        )
    }

    /// A path the server does not serve under a group it serves.
    pub fn not_found_path() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
            Value::Null,
        )
    }

    pub fn namespace_not_found(namespace: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("namespaces \"{namespace}\" not found"),
            json!({"name": namespace, "kind": "namespaces"}),
        )
    }

    /// A create (of `resource` named `name`) into a namespace being deleted.
    pub fn namespace_terminating(resource: &ResourceType, name: &str, namespace: &str) -> Self {
        let cause = format!(
            "unable to create new content in namespace {namespace} because it is being terminated"
        );
        let mut details = details(resource, name);
        details["causes"] = json!([
            {"reason": "NamespaceTerminating", "message": cause, "field": "metadata.namespace"}
        ]);
        Self::new(
            403,
            "Forbidden",
            format!("{} \"{name}\" is forbidden: {cause}", resource.qualified()),
            details,
        )
    }

    /// A delete whose UID precondition names another object.
    pub fn uid_precondition(resource: &ResourceType, name: &str, wanted: &str, live: &str) -> Self {
        let mut details = json!({"name": name, "kind": resource.kind});
        if !resource.group.is_empty() {
            details["group"] = json!(resource.group);
        }
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the UID in the precondition ({wanted}) does not match the UID in record ({live}). The object might have been deleted and then recreated",
                resource.kind
            ),
            details,
        )
    }

    /// A query option out of its allowed values (`kind`: CreateOptions,
    /// UpdateOptions, PatchOptions, DeleteOptions).
    pub fn unsupported_option(kind: &str, field: &str, shown: &str, supported: &str) -> Self {
        let text = format!("Unsupported value: {shown}: supported values: {supported}");
        Self::new(
            422,
            "Invalid",
            format!("{kind}.meta.k8s.io \"\" is invalid: {field}: {text}"),
            json!({"group": "meta.k8s.io", "kind": kind, "causes": [
                {"reason": "FieldValueNotSupported", "message": text, "field": field}
            ]}),
        )
    }

    /// A PATCH whose content type is no patch type the server knows.
    pub fn unsupported_patch_type() -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            "415: Unsupported Media Type",
            json!({}),
        )
    }

    /// A JSON patch that cannot be applied (a failed `test`, a missing path).
    pub fn json_patch_failed() -> Self {
        Self::new(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
            json!({}),
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message, Value::Null)
    }

    pub fn already_exists(resource: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", resource.qualified()),
            details(resource, name),
        )
    }

    pub fn conflict(resource: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                resource.qualified()
            ),
            details(resource, name),
        )
    }

    /// Server-side apply conflicts: `(manager description, field path)`.
    pub fn apply_conflicts(conflicts: &[(String, String)]) -> Self {
        let message = if let [(manager, path)] = conflicts {
            format!("Apply failed with 1 conflict: conflict with {manager}: {path}")
        } else {
            let mut message = format!("Apply failed with {} conflicts: ", conflicts.len());
            let mut managers: Vec<&String> = conflicts.iter().map(|(m, _)| m).collect();
            managers.sort();
            managers.dedup();
            let blocks: Vec<String> = managers
                .iter()
                .map(|manager| {
                    let paths: Vec<String> = conflicts
                        .iter()
                        .filter(|(m, _)| m == *manager)
                        .map(|(_, path)| format!("- {path}"))
                        .collect();
                    format!("conflicts with {manager}:\n{}", paths.join("\n"))
                })
                .collect();
            message.push_str(&blocks.join("\n"));
            message
        };
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(manager, path)| {
                json!({"reason": "FieldManagerConflict", "message": format!("conflict with {manager}"), "field": path})
            })
            .collect();
        Self::new(409, "Conflict", message, json!({"causes": causes}))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message, Value::Null)
    }

    /// 422 with one cause.
    pub fn invalid(
        kind: &str,
        group: &str,
        name: &str,
        field: &str,
        reason: &'static str,
        text: &str,
    ) -> Self {
        Self::invalid_causes(kind, group, name, &[(field.into(), reason, text.into())])
    }

    /// 422 with every cause found: `(field, reason, message)`.
    pub fn invalid_causes(
        kind: &str,
        group: &str,
        name: &str,
        causes: &[(String, &'static str, String)],
    ) -> Self {
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let described: Vec<String> = causes
            .iter()
            .map(|(field, _, text)| format!("{field}: {text}"))
            .collect();
        let described = match described.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let mut details = json!({"kind": kind, "causes": causes
            .iter()
            .map(|(field, reason, text)| json!({"reason": reason, "message": text, "field": field}))
            .collect::<Vec<_>>()});
        if !name.is_empty() {
            details["name"] = json!(name);
        }
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        Self::new(
            422,
            "Invalid",
            format!("{qualified} \"{name}\" is invalid: {described}"),
            details,
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
            Value::Null,
        )
    }

    /// A body of a media type the simulator does not read; `accepted`
    /// lists those it does for the request (a real API server also reads
    /// protobuf and CBOR bodies; the simulator does not).
    pub fn unsupported_media_type(content_type: &str, accepted: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format ({content_type}) - accepted media types include: {accepted}"
            ),
            Value::Null,
        )
    }

    /// What a PATCH reads.
    pub const PATCH_TYPES: &str =
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml";

    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message, Value::Null)
    }

    pub fn too_many_requests(retry_after: u64) -> Self {
        let mut error = Self::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
            json!({"retryAfterSeconds": retry_after}),
        );
        error.retry_after = Some(retry_after);
        error
    }

    /// A 500 worded as is, without a reason.
    pub fn server_error(message: impl Into<String>) -> Self {
        Self::new(500, "", message, Value::Null)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
            Value::Null,
        )
    }
}

fn details(resource: &ResourceType, name: &str) -> Value {
    let mut details = json!({"name": name, "kind": resource.plural});
    if !resource.group.is_empty() {
        details["group"] = Value::String(resource.group.clone());
    }
    details
}

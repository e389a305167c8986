//! The body of `POST /api/v1/deploy`, read field by field so that a
//! missing or mistyped one is named.

use std::collections::BTreeMap;

use serde_json::Value;
use stack_core::load::values::SetValue;

/// How far a request's timestamp may be from the server's clock, and how
/// long a signed body is remembered (a replay within it is refused).
pub const WINDOW_SECONDS: i64 = 300;

#[derive(Debug, Clone)]
pub struct DeployRequest {
    pub team: String,
    pub environment: String,
    pub selector: Option<String>,
    /// `set`: value paths and values, as `--set` takes them.
    pub set: Vec<SetValue>,
    /// `resources`: raw Kubernetes objects.
    pub resources: Vec<Value>,
    pub repository: String,
    pub git_ref: String,
    pub timestamp: jiff::Timestamp,
}

/// What is wrong with a body: the field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

fn invalid(field: &str, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// The team a body names, before anything else is checked (its key
/// checks the signature).
pub fn team_of(body: &Value) -> Result<String, Invalid> {
    text(body, "team")
}

fn text(body: &Value, field: &str) -> Result<String, Invalid> {
    match &body[field] {
        Value::String(text) if !text.trim().is_empty() => Ok(text.clone()),
        Value::Null => Err(invalid(field, format!("`{field}` is missing"))),
        _ => Err(invalid(
            field,
            format!("`{field}` must be a non-empty string"),
        )),
    }
}

/// Read a body that parsed as JSON.
pub fn parse(body: &Value) -> Result<DeployRequest, Invalid> {
    if !body.is_object() {
        return Err(invalid("", "the body must be a JSON object"));
    }
    let selector = match &body["selector"] {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        _ => {
            return Err(invalid(
                "selector",
                "`selector` must be a string: `name=web`",
            ));
        }
    };
    let set = match &body["set"] {
        Value::Null => Vec::new(),
        Value::Object(map) => map
            .iter()
            .map(|(path, value)| set_value(path, value))
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(invalid(
                "set",
                "`set` must be a map of value paths to values",
            ));
        }
    };
    let resources = match &body["resources"] {
        Value::Null => Vec::new(),
        Value::Array(items) if items.iter().all(Value::is_object) => items.clone(),
        _ => {
            return Err(invalid(
                "resources",
                "`resources` must be a list of Kubernetes objects",
            ));
        }
    };
    let (team, environment) = (team_of(body)?, text(body, "environment")?);
    let (repository, git_ref) = (text(body, "repository")?, text(body, "ref")?);
    let stamp = text(body, "timestamp")?;
    let timestamp = stamp.parse::<jiff::Timestamp>().map_err(|_| {
        invalid(
            "timestamp",
            "`timestamp` must be an RFC 3339 time: `2026-12-07T10:00:00Z`",
        )
    })?;
    Ok(DeployRequest {
        team,
        environment,
        selector,
        set,
        resources,
        repository,
        git_ref,
        timestamp,
    })
}

fn set_value(path: &str, value: &Value) -> Result<SetValue, Invalid> {
    SetValue::at(path, value.clone()).map_err(|e| invalid(&format!("set.{path}"), e.to_string()))
}

impl DeployRequest {
    /// Whether its timestamp is within the window of `now`.
    pub fn timely(&self, now: jiff::Timestamp) -> bool {
        (now.as_second() - self.timestamp.as_second()).abs() <= WINDOW_SECONDS
    }

    /// The request's `set`, as a map for the record.
    pub fn set_map(&self) -> BTreeMap<String, Value> {
        self.set
            .iter()
            .map(|s| (s.path_text(), s.value.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_missing_or_mistyped_field_is_named() {
        let good = json!({"team": "shop", "environment": "development", "repository": "acme/shop", "ref": "main", "timestamp": "2026-12-07T10:00:00Z", "set": {"images.web": "ghcr.io/acme/web:1.4.3"}});
        let parsed = super::parse(&good).unwrap();
        assert_eq!(parsed.set[0].path, ["images", "web"]);
        assert_eq!(parsed.set[0].value, "ghcr.io/acme/web:1.4.3");
        for field in ["team", "environment", "repository", "ref", "timestamp"] {
            let mut body = good.clone();
            body.as_object_mut().unwrap().remove(field);
            assert_eq!(super::parse(&body).unwrap_err().field, field);
        }
        for (field, value) in [
            ("set", json!([1])),
            ("selector", json!(3)),
            ("resources", json!("x")),
            ("timestamp", json!("yesterday")),
        ] {
            let mut body = good.clone();
            body[field] = value;
            assert_eq!(super::parse(&body).unwrap_err().field, field);
        }
    }
}

//! Label selectors (`k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`,
//! `k`, `!k`) and field selectors (`metadata.name`, `metadata.namespace`
//! and the kind-specific fields), as LIST and WATCH accept them.

use serde_json::Value;

use crate::status::ApiError;

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for term in split_terms(text) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            requirements.push(parse_requirement(term).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unable to parse requirement: invalid label selector: {term:?}"
                ))
            })?);
        }
        Ok(Self(requirements))
    }

    /// The first `key=value` requirement: the objects to look at are those
    /// carrying that label.
    pub fn equality(&self) -> Option<(&str, &str)> {
        self.0.iter().find_map(|requirement| match requirement {
            Requirement::Equals(key, value) => Some((key.as_str(), value.as_str())),
            _ => None,
        })
    }

    pub fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        let get = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.0.iter().all(|requirement| match requirement {
            Requirement::Equals(key, value) => get(key) == Some(value.as_str()),
            Requirement::NotEquals(key, value) => get(key) != Some(value.as_str()),
            Requirement::In(key, values) => get(key).is_some_and(|v| values.iter().any(|x| x == v)),
            Requirement::NotIn(key, values) => {
                !get(key).is_some_and(|v| values.iter().any(|x| x == v))
            }
            Requirement::Exists(key) => get(key).is_some(),
            Requirement::NotExists(key) => get(key).is_none(),
        })
    }
}

/// Split on commas that are not inside parentheses.
fn split_terms(text: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (index, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    terms.push(&text[start..]);
    terms
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 316
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_value(value: &str) -> bool {
    value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn parse_requirement(term: &str) -> Option<Requirement> {
    if let Some(key) = term.strip_prefix('!') {
        let key = key.trim();
        return valid_key(key).then(|| Requirement::NotExists(key.to_string()));
    }
    for (operator, negated) in [(" notin ", true), (" in ", false)] {
        if let Some((key, rest)) = term.split_once(operator) {
            let key = key.trim();
            let list = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
            let values: Vec<String> = list.split(',').map(|v| v.trim().to_string()).collect();
            if !valid_key(key) || !values.iter().all(|v| valid_value(v)) {
                return None;
            }
            return Some(if negated {
                Requirement::NotIn(key.to_string(), values)
            } else {
                Requirement::In(key.to_string(), values)
            });
        }
    }
    let pair = |operator: &str| {
        term.split_once(operator)
            .map(|(key, value)| (key.trim().to_string(), value.trim().to_string()))
    };
    if let Some((key, value)) = pair("!=") {
        return (valid_key(&key) && valid_value(&value))
            .then_some(Requirement::NotEquals(key, value));
    }
    if let Some((key, value)) = pair("==").or_else(|| pair("=")) {
        return (valid_key(&key) && valid_value(&value)).then_some(Requirement::Equals(key, value));
    }
    valid_key(term).then(|| Requirement::Exists(term.to_string()))
}

/// `field=value`, `field==value`, `field!=value`, comma = AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(Vec<(String, String, bool)>);

impl FieldSelector {
    pub fn parse(text: &str, kind: &str) -> Result<Self, ApiError> {
        let mut terms = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, value, negated) = if let Some((f, v)) = term.split_once("!=") {
                (f, v, true)
            } else if let Some((f, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (f, v, false)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{text}'; can't understand '{term}'"
                )));
            };
            if !supported(kind, field.trim()) {
                return Err(ApiError::bad_request(format!(
                    "\"{}\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                    field.trim()
                )));
            }
            terms.push((field.trim().to_string(), value.trim().to_string(), negated));
        }
        Ok(Self(terms))
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, value, negated)| {
            let pointer = format!("/{}", field.replace('.', "/"));
            let actual = match object.pointer(&pointer) {
                Some(Value::String(text)) => text.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *value) != *negated
        })
    }
}

/// The fields a field selector can name on objects of `kind`, besides
/// `metadata.name` and `metadata.namespace`; one ending in `.` names every
/// field under it.
fn kind_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod" => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        "Event" => &["involvedObject.", "reason", "type", "source"],
        "Secret" => &["type"],
        "Namespace" => &["status.phase"],
        "Node" => &["spec.unschedulable"],
        "Job" => &["status.successful"],
        "ReplicaSet" => &["status.replicas"],
        _ => &[],
    }
}

fn supported(kind: &str, field: &str) -> bool {
    matches!(field, "metadata.name" | "metadata.namespace")
        || kind_fields(kind)
            .iter()
            .any(|known| match known.strip_suffix('.') {
                Some(parent) => field
                    .strip_prefix(parent)
                    .is_some_and(|rest| rest.starts_with('.')),
                None => *known == field,
            })
}

/// What label and field selectors read of an object: its name, namespace
/// and labels, and the fields its kind can be selected by. Watch history
/// keeps this of each event instead of the object's whole old version.
pub fn selectable(object: &Value) -> Value {
    let kind = object["kind"].as_str().unwrap_or_default();
    let mut view = Value::Object(serde_json::Map::new());
    let metadata = ["metadata.name", "metadata.namespace", "metadata.labels"];
    for field in metadata.iter().chain(kind_fields(kind)) {
        let field = field.trim_end_matches('.');
        let Some(value) = field.split('.').try_fold(object, |node, key| node.get(key)) else {
            continue;
        };
        let mut place = &mut view;
        for key in field.split('.') {
            place = &mut place[key];
        }
        *place = value.clone();
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selector_grammar() {
        let labels = json!({"app": "web", "tier": "fe"});
        let labels = labels.as_object();
        let matches = |text: &str| LabelSelector::parse(text).unwrap().matches(labels);
        assert!(matches("app=web"));
        assert!(matches("app==web,tier"));
        assert!(matches("app in (web, api)"));
        assert!(matches("app notin (db)"));
        assert!(matches("!missing"));
        assert!(matches("missing!=x"));
        assert!(!matches("app!=web"));
        assert!(LabelSelector::parse("app in web").is_err());
        assert!(LabelSelector::parse("a=b=c").is_err());
    }

    #[test]
    fn field_selectors() {
        let pod = json!({"metadata": {"name": "p"}, "status": {"phase": "Running"}});
        assert!(
            FieldSelector::parse("metadata.name=p", "Pod")
                .unwrap()
                .matches(&pod)
        );
        assert!(
            FieldSelector::parse("status.phase!=Failed", "Pod")
                .unwrap()
                .matches(&pod)
        );
        assert_eq!(
            FieldSelector::parse("spec.foo=x", "Deployment")
                .unwrap_err()
                .message,
            "\"spec.foo\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
    }

    #[test]
    fn the_selectable_view_answers_selectors_as_the_object_does() {
        let pod = json!({"kind": "Pod", "metadata": {"name": "p", "namespace": "n",
                "labels": {"app": "web"}, "annotations": {"a": "1"}},
            "spec": {"nodeName": "sim-node-1", "containers": [{"name": "c"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1"}});
        let view = selectable(&pod);
        assert_eq!(
            view,
            json!({"metadata": {"name": "p", "namespace": "n", "labels": {"app": "web"}},
                "spec": {"nodeName": "sim-node-1"}, "status": {"phase": "Running", "podIP": "10.0.0.1"}})
        );
        for text in [
            "status.phase=Running",
            "spec.nodeName!=sim-node-1",
            "metadata.namespace=n",
        ] {
            let selector = FieldSelector::parse(text, "Pod").unwrap();
            assert_eq!(selector.matches(&view), selector.matches(&pod), "{text}");
        }
        let event = json!({"kind": "Event", "metadata": {"name": "e"},
            "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "BackOff", "message": "m"});
        let selector =
            FieldSelector::parse("involvedObject.name=p,reason=BackOff", "Event").unwrap();
        assert!(selector.matches(&selectable(&event)));
    }
}

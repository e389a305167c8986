//! The corpus (`tests/conformance/corpus.yaml`) and replaying it against one
//! API server through `kube::Client`, the same code path for both sides.

use std::path::Path;
use std::time::{Duration, Instant};

use http_body_util::BodyExt as _;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    pub topic: String,
    pub cases: Vec<Case>,
}

/// Steps that run in order, in their own namespace `{ns}` (created first,
/// not counted) unless `namespace: false`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub id: String,
    #[serde(default = "yes")]
    pub namespace: bool,
    pub steps: Vec<Step>,
}

fn yes() -> bool {
    true
}

/// One interaction. In `path` and `body`, `{ns}` is the case's namespace,
/// `{rv}`, `{uid}` and `{continue}` come from the previous answer, and
/// `{rv@ID}` / `{uid@ID}` from the answer to step ID of the same case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub id: String,
    #[serde(default = "get")]
    pub method: String,
    pub path: String,
    /// json (default), merge, json-patch, strategic, apply, yaml, protobuf.
    #[serde(rename = "type", default)]
    pub body_type: Option<String>,
    pub body: Option<Value>,
    /// A body sent as is (hex for protobuf).
    pub raw: Option<String>,
    /// JSON pointers to compare (`*` for every item, `key=value` for the
    /// item of a list with that key); the whole answer (or, for errors,
    /// `compare::ERROR_FIELDS`) when absent.
    pub compare: Option<Vec<String>>,
    /// Fields left out of the comparison.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// A watch: read this many events.
    pub watch: Option<usize>,
    /// The Accept header (default `application/json`).
    pub accept: Option<String>,
    /// Ask again (bounded) until this holds: where the server is eventually
    /// consistent (garbage collection, namespace termination, CRDs).
    pub until: Option<Until>,
}

fn get() -> String {
    "GET".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Until {
    pub status: Option<u16>,
    pub pointer: Option<String>,
    pub equals: Option<Value>,
}

/// One side's answer to a step.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

pub fn load(path: &Path) -> Vec<Topic> {
    let text = std::fs::read_to_string(path).expect("read the corpus");
    serde_saphyr::from_str(&text).expect("parse the corpus")
}

/// A client for the current context of a kubeconfig.
pub async fn client(kubeconfig: &Path) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig).expect("read kubeconfig");
    let options = kube::config::KubeConfigOptions::default();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .expect("kubeconfig");
    kube::Client::try_from(config).expect("client")
}

/// The namespace of a case (a DNS label).
pub fn namespace_of(topic: &str, case: &str) -> String {
    let name: String = format!("{topic}-{case}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    name.to_ascii_lowercase().chars().take(63).collect()
}

/// Replay a case: the answers to its steps, in order.
pub async fn replay(client: &kube::Client, namespace: &str, case: &Case) -> Vec<Answer> {
    if case.namespace {
        let body = serde_json::json!({"metadata": {"name": namespace}}).to_string();
        let request = request(
            "POST",
            "/api/v1/namespaces",
            "application/json",
            "json",
            body.into(),
        );
        let created = send(client, request).await;
        assert_eq!(
            created.status, 201,
            "namespace {namespace}: {:?}",
            created.body
        );
    }
    let mut answers: Vec<Answer> = Vec::new();
    for step in &case.steps {
        let earlier: Vec<(&str, &Value)> = case
            .steps
            .iter()
            .zip(&answers)
            .map(|(step, answer)| (step.id.as_str(), &answer.body))
            .collect();
        let answer = perform(client, namespace, step, &earlier).await;
        answers.push(answer);
    }
    answers
}

async fn perform(
    client: &kube::Client,
    namespace: &str,
    step: &Step,
    earlier: &[(&str, &Value)],
) -> Answer {
    let path = substitute(&step.path, namespace, earlier, true);
    let body_type = step.body_type.as_deref().unwrap_or("json");
    let body: Vec<u8> = match (&step.body, &step.raw) {
        (Some(body), _) => substitute(&body.to_string(), namespace, earlier, false).into(),
        (None, Some(raw)) if body_type == "protobuf" => from_hex(raw),
        (None, Some(raw)) => substitute(raw, namespace, earlier, false).into(),
        (None, None) => Vec::new(),
    };
    let accept = step.accept.as_deref().unwrap_or("application/json");
    if let Some(count) = step.watch {
        return watch(client, &path, count).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let request = request(&step.method, &path, accept, body_type, body.clone());
        let answer = send(client, request).await;
        let done = step
            .until
            .as_ref()
            .is_none_or(|until| holds(until, &answer));
        if done || Instant::now() > deadline {
            return answer;
        }
        // Polling, bounded by the deadline: the server is eventually consistent here.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn holds(until: &Until, answer: &Answer) -> bool {
    let status = until.status.is_none_or(|s| s == answer.status);
    let field = until.pointer.as_ref().is_none_or(|pointer| {
        let found = super::compare::project(&answer.body, Some(std::slice::from_ref(pointer)));
        found[pointer.as_str()] == until.equals.clone().unwrap_or(Value::Null)
    });
    status && field
}

fn substitute(text: &str, namespace: &str, earlier: &[(&str, &Value)], in_path: bool) -> String {
    let mut text = text.replace("{ns}", namespace);
    while let Some(start) = text
        .find("{rv")
        .or_else(|| text.find("{uid"))
        .or_else(|| text.find("{continue"))
    {
        let end = start + text[start..].find('}').expect("a closing brace");
        let token = &text[start + 1..end];
        let (field, step) = token.split_once('@').unwrap_or((token, ""));
        let body = if step.is_empty() {
            earlier.last().map(|(_, body)| *body)
        } else {
            earlier
                .iter()
                .find(|(id, _)| *id == step)
                .map(|(_, body)| *body)
        };
        let pointer = match field {
            "rv" => "/metadata/resourceVersion",
            "uid" => "/metadata/uid",
            _ => "/metadata/continue",
        };
        let value = body
            .and_then(|body| body.pointer(pointer))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let value = if in_path {
            escape(value)
        } else {
            value.to_string()
        };
        text.replace_range(start..=end, &value);
    }
    text
}

fn escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn from_hex(text: &str) -> Vec<u8> {
    let digits: String = text.chars().filter(char::is_ascii_hexdigit).collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("hex"))
        .collect()
}

fn content_type(body_type: &str) -> &'static str {
    match body_type {
        "merge" => "application/merge-patch+json",
        "json-patch" => "application/json-patch+json",
        "strategic" => "application/strategic-merge-patch+json",
        "apply" => "application/apply-patch+yaml",
        "yaml" => "application/yaml",
        "protobuf" => "application/vnd.kubernetes.protobuf",
        _ => "application/json",
    }
}

fn request(
    method: &str,
    path: &str,
    accept: &str,
    body_type: &str,
    body: Vec<u8>,
) -> http::Request<kube::client::Body> {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::ACCEPT, accept);
    if !body.is_empty() {
        builder = builder.header(http::header::CONTENT_TYPE, content_type(body_type));
    }
    builder.body(body.into()).expect("request")
}

async fn send(client: &kube::Client, request: http::Request<kube::client::Body>) -> Answer {
    // A failed exchange is an answer too (status 0), not a panic: the
    // other side's answer is still compared with it.
    let response = match client.send(request).await {
        Ok(response) => response,
        Err(error) => {
            return Answer {
                status: 0,
                body: Value::String(format!("{error:?}")),
            };
        }
    };
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect_bytes()
        .await
        .unwrap_or_default();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).trim().to_string()));
    Answer { status, body }
}

/// The first `count` events of a watch (bounded wait), as a JSON array.
async fn watch(client: &kube::Client, path: &str, count: usize) -> Answer {
    let response = client
        .send(request("GET", path, "application/json", "json", Vec::new()))
        .await
        .unwrap_or_else(|error| panic!("watch {path}: {error}"));
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut buffer = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut lines = 0;
    while lines < count {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                let data = frame.data_ref().map_or(&[][..], |d| d);
                lines += data.split(|b| *b == b'\n').count() - 1;
                buffer.extend_from_slice(data);
            }
            _ => break,
        }
    }
    let events: Vec<Value> = String::from_utf8_lossy(&buffer)
        .lines()
        .take(count)
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    Answer {
        status,
        body: Value::Array(events),
    }
}

//! The page for people: `/` lists recent deployments, `/deployments/{id}`
//! shows one with its event log, live (server-rendered HTML and a little
//! JavaScript reading the event stream; no front-end build).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State as Shared};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use crate::State;

pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/deployments/{id}", get(deployment))
        .with_state(state)
}

/// HTML-escaped text.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn field(value: &Value, key: &str) -> String {
    escape(value[key].as_str().unwrap_or("-"))
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse}td,th{padding:.3rem .8rem;border-bottom:1px solid #ddd;text-align:left}.success{color:#176f2c}.failure,.error{color:#b3261e}.queued,.in_progress{color:#8a6d00}pre{background:#f6f6f6;padding:1rem;white-space:pre-wrap}";

fn page(title: &str, body: &str) -> Response {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    ))
    .into_response()
}

async fn index(Shared(state): Shared<Arc<State>>) -> Response {
    let rows: Vec<String> = state
        .store
        .list(None, None, 1, 100)
        .unwrap_or_default()
        .iter()
        .map(|d| {
            let status = field(d, "status");
            format!(
                "<tr><td><a href=\"/deployments/{id}\">{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{status}\">{status}</td><td>{}</td><td>{}</td></tr>",
                field(d, "team"),
                field(d, "environment"),
                field(d, "repository"),
                field(d, "ref"),
                field(d, "created"),
                field(d, "finished"),
                id = field(d, "id"),
            )
        })
        .collect();
    let rows = rows.concat();
    page(
        "stack deployments",
        &format!(
            "<h1>Deployments</h1><table><tr><th>id</th><th>team</th><th>environment</th><th>repository</th><th>ref</th><th>status</th><th>created</th><th>finished</th></tr>{rows}</table>"
        ),
    )
}

/// An event as a line of the log (as the page's script writes them).
fn line(event: &Value) -> String {
    let text = match (&event["message"], &event["status"]) {
        (Value::String(message), _) => message.clone(),
        (_, status) => {
            let status = status.as_str().unwrap_or_default();
            match event["reason"].as_str() {
                Some(reason) => format!("status: {status}\n{reason}"),
                None => format!("status: {status}"),
            }
        }
    };
    match event["release"].as_str().filter(|r| !r.is_empty()) {
        Some(release) => format!("[{release}] {text}"),
        None => text,
    }
}

/// The script: the events after those shown, as they come; the status as
/// it changes; the stream closed at the final one.
const SCRIPT: &str = "
const log = document.getElementById('log'), status = document.getElementById('status');
const source = new EventSource('/api/v1/deployments/' + log.dataset.id + '/events?after=' + log.dataset.after);
source.onmessage = (m) => {
  const e = JSON.parse(m.data);
  if (e.event === 'status') { status.textContent = e.status; status.className = e.status; }
  const line = document.createElement('div');
  line.className = 'live';
  line.textContent = (e.release ? '[' + e.release + '] ' : '') + (e.message || ('status: ' + e.status + (e.reason ? '\\n' + e.reason : '')));
  log.appendChild(line);
  if (e.event === 'status' && ['success', 'failure', 'error'].includes(e.status)) source.close();
};";

async fn deployment(Shared(state): Shared<Arc<State>>, Path(id): Path<String>) -> Response {
    let Ok(Some(d)) = crate::api::with_events(&state, &id) else {
        return (
            axum::http::StatusCode::NOT_FOUND,
            page("not found", "<h1>No such deployment</h1>"),
        )
            .into_response();
    };
    let events = d["events"].as_array().cloned().unwrap_or_default();
    let after = events.last().and_then(|e| e["seq"].as_i64()).unwrap_or(0);
    let shown: String = events
        .iter()
        .map(|e| format!("<div>{}</div>", escape(&line(e))))
        .collect::<Vec<_>>()
        .concat();
    let id = field(&d, "id");
    let status = field(&d, "status");
    page(
        &format!("deployment {id}"),
        &format!(
            "<h1>Deployment <code>{id}</code></h1><p>{} to <b>{}</b>: {} @ {}</p><p>Status: <b id=\"status\" class=\"{status}\" data-loaded=\"{status}\">{status}</b></p><pre id=\"log\" data-id=\"{id}\" data-after=\"{after}\">{shown}</pre><script>{SCRIPT}</script>",
            field(&d, "team"),
            field(&d, "environment"),
            field(&d, "repository"),
            field(&d, "ref"),
        ),
    )
}

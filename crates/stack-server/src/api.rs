//! The JSON API: `POST /api/v1/deploy`, `GET /api/v1/deployments`,
//! `GET /api/v1/deployments/{id}` and its events as server-sent events.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State as Shared};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::State;
use crate::request::{self, DeployRequest, WINDOW_SECONDS};
use crate::store::{NewDeployment, is_final};

pub(crate) fn router(state: Arc<State>) -> Router {
    let limit = state.options.body_limit;
    Router::new()
        .route(
            "/api/v1/deploy",
            post(deploy).layer(DefaultBodyLimit::max(limit)),
        )
        .route("/api/v1/deployments", get(list))
        .route("/api/v1/deployments/{id}", get(one))
        .route("/api/v1/deployments/{id}/events", get(events))
        .with_state(state)
}

/// A refusal: its status and a JSON body naming what is wrong (and the
/// field, when one is).
fn refuse(status: StatusCode, message: impl Into<String>, field: Option<&str>) -> Response {
    let mut body = json!({"message": message.into()});
    if let Some(field) = field {
        body["field"] = field.into();
    }
    (status, axum::Json(body)).into_response()
}

fn invalid(error: &request::Invalid) -> Response {
    refuse(StatusCode::BAD_REQUEST, &error.message, Some(&error.field))
}

fn internal(state: &State, what: &str, error: &dyn std::fmt::Display) -> Response {
    refuse(
        StatusCode::INTERNAL_SERVER_ERROR,
        state.masks.text(&format!("{what}: {error}")),
        None,
    )
}

async fn deploy(Shared(state): Shared<Arc<State>>, headers: HeaderMap, body: Bytes) -> Response {
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(error) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("the body is not JSON: {error}"),
                None,
            );
        }
    };
    let team_name = match request::team_of(&parsed) {
        Ok(team) => team,
        Err(error) => return invalid(&error),
    };
    let Some(team) = state.teams.get(&team_name) else {
        return refuse(
            StatusCode::FORBIDDEN,
            format!("unknown team `{team_name}`"),
            Some("team"),
        );
    };
    let signature = headers
        .get("x-stack-signature")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !crate::sign::verify(&team.keys, &body, signature) {
        return refuse(
            StatusCode::FORBIDDEN,
            format!(
                "the X-Stack-Signature header is not the body signed with a key of team `{team_name}` (sha256=<hex HMAC-SHA256>)"
            ),
            None,
        );
    }
    let request = match request::parse(&parsed) {
        Ok(request) => request,
        Err(error) => return invalid(&error),
    };
    let key = headers
        .get("idempotency-key")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    if let Some(key) = &key {
        match state.store.answer(&team.name, key) {
            Ok(Some(answer)) => return created(&answer),
            Ok(None) => {}
            Err(error) => return internal(&state, "cannot read the answers kept", &error),
        }
    }
    if let Some(refused) = admissible(&state, team, &request, &body) {
        return refused;
    }
    let ad_hoc = match crate::adhoc::of(team, &request) {
        Ok(ad_hoc) => ad_hoc,
        Err((status, message, field)) => return refuse(status, message, Some(&field)),
    };
    let scoped = {
        let (state, team, request) = (Arc::clone(&state), team.clone(), request.clone());
        let ad_hoc = ad_hoc.clone();
        tokio::task::spawn_blocking(move || {
            crate::run::scope(&state, &team, &request, ad_hoc.as_ref())
        })
        .await
    };
    let selector = match scoped {
        Ok(Ok(selector)) => selector,
        Ok(Err(refused)) => {
            return refuse(refused.0, state.masks.text(&refused.1), Some("selector"));
        }
        Err(error) => return internal(&state, "the selector check stopped", &error),
    };
    accept(&state, &request, &selector, ad_hoc.as_ref(), key.as_deref())
}

/// The refusals after the signature: timestamp, environment, replay,
/// resources.
fn admissible(
    state: &State,
    team: &crate::teams::Team,
    request: &DeployRequest,
    body: &[u8],
) -> Option<Response> {
    let now = jiff::Timestamp::now();
    if !request.timely(now) {
        return Some(refuse(
            StatusCode::BAD_REQUEST,
            format!(
                "`timestamp` {} is more than {} minutes from the server's clock ({now})",
                request.timestamp,
                WINDOW_SECONDS / 60
            ),
            Some("timestamp"),
        ));
    }
    if !state.environments.contains(&request.environment) {
        return Some(refuse(
            StatusCode::BAD_REQUEST,
            format!(
                "unknown environment `{}`; the stack has: {}",
                request.environment,
                state.environments.join(", ")
            ),
            Some("environment"),
        ));
    }
    if !team.environments.contains(&request.environment) {
        return Some(refuse(
            StatusCode::FORBIDDEN,
            format!(
                "team `{}` may not deploy to `{}` (it may to: {})",
                team.name,
                request.environment,
                team.environments.join(", ")
            ),
            Some("environment"),
        ));
    }
    let digest = stack_kube::hex::lower(&sha2::Sha256::digest(body));
    match state
        .store
        .first_sight(&digest, now.as_second(), WINDOW_SECONDS)
    {
        Ok(true) => None,
        Ok(false) => Some(refuse(
            StatusCode::CONFLICT,
            "this signed body was already received: a replay (send a new timestamp, or an Idempotency-Key to get the first answer again)",
            None,
        )),
        Err(error) => Some(internal(state, "cannot record the body", &error)),
    }
}

fn created(answer: &str) -> Response {
    (
        StatusCode::CREATED,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        answer.to_string(),
    )
        .into_response()
}

/// Queue the deployment and answer 201.
fn accept(
    state: &Arc<State>,
    request: &DeployRequest,
    selector: &str,
    ad_hoc: Option<&stack_core::load::release::AdHoc>,
    key: Option<&str>,
) -> Response {
    let team = request.team.as_str();
    let id = correlation_id();
    let mut record = json!({"selector": selector, "set": request.set_map()});
    if let Some(ad_hoc) = ad_hoc {
        record["adHoc"] = crate::adhoc::record(ad_hoc);
    }
    let new = NewDeployment {
        id: &id,
        team,
        environment: &request.environment,
        repository: &request.repository,
        git_ref: &request.git_ref,
        request: &record,
    };
    if let Err(error) = state.store.insert(&new) {
        return internal(state, "cannot record the deployment", &error);
    }
    let base = &state.base_url;
    let answer = json!({
        "correlationID": id,
        "statusURL": format!("{base}/api/v1/deployments/{id}"),
        "eventsURL": format!("{base}/api/v1/deployments/{id}/events"),
        "logURL": format!("{base}/deployments/{id}"),
        "message": format!("queued: {} to {} ({})", request.repository, request.environment, request.git_ref),
    })
    .to_string();
    if let Some(key) = key
        && let Err(error) = state.store.keep_answer(team, key, &answer)
    {
        return internal(state, "cannot keep the answer", &error);
    }
    crate::run::queued(state, &id);
    crate::run::enqueue(state, &request.environment, id);
    created(&answer)
}

/// A random version-4 UUID.
fn correlation_id() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = stack_kube::hex::lower(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[derive(serde::Deserialize)]
struct ListQuery {
    team: Option<String>,
    environment: Option<String>,
    page: Option<u32>,
    per_page: Option<u32>,
}

async fn list(Shared(state): Shared<Arc<State>>, Query(query): Query<ListQuery>) -> Response {
    let per_page = query.per_page.unwrap_or(50).clamp(1, 500);
    match state.store.list(
        query.team.as_deref(),
        query.environment.as_deref(),
        query.page.unwrap_or(1).max(1),
        per_page,
    ) {
        Ok(items) => axum::Json(Value::Array(items)).into_response(),
        Err(error) => internal(&state, "cannot list the deployments", &error),
    }
}

/// A deployment with its events.
pub(crate) fn with_events(state: &State, id: &str) -> Result<Option<Value>, rusqlite::Error> {
    let Some(mut deployment) = state.store.get(id)? else {
        return Ok(None);
    };
    deployment["events"] = Value::Array(state.store.events(id, 0)?);
    Ok(Some(deployment))
}

async fn one(Shared(state): Shared<Arc<State>>, Path(id): Path<String>) -> Response {
    match with_events(&state, &id) {
        Ok(Some(deployment)) => axum::Json(deployment).into_response(),
        Ok(None) => refuse(StatusCode::NOT_FOUND, format!("no deployment `{id}`"), None),
        Err(error) => internal(&state, "cannot read the deployment", &error),
    }
}

/// The deployment's events as server-sent events, from the first, live
/// until its final status (the last event, `{"event": "status", …}`).
#[derive(serde::Deserialize)]
struct EventsQuery {
    /// Only the events after this number (a page that shows those already).
    after: Option<i64>,
}

async fn events(
    Shared(state): Shared<Arc<State>>,
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
) -> Response {
    match state.store.get(&id) {
        Ok(Some(_)) => {}
        Ok(None) => return refuse(StatusCode::NOT_FOUND, format!("no deployment `{id}`"), None),
        Err(error) => return internal(&state, "cannot read the deployment", &error),
    }
    let changes = state.changes.subscribe();
    let after = query.after.unwrap_or(0);
    let start = (state, id, changes, after, Vec::<Value>::new(), false);
    let stream = futures::stream::unfold(
        start,
        |(state, id, mut changes, mut last, mut pending, done)| async move {
            loop {
                if !pending.is_empty() {
                    let event = pending.remove(0);
                    let finished = event["event"] == "status"
                        && event["status"].as_str().is_some_and(is_final);
                    let sse = SseEvent::default().data(event.to_string());
                    return Some((
                        Ok::<_, Infallible>(sse),
                        (state, id, changes, last, pending, finished),
                    ));
                }
                if done {
                    return None;
                }
                changes.borrow_and_update();
                let fresh = state.store.events(&id, last).unwrap_or_default();
                if let Some(seq) = fresh.last().and_then(|e| e["seq"].as_i64()) {
                    last = seq;
                    pending = fresh;
                    continue;
                }
                if changes.changed().await.is_err() {
                    return None;
                }
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

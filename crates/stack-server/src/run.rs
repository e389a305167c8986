//! Running deployments: one queue per environment, first in first out,
//! each run taking the environment's lock as `stack apply` does (so the
//! command line and the server exclude each other), its events kept and
//! its end told as a status.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Value, json};
use stack_core::error::{EXIT_ERROR, EXIT_ROLLBACK_FAILED, EXIT_ROLLED_BACK, Error, Errors};
use stack_core::execute::run::{self, ForCluster};
use stack_core::execute::verdict::{describe, verdict};
use stack_core::execute::{ExecutionOptions, Reporter};
use stack_core::load::graph::{NeedsMode, Selector};
use stack_core::load::project::{LoadOptions, Project};
use stack_core::mask::Masks;

use crate::State;
use crate::request::DeployRequest;
use crate::store::{ERROR, FAILURE, IN_PROGRESS, SUCCESS};
use crate::teams::Team;
use stack_core::load::release::AdHoc;

/// The load options of a deployment: the server's stack, the request's
/// environment, values and selector (the team's and the request's
/// together).
fn load_options(
    state: &State,
    environment: &str,
    selector: &str,
    set: &[stack_core::load::values::SetValue],
    ad_hoc: Option<AdHoc>,
) -> Result<LoadOptions, String> {
    let selectors = if selector.is_empty() {
        Vec::new()
    } else {
        vec![Selector::parse(selector).map_err(|e| e.to_string())?]
    };
    Ok(LoadOptions {
        environment: Some(environment.to_string()),
        sets: set.to_vec(),
        selectors,
        needs: NeedsMode::Skip,
        allow_no_match: false,
        group: None,
        ad_hoc,
        ..state.options.load.clone()
    })
}

/// The selector a request deploys with — its own, within the team's —
/// or why it is refused: a selector matching a release outside the
/// team's (403), one that matches nothing or does not parse (400).
pub(crate) fn scope(
    state: &State,
    team: &Team,
    request: &DeployRequest,
    ad_hoc: Option<&AdHoc>,
) -> Result<String, (StatusCode, String)> {
    let own = match ad_hoc {
        Some(ad_hoc) => format!("name={},namespace={}", ad_hoc.name, ad_hoc.namespace),
        None => request.selector.clone().unwrap_or_default(),
    };
    let options = load_options(
        state,
        &request.environment,
        &own,
        &request.set,
        ad_hoc.cloned(),
    )
    .map_err(|e| (StatusCode::BAD_REQUEST, e))?;
    let project = Project::load(&options, &Masks::new(false))
        .map_err(|errors| (StatusCode::BAD_REQUEST, text(&errors)))?;
    if let Some(ad_hoc) = ad_hoc {
        let id = format!("{}/{}", ad_hoc.namespace, ad_hoc.name);
        if project.releases.iter().filter(|r| r.id == id).count() > 1 {
            return Err((
                StatusCode::BAD_REQUEST,
                format!(
                    "the release of the resources, {id}, is a release of the stack: name the repository otherwise"
                ),
            ));
        }
        return Ok(own);
    }
    let Some((team_text, team_selector)) = &team.selector else {
        return Ok(own);
    };
    let outside: Vec<&str> = project
        .selection
        .releases
        .iter()
        .map(|&i| &project.releases[i])
        .filter(|release| !team_selector.matches(&release.selector_labels()))
        .map(|release| release.id.as_str())
        .collect();
    if !outside.is_empty() && request.selector.is_some() {
        return Err((
            StatusCode::FORBIDDEN,
            format!(
                "the selector `{own}` reaches releases outside team `{}`'s `{team_text}`: {}",
                team.name,
                outside.join(", ")
            ),
        ));
    }
    Ok(if own.is_empty() {
        team_text.clone()
    } else {
        format!("{team_text},{own}")
    })
}

/// Put a deployment on its environment's queue (its worker started with
/// the first one).
pub(crate) fn enqueue(state: &Arc<State>, environment: &str, id: String) {
    let mut queues = state
        .queues
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let sender = queues.entry(environment.to_string()).or_insert_with(|| {
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<String>();
        let state = Arc::clone(state);
        tokio::spawn(async move {
            while let Some(id) = receiver.recv().await {
                let worker = Arc::clone(&state);
                let ran = tokio::task::spawn_blocking(move || deploy(&worker, &id)).await;
                if let Err(error) = ran {
                    eprintln!("a deployment's run stopped: {error}");
                }
            }
        });
        sender
    });
    let _ = sender.send(id);
}

/// Record a status as the deployment's state and as an event, and send
/// it to the team's callback; a final one says the exit code `stack
/// deploy --wait` ends with (0, 1, 3 rolled back, 4 the rollback failed).
fn status(
    state: &Arc<State>,
    deployment: &Value,
    word: &str,
    reason: Option<&str>,
    ending: Option<(&Value, u8)>,
) {
    let id = deployment["id"].as_str().unwrap_or_default();
    let reason = reason.map(|r| state.masks.text(r));
    let releases = ending.map(|(releases, _)| releases);
    let _ = state
        .store
        .set_status(id, word, reason.as_deref(), releases);
    let mut event = json!({"event": "status", "status": word});
    if let Some(reason) = &reason {
        event["reason"] = reason.clone().into();
    }
    if let Some((_, code)) = ending {
        event["exitCode"] = code.into();
    }
    let _ = state.store.add_event(id, "", &event);
    state.changed();
    let mut body = json!({
        "id": id,
        "team": deployment["team"],
        "environment": deployment["environment"],
        "repository": deployment["repository"],
        "ref": deployment["ref"],
        "status": word,
    });
    if let Some(reason) = reason {
        body["reason"] = reason.into();
    }
    crate::notify::status(state, deployment["team"].as_str().unwrap_or_default(), body);
}

/// A deployment was queued: its first status.
pub(crate) fn queued(state: &Arc<State>, id: &str) {
    if let Ok(Some(deployment)) = state.store.get(id) {
        status(state, &deployment, crate::store::QUEUED, None, None);
    }
}

/// Run one deployment to its end (on a thread of its own, with a runtime
/// of its own, as the command line runs).
fn deploy(state: &Arc<State>, id: &str) {
    let Ok(Some(deployment)) = state.store.get(id) else {
        return;
    };
    status(state, &deployment, IN_PROGRESS, None, None);
    let (word, reason, releases, code) = match execute(state, id, &deployment) {
        Ok(finished) => {
            let releases: Vec<Value> = finished
                .iter()
                .map(|f| json!({"id": f.id, "result": describe(&f.outcome).0}))
                .collect();
            match verdict(&finished, false) {
                Ok(_) => (SUCCESS, None, releases, 0),
                Err(Error::Deploy { message, code, .. })
                    if code == EXIT_ROLLED_BACK || code == EXIT_ROLLBACK_FAILED =>
                {
                    (FAILURE, Some(message), releases, code)
                }
                Err(error) => (ERROR, Some(error.to_string()), releases, EXIT_ERROR),
            }
        }
        Err(errors) => (ERROR, Some(text(&errors)), Vec::new(), EXIT_ERROR),
    };
    let releases = Value::Array(releases);
    status(
        state,
        &deployment,
        word,
        reason.as_deref(),
        Some((&releases, code)),
    );
}

fn execute(
    state: &Arc<State>,
    id: &str,
    deployment: &Value,
) -> Result<Vec<stack_core::execute::Finished>, Errors> {
    let request = &deployment["request"];
    let set: Vec<stack_core::load::values::SetValue> = request["set"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(path, value)| {
            stack_core::load::values::SetValue::at(path, value.clone()).ok()
        })
        .collect();
    let environment = deployment["environment"].as_str().unwrap_or_default();
    let selector = request["selector"].as_str().unwrap_or_default();
    let ad_hoc = crate::adhoc::from_record(&request["adHoc"]);
    let options = load_options(state, environment, selector, &set, ad_hoc).map_err(|message| {
        Error::Failed {
            message,
            hint: None,
        }
    })?;
    let masks = Masks::new(false);
    let project = Project::load(&options, &masks)?;
    let rendering = ForCluster::prepare(&project)?;
    let sink = {
        let (state, id) = (Arc::clone(state), id.to_string());
        move |release: &str, event: Value| {
            let event = masked(&state.masks, &event);
            let _ = state.store.add_event(&id, release, &event);
            state.changed();
        }
    };
    let execution = ExecutionOptions {
        wait_for_lock: Some(state.options.lock_wait),
        ..ExecutionOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Failed {
            message: format!("cannot start a runtime: {e}"),
            hint: None,
        })?;
    let project = &project;
    runtime.block_on(run::with_session(
        project,
        &state.options.connection,
        Reporter::to_sink(&masks, sink),
        execution,
        |session| async move { run::apply(&session, project, rendering, None, None).await },
    ))
}

/// An event with the teams' secrets masked too.
fn masked(masks: &Masks, event: &Value) -> Value {
    serde_json::from_str(&masks.text(&event.to_string())).unwrap_or_default()
}

/// Errors as lines of text.
fn text(errors: &Errors) -> String {
    errors
        .0
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

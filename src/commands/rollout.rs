//! `stack rollout status`: where releases with a deployment strategy stand
//! — the colour that serves, the one kept beside it and whether each is
//! ready, what every switched Service selects now, and until when the
//! previous colour is kept — read from the deployed revision's `rollout`
//! record and the live objects.

use serde_json::{Value, json};

use crate::cli::OutputFormat;
use crate::output;
use crate::settings::Settings;
use stack_core::cluster::live;
use stack_core::error::Errors;
use stack_core::execute::blue_green::COLOR_LABEL;
use stack_core::execute::readiness::Readiness;
use stack_core::execute::{EngineError, apply::live_readiness};
use stack_core::load::config::StrategySpec;
use stack_core::load::project::Project;

pub fn status(project: &Project, settings: &Settings, wanted: Option<&str>) -> Result<u8, Errors> {
    let ids: Vec<String> = match wanted {
        Some(name) => vec![super::status::find_release(project, name)?],
        None => project
            .selection
            .releases
            .iter()
            .map(|&index| project.releases[index].id.clone())
            .collect(),
    };
    let rows = super::remote::with_session(project, settings, |session| async move {
        let (history, _) = live::history(&session.client)
            .await
            .map_err(EngineError::api("cannot read release history"))?;
        let deployed = |id: &str| {
            history
                .get(id)
                .and_then(|revisions| stack_core::plan::last_deployed(revisions))
                .cloned()
        };
        let scopes = ids
            .iter()
            .filter_map(|id| deployed(id))
            .flat_map(|revision| revision.objects.scopes())
            .collect();
        let resources = session.resources.read().await.clone();
        let (objects, _, _) = live::fetch(&session.client, &resources, scopes)
            .await
            .map_err(EngineError::api("cannot read live objects"))?;
        let rows = ids
            .iter()
            .map(|id| row(project, id, deployed(id).as_deref(), &objects))
            .collect::<Vec<_>>();
        Ok(rows)
    })?;
    match settings.output {
        OutputFormat::Json => output::stdout(&format!("{:#}\n", Value::Array(rows))),
        OutputFormat::Yaml => output::stdout(&stack_core::yaml::to_string(&Value::Array(rows))),
        OutputFormat::Text => output::stdout(&output::table(
            &[
                "RELEASE",
                "STRATEGY",
                "ACTIVE",
                "PREVIOUS",
                "KEEP UNTIL",
                "SERVICES",
            ],
            &rows.iter().map(text_row).collect::<Vec<_>>(),
        )),
    }
    Ok(0)
}

/// One release's rollout: its strategy, colours, switched Services, and
/// where a canary paused, from its deployed revision and the live objects.
fn row(
    project: &Project,
    id: &str,
    revision: Option<&stack_kube::revision::Revision>,
    objects: &std::collections::HashMap<stack_kube::object::ObjectKey, live::LiveObject>,
) -> Value {
    let release = project.releases.iter().find(|r| r.id == id);
    let strategy = match release.map(|r| &r.options.strategy) {
        Some(StrategySpec::BlueGreen(_)) => "blueGreen",
        Some(StrategySpec::Canary(_)) => "canary",
        _ => "rolling",
    };
    let rollout = revision.as_ref().and_then(|r| r.rollout.clone());
    let mut colours = serde_json::Map::new();
    let mut services = Vec::new();
    for body in revision.iter().flat_map(|r| r.objects.parse()) {
        let live = objects
            .get(&live::key_of(&body))
            .map(live::LiveObject::whole);
        let colour = |value: &Value| value.as_str().map(str::to_string);
        match body["kind"].as_str() {
            Some("Deployment") => {
                let Some(name) = colour(&body["metadata"]["labels"][COLOR_LABEL]) else {
                    continue;
                };
                let live = live.unwrap_or(Value::Null);
                let ready = live_readiness(&live) == Readiness::Ready;
                let entry = colours
                    .entry(name)
                    .or_insert_with(|| json!({"ready": true, "replicas": 0}));
                entry["ready"] = json!(entry["ready"] == true && ready);
                let replicas = live["status"]["readyReplicas"].as_u64().unwrap_or(0);
                entry["replicas"] = json!(entry["replicas"].as_u64().unwrap_or(0) + replicas);
            }
            Some("Service") if !body["spec"]["selector"][COLOR_LABEL].is_null() => {
                let live = live.unwrap_or(Value::Null);
                services.push(json!({
                    "name": body["metadata"]["name"],
                    "selects": live["spec"]["selector"][COLOR_LABEL],
                }));
            }
            _ => {}
        }
    }
    json!({
        "id": id,
        "strategy": strategy,
        "revision": revision.as_ref().map(|r| r.number),
        "active": rollout.as_ref().map(|r| r.active.clone()),
        "previous": rollout.as_ref().and_then(|r| r.previous.clone()),
        "keepUntil": rollout.as_ref().and_then(|r| r.keep_until.clone()),
        "paused": rollout.as_ref().and_then(|r| r.step.map(|step| json!({
            "beforeStep": step + 1,
            "weight": r.weight.unwrap_or(0),
            "weights": r.weights,
            "stepsDone": steps_of(release).is_some_and(|steps| step as usize >= steps),
        }))),
        "variant": rollout.as_ref().and_then(|r| r.variant.clone()),
        "colours": colours,
        "services": services,
    })
}

/// How many steps a canary release has.
fn steps_of(release: Option<&stack_core::load::release::Release>) -> Option<usize> {
    match release.map(|r| &r.options.strategy) {
        Some(StrategySpec::Canary(spec)) => Some(spec.steps.len()),
        _ => None,
    }
}

/// One release as a table row; a colour shows its ready replicas.
fn text_row(row: &Value) -> Vec<String> {
    let colour = |name: &Value| match name.as_str() {
        Some(name) => {
            let state = &row["colours"][name];
            let replicas = state["replicas"].as_u64().unwrap_or(0);
            if replicas == 0 {
                format!("{name} (scaled away)")
            } else if state["ready"] == true {
                format!("{name} ({replicas} ready)")
            } else {
                format!("{name} (not ready)")
            }
        }
        None => "-".into(),
    };
    let services: Vec<String> = row["services"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            format!(
                "{} → {}",
                s["name"].as_str().unwrap_or_default(),
                s["selects"].as_str().unwrap_or("nothing")
            )
        })
        .collect();
    let active = match (row["paused"].as_object(), row["variant"].as_str()) {
        (Some(paused), _) => {
            let shares: Vec<String> = paused["weights"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, weight)| format!("{name} {weight}%"))
                .collect();
            let what = if shares.is_empty() {
                format!("canary {}%", paused["weight"])
            } else {
                format!("variants {}", shares.join(", "))
            };
            if paused["stepsDone"] == true {
                format!("{what} (waiting for a winner: promote --variant)")
            } else {
                format!("{what} (paused before step {})", paused["beforeStep"])
            }
        }
        (None, Some(variant)) => format!("stable (variant {variant} won)"),
        (None, None) if row["strategy"] == "canary" => "stable".into(),
        (None, None) => colour(&row["active"]),
    };
    vec![
        row["id"].as_str().unwrap_or_default().to_string(),
        row["strategy"].as_str().unwrap_or_default().to_string(),
        active,
        colour(&row["previous"]),
        row["keepUntil"].as_str().unwrap_or("-").to_string(),
        if services.is_empty() {
            "-".into()
        } else {
            services.join(", ")
        },
    ]
}

/// Where the canary of `release` paused: its latest revision is deployed
/// and says so. An error naming the release otherwise.
fn paused_canary(
    project: &Project,
    settings: &Settings,
    id: &str,
) -> Result<stack_kube::revision::Rollout, Errors> {
    let paused = super::remote::with_session(project, settings, |session| async move {
        let (history, _) = live::history(&session.client)
            .await
            .map_err(EngineError::api("cannot read release history"))?;
        Ok(history
            .get(id)
            .and_then(|revisions| revisions.last())
            .filter(|latest| latest.state == stack_kube::revision::State::Deployed)
            .and_then(|latest| latest.rollout.clone())
            .filter(|r| r.step.is_some()))
    })?;
    paused.ok_or_else(|| {
        stack_core::error::Error::Failed {
            message: format!("{id} is not a paused canary"),
            hint: Some(
                "`stack rollout status` shows where releases stand; a canary pauses at `pause: {}`"
                    .into(),
            ),
        }
        .into()
    })
}

/// What `--variant` and `--full` ask of a canary, checked against its
/// `variants:` before the cluster is asked anything.
fn check_promotion(
    release: &stack_core::load::release::Release,
    variant: Option<&str>,
    full: bool,
) -> Result<(), Errors> {
    let StrategySpec::Canary(spec) = &release.options.strategy else {
        return Err(stack_core::error::Error::Failed {
            message: format!("{} is not a canary", release.id),
            hint: Some("`stack rollout promote` moves a paused canary on".into()),
        }
        .into());
    };
    let names: Vec<&str> = spec.variants.iter().map(|v| v.name.as_str()).collect();
    let problem = match variant {
        Some(wanted) if names.is_empty() => Some((
            format!(
                "`--variant {wanted}`: the canary of {} has no variants",
                release.id
            ),
            "leave `--variant` out: the canary is the release's new version".to_string(),
        )),
        Some(wanted) if !names.contains(&wanted) => Some((
            format!(
                "`--variant {wanted}`: the canary of {} has no such variant",
                release.id
            ),
            format!("its variants are: {}", names.join(", ")),
        )),
        None if full && !names.is_empty() => Some((
            format!(
                "the canary of {} has variants: `--full` cannot tell which one wins",
                release.id
            ),
            format!("name the winner: `--variant {}`", names.join("|")),
        )),
        _ => None,
    };
    match problem {
        Some((message, hint)) => Err(stack_core::error::Error::from(
            stack_core::load::config::ConfigError::Invalid {
                message,
                span: spec.span.clone(),
                hint: Some(hint),
            },
        )
        .into()),
        None => Ok(()),
    }
}

/// `stack rollout promote RELEASE [--variant V] [--full]`: an apply of that
/// release alone, whose paused canary goes on from its pause (or is
/// promoted at once).
pub fn promote(
    mut project: Project,
    settings: &Settings,
    wanted: &str,
    variant: Option<&str>,
) -> Result<u8, Errors> {
    let id = super::status::find_release(&project, wanted)?;
    let index = project
        .releases
        .iter()
        .position(|r| r.id == id)
        .unwrap_or_default();
    let release = &project.releases[index];
    let full = settings.execution.promotion == stack_core::execute::Promotion::Full;
    check_promotion(release, variant, full)?;
    let paused = paused_canary(&project, settings, &id)?;
    if let StrategySpec::Canary(spec) = &release.options.strategy
        && variant.is_none()
        && !spec.variants.is_empty()
        && paused
            .step
            .is_some_and(|step| step as usize >= spec.steps.len())
    {
        let names: Vec<&str> = spec.variants.iter().map(|v| v.name.as_str()).collect();
        return Err(stack_core::error::Error::Failed {
            message: format!("the variants of {id} ran every step: one of them has to win"),
            hint: Some(format!(
                "name the winner: `stack rollout promote {id} --variant {}`",
                names.join("|")
            )),
        }
        .into());
    }
    project.selection.releases = vec![index];
    super::apply::run(&project, settings)
}

/// `stack rollout pause RELEASE`: ask the run that holds the stack's lock
/// to hold the release's canary at its next step (that run then ends with
/// it paused, exit 0). Without such a run, a canary already paused stays
/// so; any other is an error: a canary moves only while a deploy runs.
pub fn pause(project: &Project, settings: &Settings, wanted: &str) -> Result<u8, Errors> {
    let id = super::status::find_release(project, wanted)?;
    if let Some(release) = project.releases.iter().find(|r| r.id == id) {
        check_promotion(release, None, false)?;
    }
    let environment = project.environment_name().to_string();
    let asked = super::remote::with_session(project, settings, |session| {
        let (id, environment) = (id.clone(), environment.clone());
        async move {
            Ok(stack_core::execute::lock::request_pause(
                &session.client,
                &session.stack_name,
                &environment,
                &id,
            )
            .await?)
        }
    })?;
    if let Some(holder) = asked {
        output::stdout(&format!(
            "asked the run of {holder} to pause {id} at its next step\n"
        ));
        return Ok(0);
    }
    let paused = paused_canary(project, settings, &id).map_err(|_| {
        Errors::from(stack_core::error::Error::Failed {
            message: format!("no run is rolling out {id}: there is nothing to pause"),
            hint: Some(
                "a canary moves only while `stack apply` runs; `stack rollout status` shows where it stands".into(),
            ),
        })
    })?;
    output::stdout(&format!(
        "{id} is paused already, before step {}\n",
        paused.step.unwrap_or(0) + 1
    ));
    Ok(0)
}

/// `stack rollout abort RELEASE`: the revision before the paused canary
/// restored, which removes the canary.
pub fn abort(project: &Project, settings: &Settings, wanted: &str) -> Result<u8, Errors> {
    let id = super::status::find_release(project, wanted)?;
    paused_canary(project, settings, &id)?;
    super::rollback::run(project, settings, &id, None)
}

//! `stack diff`: the whole selection previewed against the live cluster —
//! per object a unified diff, drift called out, deletions shown — then a
//! summary table. `-o json` in the fixed shape; `--detailed-exitcode`.

use std::fmt::Write as _;

use crate::cli::{DiffArgs, OutputFormat};
use crate::output;
use crate::settings::Settings;
use stack_core::error::{EXIT_CHANGES, Errors};
use stack_core::execute::{self, Planned};
use stack_core::load::project::Project;
use stack_core::plan::diff::Comparison;
use stack_core::plan::diff::text::{Style, unified};
use stack_core::plan::file::PlanFile;
use stack_core::plan::{Action, Intent};

pub fn run(project: &Project, settings: &Settings, args: &DiffArgs) -> Result<u8, Errors> {
    let rendering = stack_core::execute::run::ForCluster::prepare(project)?;
    let (planned, promotion) =
        super::remote::with_session(project, settings, |session| async move {
            let stack = project.stack_name();
            execute::groups::check_name(&session.client, &stack, project).await?;
            let (rendered, removals) = rendering.on(project, &session).await?;
            let digests = args
                .out
                .is_some()
                .then(|| stack_core::plan::file::rendered_digests(project, &rendered));
            let unshaped =
                execute::strategy::any_canary(project, &rendered).then(|| rendered.clone());
            let (rendered, planned) = execute::strategy::shape_and_plan(
                &session,
                project,
                rendered,
                &removals,
                args.prune_releases,
            )
            .await?;
            let promotion = match unshaped {
                Some(unshaped) => {
                    let live = &planned.live;
                    execute::strategy::promotion_preview(
                        &session, project, unshaped, &rendered, live,
                    )
                    .await?
                }
                None => None,
            };
            if let (Some(file), Some(digests)) = (&args.out, digests) {
                PlanFile::new(project, digests, &planned).write(file)?;
            }
            Ok((planned, promotion))
        })?;
    for (id, revisions) in &planned.live.revisions {
        if let Some(pending) = revisions
            .last()
            .filter(|r| r.state == stack_kube::revision::State::Pending)
        {
            output::note(
                &format!(
                    "{id}: revision {} is pending (a run was interrupted, or is running now); `stack apply` recovers it before anything else",
                    pending.number
                ),
                settings.quiet,
            );
        }
    }
    print(project, settings, args, &planned, promotion);
    if settings.verbose {
        output::note(
            &format!(
                "{} API requests for {} objects",
                planned.live.requests,
                planned.live.objects.len()
            ),
            settings.quiet,
        );
    }
    Ok(if args.detailed_exitcode && planned.plan.has_changes() {
        EXIT_CHANGES
    } else {
        0
    })
}

/// The plan as `-o` asks (and a paused canary's promotion after it).
fn print(
    project: &Project,
    settings: &Settings,
    args: &DiffArgs,
    planned: &Planned,
    promotion: Option<Planned>,
) {
    let masker = settings.masks.masker();
    if settings.markdown {
        let environment = project.environment_name();
        let comment =
            super::markdown::comment(planned, environment, &masker, args.context, args.max_bytes);
        output::stdout(&comment);
        return;
    }
    match settings.output {
        OutputFormat::Json => output::stdout(&format!("{:#}\n", planned.plan.to_json())),
        OutputFormat::Yaml => output::stdout(&stack_core::yaml::to_string(&planned.plan.to_json())),
        OutputFormat::Text => {
            let style = Style {
                color: settings.color && is_terminal(),
                context: args.context,
            };
            let explain = args.explain.then_some(project);
            output::stdout(&text(planned, &masker, style, explain));
            if let Some(promotion) = promotion.filter(|p| p.plan.has_changes()) {
                output::stdout(&format!(
                    "\npaused canaries: what `stack rollout promote --full` would change (then their canary objects are deleted):\n{}",
                    text(&promotion, &masker, style, None)
                ));
            }
        }
    }
}

fn is_terminal() -> bool {
    use std::io::IsTerminal as _;
    std::io::stdout().is_terminal()
}

/// The human-readable plan.
pub fn text(
    planned: &Planned,
    masker: &stack_core::mask::Masker,
    style: Style,
    explain: Option<&Project>,
) -> String {
    let mut out = String::new();
    let mut rows = Vec::new();
    for release in planned
        .plan
        .releases
        .iter()
        .filter(|r| !r.changes.is_empty())
    {
        let heading = match release.intent {
            Intent::Apply => release.id.clone(),
            Intent::Remove => format!("{} (removed: every object is deleted)", release.id),
        };
        let _ = writeln!(out, "{heading}");
        let sources = explain.and_then(|project| {
            let index = project.releases.iter().position(|r| r.id == release.id)?;
            Some(stack_core::load::explain::Sources::of(project, index))
        });
        out.push_str(&changes(
            release,
            masker,
            style,
            ("  ", "    "),
            sources.as_ref(),
        ));
        let (create, change, delete) = release.counts();
        rows.push(vec![
            release.id.clone(),
            create.to_string(),
            change.to_string(),
            delete.to_string(),
        ]);
    }
    if !planned.orphans.is_empty() {
        let _ = writeln!(
            out,
            "not in the stack any more (deleted by `stack apply --prune-releases`): {}",
            planned.orphans.join(", ")
        );
    }
    if !rows.is_empty() {
        out.push('\n');
        out.push_str(&output::table(
            &["RELEASE", "CREATE", "CHANGE", "DELETE"],
            &rows,
        ));
    }
    out
}

/// A release's changes: each object's line (after `header`), its drift
/// and its unified diff (after `lines`).
pub fn changes(
    release: &stack_core::plan::ReleasePlan,
    masker: &stack_core::mask::Masker,
    style: Style,
    (header, lines): (&str, &str),
    sources: Option<&stack_core::load::explain::Sources>,
) -> String {
    let mut out = String::new();
    for change in &release.changes {
        let (sign, note) = match change.action {
            Action::Create if change.awaits_kind => (
                "+",
                " (created; its kind is not served yet — a need creates it)",
            ),
            Action::Create => ("+", " (created)"),
            Action::Update if change.adopts => {
                ("~", " (adopted: it exists without stack's labels)")
            }
            Action::Update => ("~", " (changed)"),
            Action::Delete => ("-", " (deleted: the render no longer has it)"),
        };
        let _ = writeln!(out, "{header}{sign} {}{note}", change.key);
        for (path, manager) in &change.drift {
            let _ = writeln!(
                out,
                "{lines}drift: {path} was changed by {manager}; apply restores it"
            );
        }
        let (before, after) = match &change.comparison {
            Comparison::Create { after } => (None, Some(after)),
            Comparison::Update { before, after } => (Some(before), Some(after)),
            Comparison::Delete { before } => (Some(before), None),
            Comparison::Unchanged => (None, None),
        };
        for line in unified(before, after, masker, style).lines() {
            match sources.and_then(|s| s.annotate(line)) {
                Some(source) => {
                    let _ = writeln!(out, "{lines}{line}   # ← {source}");
                }
                None => {
                    let _ = writeln!(out, "{lines}{line}");
                }
            }
        }
    }
    out
}

/// `stack show-plan FILE`: what a plan file holds.
pub fn show_plan(settings: &Settings, file: &std::path::Path) -> Result<u8, Errors> {
    let plan = PlanFile::read(file)?;
    if settings.output != OutputFormat::Text {
        let value = serde_json::to_value(&plan).unwrap_or_default();
        output::stdout(&match settings.output {
            OutputFormat::Yaml => stack_core::yaml::to_string(&value),
            _ => format!("{value:#}\n"),
        });
        return Ok(0);
    }
    let mut out = format!(
        "plan of stack {}, environment {}{}, made {} at commit {}\nreleases: {}\n{} objects rendered; {} to touch:\n",
        plan.stack,
        plan.environment,
        plan.group
            .as_ref()
            .map_or(String::new(), |g| format!(", group {g}")),
        plan.created,
        plan.commit.as_deref().unwrap_or("(not in git)"),
        plan.selection.join(", "),
        plan.digests.len(),
        plan.touches.len(),
    );
    let rows: Vec<Vec<String>> = plan
        .touches
        .iter()
        .map(|(key, seen)| {
            vec![
                key.clone(),
                seen.action.clone(),
                seen.resource_version
                    .clone()
                    .unwrap_or_else(|| "(absent)".into()),
            ]
        })
        .collect();
    out.push_str(&output::table(&["OBJECT", "ACTION", "SEEN AT"], &rows));
    output::stdout(&out);
    Ok(0)
}

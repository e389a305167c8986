//! What `stack promote` prints: the unified diff of the values file and a
//! line on what happened, or one JSON (or YAML) report.

use serde_json::{Value, json};

use crate::cli::{OutputFormat, PromoteArgs};
use crate::output;
use crate::settings::Settings;
use stack_core::diagnostic::display_path;
use stack_core::plan::diff::text::{Style, lines};
use stack_core::promote::log::Entry;
use stack_core::promote::{self, paths};
use stack_core::yaml;

use super::target::Target;

/// The diff of the file, then what happened (stderr), or one JSON object.
pub fn show(
    settings: &Settings,
    args: &PromoteArgs,
    target: &Target,
    plan: &promote::Plan,
    written: &str,
    entry: Option<&Entry>,
) {
    let style = Style {
        color: settings.color && crate::commands::env::stdout_is_terminal(),
        context: 3,
    };
    let hunks = lines(&target.file.text, written, style);
    let shown = display_path(&target.path);
    let diff = if hunks.is_empty() {
        String::new()
    } else {
        format!("--- {shown}\n+++ {shown}\n{hunks}")
    };
    if settings.output != OutputFormat::Text {
        let report = report(args, target, plan, &diff, entry);
        match settings.output {
            OutputFormat::Yaml => output::stdout(&yaml::to_string(&report)),
            _ => output::stdout(&format!("{report:#}\n")),
        }
        return;
    }
    output::stdout(&diff);
    if !plan.kept.is_empty() {
        let kept: Vec<String> = plan.kept.iter().map(|p| paths::display(p)).collect();
        output::note(
            &format!(
                "kept: `{}` has {}, which `{}` has not",
                args.to,
                kept.join(", "),
                args.from
            ),
            settings.quiet,
        );
    }
    let message = if plan.changes.is_empty() {
        format!(
            "`{}` already has the promotable values of `{}`",
            args.to, args.from
        )
    } else if args.check {
        format!(
            "`{}` differs from `{}` in {} promotable values",
            args.to,
            args.from,
            plan.changes.len()
        )
    } else if args.dry_run {
        format!(
            "dry run: {} values would be promoted into {shown}; nothing written",
            plan.changes.len()
        )
    } else {
        format!(
            "promoted {} values from `{}` into {shown}; recorded in {}",
            plan.changes.len(),
            args.from,
            display_path(&target.log)
        )
    };
    output::note(&message, settings.quiet);
}

fn report(
    args: &PromoteArgs,
    target: &Target,
    plan: &promote::Plan,
    diff: &str,
    entry: Option<&Entry>,
) -> Value {
    let changes: Vec<Value> = plan
        .changes
        .iter()
        .map(|c| json!({"path": paths::display(&c.path), "from": c.before, "to": c.after}))
        .collect();
    json!({
        "from": args.from,
        "to": args.to,
        "file": display_path(&target.path),
        "changed": !plan.changes.is_empty(),
        "written": entry.is_some() && !args.dry_run,
        "changes": changes,
        "kept": plan.kept.iter().map(|p| paths::display(p)).collect::<Vec<_>>(),
        "digest": plan.digest,
        "releases": entry.map(|e| e.releases.clone()).unwrap_or_default(),
        "forced": entry.map(|e| e.forced.clone()).unwrap_or_default(),
        "diff": diff,
    })
}

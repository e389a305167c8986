//! `stack promote --from A --to B`: the promotable values of A (as merged
//! for A) written into B's values file in place, once A's cluster shows that
//! every selected release runs exactly those values, ready and tested. Reads
//! top to bottom as load → plan → gate → write, with `--check` (exit 2 when
//! B differs, no cluster read) and `--dry-run` (no write) on the way.

use serde_json::Value;

use crate::cli::PromoteArgs;
use crate::output;
use crate::settings::Settings;
use stack_core::diagnostic::{Diagnostic, SourceFile};
use stack_core::error::{EXIT_CHANGES, Error, Errors};
use stack_core::load::config::{Promotion, Stack};
use stack_core::load::project::Project;
use stack_core::promote::log::{self, Entry, Provenance, Written};
use stack_core::promote::{self, PromoteError, edit, paths};
use stack_core::yaml;

mod show;
mod target;
mod verify;

use show::show;
use target::{Target, file_name};

pub fn run(settings: &Settings, args: &PromoteArgs) -> Result<u8, Errors> {
    if args.from == args.to {
        return Err(PromoteError::SameEnvironment {
            environment: args.from.clone(),
        }
        .into());
    }
    let mut source_settings = settings.clone();
    source_settings.load.environment = Some(args.from.clone());
    // Not `super::load`: its note on needs that "will not run" does not
    // apply; a selector only limits the gate.
    let project = Project::load(&source_settings.load, &settings.masks)?;
    if !settings.quiet {
        output::print_diagnostics(&project.warnings, settings.color);
    }
    let target = Target::load(&project, settings, &args.to)?;
    let source = source_values(&project, settings);
    let plan = promote::plan(
        &promotion(&project.stack)?.paths,
        &args.from,
        &source,
        &target.values,
        |value| settings.masks.hides(value),
    )
    .map_err(Errors::from_all)?;
    let written = edit::apply(&target.file.text, &target.root, &plan.changes);
    let recorded = recorded_values(&target, &written, &plan)?;
    if args.check || plan.changes.is_empty() {
        show(settings, args, &target, &plan, &written, None);
        let differs = args.check && !plan.changes.is_empty();
        return Ok(if differs { EXIT_CHANGES } else { 0 });
    }
    let (releases, mut forced) = gate(&project, settings, args)?;
    forced.extend(hand_edits(&target, &plan, args)?);
    let entry = Entry {
        time: stack_kube::clock::now(),
        from: args.from.clone(),
        to: args.to.clone(),
        file: file_name(&target.path),
        digest: plan.digest.clone(),
        releases,
        values: recorded,
        forced,
    };
    if !args.dry_run {
        write(&target, &written, &entry)?;
    }
    show(settings, args, &target, &plan, &written, Some(&entry));
    if !args.dry_run {
        check_effect(&project, settings, args, &source)?;
    }
    Ok(0)
}

fn promotion(stack: &Stack) -> Result<&Promotion, PromoteError> {
    stack.promotion.as_ref().ok_or(PromoteError::NoPromotion)
}

/// The new text of the file, then the log entry.
fn write(target: &Target, written: &str, entry: &Entry) -> Result<(), Errors> {
    fs_err::write(&target.path, written).map_err(|source| Error::Write {
        path: target.path.clone(),
        source,
    })?;
    log::append(&target.log, entry)?;
    Ok(())
}

/// Warn when the target still differs once its file is written: a values
/// or secrets file after it sets the same keys.
fn check_effect(
    project: &Project,
    settings: &Settings,
    args: &PromoteArgs,
    source: &Value,
) -> Result<(), Errors> {
    let after = super::env::resolve(&project.stack, settings, &args.to)?;
    let patterns = &promotion(&project.stack)?.paths;
    let plan = promote::plan(patterns, &args.from, source, &after.values, |_| false)
        .map_err(Errors::from_all)?;
    if !plan.changes.is_empty() {
        let differing: Vec<String> = plan
            .changes
            .iter()
            .map(|c| paths::display(&c.path))
            .collect();
        warn(
            settings,
            &format!(
                "`{}` still differs from `{}` at {}: a values or secrets file listed after the promoted one sets them",
                args.to,
                args.from,
                differing.join(", ")
            ),
        );
    }
    Ok(())
}

/// The source environment's merged values, with `--set` over them as the
/// releases saw them.
fn source_values(project: &Project, settings: &Settings) -> Value {
    let mut values = Value::clone(&project.environment.values);
    for set in &settings.load.sets {
        stack_core::load::values::merge(&mut values, set.to_overlay());
    }
    values
}

/// The promoted leaves as the new text holds them. The new text is parsed
/// back first: unless it reads as the old file with exactly the changes
/// made (an anchor shared with other keys would not), nothing is written.
fn recorded_values(
    target: &Target,
    written: &str,
    plan: &promote::Plan,
) -> Result<Vec<Written>, Errors> {
    let reparsed = SourceFile::new(target.path.clone(), written.to_string());
    let values = yaml::parse_values(&reparsed).ok();
    let mut expected = target.root.to_value();
    for change in &plan.changes {
        paths::set(&mut expected, &change.path, change.after.clone());
    }
    if values.as_ref() != Some(&expected) {
        let wrong = plan.changes.iter().find(|change| {
            values.as_ref().and_then(|v| paths::get(v, &change.path)) != Some(&change.after)
        });
        return Err(PromoteError::EditFailed {
            path: target.path.clone(),
            key: wrong.map(|change| paths::display(&change.path)),
        }
        .into());
    }
    let values = values.unwrap_or_default();
    Ok(plan
        .values
        .iter()
        .filter(|(path, value)| paths::get(&values, path) == Some(value))
        .map(|(path, value)| Written {
            path: path.clone(),
            value: value.clone(),
        })
        .collect())
}

/// Verify the selected releases in the source's cluster; refusals stop the
/// promotion unless `--force`, which records them.
fn gate(
    project: &Project,
    settings: &Settings,
    args: &PromoteArgs,
) -> Result<(Vec<Provenance>, Vec<String>), Errors> {
    let (releases, refusals) = verify::verify(project, settings)?;
    if refusals.is_empty() {
        return Ok((releases, Vec::new()));
    }
    if !args.force {
        return Err(PromoteError::Refused {
            from: args.from.clone(),
            refusals,
        }
        .into());
    }
    warn(
        settings,
        &format!(
            "--force: promoting unverified releases:\n  {}",
            refusals.join("\n  ")
        ),
    );
    Ok((releases, refusals))
}

/// Promoted values the user changed in the file since the last promotion
/// and that this one would overwrite: refused unless `--force`.
fn hand_edits(
    target: &Target,
    plan: &promote::Plan,
    args: &PromoteArgs,
) -> Result<Vec<String>, Errors> {
    let entries = log::read(&target.log)?;
    let Some(last) = log::last(&entries, &target.environment, &file_name(&target.path)) else {
        return Ok(Vec::new());
    };
    let overwritten: Vec<String> = log::hand_edits(last, &target.root.to_value())
        .iter()
        .filter(|edit| {
            plan.changes
                .iter()
                .any(|c| c.path.starts_with(&edit.path) || edit.path.starts_with(&c.path))
        })
        .map(|edit| {
            let now = edit.now.as_ref().map_or_else(
                || "the file no longer has it".into(),
                |v| format!("the file has {v}"),
            );
            format!(
                "{}: the last promotion wrote {}, {now}",
                paths::display(&edit.path),
                edit.written
            )
        })
        .collect();
    if overwritten.is_empty() {
        return Ok(Vec::new());
    }
    if !args.force {
        return Err(PromoteError::HandEdited {
            path: target.path.clone(),
            time: last.time.clone(),
            edits: overwritten,
        }
        .into());
    }
    Ok(overwritten
        .into_iter()
        .map(|edit| format!("overwrote a hand edit: {edit}"))
        .collect())
}

fn warn(settings: &Settings, message: &str) {
    if !settings.quiet {
        output::print_diagnostics(&[Diagnostic::warning(message)], settings.color);
    }
}

//! `stack diff --against REF`: the stack rendered at a git ref and in the
//! working tree, compared object by object — no cluster needed (CI
//! without credentials, a review of a change to the stack itself).
//! Secrets are masked; a secrets file no key opens is compared by its
//! ciphertexts, and a changed one is reported as "secret changed".

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::cli::DiffArgs;
use crate::output;
use crate::settings::Settings;
use stack_core::error::{EXIT_CHANGES, Errors};
use stack_core::execute::run::render_selection;
use stack_core::load::project::{LoadOptions, Project};
use stack_core::plan::diff::text::{Style, unified};

/// Each release's objects, by release id and then object.
type Objects = BTreeMap<String, BTreeMap<String, Value>>;

fn objects(project: &Project) -> Result<Objects, Errors> {
    let (rendered, _) = render_selection(project, None)?;
    let mut out = Objects::new();
    for (_, release) in rendered {
        let objects = release
            .objects
            .iter()
            .map(|o| (o.key().to_string(), o.body.clone()))
            .collect();
        out.insert(release.id, objects);
    }
    Ok(out)
}

/// The environment's secrets files that differ between the two trees.
fn secrets_changed(now: &Project, then: &Project) -> Vec<String> {
    let files = |project: &Project| -> Vec<(String, Vec<u8>)> {
        let base = &project.stack.state_dir;
        project
            .environment
            .environment
            .secrets
            .iter()
            .filter_map(|file| {
                let path = file.base.join(file.path.as_str()?);
                let relative = path
                    .strip_prefix(base)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                Some((relative, std::fs::read(&path).unwrap_or_default()))
            })
            .collect()
    };
    let before: BTreeMap<String, Vec<u8>> = files(then).into_iter().collect();
    files(now)
        .into_iter()
        .filter(|(name, bytes)| before.get(name) != Some(bytes))
        .map(|(name, _)| name)
        .collect()
}

pub fn run(settings: &Settings, args: &DiffArgs, reference: &str) -> Result<u8, Errors> {
    let snapshot = stack_core::load::snapshot::at(&settings.load.target, reference)?;
    let options = LoadOptions {
        secrets_without_keys: true,
        ..settings.load.clone()
    };
    let now = Project::load(&options, &settings.masks)?;
    let then_options = LoadOptions {
        target: snapshot.target.clone(),
        ..options
    };
    let then = Project::load(&then_options, &settings.masks)?;
    let (before, after) = (objects(&then)?, objects(&now)?);
    let masker = settings.masks.masker();
    let style = Style {
        color: false,
        context: args.context,
    };
    let empty = BTreeMap::new();
    let mut out = String::new();
    let mut changes = 0;
    let ids: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for id in ids {
        let (old, new) = (
            before.get(id).unwrap_or(&empty),
            after.get(id).unwrap_or(&empty),
        );
        let heading = match (before.contains_key(id), after.contains_key(id)) {
            (false, _) => format!("{id} (added to the stack)"),
            (_, false) => format!("{id} (removed from the stack)"),
            _ => id.clone(),
        };
        let mut section = String::new();
        let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        for key in keys {
            let (sign, note) = match (old.get(key), new.get(key)) {
                (None, Some(_)) => ("+", "created"),
                (Some(_), None) => ("-", "deleted"),
                (Some(a), Some(b)) if a != b => ("~", "changed"),
                _ => continue,
            };
            changes += 1;
            let _ = writeln!(section, "  {sign} {key} ({note})");
            for line in unified(old.get(key), new.get(key), &masker, style).lines() {
                let _ = writeln!(section, "    {line}");
            }
        }
        if !section.is_empty() {
            let _ = write!(out, "{heading}\n{section}");
        }
    }
    for file in secrets_changed(&now, &then) {
        changes += 1;
        let _ = writeln!(out, "secret changed: {file}");
    }
    if changes == 0 {
        out = format!(
            "no changes against {reference} ({})\n",
            &snapshot.commit[..12.min(snapshot.commit.len())]
        );
    }
    output::stdout(&out);
    Ok(if args.detailed_exitcode && changes > 0 {
        EXIT_CHANGES
    } else {
        0
    })
}

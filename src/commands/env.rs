//! `stack env diff A B`: how two environments' merged values (values files
//! and secrets) differ, as a unified YAML diff with secrets masked. Also the
//! loading that `stack promote` shares: a stack and an environment's values
//! without choosing a default environment.

use std::sync::Arc;

use serde_json::Value;

use crate::output;
use crate::settings::Settings;
use stack_core::error::{EXIT_CHANGES, Errors};
use stack_core::load::config::{self, Stack};
use stack_core::load::resolve::{self, ResolvedEnvironment, SecretFiles};
use stack_core::mask::Masks;
use stack_core::plan::diff::text::{Style, unified};

pub fn diff(settings: &Settings, from: &str, to: &str, detailed: bool) -> Result<u8, Errors> {
    let stack = load_stack(settings)?;
    let before = merged_values(&stack, settings, from)?;
    let after = merged_values(&stack, settings, to)?;
    let masker = settings.masks.masker();
    let (mut before, mut after) = (Value::clone(&before), Value::clone(&after));
    if masker.enabled() {
        mark_changed_secrets(&settings.masks, &mut before, &mut after, (from, to));
    }
    masker.mask_object(&mut before);
    masker.mask_object(&mut after);
    let style = Style {
        color: settings.color && stdout_is_terminal(),
        context: 3,
    };
    let hunks = unified(Some(&before), Some(&after), &masker, style);
    if !hunks.is_empty() {
        output::stdout(&format!("--- {from}\n+++ {to}\n{hunks}"));
    }
    Ok(if detailed && !hunks.is_empty() {
        EXIT_CHANGES
    } else {
        0
    })
}

/// The stack files, parsed, with no environment chosen.
pub(super) fn load_stack(settings: &Settings) -> Result<Stack, Errors> {
    let files = config::discover(&settings.load.target)?;
    config::load(&files).map_err(Errors::from_all)
}

/// An environment's values files and secrets, merged.
fn merged_values(stack: &Stack, settings: &Settings, name: &str) -> Result<Arc<Value>, Errors> {
    Ok(resolve(stack, settings, name)?.values)
}

/// An environment with its values files and secrets merged (secrets
/// registered with the masker).
pub(super) fn resolve(
    stack: &Stack,
    settings: &Settings,
    name: &str,
) -> Result<ResolvedEnvironment, Errors> {
    let environment = resolve::environment(stack, name)?;
    let mut secrets = SecretFiles::new(
        settings
            .load
            .age_key_file
            .clone()
            .or_else(|| environment.age_key_file.clone()),
        &settings.masks,
    );
    resolve::resolve_environment(&environment, &mut secrets, None).map_err(Errors)
}

/// Colour only on a terminal.
pub(super) fn stdout_is_terminal() -> bool {
    use std::io::IsTerminal as _;
    std::io::stdout().is_terminal()
}

/// A secret that differs between the two sides would be masked alike on
/// both: name each side's environment instead, so the change shows.
fn mark_changed_secrets(masks: &Masks, before: &mut Value, after: &mut Value, names: (&str, &str)) {
    let (Value::Object(before), Value::Object(after)) = (before, after) else {
        return;
    };
    for (key, old) in before.iter_mut() {
        let Some(new) = after.get_mut(key) else {
            continue;
        };
        if old.is_object() && new.is_object() {
            mark_changed_secrets(masks, old, new, names);
        } else if old != new && (masks.hides(old) || masks.hides(new)) {
            *old = Value::String(format!("(sensitive value of {})", names.0));
            *new = Value::String(format!("(sensitive value of {})", names.1));
        }
    }
}

//! Shell completions: `stack completions bash|zsh|fish|powershell` prints
//! the script that registers `stack` with the shell; the shell then asks
//! `stack` itself (`STACK_COMPLETE=<shell> stack -- <words>`) for the
//! candidates — commands, flags, and from the stack file in the working
//! directory (or `STACK_FILE`) its environments and releases.

use std::path::PathBuf;

use clap_complete::engine::CompletionCandidate;
use stack_core::load::config::{self, Stack};

/// The variable the shell scripts set to ask for candidates.
pub const VARIABLE: &str = "STACK_COMPLETE";

/// The stack files where completion happens, if they load.
fn stack() -> Option<Stack> {
    let target = std::env::var_os("STACK_FILE").map_or_else(|| PathBuf::from("."), PathBuf::from);
    let files = config::discover(&target).ok()?;
    config::load(&files).ok()
}

/// Names written without an expression (`{{ … }}` is known only later).
fn plain(names: impl Iterator<Item = String>) -> Vec<CompletionCandidate> {
    names
        .filter(|name| !name.contains("{{"))
        .map(CompletionCandidate::new)
        .collect()
}

/// The stack's environments.
pub fn environments() -> Vec<CompletionCandidate> {
    stack().map_or_else(Vec::new, |stack| {
        plain(stack.environments.into_iter().map(|e| e.name))
    })
}

fn release_names(stack: &Stack) -> impl Iterator<Item = String> + '_ {
    stack
        .releases
        .iter()
        .filter_map(|r| r.name.as_str().map(str::to_string))
}

/// The stack's releases, by name.
pub fn releases() -> Vec<CompletionCandidate> {
    stack().map_or_else(Vec::new, |stack| plain(release_names(&stack)))
}

/// Selectors of one release each (`name=backend`).
pub fn selectors() -> Vec<CompletionCandidate> {
    stack().map_or_else(Vec::new, |stack| {
        plain(release_names(&stack).map(|name| format!("name={name}")))
    })
}

/// The registration script of `shell`.
pub fn script(shell: &str) -> Result<String, String> {
    let shells = clap_complete::env::Shells::builtins();
    let completer = shells.completer(shell).ok_or_else(|| {
        format!("no completions for the shell `{shell}`: bash, zsh, fish or powershell")
    })?;
    let mut out = Vec::new();
    completer
        .write_registration(VARIABLE, "stack", "stack", "stack", &mut out)
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

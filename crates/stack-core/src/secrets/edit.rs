//! The editor step of `stack secrets edit`: the plaintext written to a file
//! readable by its owner only (0600) in a private temporary folder (0700),
//! `$VISUAL` or `$EDITOR` (else `vi`) run on it through `sh`, the edited text
//! read back, and the folder removed however the edit ends — Ctrl-C, a
//! closed terminal or SIGTERM while the editor runs end the editor, not
//! stack, which then cleans up.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use zeroize::Zeroizing;

use crate::secrets::SecretsError;

/// The editor command line: `$VISUAL`, else `$EDITOR`, else `vi`. It may
/// carry arguments (`code --wait`).
pub(crate) fn editor_command() -> String {
    ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|command| !command.trim().is_empty())
        .unwrap_or_else(|| "vi".into())
}

/// From here on SIGINT, SIGTERM, SIGHUP and SIGQUIT no longer end the
/// process: tokio's handlers replace the default action (and stay for the
/// rest of the process, which ends right after the edit).
fn hold_signals() -> Option<(tokio::runtime::Runtime, Vec<tokio::signal::unix::Signal>)> {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .ok()?;
    let signals = {
        let _context = runtime.enter();
        [
            SignalKind::interrupt(),
            SignalKind::terminate(),
            SignalKind::hangup(),
            SignalKind::quit(),
        ]
        .into_iter()
        .filter_map(|kind| signal(kind).ok())
        .collect()
    };
    Some((runtime, signals))
}

/// Let the user edit `plaintext` (in a file named like `file`); the text
/// as saved.
pub fn run_editor(file: &Path, plaintext: &[u8]) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
    let command = editor_command();
    let failed = |reason: String| SecretsError::Editor {
        file: file.display().to_string(),
        command: command.clone(),
        reason,
    };
    // Removed when dropped, on every path out of here.
    let folder = tempfile::Builder::new()
        .prefix("stack-edit-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .map_err(|e| failed(format!("cannot create a temporary folder: {e}")))?;
    let name = file
        .file_name()
        .unwrap_or(std::ffi::OsStr::new("secrets.yaml"));
    let path = folder.path().join(name);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut temporary| temporary.write_all(plaintext))
        .map_err(|e| failed(format!("cannot write the temporary file: {e}")))?;
    let held = hold_signals();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{command} \"$1\""))
        .arg("sh")
        .arg(&path)
        .status()
        .map_err(|e| failed(format!("cannot start sh: {e}")))?;
    drop(held);
    if !status.success() {
        return Err(failed(match status.code() {
            Some(code) => format!("it exited with status {code}"),
            None => "it was killed by a signal".into(),
        }));
    }
    let edited = std::fs::read(&path)
        .map(Zeroizing::new)
        .map_err(|e| failed(format!("cannot read the edited file back: {e}")))?;
    folder
        .close()
        .map_err(|e| failed(format!("cannot remove the temporary folder: {e}")))?;
    Ok(edited)
}

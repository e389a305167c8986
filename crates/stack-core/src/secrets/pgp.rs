//! Data keys wrapped for OpenPGP keys, as sops does it: through the `gpg`
//! binary (`SOPS_GPG_EXEC`, else `gpg` on PATH) and the user's keyring
//! (`GNUPGHOME`, gpg-agent for passphrases). The data key travels on
//! gpg's stdin and stdout only, never on a command line.

use std::io::Write as _;
use std::process::{Command, Stdio};

use zeroize::Zeroizing;

/// The gpg program sops would run.
fn program() -> std::ffi::OsString {
    std::env::var_os("SOPS_GPG_EXEC")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "gpg".into())
}

/// Where keys come from, for messages: the program and its home.
pub(crate) fn source() -> String {
    let home = std::env::var("GNUPGHOME").unwrap_or_else(|_| "~/.gnupg".into());
    format!("{} (keyring {home})", program().to_string_lossy())
}

/// Run gpg with `args`, `input` on its stdin; its stdout, or why it failed.
fn run(args: &[&str], input: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut child = Command::new(program())
        .args(["--batch", "--quiet", "--no-tty"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot run {} ({e}); install GnuPG or set SOPS_GPG_EXEC",
                program().to_string_lossy()
            )
        })?;
    let written = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(input))
        .transpose();
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    let stdout = Zeroizing::new(output.stdout);
    if output.status.success() && written.is_ok() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let message: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    Err(if message.is_empty() {
        format!("gpg exited with {}", output.status)
    } else {
        message.join("; ")
    })
}

/// The data key in an armored PGP message, if the keyring opens it.
pub(crate) fn unwrap(enc: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    run(&["--decrypt"], enc.as_bytes())
}

/// `key` as an armored PGP message for the key `fingerprint` (without a
/// trailing newline, as sops writes it).
pub(crate) fn wrap(key: &[u8], fingerprint: &str) -> Result<String, String> {
    let armored = run(
        &[
            "--armor",
            "--trust-model",
            "always",
            "--no-encrypt-to",
            "--encrypt",
            "--recipient",
            fingerprint,
        ],
        key,
    )?;
    Ok(String::from_utf8_lossy(&armored).trim_end().to_string())
}

/// A fingerprint as sops takes it: hex digits, spaces removed; `None` if
/// it is not one.
pub(crate) fn fingerprint(text: &str) -> Option<String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let hex = compact.strip_prefix("0x").unwrap_or(&compact);
    (hex.len() >= 8 && hex.chars().all(|c| c.is_ascii_hexdigit())).then(|| hex.to_uppercase())
}

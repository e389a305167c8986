//! Where age identities come from, as sops finds them (sops-format.md §8):
//! `--age-key-file`, `SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE`, `SOPS_AGE_KEY_CMD`
//! and the default key file — all of them, not the first that exists.

use std::path::{Path, PathBuf};

use crate::secrets::SecretsError;

pub struct Identities {
    pub keys: Vec<Box<dyn age::Identity + Send + Sync>>,
    /// Where identities were looked for, for error messages.
    pub sources: Vec<String>,
}

fn parse(text: &str, source: &str, identities: &mut Identities) -> Result<(), SecretsError> {
    let file =
        age::IdentityFile::from_buffer(text.as_bytes()).map_err(|e| SecretsError::Identity {
            source_name: source.to_string(),
            reason: e.to_string(),
        })?;
    let keys = file.into_identities().map_err(|e| SecretsError::Identity {
        source_name: source.to_string(),
        reason: e.to_string(),
    })?;
    identities.keys.extend(keys);
    identities.sources.push(source.to_string());
    Ok(())
}

/// The default key file: `$XDG_CONFIG_HOME/sops/age/keys.txt`, else
/// `~/.config/sops/age/keys.txt`.
pub(crate) fn default_key_file() -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".config")))?;
    Some(config.join("sops").join("age").join("keys.txt"))
}

/// Every identity the user has made available.
pub fn load(explicit: Option<&Path>) -> Result<Identities, SecretsError> {
    let mut identities = Identities {
        keys: Vec::new(),
        sources: Vec::new(),
    };
    let read = |path: &Path| {
        fs_err::read_to_string(path).map_err(|e| SecretsError::Identity {
            source_name: path.display().to_string(),
            reason: crate::diagnostic::io_reason(&e),
        })
    };
    if let Some(path) = explicit {
        parse(
            &read(path)?,
            &format!("--age-key-file {}", path.display()),
            &mut identities,
        )?;
    }
    if let Ok(keys) = std::env::var("SOPS_AGE_KEY")
        && !keys.trim().is_empty()
    {
        // One identity per line, or several on one line; `#` lines are comments.
        let lines: Vec<&str> = keys
            .lines()
            .flat_map(|line| {
                if line.trim_start().starts_with('#') {
                    vec![line]
                } else {
                    line.split_whitespace().collect()
                }
            })
            .collect();
        parse(&lines.join("\n"), "SOPS_AGE_KEY", &mut identities)?;
    }
    if let Some(path) = std::env::var_os("SOPS_AGE_KEY_FILE").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        parse(
            &read(&path)?,
            &format!("SOPS_AGE_KEY_FILE {}", path.display()),
            &mut identities,
        )?;
    }
    if let Ok(command) = std::env::var("SOPS_AGE_KEY_CMD")
        && !command.trim().is_empty()
    {
        let words: Vec<&str> = command.split_whitespace().collect();
        let output = std::process::Command::new(words[0])
            .args(&words[1..])
            .output()
            .map_err(|e| SecretsError::Identity {
                source_name: "SOPS_AGE_KEY_CMD".into(),
                reason: e.to_string(),
            })?;
        parse(
            &String::from_utf8_lossy(&output.stdout),
            "SOPS_AGE_KEY_CMD",
            &mut identities,
        )?;
    }
    if let Some(path) = default_key_file()
        && path.is_file()
    {
        parse(&read(&path)?, &path.display().to_string(), &mut identities)?;
    }
    Ok(identities)
}

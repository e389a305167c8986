//! Secrets: SOPS files encrypted for age, decrypted in memory, once per file
//! per run (`sops`); the identities they are decrypted with
//! (`identities`); masking of every decrypted value lives in `crate::mask`.

pub mod encrypt;
pub mod identities;
mod shamir;
pub mod sops;
pub mod tree;

use std::path::Path;

use crate::secrets::tree::Tree;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error(
        "cannot read {}: {reason}",
        crate::diagnostic::display_path(Path::new(file))
    )]
    Read { file: String, reason: String },
    #[error(
        "{}: not a SOPS file (no `sops` metadata)",
        crate::diagnostic::display_path(Path::new(file))
    )]
    NotSops { file: String },
    #[error(
        "{}: malformed SOPS file: {reason}",
        crate::diagnostic::display_path(Path::new(file))
    )]
    Malformed { file: String, reason: String },
    #[error("{}: encrypted only for {} — not supported, use age", crate::diagnostic::display_path(Path::new(file)), kinds.join(", "))]
    Unsupported { file: String, kinds: Vec<String> },
    #[error("{}: no identity can decrypt it (recipients: {})", crate::diagnostic::display_path(Path::new(file)), recipients.join(", "))]
    NoIdentity {
        file: String,
        recipients: Vec<String>,
        tried: Vec<String>,
    },
    #[error(
        "{}: cannot decrypt `{path}`: {reason}",
        crate::diagnostic::display_path(Path::new(file))
    )]
    Value {
        file: String,
        path: String,
        reason: String,
    },
    #[error("{}: {reason}", crate::diagnostic::display_path(Path::new(file)))]
    Mac { file: String, reason: String },
    #[error("cannot load age identities from {source_name}: {reason}")]
    Identity { source_name: String, reason: String },
}

impl SecretsError {
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::NoIdentity { tried, .. } => Some(if tried.is_empty() {
                "no age identity was found: set SOPS_AGE_KEY_FILE, SOPS_AGE_KEY or SOPS_AGE_KEY_CMD, or put keys in ~/.config/sops/age/keys.txt".into()
            } else {
                format!("identities tried: {}", tried.join(", "))
            }),
            Self::Mac { .. } | Self::Value { .. } => Some("restore the file from git, or re-encrypt it with `sops`".into()),
            Self::Unsupported { .. } => Some("re-encrypt the file for age recipients (`sops updatekeys` with age keys in .sops.yaml)".into()),
            _ => None,
        }
    }
}

/// Parse and decrypt a SOPS file (YAML, or JSON by extension) into values.
pub fn decrypt_file(
    path: &Path,
    identities: &identities::Identities,
) -> Result<sops::Decrypted, SecretsError> {
    let file = path.display().to_string();
    let text = fs_err::read_to_string(path).map_err(|e| SecretsError::Read {
        file: file.clone(),
        reason: crate::diagnostic::io_reason(&e),
    })?;
    let documents: Vec<Tree> = if path.extension().is_some_and(|e| e == "json") {
        vec![
            serde_json::from_str(&text).map_err(|e| SecretsError::Malformed {
                file: file.clone(),
                reason: e.to_string(),
            })?,
        ]
    } else {
        tree::parse_yaml(&text).map_err(|reason| SecretsError::Malformed {
            file: file.clone(),
            reason,
        })?
    };
    sops::decrypt(&file, documents, identities)
}

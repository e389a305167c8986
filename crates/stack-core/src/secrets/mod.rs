//! Secrets: SOPS files encrypted for age or PGP keys (`sops`, `encrypt`,
//! `pgp` through gpg) and plain age
//! files (`age_file`), decrypted in memory, once per file per run; the
//! identities they are decrypted with (`identities`), the key groups
//! (`keys`) and `.sops.yaml` rules (`creation`); `edit` runs the editor.
//! Masking of every decrypted value lives in `crate::mask`.

pub mod age_file;
pub(crate) mod cipher;
pub mod creation;
pub mod edit;
pub mod encrypt;
pub mod identities;
pub mod keys;
mod pgp;
pub mod rule;
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
    #[error("{}: encrypted only for {} — not supported, use age or PGP", crate::diagnostic::display_path(Path::new(file)), kinds.join(", "))]
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
    #[error(
        "{}: no .sops.yaml found in the working directory or its parents",
        crate::diagnostic::display_path(Path::new(file))
    )]
    NoConfig { file: String },
    #[error("{}: {reason}", crate::diagnostic::display_path(Path::new(config)))]
    Config { config: String, reason: String },
    #[error(
        "{}: cannot be edited: {reason}",
        crate::diagnostic::display_path(Path::new(file))
    )]
    NotEditable { file: String, reason: String },
    #[error(
        "{}: cannot encrypt it: {reason}",
        crate::diagnostic::display_path(Path::new(file))
    )]
    Plaintext { file: String, reason: String },
    #[error(
        "{}: no creation rule matches {file}",
        crate::diagnostic::display_path(Path::new(config))
    )]
    NoRule { config: String, file: String },
    #[error("{}: the creation rule for {file} names {} keys — not supported, use age or PGP", crate::diagnostic::display_path(Path::new(config)), kinds.join(", "))]
    UnsupportedRule {
        config: String,
        file: String,
        kinds: Vec<String>,
    },
    #[error("bad age recipient `{recipient}`: {reason}")]
    Recipient { recipient: String, reason: String },
    #[error(
        "{}: the age file is protected by a passphrase and none was given",
        crate::diagnostic::display_path(Path::new(file))
    )]
    NoPassphrase { file: String },
    #[error(
        "{}: wrong passphrase",
        crate::diagnostic::display_path(Path::new(file))
    )]
    WrongPassphrase { file: String },
    #[error(
        "{}: the edited text is not valid {format}: {reason}",
        crate::diagnostic::display_path(Path::new(file))
    )]
    Edited {
        file: String,
        format: String,
        reason: String,
    },
    #[error(
        "{}: the editor `{command}` failed: {reason}",
        crate::diagnostic::display_path(Path::new(file))
    )]
    Editor {
        file: String,
        command: String,
        reason: String,
    },
}

impl SecretsError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Self::NoIdentity { tried, .. } if tried.is_empty() => "no age identity was found: set SOPS_AGE_KEY_FILE, SOPS_AGE_KEY or SOPS_AGE_KEY_CMD, or put keys in ~/.config/sops/age/keys.txt".into(),
            Self::NoIdentity { tried, .. } => format!("identities tried: {}", tried.join(", ")),
            Self::Mac { .. } | Self::Value { .. } => "restore the file from git, or re-encrypt it with `sops`".into(),
            Self::Unsupported { .. } => "re-encrypt the file for age or PGP recipients (`stack secrets updatekeys` with those keys in .sops.yaml)".into(),
            Self::NotSops { .. } => "encrypt it with `stack secrets encrypt --in-place`, or list it under `values:` if it is not secret".into(),
            Self::Malformed { .. } => "restore the file from git; files written by sops or `stack secrets` have this form".into(),
            Self::Read { .. } => "check the path".into(),
            Self::Identity { .. } => "an identity file holds lines starting with AGE-SECRET-KEY-1 (`stack secrets keygen` writes one)".into(),
            Self::NotEditable { .. } => "decrypt it (`stack secrets decrypt --output-file`), change the plaintext, and encrypt it again".into(),
            Self::Config { .. } => "see `creation_rules` in sops's documentation; stack reads the same file".into(),
            Self::Plaintext { .. } => "the plaintext must be YAML maps (or a JSON object) without a `sops` key".into(),
            Self::NoConfig { .. } => "create a .sops.yaml with `creation_rules` naming age recipients".into(),
            Self::NoRule { .. } => "add a creation rule whose path_regex matches the file, or one without path_regex".into(),
            Self::UnsupportedRule { .. } => "name age recipients (`age: age1…`) or PGP fingerprints (`pgp: …`) in the rule; `stack secrets keygen` makes an age identity".into(),
            Self::Recipient { .. } => "age recipients look like age1… (`stack secrets keygen` prints one)".into(),
            Self::NoPassphrase { .. } => "set STACK_AGE_PASSPHRASE, or run in a terminal to be asked".into(),
            Self::WrongPassphrase { .. } => "check STACK_AGE_PASSPHRASE".into(),
            Self::Edited { .. } | Self::Editor { .. } => "the file is unchanged; run `stack secrets edit` again".into(),
        })
    }
}

/// Read a secrets file (its path in the error).
pub fn read(path: &Path) -> Result<Vec<u8>, SecretsError> {
    fs_err::read(path).map_err(|e| SecretsError::Read {
        file: path.display().to_string(),
        reason: crate::diagnostic::io_reason(&e),
    })
}

/// Parse a plaintext YAML stream, or JSON by extension.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Tree>, String> {
    if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(text)
            .map(|document| vec![document])
            .map_err(|e| e.to_string())
    } else {
        tree::parse_yaml(text)
    }
}

/// Decrypt a SOPS file (YAML, or JSON by extension) or a plain age file
/// holding YAML into values.
pub fn decrypt_file(
    path: &Path,
    identities: &identities::Identities,
) -> Result<sops::Decrypted, SecretsError> {
    let file = path.display().to_string();
    let contents = read(path)?;
    let malformed = |reason: String| SecretsError::Malformed {
        file: file.clone(),
        reason,
    };
    if age_file::is_age(&contents) {
        let plaintext = age_file::decrypt(&file, &contents, identities)?;
        let text = std::str::from_utf8(&plaintext)
            .map_err(|_| malformed("the decrypted age file is not UTF-8 text".into()))?;
        let documents = tree::parse_yaml(text)
            .map_err(|reason| malformed(format!("the decrypted age file is not YAML: {reason}")))?;
        if documents.iter().any(|d| !matches!(d, Tree::Map(_))) {
            return Err(malformed(
                "the decrypted age file is not a YAML map of values".into(),
            ));
        }
        let mut secrets = Vec::new();
        for document in &documents {
            document.strings(&mut secrets);
        }
        return Ok(sops::Decrypted {
            documents,
            secrets,
            recipients: Vec::new(),
        });
    }
    let text = String::from_utf8(contents).map_err(|_| malformed("not UTF-8 text".into()))?;
    let documents = parse(path, &text).map_err(malformed)?;
    sops::decrypt(&file, documents, identities)
}

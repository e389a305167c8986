//! Which values of a SOPS file are encrypted (sops-format.md §4): one of the
//! six rule fields, read from a file's metadata or a `.sops.yaml` rule.

use regex::Regex;

use crate::secrets::SecretsError;
use crate::secrets::tree::Tree;

/// The rule fields, in the order sops writes them.
pub(crate) const FIELDS: [&str; 6] = [
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
];

pub(crate) enum Rule {
    UnencryptedSuffix(String),
    EncryptedSuffix(String),
    UnencryptedRegex(Regex),
    EncryptedRegex(Regex),
    /// The comment rules need comments, which are not kept: decided by
    /// whether the value is an `ENC[…]` string.
    ByValue,
}

impl Rule {
    pub fn encrypted(&self, path: &[String], value: &Tree) -> bool {
        match self {
            Self::UnencryptedSuffix(suffix) => !path.iter().any(|k| k.ends_with(suffix.as_str())),
            Self::EncryptedSuffix(suffix) => path.iter().any(|k| k.ends_with(suffix.as_str())),
            Self::UnencryptedRegex(regex) => !path.iter().any(|k| regex.is_match(k)),
            Self::EncryptedRegex(regex) => path.iter().any(|k| regex.is_match(k)),
            Self::ByValue => value.as_str().is_some_and(|v| v.starts_with("ENC[")),
        }
    }

    /// The rule a metadata block or a creation rule names; `file` is where
    /// it was read, for errors.
    pub fn read(file: &str, block: &Tree) -> Result<(Self, (String, String)), SecretsError> {
        let set: Vec<(String, String)> = FIELDS
            .iter()
            .filter_map(|f| {
                block
                    .get(f)
                    .and_then(Tree::as_str)
                    .filter(|v| !v.is_empty())
                    .map(|v| ((*f).to_string(), v.to_string()))
            })
            .collect();
        let field = match set.as_slice() {
            [] => ("unencrypted_suffix".to_string(), "_unencrypted".to_string()),
            [one] => one.clone(),
            _ => {
                return Err(SecretsError::Malformed {
                    file: file.into(),
                    reason: "more than one encryption rule (…_suffix, …_regex)".into(),
                });
            }
        };
        let regex = |pattern: &str| {
            Regex::new(pattern).map_err(|e| SecretsError::Malformed {
                file: file.into(),
                reason: format!("bad regex in `{}`: {e}", field.0),
            })
        };
        let rule = match field.0.as_str() {
            "unencrypted_suffix" => Self::UnencryptedSuffix(field.1.clone()),
            "encrypted_suffix" => Self::EncryptedSuffix(field.1.clone()),
            "unencrypted_regex" => Self::UnencryptedRegex(regex(&field.1)?),
            "encrypted_regex" => Self::EncryptedRegex(regex(&field.1)?),
            _ => Self::ByValue,
        };
        Ok((rule, field))
    }
}

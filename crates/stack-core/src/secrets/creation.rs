//! What a file is encrypted for (sops-format.md §9): the first creation
//! rule of the `.sops.yaml` found from the working directory upwards whose
//! `path_regex` matches — its age recipients and PGP fingerprints, or
//! `key_groups` with
//! `shamir_threshold`, its encryption rule and `mac_only_encrypted`. Also
//! the same, read back from an encrypted file's metadata (for `rotate`).

use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use crate::secrets::SecretsError;
use crate::secrets::keys::{Groups, Recipient};
use crate::secrets::tree::Tree;

/// What a creation rule says.
#[derive(Debug, Clone)]
pub struct Creation {
    pub groups: Groups,
    /// One of the rule fields and its value (`unencrypted_suffix` by default).
    pub rule: (String, String),
    pub mac_only_encrypted: bool,
}

/// Key types sops knows and we do not (top level of a rule, and in groups).
const OTHER_KEYS: [&str; 6] = [
    "kms",
    "gcp_kms",
    "azure_keyvault",
    "hc_vault_transit_uri",
    "hc_vault",
    "hckms",
];

impl Creation {
    /// The rule as a metadata-like block, for [`crate::secrets::rule::Rule::read`].
    pub(crate) fn rule_block(&self) -> Tree {
        Tree::Map(vec![(self.rule.0.clone(), Tree::Str(self.rule.1.clone()))])
    }

    /// What an encrypted file was created with, from its metadata.
    pub fn of_file(file: &str, metadata: &Tree) -> Result<Self, SecretsError> {
        let (_, rule) = crate::secrets::rule::Rule::read(file, metadata)?;
        Ok(Self {
            groups: crate::secrets::keys::groups_of(metadata),
            rule,
            mac_only_encrypted: metadata.get("mac_only_encrypted") == Some(&Tree::Bool(true)),
        })
    }
}

/// A key list: a comma-separated string or a YAML list, trimmed, without
/// empty items or duplicates.
fn key_list(tree: Option<&Tree>) -> Vec<String> {
    let items: Vec<String> = match tree {
        Some(Tree::Str(list)) => list.split(',').map(str::to_string).collect(),
        Some(Tree::Seq(items)) => items
            .iter()
            .filter_map(Tree::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    let mut out: Vec<String> = Vec::new();
    for item in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
        if !out.iter().any(|known| known == item) {
            out.push(item.to_string());
        }
    }
    out
}

fn config_file(file: &Path) -> Result<PathBuf, SecretsError> {
    let cwd = std::env::current_dir().unwrap_or_default();
    cwd.ancestors()
        .take(100)
        .map(|d| d.join(".sops.yaml"))
        .find(|p| p.is_file())
        .ok_or_else(|| SecretsError::NoConfig {
            file: file.display().to_string(),
        })
}

/// The creation rule for a file.
pub fn creation_for(file: &Path) -> Result<Creation, SecretsError> {
    let config = config_file(file)?;
    let config_name = config.display().to_string();
    let text = fs_err::read_to_string(&config).map_err(|e| SecretsError::Read {
        file: config_name.clone(),
        reason: crate::diagnostic::io_reason(&e),
    })?;
    let documents =
        crate::secrets::tree::parse_yaml(&text).map_err(|reason| SecretsError::Config {
            config: config_name.clone(),
            reason,
        })?;
    let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let relative = config
        .parent()
        .and_then(|dir| absolute.strip_prefix(dir).ok())
        .unwrap_or(&absolute)
        .to_string_lossy()
        .into_owned();
    let rules = match documents.first().and_then(|d| d.get("creation_rules")) {
        Some(Tree::Seq(rules)) => rules.clone(),
        _ => Vec::new(),
    };
    let rule = rules
        .iter()
        .find(|rule| match rule.get("path_regex").and_then(Tree::as_str) {
            Some(pattern) => regex::Regex::new(pattern).is_ok_and(|r| r.is_match(&relative)),
            None => true,
        })
        .ok_or_else(|| SecretsError::NoRule {
            config: config_name.clone(),
            file: relative.clone(),
        })?;
    read_rule(&config_name, &relative, rule)
}

/// `shamir_threshold`: all groups by default; with several groups at least
/// two (sops cannot split a key for fewer), at most the number of groups.
fn threshold(rule: &Tree, groups: usize) -> Result<usize, String> {
    let threshold = match rule.get("shamir_threshold") {
        None | Some(Tree::Null | Tree::Int(0)) => return Ok(groups),
        Some(Tree::Int(n)) => usize::try_from(*n).unwrap_or(0),
        Some(_) => 0,
    };
    if groups == 1 || (2..=groups).contains(&threshold) {
        Ok(threshold.min(groups))
    } else {
        Err(format!(
            "shamir_threshold must be a number from 2 to {groups} (the number of key groups)"
        ))
    }
}

/// The recipients a rule or key group names: its `age` list, then `pgp`.
fn group_recipients(group: &Tree) -> Result<Vec<Recipient>, String> {
    let mut recipients = Vec::new();
    for recipient in key_list(group.get("age")) {
        if let Err(error) = age::x25519::Recipient::from_str(&recipient) {
            return Err(format!("bad age recipient `{recipient}`: {error}"));
        }
        recipients.push(Recipient::Age(recipient));
    }
    for key in key_list(group.get("pgp")) {
        let fingerprint = crate::secrets::pgp::fingerprint(&key)
            .ok_or_else(|| format!("bad PGP fingerprint `{key}`: expected hex digits"))?;
        recipients.push(Recipient::Pgp(fingerprint));
    }
    Ok(recipients)
}

fn read_rule(config: &str, file: &str, rule: &Tree) -> Result<Creation, SecretsError> {
    let groups: Vec<&Tree> = match rule.get("key_groups") {
        Some(Tree::Seq(groups)) if !groups.is_empty() => groups.iter().collect(),
        _ => vec![rule],
    };
    let others: Vec<String> = OTHER_KEYS
        .iter()
        .filter(|k| {
            groups
                .iter()
                .chain([&rule])
                .any(|g| !key_list(g.get(k)).is_empty())
        })
        .map(|k| (*k).to_string())
        .collect();
    if !others.is_empty() {
        return Err(SecretsError::UnsupportedRule {
            config: config.into(),
            file: file.into(),
            kinds: others,
        });
    }
    let bad = |reason: String| SecretsError::Config {
        config: config.into(),
        reason: format!("the creation rule for {file}: {reason}"),
    };
    let groups = groups
        .iter()
        .map(|group| group_recipients(group).map_err(bad))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(index) = groups.iter().position(Vec::is_empty) {
        return Err(bad(if groups.len() == 1 {
            "it names no age recipient or PGP key".into()
        } else {
            format!("key group {} names no age recipient or PGP key", index + 1)
        }));
    }
    let threshold = threshold(rule, groups.len()).map_err(bad)?;
    let (_, field) = crate::secrets::rule::Rule::read(config, rule).map_err(|e| match e {
        SecretsError::Malformed { reason, .. } => bad(reason),
        other => other,
    })?;
    Ok(Creation {
        groups: Groups { groups, threshold },
        rule: field,
        mac_only_encrypted: rule.get("mac_only_encrypted") == Some(&Tree::Bool(true)),
    })
}

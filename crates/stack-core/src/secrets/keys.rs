//! The data key of a SOPS file and its key groups (sops-format.md §7):
//! unwrapped with the user's age identities or, failing those, their PGP
//! keyring (combining Shamir shares when there are several groups), and
//! wrapped for the recipients of each group.

use std::io::Read as _;

use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::secrets::SecretsError;
use crate::secrets::identities::Identities;
use crate::secrets::tree::Tree;

/// Who a data key is wrapped for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// An age recipient (`age1…`).
    Age(String),
    /// An OpenPGP key fingerprint, wrapped through `gpg` and the keyring.
    Pgp(String),
}

impl std::fmt::Display for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Age(recipient) => f.write_str(recipient),
            Self::Pgp(fingerprint) => write!(f, "pgp:{fingerprint}"),
        }
    }
}

/// Key groups as recipients, and how many groups are needed.
#[derive(Debug, Clone, PartialEq)]
pub struct Groups {
    pub groups: Vec<Vec<Recipient>>,
    pub threshold: usize,
}

fn text(tree: Option<&Tree>) -> String {
    tree.and_then(Tree::as_str).unwrap_or_default().to_string()
}

/// The age entries of a group: `(recipient, armored file)`.
pub(crate) fn age_entries(group: &Tree) -> Vec<(String, String)> {
    match group.get("age") {
        Some(Tree::Seq(entries)) => entries
            .iter()
            .map(|e| (text(e.get("recipient")), text(e.get("enc"))))
            .collect(),
        _ => Vec::new(),
    }
}

/// The PGP entries of a group: `(fingerprint, armored message)`.
fn pgp_entries(group: &Tree) -> Vec<(String, String)> {
    match group.get("pgp") {
        Some(Tree::Seq(entries)) => entries
            .iter()
            .map(|e| (text(e.get("fp")), text(e.get("enc"))))
            .collect(),
        _ => Vec::new(),
    }
}

/// Every recipient of a group: age first, then PGP.
fn recipients_of(group: &Tree) -> Vec<Recipient> {
    let age = age_entries(group)
        .into_iter()
        .map(|(r, _)| Recipient::Age(r));
    let pgp = pgp_entries(group)
        .into_iter()
        .map(|(fp, _)| Recipient::Pgp(fp));
    age.chain(pgp).collect()
}

/// The groups of a metadata block: `key_groups` when there are several,
/// else the flat `age` list.
fn metadata_groups(metadata: &Tree) -> Vec<Tree> {
    match metadata.get("key_groups") {
        Some(Tree::Seq(groups)) if groups.len() > 1 => groups.clone(),
        _ => vec![metadata.clone()],
    }
}

/// A file's recipients per group, and its threshold.
pub(crate) fn groups_of(metadata: &Tree) -> Groups {
    let groups: Vec<Vec<Recipient>> = metadata_groups(metadata)
        .iter()
        .map(recipients_of)
        .collect();
    let threshold = match metadata.get("shamir_threshold") {
        Some(Tree::Int(n)) if *n > 0 => usize::try_from(*n).unwrap_or(groups.len()),
        _ => groups.len(),
    };
    Groups { groups, threshold }
}

fn unwrap_with_age(enc: &str, identities: &Identities) -> Option<Zeroizing<Vec<u8>>> {
    let reader = age::armor::ArmoredReader::new(enc.trim_start().as_bytes());
    let decryptor = age::Decryptor::new(reader).ok()?;
    let mut stream = decryptor
        .decrypt(
            identities
                .keys
                .iter()
                .map(|k| k.as_ref() as &dyn age::Identity),
        )
        .ok()?;
    let mut key = Zeroizing::new(Vec::new());
    stream.read_to_end(&mut key).ok()?;
    Some(key)
}

/// The data key (or Shamir share) of one group: from an age entry the
/// identities open, else from a PGP entry the keyring opens (gpg's
/// refusals noted in `refusals`).
fn group_key(
    group: &Tree,
    identities: &Identities,
    refusals: &mut Vec<String>,
) -> Option<Zeroizing<Vec<u8>>> {
    if let Some(key) = age_entries(group)
        .iter()
        .find_map(|(_, enc)| unwrap_with_age(enc, identities))
    {
        return Some(key);
    }
    pgp_entries(group)
        .iter()
        .find_map(|(fp, enc)| match crate::secrets::pgp::unwrap(enc) {
            Ok(key) => Some(key),
            Err(reason) => {
                refusals.push(format!(
                    "{} for {fp}: {reason}",
                    crate::secrets::pgp::source()
                ));
                None
            }
        })
}

/// The data key of a file, and its recipients (for messages).
pub(crate) fn data_key(
    file: &str,
    metadata: &Tree,
    identities: &Identities,
) -> Result<(Zeroizing<Vec<u8>>, Vec<String>), SecretsError> {
    let groups = metadata_groups(metadata);
    let recipients: Vec<String> = groups
        .iter()
        .flat_map(recipients_of)
        .map(|r| r.to_string())
        .collect();
    if recipients.is_empty() {
        let others: Vec<String> = ["kms", "gcp_kms", "azure_kv", "hc_vault"]
            .into_iter()
            .filter(|k| {
                groups
                    .iter()
                    .any(|g| matches!(g.get(k), Some(Tree::Seq(v)) if !v.is_empty()))
            })
            .map(str::to_string)
            .collect();
        return Err(SecretsError::Unsupported {
            file: file.into(),
            kinds: if others.is_empty() {
                vec!["no key at all".into()]
            } else {
                others
            },
        });
    }
    let mut refusals = Vec::new();
    let shares: Vec<Zeroizing<Vec<u8>>> = groups
        .iter()
        .filter_map(|group| group_key(group, identities, &mut refusals))
        .collect();
    let threshold = groups_of(metadata).threshold;
    let no_identity = || SecretsError::NoIdentity {
        file: file.into(),
        recipients: recipients.clone(),
        tried: identities
            .sources
            .iter()
            .cloned()
            .chain(refusals.clone())
            .collect(),
    };
    if groups.len() == 1 {
        let key = shares.into_iter().next().ok_or_else(no_identity)?;
        return Ok((key, recipients));
    }
    if shares.len() < threshold {
        return Err(no_identity());
    }
    let key = crate::secrets::shamir::combine(&shares).ok_or_else(|| SecretsError::Malformed {
        file: file.into(),
        reason: "bad Shamir shares in key_groups".into(),
    })?;
    Ok((key, recipients))
}

/// An armored age file of `key` for one recipient, ending with a newline.
pub(crate) fn wrap_key(key: &[u8], recipient: &str) -> Result<String, SecretsError> {
    let armored = crate::secrets::age_file::encrypt(&[recipient.to_string()], key)?;
    let mut text = String::from_utf8_lossy(&armored).into_owned();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

/// The metadata fields of one group: its `age` and `pgp` lists (each only
/// when it has recipients), as sops writes them.
fn group_fields(key: &[u8], recipients: &[Recipient]) -> Result<Map<String, Value>, SecretsError> {
    let mut age = Vec::new();
    let mut pgp = Vec::new();
    for recipient in recipients {
        match recipient {
            Recipient::Age(r) => age.push(json!({"recipient": r, "enc": wrap_key(key, r)?})),
            Recipient::Pgp(fp) => {
                let enc = crate::secrets::pgp::wrap(key, fp).map_err(|reason| {
                    SecretsError::Recipient {
                        recipient: format!("pgp:{fp}"),
                        reason,
                    }
                })?;
                pgp.push(json!({"created_at": stack_kube::clock::now(), "enc": enc, "fp": fp}));
            }
        }
    }
    let mut fields = Map::new();
    for (name, entries) in [("age", age), ("pgp", pgp)] {
        if !entries.is_empty() {
            fields.insert(name.into(), Value::Array(entries));
        }
    }
    Ok(fields)
}

/// The metadata fields that carry the data key for these groups, as sops
/// writes them: flat `age`/`pgp` lists for one group, else
/// `shamir_threshold` and `key_groups` holding one Shamir share per group.
pub(crate) fn key_fields(
    key: &[u8],
    groups: &Groups,
) -> Result<Vec<(String, Value)>, SecretsError> {
    if let [only] = groups.groups.as_slice() {
        return Ok(group_fields(key, only)?.into_iter().collect());
    }
    let shares = crate::secrets::shamir::split(key, groups.groups.len(), groups.threshold);
    let key_groups = groups
        .groups
        .iter()
        .zip(&shares)
        .map(|(recipients, share)| group_fields(share, recipients).map(Value::Object))
        .collect::<Result<Vec<_>, SecretsError>>()?;
    Ok(vec![
        ("shamir_threshold".into(), json!(groups.threshold)),
        ("key_groups".into(), Value::Array(key_groups)),
    ])
}

/// A metadata block with its key fields replaced by `fields`, written where
/// the old ones were (other fields keep their order).
pub(crate) fn replace_key_fields(
    metadata: &Map<String, Value>,
    fields: Vec<(String, Value)>,
) -> Map<String, Value> {
    let is_key = |k: &str| matches!(k, "age" | "pgp" | "key_groups" | "shamir_threshold");
    let mut fields = Some(fields);
    let mut out = Map::new();
    for (name, value) in metadata {
        if is_key(name) {
            for (new_name, new_value) in fields.take().into_iter().flatten() {
                out.insert(new_name, new_value);
            }
        } else {
            out.insert(name.clone(), value.clone());
        }
    }
    let mut rest = Map::new();
    for (name, value) in fields.into_iter().flatten() {
        rest.insert(name, value);
    }
    rest.extend(out);
    rest
}

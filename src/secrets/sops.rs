//! Decrypting SOPS files encrypted for age (sops-format.md): the data key
//! from the age entries (or Shamir key groups), every value with
//! AES-256-GCM and its path as additional data, and the MAC verified.

use std::io::Read as _;

use aes_gcm::aead::consts::{U12, U32};
use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{AesGcm, aes::Aes256};
use base64::Engine as _;
use regex::Regex;
use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroizing;

use crate::secrets::SecretsError;
use crate::secrets::identities::Identities;
use crate::secrets::tree::{Tree, go_float};

/// Which leaves are encrypted (sops-format.md §4).
enum Rule {
    UnencryptedSuffix(String),
    EncryptedSuffix(String),
    UnencryptedRegex(Regex),
    EncryptedRegex(Regex),
    /// The comment rules need comments, which are not kept: decided by
    /// whether the value is an `ENC[…]` string.
    ByValue,
}

impl Rule {
    fn encrypted(&self, path: &[String], value: &Tree) -> bool {
        match self {
            Self::UnencryptedSuffix(suffix) => !path.iter().any(|k| k.ends_with(suffix.as_str())),
            Self::EncryptedSuffix(suffix) => path.iter().any(|k| k.ends_with(suffix.as_str())),
            Self::UnencryptedRegex(regex) => !path.iter().any(|k| regex.is_match(k)),
            Self::EncryptedRegex(regex) => path.iter().any(|k| regex.is_match(k)),
            Self::ByValue => value.as_str().is_some_and(|v| v.starts_with("ENC[")),
        }
    }
}

struct Decryption<'a> {
    key: &'a [u8],
    rule: Rule,
    mac_only_encrypted: bool,
    hasher: Sha512,
    file: &'a str,
    secrets: Vec<String>,
}

/// A decrypted file: its documents and the strings that were secret.
pub struct Decrypted {
    pub documents: Vec<Tree>,
    pub secrets: Vec<String>,
    pub recipients: Vec<String>,
}

fn text(tree: Option<&Tree>) -> String {
    tree.and_then(Tree::as_str).unwrap_or_default().to_string()
}

/// Decrypt a SOPS file's documents (YAML: one or more; JSON: one).
pub fn decrypt(
    file: &str,
    mut documents: Vec<Tree>,
    identities: &Identities,
) -> Result<Decrypted, SecretsError> {
    let metadata = documents
        .first()
        .and_then(|d| d.get("sops"))
        .cloned()
        .ok_or_else(|| SecretsError::NotSops { file: file.into() })?;
    for document in &mut documents {
        if let Tree::Map(entries) = document {
            entries.retain(|(k, _)| k != "sops");
        }
    }
    if text(metadata.get("version")).is_empty() {
        return Err(SecretsError::Malformed {
            file: file.into(),
            reason: "the `sops` metadata has no version".into(),
        });
    }
    let (key, recipients) = data_key(file, &metadata, identities)?;
    let rule = rule(file, &metadata)?;
    let mac_only_encrypted = metadata.get("mac_only_encrypted") == Some(&Tree::Bool(true));
    let mut decryption = Decryption {
        key: &key,
        rule,
        mac_only_encrypted,
        hasher: Sha512::new(),
        file,
        secrets: Vec::new(),
    };
    if mac_only_encrypted {
        decryption.hasher.update(Sha256::digest(b"sops"));
    }
    let mut decrypted = Vec::with_capacity(documents.len());
    for document in documents {
        decrypted.push(decryption.walk(document, &mut Vec::new())?);
    }
    let computed = crate::hex::upper(&decryption.hasher.finalize_reset());
    let lastmodified = text(metadata.get("lastmodified"));
    let stored = text(metadata.get("mac"));
    if stored.is_empty() {
        return Err(SecretsError::Mac {
            file: file.into(),
            reason: "the file has no MAC".into(),
        });
    }
    let stored_mac =
        decrypt_value(&key, &stored, lastmodified.as_bytes()).map_err(|_| SecretsError::Mac {
            file: file.into(),
            reason: "cannot decrypt the MAC (lastmodified or MAC tampered)".into(),
        })?;
    if stored_mac.0.as_slice() != computed.as_bytes() {
        return Err(SecretsError::Mac {
            file: file.into(),
            reason: "MAC mismatch: the file was changed without sops (values edited, swapped or removed)".into(),
        });
    }
    Ok(Decrypted {
        documents: decrypted,
        secrets: decryption.secrets,
        recipients,
    })
}

impl Decryption<'_> {
    fn walk(&mut self, tree: Tree, path: &mut Vec<String>) -> Result<Tree, SecretsError> {
        Ok(match tree {
            Tree::Map(entries) => {
                let mut out = Vec::with_capacity(entries.len());
                for (key, value) in entries {
                    path.push(key.clone());
                    let value = self.walk(value, path)?;
                    path.pop();
                    out.push((key, value));
                }
                Tree::Map(out)
            }
            Tree::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    // Comments inside lists come as `type:comment` items: dropped.
                    if let Some(value) = self.leaf_or_branch(item, path)? {
                        out.push(value);
                    }
                }
                Tree::Seq(out)
            }
            leaf => self.leaf(leaf, path)?,
        })
    }

    fn leaf_or_branch(
        &mut self,
        item: Tree,
        path: &mut Vec<String>,
    ) -> Result<Option<Tree>, SecretsError> {
        match item {
            Tree::Str(value) if value.starts_with("ENC[") && value.contains(",type:comment]") => {
                let aad = aad(path);
                let _ = decrypt_value(self.key, &value, aad.as_bytes());
                Ok(None)
            }
            other => self.walk(other, path).map(Some),
        }
    }

    fn leaf(&mut self, leaf: Tree, path: &[String]) -> Result<Tree, SecretsError> {
        if leaf == Tree::Null {
            return Ok(leaf);
        }
        if !self.rule.encrypted(path, &leaf) {
            if !self.mac_only_encrypted {
                self.hasher.update(canonical(&leaf).as_bytes());
            }
            return Ok(leaf);
        }
        let Tree::Str(encrypted) = &leaf else {
            return Err(SecretsError::Value {
                file: self.file.into(),
                path: path.join("."),
                reason: "a value that should be encrypted is not".into(),
            });
        };
        if encrypted.is_empty() {
            return Ok(leaf);
        }
        let (plaintext, kind) =
            decrypt_value(self.key, encrypted, aad(path).as_bytes()).map_err(|reason| {
                SecretsError::Value {
                    file: self.file.into(),
                    path: path.join("."),
                    reason,
                }
            })?;
        let text = Zeroizing::new(String::from_utf8_lossy(&plaintext).into_owned());
        let value = match kind.as_str() {
            "str" | "time" | "bytes" => Tree::Str(text.to_string()),
            "int" => text
                .trim()
                .parse()
                .map(Tree::Int)
                .map_err(|_| self.bad(path, "not an int"))?,
            "float" => parse_float(&text)
                .map(Tree::Float)
                .ok_or_else(|| self.bad(path, "not a float"))?,
            "bool" => Tree::Bool(matches!(
                text.as_str(),
                "1" | "t" | "T" | "TRUE" | "true" | "True"
            )),
            other => return Err(self.bad(path, &format!("unknown type `{other}`"))),
        };
        self.hasher.update(canonical(&value).as_bytes());
        if let Tree::Str(secret) = &value {
            self.secrets.push(secret.clone());
        } else {
            self.secrets.push(text.to_string());
        }
        Ok(value)
    }

    fn bad(&self, path: &[String], reason: &str) -> SecretsError {
        SecretsError::Value {
            file: self.file.into(),
            path: path.join("."),
            reason: reason.into(),
        }
    }
}

fn parse_float(text: &str) -> Option<f64> {
    match text {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        other => other.parse().ok(),
    }
}

/// The bytes the MAC hashes for a value.
fn canonical(value: &Tree) -> String {
    match value {
        Tree::Str(text) => text.clone(),
        Tree::Int(number) => number.to_string(),
        Tree::Float(number) => go_float(*number),
        Tree::Bool(true) => "True".into(),
        Tree::Bool(false) => "False".into(),
        _ => String::new(),
    }
}

/// `key1:key2:…:` — the path bound into each ciphertext.
fn aad(path: &[String]) -> String {
    let mut aad = path.join(":");
    aad.push(':');
    aad
}

/// Decrypt one `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`: plaintext and type.
fn decrypt_value(
    key: &[u8],
    value: &str,
    aad: &[u8],
) -> Result<(Zeroizing<Vec<u8>>, String), String> {
    let field = |name: &str| -> Result<String, String> {
        let start = value
            .find(&format!("{name}:"))
            .ok_or_else(|| format!("malformed ENC[…]: no `{name}`"))?
            + name.len()
            + 1;
        let end = value[start..]
            .find([',', ']'])
            .map_or(value.len(), |i| start + i);
        Ok(value[start..end].to_string())
    };
    if !value.starts_with("ENC[AES256_GCM,") {
        return Err("malformed ENC[…]: not AES256_GCM".into());
    }
    let decode = |name: &str| -> Result<Vec<u8>, String> {
        base64::engine::general_purpose::STANDARD
            .decode(field(name)?)
            .map_err(|_| format!("malformed ENC[…]: `{name}` is not base64"))
    };
    let (data, iv, tag, kind) = (
        decode("data")?,
        decode("iv")?,
        decode("tag")?,
        field("type")?,
    );
    let mut sealed = data;
    sealed.extend_from_slice(&tag);
    let payload = Payload { msg: &sealed, aad };
    let plaintext = match iv.len() {
        32 => AesGcm::<Aes256, U32>::new_from_slice(key).map_err(|e| e.to_string())?.decrypt(iv.as_slice().into(), payload),
        12 => AesGcm::<Aes256, U12>::new_from_slice(key).map_err(|e| e.to_string())?.decrypt(iv.as_slice().into(), payload),
        other => return Err(format!("unsupported IV length {other}")),
    }
    .map_err(|_| "authentication failed (the value was tampered with, moved to another key, or the wrong data key)".to_string())?;
    Ok((Zeroizing::new(plaintext), kind))
}

fn rule(file: &str, metadata: &Tree) -> Result<Rule, SecretsError> {
    let regex = |pattern: &str| {
        Regex::new(pattern).map_err(|e| SecretsError::Malformed {
            file: file.into(),
            reason: format!("bad regex: {e}"),
        })
    };
    let fields = [
        "unencrypted_suffix",
        "encrypted_suffix",
        "unencrypted_regex",
        "encrypted_regex",
        "unencrypted_comment_regex",
        "encrypted_comment_regex",
    ];
    let set: Vec<(&str, String)> = fields
        .iter()
        .filter_map(|f| {
            metadata
                .get(f)
                .and_then(Tree::as_str)
                .filter(|v| !v.is_empty())
                .map(|v| (*f, v.to_string()))
        })
        .collect();
    match set.as_slice() {
        [] => Ok(Rule::UnencryptedSuffix("_unencrypted".into())),
        [("unencrypted_suffix", v)] => Ok(Rule::UnencryptedSuffix(v.clone())),
        [("encrypted_suffix", v)] => Ok(Rule::EncryptedSuffix(v.clone())),
        [("unencrypted_regex", v)] => Ok(Rule::UnencryptedRegex(regex(v)?)),
        [("encrypted_regex", v)] => Ok(Rule::EncryptedRegex(regex(v)?)),
        [(_, _)] => Ok(Rule::ByValue),
        _ => Err(SecretsError::Malformed {
            file: file.into(),
            reason: "more than one encryption rule in the metadata".into(),
        }),
    }
}

/// The age entries of a group: `(recipient, armored file)`.
pub fn age_entries(group: &Tree) -> Vec<(String, String)> {
    match group.get("age") {
        Some(Tree::Seq(entries)) => entries
            .iter()
            .map(|e| (text(e.get("recipient")), text(e.get("enc"))))
            .collect(),
        _ => Vec::new(),
    }
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

pub fn data_key(
    file: &str,
    metadata: &Tree,
    identities: &Identities,
) -> Result<(Zeroizing<Vec<u8>>, Vec<String>), SecretsError> {
    let groups: Vec<Tree> = match metadata.get("key_groups") {
        Some(Tree::Seq(groups)) if groups.len() > 1 => groups.clone(),
        _ => vec![metadata.clone()],
    };
    let recipients: Vec<String> = groups
        .iter()
        .flat_map(age_entries)
        .map(|(r, _)| r)
        .collect();
    if recipients.is_empty() {
        let others: Vec<&str> = ["pgp", "kms", "gcp_kms", "azure_kv", "hc_vault"]
            .into_iter()
            .filter(|k| matches!(metadata.get(k), Some(Tree::Seq(v)) if !v.is_empty()))
            .collect();
        return Err(SecretsError::Unsupported {
            file: file.into(),
            kinds: if others.is_empty() {
                vec!["none".into()]
            } else {
                others.iter().map(|s| (*s).to_string()).collect()
            },
        });
    }
    let mut shares = Vec::new();
    for group in &groups {
        if let Some(share) = age_entries(group)
            .iter()
            .find_map(|(_, enc)| unwrap_with_age(enc, identities))
        {
            shares.push(share);
        }
    }
    let threshold = match metadata.get("shamir_threshold") {
        Some(Tree::Int(n)) if *n > 0 => usize::try_from(*n).unwrap_or(groups.len()),
        _ => groups.len(),
    };
    if groups.len() == 1 {
        return shares
            .into_iter()
            .next()
            .map(|k| (k, recipients.clone()))
            .ok_or_else(|| SecretsError::NoIdentity {
                file: file.into(),
                recipients: recipients.clone(),
                tried: identities.sources.clone(),
            });
    }
    if shares.len() < threshold {
        return Err(SecretsError::NoIdentity {
            file: file.into(),
            recipients,
            tried: identities.sources.clone(),
        });
    }
    let plain: Vec<Vec<u8>> = shares.iter().map(|s| s.to_vec()).collect();
    let key = crate::secrets::shamir::combine(&plain).ok_or_else(|| SecretsError::Malformed {
        file: file.into(),
        reason: "bad Shamir shares".into(),
    })?;
    Ok((Zeroizing::new(key), recipients))
}

//! Writing SOPS files as sops does (sops-format.md §10.1, §10.3): every
//! value the rule selects sealed with the data key (`cipher`), the MAC over
//! the values, `lastmodified`, the `sops` block appended to each document.
//! A new file gets a new data key; an edited one keeps its key, metadata
//! and, for every unchanged value, its ciphertext.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroizing;

use crate::secrets::SecretsError;
use crate::secrets::cipher::{self, Ivs};
use crate::secrets::creation::Creation;
use crate::secrets::rule::Rule;
use crate::secrets::sops::Unlocked;
use crate::secrets::tree::Tree;

struct Encryption<'a> {
    key: &'a [u8],
    rule: &'a Rule,
    mac_only: bool,
    hasher: Sha512,
    ivs: Option<&'a Ivs>,
}

/// The type to write for a value: its own, unless the same plaintext was
/// stored under a type that decrypts to this one (sops 3.11 types JSON
/// numbers `float`, whole floats print as ints, `+Inf`/`NaN` as strings;
/// timestamps and binaries decrypt to strings).
fn kept_kind<'a>(new: &'a str, old: &'a str) -> &'a str {
    match (new, old) {
        ("int", "float") | ("str", "time" | "bytes" | "float") => old,
        _ => new,
    }
}

impl Encryption<'_> {
    fn walk(&mut self, tree: &Tree, path: &mut Vec<String>) -> Result<Value, String> {
        Ok(match tree {
            Tree::Map(entries) => {
                let mut out = Map::new();
                for (key, value) in entries {
                    path.push(key.clone());
                    out.insert(key.clone(), self.walk(value, path)?);
                    path.pop();
                }
                Value::Object(out)
            }
            Tree::Seq(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.walk(item, path))
                    .collect::<Result<_, _>>()?,
            ),
            Tree::Null => Value::Null,
            leaf => self.leaf(leaf, path)?,
        })
    }

    fn leaf(&mut self, leaf: &Tree, path: &[String]) -> Result<Value, String> {
        let (bytes, kind) = cipher::plaintext(leaf);
        let bytes = Zeroizing::new(bytes);
        let encrypted = self.rule.encrypted(path, leaf);
        if encrypted || !self.mac_only {
            self.hasher.update(bytes.as_bytes());
        }
        if !encrypted || bytes.is_empty() {
            return Ok(leaf.to_value());
        }
        let aad = cipher::aad(path);
        let (iv, kind) = match self.ivs.and_then(|ivs| ivs.recall(&aad, bytes.as_bytes())) {
            Some((iv, old)) => (Some(iv), kept_kind(kind, old)),
            None => (None, kind),
        };
        cipher::encrypt(self.key, bytes.as_bytes(), aad.as_bytes(), kind, iv).map(Value::String)
    }
}

fn refused(file: &str, reason: String) -> SecretsError {
    SecretsError::Plaintext {
        file: file.into(),
        reason,
    }
}

/// Seal the documents: their encrypted form and the MAC (upper-case hex).
fn seal(
    file: &str,
    documents: &[Tree],
    key: &[u8],
    rule: &Rule,
    mac_only: bool,
    ivs: Option<&Ivs>,
) -> Result<(Vec<Value>, String), SecretsError> {
    if documents.first().and_then(|d| d.get("sops")).is_some() {
        return Err(refused(
            file,
            "it is already encrypted (it has a `sops` key)".into(),
        ));
    }
    let mut encryption = Encryption {
        key,
        rule,
        mac_only,
        hasher: Sha512::new(),
        ivs,
    };
    if mac_only {
        encryption.hasher.update(Sha256::digest(b"sops"));
    }
    let mut out = Vec::with_capacity(documents.len());
    for document in documents {
        if !matches!(document, Tree::Map(_)) {
            return Err(refused(file, "each document must be a map".into()));
        }
        out.push(
            encryption
                .walk(document, &mut Vec::new())
                .map_err(|reason| refused(file, reason))?,
        );
    }
    Ok((out, stack_kube::hex::upper(&encryption.hasher.finalize())))
}

/// Set `lastmodified` to now and `mac` to the sealed MAC (in place when the
/// fields exist), then append the block to each document.
fn finish(
    file: &str,
    mut documents: Vec<Value>,
    mut metadata: Map<String, Value>,
    key: &[u8],
    mac: &str,
) -> Result<Vec<Value>, SecretsError> {
    let lastmodified = stack_kube::clock::now();
    let sealed_mac = cipher::encrypt(key, mac.as_bytes(), lastmodified.as_bytes(), "str", None)
        .map_err(|reason| refused(file, reason))?;
    metadata.insert("lastmodified".into(), json!(lastmodified));
    metadata.insert("mac".into(), json!(sealed_mac));
    for document in &mut documents {
        if let Some(map) = document.as_object_mut() {
            map.insert("sops".into(), Value::Object(metadata.clone()));
        }
    }
    Ok(documents)
}

/// Encrypt new documents with a new data key, as a creation rule says.
pub fn encrypt(
    file: &str,
    documents: &[Tree],
    creation: &Creation,
) -> Result<Vec<Value>, SecretsError> {
    let key = Zeroizing::new(rand::random::<[u8; 32]>().to_vec());
    let (rule, field) = Rule::read(".sops.yaml", &creation.rule_block())?;
    if matches!(rule, Rule::ByValue) {
        return Err(refused(
            file,
            format!(
                "`{}` is not supported when encrypting (comments are not kept); use encrypted_regex or a suffix rule",
                field.0
            ),
        ));
    }
    let (sealed, mac) = seal(
        file,
        documents,
        &key,
        &rule,
        creation.mac_only_encrypted,
        None,
    )?;
    let mut metadata: Map<String, Value> =
        crate::secrets::keys::key_fields(&key, &creation.groups)?
            .into_iter()
            .collect();
    metadata.insert("lastmodified".into(), Value::Null);
    metadata.insert("mac".into(), Value::Null);
    metadata.insert(field.0, json!(field.1));
    if creation.mac_only_encrypted {
        metadata.insert("mac_only_encrypted".into(), json!(true));
    }
    metadata.insert("version".into(), json!("3.11.0"));
    finish(file, sealed, metadata, &key, &mac)
}

/// Encrypt edited documents as the file they came from was: the same data
/// key, metadata and rule; unchanged values keep their ciphertexts.
pub fn reencrypt(
    file: &str,
    documents: &[Tree],
    unlocked: &Unlocked,
) -> Result<Vec<Value>, SecretsError> {
    let (rule, field) = Rule::read(file, &unlocked.metadata)?;
    if matches!(rule, Rule::ByValue) {
        return Err(SecretsError::NotEditable {
            file: file.into(),
            reason: format!("it uses `{}` (comments are not kept)", field.0),
        });
    }
    let mac_only = unlocked.metadata.get("mac_only_encrypted") == Some(&Tree::Bool(true));
    let (sealed, mac) = seal(
        file,
        documents,
        &unlocked.key,
        &rule,
        mac_only,
        Some(&unlocked.ivs),
    )?;
    let metadata = match unlocked.metadata.to_value() {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    finish(file, sealed, metadata, &unlocked.key, &mac)
}

/// `updatekeys`: the same data key, wrapped for the groups a creation rule
/// names now; values, MAC and `lastmodified` unchanged.
pub fn update_keys(
    file: &str,
    documents: &[Tree],
    creation: &Creation,
    identities: &crate::secrets::identities::Identities,
) -> Result<Vec<Value>, SecretsError> {
    let metadata = documents
        .first()
        .and_then(|d| d.get("sops"))
        .cloned()
        .ok_or_else(|| SecretsError::NotSops { file: file.into() })?;
    let (key, _) = crate::secrets::keys::data_key(file, &metadata, identities)?;
    let fields = crate::secrets::keys::key_fields(&key, &creation.groups)?;
    let mut out = Vec::with_capacity(documents.len());
    for document in documents {
        let mut value = document.to_value();
        if let Some(sops) = value.get_mut("sops").and_then(Value::as_object_mut) {
            *sops = crate::secrets::keys::replace_key_fields(sops, fields.clone());
        }
        out.push(value);
    }
    Ok(out)
}

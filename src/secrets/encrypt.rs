//! Encrypting a plaintext YAML/JSON file as sops does (sops-format.md
//! §10.1): a fresh data key wrapped for each age recipient, every value that
//! the rule selects encrypted with AES-256-GCM (32-byte IV, path as AAD), the
//! MAC over every value, `lastmodified`, the `sops` block appended.

use std::io::Write as _;
use std::str::FromStr as _;

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{AesGcm, aes::Aes256};
use base64::Engine as _;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroizing;

use crate::secrets::SecretsError;
use crate::secrets::tree::{Tree, go_float};

/// What a creation rule of `.sops.yaml` says.
pub struct Creation {
    pub recipients: Vec<String>,
    /// One of the six rule fields and its value (`unencrypted_suffix` by default).
    pub rule: (String, String),
    pub mac_only_encrypted: bool,
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn encrypt_value(key: &[u8], plaintext: &[u8], aad: &[u8], kind: &str) -> Result<String, String> {
    let iv: [u8; 32] = rand::random();
    let cipher = AesGcm::<Aes256, U32>::new_from_slice(key).map_err(|e| e.to_string())?;
    let sealed = cipher
        .encrypt(
            (&iv).into(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|e| e.to_string())?;
    let (data, tag) = sealed.split_at(sealed.len() - 16);
    Ok(format!(
        "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{kind}]",
        base64(data),
        base64(&iv),
        base64(tag)
    ))
}

pub fn wrap_key(key: &[u8], recipient: &str) -> Result<String, SecretsError> {
    let bad = |reason: String| SecretsError::Malformed {
        file: ".sops.yaml".into(),
        reason,
    };
    let parsed = age::x25519::Recipient::from_str(recipient)
        .map_err(|e| bad(format!("bad age recipient `{recipient}`: {e}")))?;
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&parsed as &dyn age::Recipient))
            .map_err(|e| bad(e.to_string()))?;
    let armor = age::armor::ArmoredWriter::wrap_output(Vec::new(), age::armor::Format::AsciiArmor)
        .map_err(|e| bad(e.to_string()))?;
    let mut writer = encryptor
        .wrap_output(armor)
        .map_err(|e| bad(e.to_string()))?;
    writer.write_all(key).map_err(|e| bad(e.to_string()))?;
    let armored = writer
        .finish()
        .and_then(age::armor::ArmoredWriter::finish)
        .map_err(|e| bad(e.to_string()))?;
    let mut text = String::from_utf8(armored).map_err(|e| bad(e.to_string()))?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

/// Whether the value at a path is encrypted.
type Selector<'a> = Box<dyn Fn(&[String]) -> bool + 'a>;

struct Encryption<'a> {
    key: &'a [u8],
    selects: Selector<'a>,
    mac_only: bool,
    hasher: Sha512,
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
            leaf => {
                let (bytes, kind) = match leaf {
                    Tree::Str(text) => (text.clone(), "str"),
                    Tree::Int(number) => (number.to_string(), "int"),
                    Tree::Float(number) => (go_float(*number), "float"),
                    Tree::Bool(flag) => {
                        ((if *flag { "True" } else { "False" }).to_string(), "bool")
                    }
                    _ => (String::new(), "str"),
                };
                let encrypted = (self.selects)(path);
                if encrypted || !self.mac_only {
                    self.hasher.update(bytes.as_bytes());
                }
                if !encrypted || bytes.is_empty() {
                    return Ok(leaf.to_value());
                }
                let mut aad = path.join(":");
                aad.push(':');
                Value::String(encrypt_value(
                    self.key,
                    bytes.as_bytes(),
                    aad.as_bytes(),
                    kind,
                )?)
            }
        })
    }
}

/// Encrypt documents; returns them with the `sops` block appended to each.
pub fn encrypt(documents: &[Tree], creation: &Creation) -> Result<Vec<Value>, SecretsError> {
    let malformed = |reason: String| SecretsError::Malformed {
        file: "the plaintext".into(),
        reason,
    };
    if documents.first().and_then(|d| d.get("sops")).is_some() {
        return Err(malformed(
            "the file is already encrypted (it has a `sops` key)".into(),
        ));
    }
    if creation.recipients.is_empty() {
        return Err(malformed(
            "the matching creation rule names no age recipient".into(),
        ));
    }
    let key = Zeroizing::new(rand::random::<[u8; 32]>().to_vec());
    let (field, pattern) = (creation.rule.0.as_str(), creation.rule.1.clone());
    let regex = regex::Regex::new(&pattern).map_err(|e| malformed(e.to_string()))?;
    let selects: Selector = match field {
        "encrypted_suffix" => {
            Box::new(move |p: &[String]| p.iter().any(|k| k.ends_with(pattern.as_str())))
        }
        "unencrypted_regex" => Box::new(move |p: &[String]| !p.iter().any(|k| regex.is_match(k))),
        "encrypted_regex" => Box::new(move |p: &[String]| p.iter().any(|k| regex.is_match(k))),
        _ => Box::new(move |p: &[String]| !p.iter().any(|k| k.ends_with(pattern.as_str()))),
    };
    let mut encryption = Encryption {
        key: &key,
        selects,
        mac_only: creation.mac_only_encrypted,
        hasher: Sha512::new(),
    };
    if creation.mac_only_encrypted {
        encryption.hasher.update(Sha256::digest(b"sops"));
    }
    let mut out = Vec::new();
    for document in documents {
        if !matches!(document, Tree::Map(_)) {
            return Err(malformed("each document must be a map".into()));
        }
        out.push(
            encryption
                .walk(document, &mut Vec::new())
                .map_err(malformed)?,
        );
    }
    let mac = crate::hex::upper(&encryption.hasher.finalize());
    let lastmodified = crate::simulator::write::now();
    let mut metadata = Map::new();
    let age: Vec<Value> = creation
        .recipients
        .iter()
        .map(|r| Ok(json!({"recipient": r, "enc": wrap_key(&key, r)?})))
        .collect::<Result<_, SecretsError>>()?;
    metadata.insert("age".into(), Value::Array(age));
    metadata.insert("lastmodified".into(), json!(lastmodified));
    metadata.insert(
        "mac".into(),
        json!(
            encrypt_value(&key, mac.as_bytes(), lastmodified.as_bytes(), "str")
                .map_err(malformed)?
        ),
    );
    metadata.insert(field.to_string(), json!(creation.rule.1));
    if creation.mac_only_encrypted {
        metadata.insert("mac_only_encrypted".into(), json!(true));
    }
    metadata.insert("version".into(), json!("3.11.0"));
    for document in &mut out {
        if let Some(map) = document.as_object_mut() {
            map.insert("sops".into(), Value::Object(metadata.clone()));
        }
    }
    Ok(out)
}

/// The creation rule for a file, from the `.sops.yaml` found from the
/// working directory upwards (the first rule whose `path_regex` matches the
/// path relative to the config's folder).
pub fn creation_for(file: &std::path::Path) -> Result<Creation, SecretsError> {
    let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let cwd = std::env::current_dir().unwrap_or_default();
    let config = cwd
        .ancestors()
        .take(100)
        .map(|d| d.join(".sops.yaml"))
        .find(|p| p.is_file())
        .ok_or_else(|| SecretsError::Malformed {
            file: file.display().to_string(),
            reason: "no .sops.yaml found in the working directory or its parents".into(),
        })?;
    let text = fs_err::read_to_string(&config).map_err(|e| SecretsError::Read {
        file: config.display().to_string(),
        reason: crate::diagnostic::io_reason(&e),
    })?;
    let documents =
        crate::secrets::tree::parse_yaml(&text).map_err(|reason| SecretsError::Malformed {
            file: config.display().to_string(),
            reason,
        })?;
    let relative = absolute
        .strip_prefix(config.parent().unwrap_or(&cwd))
        .unwrap_or(&absolute)
        .to_string_lossy()
        .into_owned();
    let rules = match documents.first().and_then(|d| d.get("creation_rules")) {
        Some(Tree::Seq(rules)) => rules.clone(),
        _ => Vec::new(),
    };
    for rule in rules {
        let matches = match rule.get("path_regex").and_then(Tree::as_str) {
            Some(pattern) => regex::Regex::new(pattern).is_ok_and(|r| r.is_match(&relative)),
            None => true,
        };
        if !matches {
            continue;
        }
        let recipients: Vec<String> = match rule.get("age") {
            Some(Tree::Str(list)) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            Some(Tree::Seq(items)) => items
                .iter()
                .filter_map(Tree::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };
        let fields = [
            "unencrypted_suffix",
            "encrypted_suffix",
            "unencrypted_regex",
            "encrypted_regex",
        ];
        let rule_field = fields
            .iter()
            .find_map(|f| {
                rule.get(f)
                    .and_then(Tree::as_str)
                    .map(|v| ((*f).to_string(), v.to_string()))
            })
            .unwrap_or_else(|| ("unencrypted_suffix".into(), "_unencrypted".into()));
        return Ok(Creation {
            recipients,
            rule: rule_field,
            mac_only_encrypted: rule.get("mac_only_encrypted") == Some(&Tree::Bool(true)),
        });
    }
    Err(SecretsError::Malformed {
        file: config.display().to_string(),
        reason: format!("no creation rule matches {relative}"),
    })
}

/// `updatekeys`: the same data key, wrapped for `recipients`; values, MAC
/// and `lastmodified` unchanged.
pub fn update_keys(
    file: &str,
    mut documents: Vec<Tree>,
    recipients: &[String],
    identities: &crate::secrets::identities::Identities,
) -> Result<Vec<Value>, SecretsError> {
    let metadata = documents
        .first()
        .and_then(|d| d.get("sops"))
        .cloned()
        .ok_or_else(|| SecretsError::NotSops { file: file.into() })?;
    if matches!(metadata.get("key_groups"), Some(Tree::Seq(groups)) if groups.len() > 1) {
        return Err(SecretsError::Malformed {
            file: file.into(),
            reason: "updatekeys of files with several key groups is not supported yet".into(),
        });
    }
    let (key, _) = crate::secrets::sops::data_key(file, &metadata, identities)?;
    let age: Vec<Value> = recipients
        .iter()
        .map(|r| Ok(json!({"recipient": r, "enc": wrap_key(&key, r)?})))
        .collect::<Result<_, SecretsError>>()?;
    let mut out = Vec::with_capacity(documents.len());
    for document in &mut documents {
        let mut value = document.to_value();
        if let Some(sops) = value.get_mut("sops").and_then(Value::as_object_mut) {
            sops.remove("key_groups");
            sops.insert("age".into(), Value::Array(age.clone()));
        }
        out.push(value);
    }
    Ok(out)
}

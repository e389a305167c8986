//! Decrypting SOPS files encrypted for age (sops-format.md §10.2): the data
//! key from the key groups (`keys`), every value opened with its path as
//! additional data (`cipher`), and the MAC verified.

use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroizing;

use crate::secrets::SecretsError;
use crate::secrets::cipher::{self, Ivs, aad};
use crate::secrets::identities::Identities;
use crate::secrets::rule::Rule;
use crate::secrets::tree::Tree;

struct Decryption<'a> {
    key: &'a [u8],
    rule: Rule,
    mac_only_encrypted: bool,
    hasher: Sha512,
    file: &'a str,
    secrets: Vec<String>,
    /// Kept only when the file is to be written back (`open`).
    ivs: Option<Ivs>,
}

/// A decrypted file: its documents and the strings that were secret.
pub struct Decrypted {
    pub documents: Vec<Tree>,
    pub secrets: Vec<String>,
    pub recipients: Vec<String>,
}

impl Drop for Decrypted {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.documents.iter_mut().for_each(Tree::wipe);
        self.secrets.zeroize();
    }
}

/// What re-encrypting a file as it was needs: its data key, its metadata
/// and the IVs of its values.
pub struct Unlocked {
    pub key: Zeroizing<Vec<u8>>,
    pub metadata: Tree,
    pub ivs: Ivs,
}

fn text(tree: Option<&Tree>) -> String {
    tree.and_then(Tree::as_str).unwrap_or_default().to_string()
}

/// Decrypt a SOPS file's documents (YAML: one or more; JSON: one).
pub fn decrypt(
    file: &str,
    documents: Vec<Tree>,
    identities: &Identities,
) -> Result<Decrypted, SecretsError> {
    walk(file, documents, identities, false).map(|(decrypted, _)| decrypted)
}

/// Decrypt, keeping what is needed to write the file back.
pub fn open(
    file: &str,
    documents: Vec<Tree>,
    identities: &Identities,
) -> Result<(Decrypted, Unlocked), SecretsError> {
    walk(file, documents, identities, true)
}

fn walk(
    file: &str,
    mut documents: Vec<Tree>,
    identities: &Identities,
    keep_ivs: bool,
) -> Result<(Decrypted, Unlocked), SecretsError> {
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
    let (key, recipients) = crate::secrets::keys::data_key(file, &metadata, identities)?;
    let (rule, _) = Rule::read(file, &metadata)?;
    let mac_only_encrypted = metadata.get("mac_only_encrypted") == Some(&Tree::Bool(true));
    let mut decryption = Decryption {
        key: &key,
        rule,
        mac_only_encrypted,
        hasher: Sha512::new(),
        file,
        secrets: Vec::new(),
        ivs: keep_ivs.then(Ivs::default),
    };
    if mac_only_encrypted {
        decryption.hasher.update(Sha256::digest(b"sops"));
    }
    let mut decrypted = Vec::with_capacity(documents.len());
    for document in documents {
        decrypted.push(decryption.walk(document, &mut Vec::new())?);
    }
    let Decryption {
        hasher,
        secrets,
        ivs,
        ..
    } = decryption;
    let computed = stack_kube::hex::upper(&hasher.finalize());
    verify_mac(file, &key, &metadata, &computed)?;
    let decrypted = Decrypted {
        documents: decrypted,
        secrets,
        recipients,
    };
    let unlocked = Unlocked {
        key,
        metadata,
        ivs: ivs.unwrap_or_default(),
    };
    Ok((decrypted, unlocked))
}

fn verify_mac(file: &str, key: &[u8], metadata: &Tree, computed: &str) -> Result<(), SecretsError> {
    let lastmodified = text(metadata.get("lastmodified"));
    let stored = text(metadata.get("mac"));
    if stored.is_empty() {
        return Err(SecretsError::Mac {
            file: file.into(),
            reason: "the file has no MAC".into(),
        });
    }
    let stored_mac =
        cipher::decrypt(key, &stored, lastmodified.as_bytes()).map_err(|_| SecretsError::Mac {
            file: file.into(),
            reason: "cannot decrypt the MAC (lastmodified or MAC tampered)".into(),
        })?;
    if stored_mac.plaintext.as_slice() != computed.as_bytes() {
        return Err(SecretsError::Mac {
            file: file.into(),
            reason: "MAC mismatch: the file was changed without sops (values edited, swapped or removed)".into(),
        });
    }
    Ok(())
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
                self.hasher.update(cipher::plaintext(&leaf).0.as_bytes());
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
        let aad = aad(path);
        let opened = cipher::decrypt(self.key, encrypted, aad.as_bytes()).map_err(|reason| {
            SecretsError::Value {
                file: self.file.into(),
                path: path.join("."),
                reason,
            }
        })?;
        let text = Zeroizing::new(String::from_utf8_lossy(&opened.plaintext).into_owned());
        let value = match opened.kind.as_str() {
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
        self.hasher.update(cipher::plaintext(&value).0.as_bytes());
        if let Some(ivs) = &mut self.ivs {
            ivs.remember(aad, &opened);
        }
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

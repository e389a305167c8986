//! `stack secrets`: SOPS files and plain age files. `decrypt` writes
//! plaintext only where asked (stdout, `--output-file`, `--in-place`);
//! `edit` decrypts to a private temporary file and re-encrypts with the same
//! data key; `encrypt`, `updatekeys` and `rotate` follow `.sops.yaml`;
//! `keygen` makes an age identity.

use std::io::Write as _;
use std::path::Path;

use serde_json::Value;

use stack_core::error::{Error, Errors};
use stack_core::secrets::SecretsError;
use stack_core::secrets::keys::Recipient;
use stack_core::secrets::tree::Tree;

pub(super) fn secrets_error(error: SecretsError) -> Errors {
    Errors::from(Error::Secrets { error, span: None })
}

/// Write a file readable by its owner only.
pub(super) fn write_private(path: &Path, contents: &[u8]) -> Result<(), Errors> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(contents)
    };
    write().map_err(|source| {
        Error::Write {
            path: path.to_path_buf(),
            source,
        }
        .into()
    })
}

/// Write to `--output-file`, over the input (`--in-place`), or to stdout.
fn emit(file: &Path, output: Option<&Path>, in_place: bool, text: &[u8]) -> Result<(), Errors> {
    match (output, in_place) {
        (Some(path), _) => write_private(path, text),
        (None, true) => write_private(file, text),
        // Asked for explicitly: plaintext goes to stdout unmasked.
        (None, false) => {
            let _ = std::io::stdout().lock().write_all(text);
            Ok(())
        }
    }
}

fn identities(
    settings: &crate::settings::Settings,
) -> Result<stack_core::secrets::identities::Identities, Errors> {
    stack_core::secrets::identities::load(settings.load.age_key_file.as_deref())
        .map_err(secrets_error)
}

/// Documents as the file's format writes them: JSON (by extension) or a
/// YAML stream.
pub(super) fn render(file: &Path, documents: &[Value]) -> String {
    if file.extension().is_some_and(|e| e == "json") {
        format!("{:#}\n", documents.first().cloned().unwrap_or_default())
    } else {
        documents
            .iter()
            .map(stack_core::yaml::to_string)
            .collect::<Vec<_>>()
            .join("---\n")
    }
}

fn plain_values(documents: &[Tree]) -> Vec<Value> {
    documents.iter().map(Tree::to_value).collect()
}

pub fn decrypt(
    settings: &crate::settings::Settings,
    file: &Path,
    output: Option<&Path>,
    in_place: bool,
) -> Result<u8, Errors> {
    let identities = identities(settings)?;
    let contents = stack_core::secrets::read(file).map_err(secrets_error)?;
    if stack_core::secrets::age_file::is_age(&contents) {
        let plaintext = stack_core::secrets::age_file::decrypt(
            &file.display().to_string(),
            &contents,
            &identities,
        )
        .map_err(secrets_error)?;
        return emit(file, output, in_place, &plaintext).map(|()| 0);
    }
    let decrypted = stack_core::secrets::decrypt_file(file, &identities).map_err(secrets_error)?;
    let text = zeroize::Zeroizing::new(render(file, &plain_values(&decrypted.documents)));
    emit(file, output, in_place, text.as_bytes()).map(|()| 0)
}

/// Parse a SOPS file (`plaintext`: a file to encrypt) for rewriting.
fn parse_file(file: &Path, plaintext: bool) -> Result<Vec<Tree>, Errors> {
    let contents = stack_core::secrets::read(file).map_err(secrets_error)?;
    let refused = |reason: String| {
        let file = file.display().to_string();
        secrets_error(if plaintext {
            SecretsError::Plaintext { file, reason }
        } else {
            SecretsError::Malformed { file, reason }
        })
    };
    let text = String::from_utf8(contents).map_err(|_| refused("not UTF-8 text".into()))?;
    stack_core::secrets::parse(file, &text).map_err(refused)
}

/// `stack secrets encrypt FILE`: a SOPS file, or with `--age` a plain
/// ASCII-armored age file, for the recipients of the matching rule.
pub fn encrypt(
    file: &Path,
    output: Option<&Path>,
    in_place: bool,
    age: bool,
) -> Result<u8, Errors> {
    let name = file.display().to_string();
    let documents = parse_file(file, true)?;
    let creation = stack_core::secrets::creation::creation_for(file).map_err(secrets_error)?;
    let out = if age {
        let [recipients] = creation.groups.groups.as_slice() else {
            return Err(secrets_error(SecretsError::Plaintext {
                file: name,
                reason:
                    "a plain age file has no key groups; the matching creation rule names several"
                        .into(),
            }));
        };
        let recipients: Vec<String> = recipients
            .iter()
            .map(|recipient| match recipient {
                Recipient::Age(age) => Ok(age.clone()),
                Recipient::Pgp(_) => Err(secrets_error(SecretsError::Plaintext {
                    file: name.clone(),
                    reason: format!(
                        "a plain age file is for age recipients only; the matching creation rule names {recipient}"
                    ),
                })),
            })
            .collect::<Result<_, _>>()?;
        let plaintext = stack_core::secrets::read(file).map_err(secrets_error)?;
        stack_core::secrets::age_file::encrypt(&recipients, &plaintext).map_err(secrets_error)?
    } else {
        let encrypted = stack_core::secrets::encrypt::encrypt(&name, &documents, &creation)
            .map_err(secrets_error)?;
        render(file, &encrypted).into_bytes()
    };
    emit(file, output, in_place, &out).map(|()| 0)
}

/// `stack secrets edit FILE`: see `stack_core::secrets::edit`. A file that does
/// not exist yet starts empty and is encrypted per `.sops.yaml`.
pub fn edit(settings: &crate::settings::Settings, file: &Path) -> Result<u8, Errors> {
    let name = file.display().to_string();
    let parse_edited = |edited: &[u8]| {
        let edited_error = |reason: String| {
            secrets_error(SecretsError::Edited {
                file: name.clone(),
                format: if file.extension().is_some_and(|e| e == "json") {
                    "JSON"
                } else {
                    "YAML"
                }
                .into(),
                reason,
            })
        };
        let text = std::str::from_utf8(edited).map_err(|_| edited_error("not UTF-8".into()))?;
        stack_core::secrets::parse(file, text).map_err(edited_error)
    };
    if !file.exists() {
        let creation = stack_core::secrets::creation::creation_for(file).map_err(secrets_error)?;
        let edited = stack_core::secrets::edit::run_editor(file, b"").map_err(secrets_error)?;
        let documents = parse_edited(&edited)?;
        if documents.is_empty() {
            eprintln!("{name}: nothing was written (the document is empty)");
            return Ok(0);
        }
        let encrypted = stack_core::secrets::encrypt::encrypt(&name, &documents, &creation)
            .map_err(secrets_error)?;
        write_private(file, render(file, &encrypted).as_bytes())?;
        eprintln!("{name}: created");
        return Ok(0);
    }
    let identities = identities(settings)?;
    if stack_core::secrets::age_file::is_age(
        &stack_core::secrets::read(file).map_err(secrets_error)?,
    ) {
        return Err(secrets_error(SecretsError::NotEditable {
            file: name,
            reason: "it is a plain age file".into(),
        }));
    }
    let documents = parse_file(file, false)?;
    let (decrypted, unlocked) =
        stack_core::secrets::sops::open(&name, documents, &identities).map_err(secrets_error)?;
    let before = plain_values(&decrypted.documents);
    let plaintext = zeroize::Zeroizing::new(render(file, &before));
    let edited =
        stack_core::secrets::edit::run_editor(file, plaintext.as_bytes()).map_err(secrets_error)?;
    let documents = parse_edited(&edited)?;
    if edited.as_slice() == plaintext.as_bytes() || plain_values(&documents) == before {
        eprintln!("{name}: no changes, nothing written");
        return Ok(0);
    }
    let encrypted = stack_core::secrets::encrypt::reencrypt(&name, &documents, &unlocked)
        .map_err(secrets_error)?;
    write_private(file, render(file, &encrypted).as_bytes())?;
    eprintln!("{name}: re-encrypted (unchanged values keep their ciphertext)");
    Ok(0)
}

/// `stack secrets updatekeys FILE`: the key groups of the matching
/// creation rule, the same data key, values untouched.
pub fn update_keys(settings: &crate::settings::Settings, file: &Path) -> Result<u8, Errors> {
    let identities = identities(settings)?;
    let creation = stack_core::secrets::creation::creation_for(file).map_err(secrets_error)?;
    let documents = parse_file(file, false)?;
    let updated = stack_core::secrets::encrypt::update_keys(
        &file.display().to_string(),
        &documents,
        &creation,
        &identities,
    )
    .map_err(secrets_error)?;
    write_private(file, render(file, &updated).as_bytes())?;
    let groups: Vec<String> = creation
        .groups
        .groups
        .iter()
        .map(|g| {
            g.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    eprintln!(
        "{}: data key wrapped for {}",
        file.display(),
        groups.join(" | ")
    );
    Ok(0)
}

/// `stack secrets rotate FILE`: decrypt, then encrypt with a new data key
/// for the file's own key groups and rule.
pub fn rotate(settings: &crate::settings::Settings, file: &Path) -> Result<u8, Errors> {
    let identities = identities(settings)?;
    let name = file.display().to_string();
    let documents = parse_file(file, false)?;
    let metadata = documents
        .first()
        .and_then(|d| d.get("sops"))
        .cloned()
        .unwrap_or(Tree::Null);
    let decrypted =
        stack_core::secrets::sops::decrypt(&name, documents, &identities).map_err(secrets_error)?;
    let creation = stack_core::secrets::creation::Creation::of_file(&name, &metadata)
        .map_err(secrets_error)?;
    let encrypted = stack_core::secrets::encrypt::encrypt(&name, &decrypted.documents, &creation)
        .map_err(secrets_error)?;
    write_private(file, render(file, &encrypted).as_bytes())?;
    eprintln!("{name}: re-encrypted with a new data key");
    Ok(0)
}

pub fn keygen(output: Option<&Path>) -> Result<u8, Errors> {
    use age::secrecy::ExposeSecret as _;
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public();
    let created = stack_kube::clock::now();
    let text = zeroize::Zeroizing::new(format!(
        "# created: {created}\n# public key: {recipient}\n{}\n",
        identity.to_string().expose_secret()
    ));
    match output {
        Some(path) => {
            write_private(path, text.as_bytes())?;
            eprintln!("Public key: {recipient}");
        }
        None => {
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
        }
    }
    Ok(0)
}

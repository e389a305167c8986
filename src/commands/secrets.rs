//! `stack secrets`: SOPS files with age. `decrypt` writes plaintext only
//! where asked (stdout, `--output`, `--in-place`); `keygen` makes an age
//! identity.

use std::io::Write as _;
use std::path::Path;

use crate::error::{Error, Errors};
use crate::secrets::tree::Tree;

/// Write a file readable by its owner only.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), Errors> {
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

pub fn decrypt(
    settings: &crate::settings::Settings,
    file: &Path,
    output: Option<&Path>,
    in_place: bool,
) -> Result<u8, Errors> {
    let identities = crate::secrets::identities::load(settings.age_key_file.as_deref())
        .map_err(|error| Error::Secrets { error, span: None })?;
    let decrypted = crate::secrets::decrypt_file(file, &identities)
        .map_err(|error| Error::Secrets { error, span: None })?;
    let json = file.extension().is_some_and(|e| e == "json");
    let text = if json {
        format!(
            "{:#}\n",
            decrypted
                .documents
                .first()
                .map(Tree::to_value)
                .unwrap_or_default()
        )
    } else {
        decrypted
            .documents
            .iter()
            .map(|document| crate::yaml::to_string(&document.to_value()))
            .collect::<Vec<_>>()
            .join("---\n")
    };
    match (output, in_place) {
        (Some(path), _) => write_private(path, text.as_bytes())?,
        (None, true) => write_private(file, text.as_bytes())?,
        // Asked for explicitly: the plaintext goes to stdout unmasked.
        (None, false) => {
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
        }
    }
    Ok(0)
}

pub fn encrypt(file: &Path, output: Option<&Path>, in_place: bool) -> Result<u8, Errors> {
    let secrets_error = |error| Errors::from(Error::Secrets { error, span: None });
    let documents = parse_file(file)?;
    let creation = crate::secrets::encrypt::creation_for(file).map_err(secrets_error)?;
    let encrypted =
        crate::secrets::encrypt::encrypt(&documents, &creation).map_err(secrets_error)?;
    let out = render(file, &encrypted);
    match (output, in_place) {
        (Some(path), _) => write_private(path, out.as_bytes())?,
        (None, true) => write_private(file, out.as_bytes())?,
        (None, false) => {
            let _ = std::io::stdout().lock().write_all(out.as_bytes());
        }
    }
    Ok(0)
}

fn parse_file(file: &Path) -> Result<Vec<Tree>, Errors> {
    let malformed = |reason: String| {
        Errors::from(Error::Secrets {
            error: crate::secrets::SecretsError::Malformed {
                file: file.display().to_string(),
                reason,
            },
            span: None,
        })
    };
    let text = fs_err::read_to_string(file).map_err(|source| Error::Write {
        path: file.to_path_buf(),
        source,
    })?;
    if file.extension().is_some_and(|e| e == "json") {
        Ok(vec![
            serde_json::from_str(&text).map_err(|e| malformed(e.to_string()))?,
        ])
    } else {
        crate::secrets::tree::parse_yaml(&text).map_err(malformed)
    }
}

fn render(file: &Path, documents: &[serde_json::Value]) -> String {
    if file.extension().is_some_and(|e| e == "json") {
        format!("{:#}\n", documents.first().cloned().unwrap_or_default())
    } else {
        documents
            .iter()
            .map(crate::yaml::to_string)
            .collect::<Vec<_>>()
            .join("---\n")
    }
}

/// `stack secrets updatekeys FILE`: the recipients of the matching
/// creation rule, the same data key, values untouched.
pub fn update_keys(settings: &crate::settings::Settings, file: &Path) -> Result<u8, Errors> {
    let secrets_error = |error| Errors::from(Error::Secrets { error, span: None });
    let identities = crate::secrets::identities::load(settings.age_key_file.as_deref())
        .map_err(secrets_error)?;
    let creation = crate::secrets::encrypt::creation_for(file).map_err(secrets_error)?;
    let documents = parse_file(file)?;
    let updated = crate::secrets::encrypt::update_keys(
        &file.display().to_string(),
        documents,
        &creation.recipients,
        &identities,
    )
    .map_err(secrets_error)?;
    write_private(file, render(file, &updated).as_bytes())?;
    eprintln!(
        "{}: data key wrapped for {}",
        file.display(),
        creation.recipients.join(", ")
    );
    Ok(0)
}

/// `stack secrets rotate FILE`: decrypt, then encrypt with a new data key for
/// the file's own recipients and rule.
pub fn rotate(settings: &crate::settings::Settings, file: &Path) -> Result<u8, Errors> {
    let secrets_error = |error| Errors::from(Error::Secrets { error, span: None });
    let identities = crate::secrets::identities::load(settings.age_key_file.as_deref())
        .map_err(secrets_error)?;
    let documents = parse_file(file)?;
    let metadata = documents
        .first()
        .and_then(|d| d.get("sops"))
        .cloned()
        .unwrap_or(Tree::Null);
    let decrypted =
        crate::secrets::sops::decrypt(&file.display().to_string(), documents, &identities)
            .map_err(secrets_error)?;
    let recipients: Vec<String> = crate::secrets::sops::age_entries(&metadata)
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    let fields = [
        "unencrypted_suffix",
        "encrypted_suffix",
        "unencrypted_regex",
        "encrypted_regex",
    ];
    let rule = fields
        .iter()
        .find_map(|f| {
            metadata
                .get(f)
                .and_then(Tree::as_str)
                .map(|v| ((*f).to_string(), v.to_string()))
        })
        .unwrap_or_else(|| ("unencrypted_suffix".into(), "_unencrypted".into()));
    let creation = crate::secrets::encrypt::Creation {
        recipients,
        rule,
        mac_only_encrypted: metadata.get("mac_only_encrypted") == Some(&Tree::Bool(true)),
    };
    let encrypted =
        crate::secrets::encrypt::encrypt(&decrypted.documents, &creation).map_err(secrets_error)?;
    write_private(file, render(file, &encrypted).as_bytes())?;
    eprintln!("{}: re-encrypted with a new data key", file.display());
    Ok(0)
}

pub fn keygen(output: Option<&Path>) -> Result<u8, Errors> {
    use age::secrecy::ExposeSecret as _;
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public();
    let created = crate::simulator::write::now();
    let text = format!(
        "# created: {created}\n# public key: {recipient}\n{}\n",
        identity.to_string().expose_secret()
    );
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

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
    let text = fs_err::read_to_string(file).map_err(|source| Error::Write {
        path: file.to_path_buf(),
        source,
    })?;
    let json = file.extension().is_some_and(|e| e == "json");
    let documents: Vec<Tree> = if json {
        vec![serde_json::from_str(&text).map_err(|e| {
            secrets_error(crate::secrets::SecretsError::Malformed {
                file: file.display().to_string(),
                reason: e.to_string(),
            })
        })?]
    } else {
        crate::secrets::tree::parse_yaml(&text).map_err(|reason| {
            secrets_error(crate::secrets::SecretsError::Malformed {
                file: file.display().to_string(),
                reason,
            })
        })?
    };
    let creation = crate::secrets::encrypt::creation_for(file).map_err(secrets_error)?;
    let encrypted =
        crate::secrets::encrypt::encrypt(&documents, &creation).map_err(secrets_error)?;
    let out = if json {
        format!("{:#}\n", encrypted.first().cloned().unwrap_or_default())
    } else {
        encrypted
            .iter()
            .map(crate::yaml::to_string)
            .collect::<Vec<_>>()
            .join("---\n")
    };
    match (output, in_place) {
        (Some(path), _) => write_private(path, out.as_bytes())?,
        (None, true) => write_private(file, out.as_bytes())?,
        (None, false) => {
            let _ = std::io::stdout().lock().write_all(out.as_bytes());
        }
    }
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

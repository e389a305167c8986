//! Plain age files (sops-format.md §13), binary or armored, for X25519
//! recipients or a passphrase: recognised by their first line, decrypted in
//! memory with the user's identities, written for the recipients of a
//! creation rule. A passphrase comes from `STACK_AGE_PASSPHRASE`, else from
//! a prompt on the terminal when there is one.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::str::FromStr as _;

use age::secrecy::SecretString;
use zeroize::Zeroizing;

use crate::secrets::SecretsError;
use crate::secrets::identities::Identities;

const BINARY_HEADER: &[u8] = b"age-encryption.org/v1";
const ARMOR_HEADER: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";

/// Whether a file's contents are an age file rather than YAML or JSON.
pub fn is_age(contents: &[u8]) -> bool {
    let start = contents
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(contents.len());
    contents.starts_with(BINARY_HEADER) || contents[start..].starts_with(ARMOR_HEADER)
}

/// The stanza types of a binary age header, counted: "2 X25519".
fn stanzas(binary: &[u8]) -> Vec<String> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    let header = binary
        .split(|b| *b == b'\n')
        .take_while(|l| !l.starts_with(b"---"));
    for line in header.filter_map(|l| l.strip_prefix(b"-> ")) {
        let tag = String::from_utf8_lossy(line.split(|b| *b == b' ').next().unwrap_or_default());
        match counts.iter_mut().find(|(known, _)| *known == tag) {
            Some((_, count)) => *count += 1,
            None => counts.push((tag.into_owned(), 1)),
        }
    }
    counts
        .into_iter()
        .map(|(tag, count)| format!("{count} {tag}"))
        .collect()
}

fn passphrase(file: &str) -> Result<SecretString, SecretsError> {
    if let Ok(passphrase) = std::env::var("STACK_AGE_PASSPHRASE") {
        return Ok(SecretString::from(passphrase));
    }
    if !std::io::stderr().is_terminal() {
        return Err(SecretsError::NoPassphrase { file: file.into() });
    }
    rpassword::prompt_password(format!("Passphrase for {file}: "))
        .map(SecretString::from)
        .map_err(|_| SecretsError::NoPassphrase { file: file.into() })
}

/// Decrypt an age file's contents.
pub fn decrypt(
    file: &str,
    contents: &[u8],
    identities: &Identities,
) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
    let malformed = |reason: String| SecretsError::Malformed {
        file: file.into(),
        reason,
    };
    let mut binary = Vec::new();
    age::armor::ArmoredReader::new(contents)
        .read_to_end(&mut binary)
        .map_err(|e| malformed(format!("bad age armor: {e}")))?;
    let decryptor = age::Decryptor::new(binary.as_slice())
        .map_err(|e| malformed(format!("bad age header: {e}")))?;
    let scrypt = decryptor.is_scrypt();
    let result = if scrypt {
        let mut identity = age::scrypt::Identity::new(passphrase(file)?);
        identity.set_max_work_factor(22);
        decryptor.decrypt(std::iter::once(&identity as &dyn age::Identity))
    } else {
        decryptor.decrypt(
            identities
                .keys
                .iter()
                .map(|k| k.as_ref() as &dyn age::Identity),
        )
    };
    let mut stream = result.map_err(|error| match error {
        age::DecryptError::NoMatchingKeys if !scrypt => SecretsError::NoIdentity {
            file: file.into(),
            recipients: stanzas(&binary),
            tried: identities.sources.clone(),
        },
        _ if scrypt => SecretsError::WrongPassphrase { file: file.into() },
        other => malformed(other.to_string()),
    })?;
    let mut plaintext = Zeroizing::new(Vec::new());
    stream
        .read_to_end(&mut plaintext)
        .map_err(|e| malformed(format!("the age payload does not decrypt: {e}")))?;
    Ok(plaintext)
}

/// An ASCII-armored age file of `plaintext` for these X25519 recipients.
pub fn encrypt(recipients: &[String], plaintext: &[u8]) -> Result<Vec<u8>, SecretsError> {
    let parsed = recipients
        .iter()
        .map(|r| {
            age::x25519::Recipient::from_str(r).map_err(|e| SecretsError::Recipient {
                recipient: r.clone(),
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bad = |e: &dyn std::fmt::Display| SecretsError::Recipient {
        recipient: recipients.join(", "),
        reason: e.to_string(),
    };
    let encryptor =
        age::Encryptor::with_recipients(parsed.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| bad(&e))?;
    let armor = age::armor::ArmoredWriter::wrap_output(Vec::new(), age::armor::Format::AsciiArmor)
        .map_err(|e| bad(&e))?;
    let mut writer = encryptor.wrap_output(armor).map_err(|e| bad(&e))?;
    writer.write_all(plaintext).map_err(|e| bad(&e))?;
    writer
        .finish()
        .and_then(age::armor::ArmoredWriter::finish)
        .map_err(|e| bad(&e))
}

//! The value cipher of SOPS (sops-format.md §3): AES-256-GCM with 32-byte
//! IVs (12-byte ones are read too), the value's path as additional data, and
//! the `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` string that carries it.

use aes_gcm::aead::consts::{U12, U32};
use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{AesGcm, aes::Aes256};
use base64::Engine as _;
use zeroize::Zeroizing;

use crate::secrets::tree::{Tree, go_float};

/// A decrypted `ENC[…]`: its plaintext, type, and the IV it was sealed with.
pub struct Opened {
    pub plaintext: Zeroizing<Vec<u8>>,
    pub kind: String,
    pub iv: Vec<u8>,
}

/// `key1:key2:…:` — the path bound into each ciphertext.
pub(crate) fn aad(path: &[String]) -> String {
    let mut aad = path.join(":");
    aad.push(':');
    aad
}

/// A leaf's plaintext bytes (also what the MAC hashes) and its sops type.
pub fn plaintext(value: &Tree) -> (String, &'static str) {
    match value {
        Tree::Str(text) => (text.clone(), "str"),
        Tree::Int(number) => (number.to_string(), "int"),
        Tree::Float(number) => (go_float(*number), "float"),
        Tree::Bool(true) => ("True".into(), "bool"),
        Tree::Bool(false) => ("False".into(), "bool"),
        _ => (String::new(), "str"),
    }
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Seal a plaintext; a fresh random IV unless one is given (sops reuses the
/// IV of an unchanged value, so that its ciphertext stays the same).
pub fn encrypt(
    key: &[u8],
    plaintext: &[u8],
    aad: &[u8],
    kind: &str,
    iv: Option<[u8; 32]>,
) -> Result<String, String> {
    let iv = iv.unwrap_or_else(rand::random);
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

fn field<'a>(value: &'a str, name: &str) -> Result<&'a str, String> {
    let start = value
        .find(&format!("{name}:"))
        .ok_or_else(|| format!("malformed ENC[…]: no `{name}`"))?
        + name.len()
        + 1;
    let end = value[start..]
        .find([',', ']'])
        .map_or(value.len(), |i| start + i);
    Ok(&value[start..end])
}

/// Open one `ENC[AES256_GCM,…]` string.
pub fn decrypt(key: &[u8], value: &str, aad: &[u8]) -> Result<Opened, String> {
    if !value.starts_with("ENC[AES256_GCM,") || !value.ends_with(']') {
        return Err("malformed ENC[…]: not an ENC[AES256_GCM,…] string".into());
    }
    let decode = |name: &str| -> Result<Vec<u8>, String> {
        base64::engine::general_purpose::STANDARD
            .decode(field(value, name)?)
            .map_err(|_| format!("malformed ENC[…]: `{name}` is not base64"))
    };
    let (mut sealed, iv, tag) = (decode("data")?, decode("iv")?, decode("tag")?);
    let kind = field(value, "type")?.to_string();
    sealed.extend_from_slice(&tag);
    let payload = Payload { msg: &sealed, aad };
    let bad_key = |e: aes_gcm::aes::cipher::InvalidLength| e.to_string();
    let plaintext = match iv.len() {
        32 => AesGcm::<Aes256, U32>::new_from_slice(key)
            .map_err(bad_key)?
            .decrypt(iv.as_slice().into(), payload),
        12 => AesGcm::<Aes256, U12>::new_from_slice(key)
            .map_err(bad_key)?
            .decrypt(iv.as_slice().into(), payload),
        other => return Err(format!("malformed ENC[…]: unsupported IV length {other}")),
    }
    .map_err(|_| "authentication failed (the value was tampered with, moved to another key, or the wrong data key)".to_string())?;
    Ok(Opened {
        plaintext: Zeroizing::new(plaintext),
        kind,
        iv,
    })
}

/// The IVs of a file's values by path and plaintext, so that re-encrypting
/// an unchanged value gives its old `ENC[…]` back (sops-format.md §10.3).
/// Values in one list share a path, hence a list per path.
#[derive(Default)]
pub struct Ivs(std::collections::HashMap<String, Vec<Sealed>>);

/// One value as it was sealed: plaintext, IV, type.
type Sealed = (Zeroizing<Vec<u8>>, [u8; 32], String);

impl Ivs {
    pub(crate) fn remember(&mut self, aad: String, opened: &Opened) {
        if let Ok(iv) = <[u8; 32]>::try_from(opened.iv.as_slice()) {
            self.0.entry(aad).or_default().push((
                opened.plaintext.clone(),
                iv,
                opened.kind.clone(),
            ));
        }
    }

    /// The IV and type a value had, if it had this plaintext at this path.
    pub(crate) fn recall(&self, aad: &str, plaintext: &[u8]) -> Option<([u8; 32], &str)> {
        self.0
            .get(aad)?
            .iter()
            .find(|(known, _, _)| known.as_slice() == plaintext)
            .map(|(_, iv, kind)| (*iv, kind.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sops-format.md §12: key 00 01 … 1f, IV of 32 × 0x01.
    #[test]
    fn the_worked_example_seals_and_opens_with_a_given_iv() {
        let key: Vec<u8> = (0..32).collect();
        let sealed = encrypt(&key, b"admin", b"username:", "str", Some([1; 32])).unwrap();
        assert_eq!(
            sealed,
            "ENC[AES256_GCM,data:2MDEjrc=,iv:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=,tag:ZcbD8AmRfBia4A7o8mH3kg==,type:str]"
        );
        let opened = decrypt(&key, &sealed, b"username:").unwrap();
        assert_eq!(opened.plaintext.as_slice(), b"admin");
        assert_eq!(
            (opened.kind.as_str(), opened.iv.as_slice()),
            ("str", &[1; 32][..])
        );
        let mut ivs = Ivs::default();
        ivs.remember("username:".into(), &opened);
        assert_eq!(ivs.recall("username:", b"admin"), Some(([1; 32], "str")));
        assert_eq!(ivs.recall("username:", b"root"), None);
        assert!(decrypt(&key, &sealed, b"password:").is_err());
    }
}

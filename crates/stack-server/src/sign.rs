//! `X-Stack-Signature: sha256=<hex>`: an HMAC-SHA256 of the exact body
//! with a team's key, as GitHub and nais sign webhooks; checked in
//! constant time against each of the team's keys.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header's value for `body` signed with `key`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length: this never fails.
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return String::new();
    };
    mac.update(body);
    format!(
        "sha256={}",
        stack_kube::hex::lower(&mac.finalize().into_bytes())
    )
}

/// Whether `header` is `body` signed with one of `keys`.
pub fn verify(keys: &[Vec<u8>], body: &[u8], header: &str) -> bool {
    let Some(digest) = header.strip_prefix("sha256=").and_then(decode_hex) else {
        return false;
    };
    keys.iter().any(|key| {
        let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
            return false;
        };
        mac.update(body);
        mac.verify_slice(&digest).is_ok()
    })
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{signature, verify};

    #[test]
    fn a_body_signed_with_any_key_of_the_team_verifies() {
        let keys = vec![
            b"old-key-0123456789".to_vec(),
            b"new-key-0123456789".to_vec(),
        ];
        for key in &keys {
            assert!(verify(&keys, b"{}", &signature(key, b"{}")));
        }
        assert!(!verify(&keys, b"{} ", &signature(&keys[0], b"{}")));
        assert!(!verify(
            &keys,
            b"{}",
            &signature(b"another-key-01234", b"{}")
        ));
        for bad in ["", "sha256=", "sha256=zz", "sha1=00", "sha256=abc"] {
            assert!(!verify(&keys, b"{}", bad), "{bad}");
        }
    }

    #[test]
    fn the_signature_is_githubs_form() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}

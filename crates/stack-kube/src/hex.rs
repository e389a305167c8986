//! Lower- and upper-case hexadecimal, for digests and identifiers.

use std::fmt::Write as _;

pub fn lower(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

pub fn upper(bytes: &[u8]) -> String {
    lower(bytes).to_uppercase()
}

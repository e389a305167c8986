//! Masking of secret material in everything `stack` prints (product.md §6).
//!
//! `Secret` objects' `data` and `stringData` are always masked; strings that
//! came from decrypted secrets are registered with the [`Masker`] and
//! replaced wherever they appear. `--show-secrets` turns masking off.

use serde_json::Value;

pub const MASK: &str = "(sensitive value)";

/// Every decrypted value of this process, and whether output is masked.
static REGISTRY: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
static SHOW: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Register a decrypted value for masking everywhere.
pub fn register(secret: &str) {
    let mut registry = REGISTRY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !secret.is_empty() && !registry.iter().any(|known| known == secret) {
        registry.push(secret.to_string());
    }
}

/// `--show-secrets`: stop masking.
pub fn show_secrets(show: bool) {
    SHOW.store(show, std::sync::atomic::Ordering::SeqCst);
}

/// Mask registered secrets in text about to be printed.
pub fn mask_output(text: &str) -> String {
    Masker::new(SHOW.load(std::sync::atomic::Ordering::SeqCst)).mask_text(text)
}

#[derive(Debug, Default, Clone)]
pub struct Masker {
    enabled: bool,
    /// Longest first, so that a secret containing another is masked whole.
    secrets: Vec<String>,
}

impl Masker {
    /// A masker that knows every value registered so far.
    pub fn new(show_secrets: bool) -> Self {
        let mut masker = Self {
            enabled: !show_secrets,
            secrets: Vec::new(),
        };
        let registry = REGISTRY
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for secret in &registry {
            masker.register(secret);
        }
        masker
    }

    /// Whether output is masked (no `--show-secrets`).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Register a decrypted value. Values under six characters are masked
    /// only where they are a whole value, not inside other text.
    pub fn register(&mut self, secret: &str) {
        if secret.is_empty() || self.secrets.iter().any(|known| known == secret) {
            return;
        }
        self.secrets.push(secret.to_string());
        self.secrets
            .sort_by_key(|known| std::cmp::Reverse(known.len()));
    }

    /// Replace every registered secret in `text`.
    pub fn mask_text(&self, text: &str) -> String {
        if !self.enabled {
            return text.to_string();
        }
        let mut masked = text.to_string();
        // Short values would mask half of every output: they are masked only
        // where they are a whole value (`mask_object`).
        for secret in self
            .secrets
            .iter()
            .filter(|secret| secret.chars().count() >= 6)
        {
            if masked.contains(secret.as_str()) {
                masked = masked.replace(secret.as_str(), MASK);
            }
        }
        masked
    }

    /// Mask a manifest in place: `Secret` data, then registered strings.
    pub fn mask_object(&self, body: &mut Value) {
        if !self.enabled {
            return;
        }
        if body.get("kind").and_then(Value::as_str) == Some("Secret") {
            for field in ["data", "stringData"] {
                if let Some(entries) = body.get_mut(field).and_then(Value::as_object_mut) {
                    for value in entries.values_mut() {
                        *value = Value::String(MASK.into());
                    }
                }
            }
        }
        if !self.secrets.is_empty() {
            self.mask_strings(body);
        }
    }

    fn mask_strings(&self, value: &mut Value) {
        match value {
            Value::String(text) => {
                if self.secrets.iter().any(|secret| secret == text) {
                    *text = MASK.into();
                } else {
                    *text = self.mask_text(text);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.mask_strings(item)),
            Value::Object(entries) => entries
                .values_mut()
                .for_each(|item| self.mask_strings(item)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_secret_data_and_registered_strings() {
        let mut masker = Masker::new(false);
        masker.register("hunter22");
        let mut secret =
            json!({"kind": "Secret", "data": {"a": "aHVudGVyMjI="}, "stringData": {"b": "x"}});
        masker.mask_object(&mut secret);
        assert_eq!(secret["data"]["a"], MASK);
        assert_eq!(secret["stringData"]["b"], MASK);
        let mut config =
            json!({"kind": "ConfigMap", "data": {"url": "postgres://app:hunter22@db"}});
        masker.mask_object(&mut config);
        assert_eq!(config["data"]["url"], "postgres://app:(sensitive value)@db");
    }

    #[test]
    fn show_secrets_turns_masking_off() {
        let mut masker = Masker::new(true);
        masker.register("hunter22");
        assert_eq!(masker.mask_text("pw=hunter22"), "pw=hunter22");
    }
}

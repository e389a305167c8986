//! Masking of secret material in everything `stack` prints (product.md §6).
//!
//! `Secret` objects' `data` and `stringData` are always masked; strings that
//! came from decrypted secrets are registered with the run's [`Masks`] and
//! replaced wherever they appear. `--show-secrets` turns masking off.

use serde_json::Value;

pub(crate) const MASK: &str = "(sensitive value)";

/// The secrets of one run — every decrypted value, and what templates made
/// of them — and whether its output shows them (`--show-secrets`). The load
/// stage registers values into it; everything the run prints or stores is
/// masked with it. Cheap to clone: clones share one registry, so the
/// command line and a server hold one per run and runs never see each
/// other's secrets.
#[derive(Debug, Clone)]
pub struct Masks {
    show: bool,
    /// Digests of the encrypted files the secrets came from: what changes
    /// when a secret does, without holding it.
    sources: std::sync::Arc<std::sync::RwLock<std::collections::BTreeSet<String>>>,
    /// Always enabled; [`Masks::masker`] turns it off for `--show-secrets`.
    registry: std::sync::Arc<std::sync::RwLock<Masker>>,
}

impl Masks {
    pub fn new(show_secrets: bool) -> Self {
        let masker = Masker {
            enabled: true,
            ..Masker::default()
        };
        Self {
            show: show_secrets,
            sources: std::sync::Arc::default(),
            registry: std::sync::Arc::new(std::sync::RwLock::new(masker)),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Masker> {
        self.registry
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Masker> {
        self.registry
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Register a decrypted value for masking everywhere.
    pub fn register(&self, secret: &str) {
        if !secret.is_empty() && !self.read().secrets.iter().any(|known| known == secret) {
            self.write().register(secret);
        }
    }

    /// What a template makes from a secret is a secret: when a filter's
    /// input carries a registered value (or a piece of one), its output is
    /// registered too — base64, a digest: transforms whose output cannot be
    /// traced back to the part of the input that was secret.
    pub(crate) fn derive(&self, input: &str, output: &str) {
        self.piece(input);
        if output != input && self.carries_secret(input) {
            self.register(output);
        }
    }

    /// A filter that maps text piece by piece (`upper`, `replace`): when its
    /// input is a secret (or a piece of one) its output is registered; when
    /// the input only holds secrets among other text, what the filter makes
    /// of each secret is, so that the rest of the text stays readable.
    pub(crate) fn derive_each(
        &self,
        input: &str,
        output: &str,
        transform: impl Fn(&str) -> String,
    ) {
        self.piece(input);
        let contained: Vec<String> = {
            let registry = &self.read().secrets;
            if registry.iter().any(|secret| secret == input) || is_piece(registry, input) {
                vec![]
            } else {
                registry
                    .iter()
                    .filter(|secret| {
                        secret.chars().count() >= MIN_LENGTH && input.contains(secret.as_str())
                    })
                    .cloned()
                    .collect()
            }
        };
        if contained.is_empty() {
            if output != input && self.carries_secret(input) {
                self.register(output);
            }
            return;
        }
        for secret in contained {
            self.register(&transform(&secret));
        }
    }

    /// A piece of a secret printed on its own (`{{ key[:16] }}`, `trim`) is
    /// a secret when it is [`PIECE`] characters long, or at least six and
    /// three quarters of the value. Shorter pieces are left alone: a word
    /// that happens to occur inside a secret (`postgres` in a connection
    /// string) would be masked everywhere, and a short prefix shown to tell
    /// keys apart tells little.
    pub(crate) fn piece(&self, text: &str) {
        if is_piece(&self.read().secrets, text) {
            self.register(text);
        }
    }

    fn carries_secret(&self, text: &str) -> bool {
        let registry = &self.read().secrets;
        registry.iter().any(|secret| {
            secret == text
                || (secret.chars().count() >= MIN_LENGTH && text.contains(secret.as_str()))
        }) || is_piece(registry, text)
    }

    /// Note the digest of an encrypted file whose values were registered.
    pub fn add_source(&self, digest: String) {
        self.sources
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(digest);
    }

    /// One digest of every encrypted source noted so far: it changes when
    /// a secrets file does (a rotated secret), and holds no secret.
    pub fn sources_digest(&self) -> String {
        use sha2::Digest as _;
        let sources = self
            .sources
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut hasher = sha2::Sha256::new();
        for source in sources.iter() {
            hasher.update(source.as_bytes());
            hasher.update([0]);
        }
        stack_kube::hex::lower(&hasher.finalize())
    }

    /// A key only those who hold the run's secrets can make: a digest of
    /// every value registered, in order of their text. What it keys (a
    /// plan file's digest of a Secret) cannot be checked against guesses
    /// of one secret without all the others.
    pub fn secrets_key(&self) -> [u8; 32] {
        use sha2::Digest as _;
        let mut secrets: Vec<String> = self.read().secrets.clone();
        secrets.sort();
        let mut hasher = sha2::Sha256::new();
        for secret in &secrets {
            hasher.update(secret.as_bytes());
            hasher.update([0]);
        }
        hasher.finalize().into()
    }

    /// Whether output shows secrets (`--show-secrets`).
    pub fn showing(&self) -> bool {
        self.show
    }

    /// A masker for output: every value registered so far, off with
    /// `--show-secrets`.
    pub fn masker(&self) -> Masker {
        let mut masker = self.read().clone();
        masker.enabled = !self.show;
        masker
    }

    /// `text` as it may be stored (revision history, caches): masked even
    /// with `--show-secrets`, since a secret rotated later must not show
    /// there.
    pub fn stored_text(&self, text: &str) -> String {
        self.read().mask_text(text)
    }

    /// A value as it may be stored (see [`Masks::stored_text`]).
    pub fn stored_object(&self, value: &mut Value) {
        self.read().mask_object(value);
    }

    /// Whether masking would hide anything of `value` (it holds a decrypted
    /// value, or is a Secret's data), `--show-secrets` or not.
    pub fn hides(&self, value: &Value) -> bool {
        let mut masked = value.clone();
        self.stored_object(&mut masked);
        masked != *value
    }

    /// `text` as output shows it.
    pub fn text(&self, text: &str) -> String {
        if self.show {
            text.to_string()
        } else {
            self.read().mask_text(text)
        }
    }
}

impl Default for Masks {
    /// Masking on, nothing registered.
    fn default() -> Self {
        Self::new(false)
    }
}

const PIECE: usize = 12;

fn is_piece(registry: &[String], text: &str) -> bool {
    let length = text.chars().count();
    length >= MIN_LENGTH
        && registry.iter().any(|secret| {
            secret != text
                && (length >= PIECE || 4 * length >= 3 * secret.chars().count())
                && secret.contains(text)
        })
}

/// Registered secrets and the forms they are found in.
#[derive(Debug, Default, Clone)]
pub struct Masker {
    enabled: bool,
    /// The decrypted values, to mask a string that is one whole.
    secrets: Vec<String>,
    /// Every form in which a secret can appear in text (see [`forms`]),
    /// longest first, so that a form containing another is masked whole.
    forms: Vec<String>,
}

/// The forms of a secret that output can carry: as it is; each line of a
/// multi-line value (a PEM key shown as a YAML block scalar, at any
/// indentation); JSON- and YAML-escaped (`tojson`, a double-quoted
/// scalar); base64, standard and URL-safe (`b64encode`, a Secret's
/// `data`); percent-encoded (in a URL).
fn forms(secret: &str) -> Vec<String> {
    use base64::Engine as _;
    let mut forms = vec![secret.to_string()];
    if secret.contains('\n') {
        forms.extend(secret.lines().map(str::trim).map(str::to_string));
    }
    // JSON-escaped once (`tojson`, a double-quoted scalar), with the HTML
    // characters as `\u00XX` too (minijinja's `tojson`), and twice
    // (`tojson | quote`).
    let escaped = json_escaped(secret);
    let html_safe = escaped
        .replace('&', "\\u0026")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('\'', "\\u0027");
    forms.push(json_escaped(&escaped));
    forms.push(json_escaped(&html_safe));
    forms.push(escaped);
    forms.push(html_safe);
    for engine in [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
    ] {
        let encoded = engine.encode(secret);
        forms.push(encoded.trim_end_matches('=').to_string());
        forms.push(encoded);
    }
    forms.push(percent_encoded(secret));
    forms.retain(|form| form.chars().count() >= MIN_LENGTH);
    forms
}

/// `text` as inside a JSON string, without the quotes.
fn json_escaped(text: &str) -> String {
    let quoted = serde_json::Value::String(text.to_string()).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

/// Shorter values (and forms) are masked only where they are a whole
/// value: inside text they would mask half of every output.
const MIN_LENGTH: usize = 6;

/// `text` with every byte outside RFC 3986's unreserved set as `%XX`.
fn percent_encoded(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Whether a character continues a word: a match next to one is part of a
/// longer word (`postgres` in `postgresql`) and is not the secret.
fn word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether `text` ends with an escape sequence (`\n`, `\t`, `\r`,
/// `\u0026`): what follows starts a new token though the escape ends in a
/// letter or digit.
fn after_escape(text: &str) -> bool {
    let bytes = text.as_bytes();
    let escaped_letter = bytes.len() >= 2
        && bytes[bytes.len() - 2] == b'\\'
        && matches!(bytes[bytes.len() - 1], b'n' | b't' | b'r');
    let escaped_code = bytes.len() >= 6
        && bytes[bytes.len() - 6] == b'\\'
        && bytes[bytes.len() - 5] == b'u'
        && bytes[bytes.len() - 4..].iter().all(u8::is_ascii_hexdigit);
    escaped_letter || escaped_code
}

/// `text` with each occurrence of `form` that stands alone (not inside a
/// longer word) replaced by [`MASK`].
fn replace_whole(text: &str, form: &str) -> String {
    let mut masked = String::with_capacity(text.len());
    let mut last = 0;
    for (start, _) in text.match_indices(form) {
        let end = start + form.len();
        if start < last {
            continue;
        }
        let before = (!after_escape(&text[..start]))
            .then(|| text[..start].chars().next_back())
            .flatten();
        let after = text[end..].chars().next();
        let joins = |edge: Option<char>, inner: Option<char>| {
            edge.is_some_and(word) && inner.is_some_and(word)
        };
        if joins(before, form.chars().next()) || joins(after, form.chars().next_back()) {
            continue;
        }
        masked.push_str(&text[last..start]);
        masked.push_str(MASK);
        last = end;
    }
    masked.push_str(&text[last..]);
    masked
}

impl Masker {
    /// A masker that knows no value yet (tests; a run's come from [`Masks`]).
    #[cfg(test)]
    pub(crate) fn new(show_secrets: bool) -> Self {
        Self {
            enabled: !show_secrets,
            secrets: Vec::new(),
            forms: Vec::new(),
        }
    }

    /// Whether output is masked (no `--show-secrets`).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Register a decrypted value. Values under six characters are masked
    /// only where they are a whole value, not inside other text.
    pub(crate) fn register(&mut self, secret: &str) {
        if secret.is_empty() || self.secrets.iter().any(|known| known == secret) {
            return;
        }
        self.secrets.push(secret.to_string());
        for form in forms(secret) {
            if !self.forms.contains(&form) {
                self.forms.push(form);
            }
        }
        self.forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
    }

    /// Replace every form of every registered secret in `text`, where it
    /// stands alone (never inside a longer word).
    pub(crate) fn mask_text(&self, text: &str) -> String {
        if !self.enabled {
            return text.to_string();
        }
        let mut masked = text.to_string();
        for form in &self.forms {
            if masked.contains(form.as_str()) {
                masked = replace_whole(&masked, form);
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
    fn every_form_of_a_secret_is_masked_but_never_inside_a_longer_word() {
        use base64::Engine as _;
        let key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----";
        let mut masker = Masker::new(false);
        masker.register(key);
        masker.register("p@ss word/1");
        masker.register("postgres");
        let shown = [
            // each line of a block scalar, at any indentation
            "data:\n  key.pem: |\n        MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n".to_string(),
            // JSON-escaped (`tojson`)
            serde_json::to_string(key).unwrap(),
            // base64, standard and URL-safe
            base64::engine::general_purpose::STANDARD.encode(key),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("p@ss word/1"),
            // percent-encoded in a URL
            "postgres://app:p%40ss%20word%2F1@db".to_string(),
            // JSON-escaped twice (`tojson | quote`): a line after `\\n`
            serde_json::to_string(&serde_json::to_string(key).unwrap()).unwrap(),
            // minijinja's `tojson` writes `&` as `\u0026`
            r#"{"dsn": "a\u0026p@ss word/1"}"#.to_string(),
        ];
        for text in &shown {
            let masked = masker.mask_text(text);
            assert!(masked.contains(MASK), "{text} -> {masked}");
            assert!(!masked.contains("MIIEvQIBADANBgkq"), "{masked}");
            assert!(!masked.contains("p%40ss"), "{masked}");
            assert!(!masked.contains("ss word"), "{masked}");
        }
        // A common word that is a secret is masked as a word, not inside one.
        assert_eq!(
            masker.mask_text("database/postgresql, user postgres."),
            "database/postgresql, user (sensitive value)."
        );
    }

    #[test]
    fn show_secrets_turns_masking_off() {
        let mut masker = Masker::new(true);
        masker.register("hunter22");
        assert_eq!(masker.mask_text("pw=hunter22"), "pw=hunter22");
    }

    #[test]
    fn each_run_has_its_own_masks_shared_by_its_clones() {
        let run = Masks::new(false);
        let other = Masks::new(false);
        run.register("hunter22-first");
        run.clone().register("hunter22-second");
        assert_eq!(
            run.text("a hunter22-first b hunter22-second"),
            format!("a {MASK} b {MASK}")
        );
        assert_eq!(other.text("a hunter22-first"), "a hunter22-first");
        assert!(run.hides(&serde_json::json!({"url": "db://hunter22-first@db"})));
        assert!(!other.hides(&serde_json::json!({"url": "db://hunter22-first@db"})));
    }

    #[test]
    fn show_secrets_shows_output_but_never_what_is_stored() {
        let masks = Masks::new(true);
        masks.register("hunter22");
        assert_eq!(masks.text("pw=hunter22"), "pw=hunter22");
        assert_eq!(masks.masker().mask_text("pw=hunter22"), "pw=hunter22");
        assert_eq!(masks.stored_text("pw=hunter22"), format!("pw={MASK}"));
    }
}

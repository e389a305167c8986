//! The document model of a SOPS file: an ordered tree whose scalars keep
//! their YAML/JSON type (int vs float, infinities), because the MAC hashes
//! each value in its type's canonical form (sops-format.md §2, §3.4, §5).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Tree {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Tree>),
    Map(Vec<(String, Tree)>),
}

impl Tree {
    /// As plain JSON values (infinities and NaN become strings).
    pub fn to_value(&self) -> Value {
        match self {
            Self::Null => Value::Null,
            Self::Bool(flag) => Value::Bool(*flag),
            Self::Int(number) => Value::from(*number),
            // As sops prints them: `1.0` decrypts to `1`.
            #[allow(clippy::cast_possible_truncation)]
            Self::Float(number)
                if number.is_finite() && number.fract() == 0.0 && number.abs() < 9.0e15 =>
            {
                Value::from(*number as i64)
            }
            Self::Float(number) => serde_json::Number::from_f64(*number)
                .map_or_else(|| Value::String(go_float(*number)), Value::Number),
            Self::Str(text) => Value::String(text.clone()),
            Self::Seq(items) => Value::Array(items.iter().map(Self::to_value).collect()),
            Self::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_value()))
                    .collect(),
            ),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Tree> {
        match self {
            Self::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Overwrite every string, key and number in place (for decrypted
    /// documents, when they are dropped).
    pub(crate) fn wipe(&mut self) {
        use zeroize::Zeroize as _;
        match self {
            Self::Map(entries) => entries.iter_mut().for_each(|(key, value)| {
                key.zeroize();
                value.wipe();
            }),
            Self::Seq(items) => items.iter_mut().for_each(Self::wipe),
            Self::Str(text) => text.zeroize(),
            Self::Int(number) => number.zeroize(),
            Self::Float(number) => number.zeroize(),
            Self::Bool(_) | Self::Null => {}
        }
    }

    /// Every non-empty string value (what masking registers).
    pub fn strings(&self, out: &mut Vec<String>) {
        match self {
            Self::Map(entries) => entries.iter().for_each(|(_, v)| v.strings(out)),
            Self::Seq(items) => items.iter().for_each(|v| v.strings(out)),
            Self::Str(text) if !text.is_empty() => out.push(text.clone()),
            _ => {}
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(text) => Some(text),
            _ => None,
        }
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`, with sops's special values.
pub(crate) fn go_float(number: f64) -> String {
    if number.is_nan() {
        "NaN".into()
    } else if number.is_infinite() {
        if number > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{number}")
    }
}

/// Parse a YAML stream (infinities and NaN kept as floats, as sops types them).
pub fn parse_yaml(text: &str) -> Result<Vec<Tree>, String> {
    let mut options = serde_saphyr::Options::default();
    options.non_finite_float_policy = serde_saphyr::NonFiniteFloatPolicy::PassThrough;
    // sops keeps `<<` as a literal key (it is part of the values' paths).
    options.merge_keys = serde_saphyr::MergeKeyPolicy::AsOrdinary;
    serde_saphyr::from_multiple_with_options(text, options)
        .map_err(|e| e.without_snippet().to_string())
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any YAML or JSON value")
    }

    fn visit_unit<E>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }

    fn visit_none<E>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Tree, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_bool<E>(self, value: bool) -> Result<Tree, E> {
        Ok(Tree::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Tree, E> {
        Ok(Tree::Int(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Tree, E> {
        i64::try_from(value)
            .map(Tree::Int)
            .map_err(|_| E::custom("integer too large for sops (unknown type: uint64)"))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Tree, E> {
        Ok(Tree::Float(value))
    }

    fn visit_str<E>(self, value: &str) -> Result<Tree, E> {
        Ok(Tree::Str(value.to_string()))
    }

    fn visit_string<E>(self, value: String) -> Result<Tree, E> {
        Ok(Tree::Str(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = access.next_element()? {
            items.push(item);
        }
        Ok(Tree::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Tree, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = access.next_key::<String>()? {
            entries.push((key, access.next_value()?));
        }
        Ok(Tree::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wipe_clears_every_key_string_and_number() {
        let mut tree = Tree::Map(vec![
            ("password".into(), Tree::Str("hunter22".into())),
            (
                "list".into(),
                Tree::Seq(vec![Tree::Int(5432), Tree::Float(0.5)]),
            ),
        ]);
        tree.wipe();
        let cleared = Tree::Map(vec![
            (String::new(), Tree::Str(String::new())),
            (
                String::new(),
                Tree::Seq(vec![Tree::Int(0), Tree::Float(0.0)]),
            ),
        ]);
        assert_eq!(tree, cleared);
    }
}

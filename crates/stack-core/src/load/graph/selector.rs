//! helmfile's selector grammar: `k=v` and `k!=v` terms, comma = AND; several
//! `--selector` flags = OR. `k!=v` also holds when the label is absent.
//! Stack-file labels are free strings, as in helmfile (`version=1.2.3+123`
//! selects): they only select releases and never become Kubernetes labels.

use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    terms: Vec<Term>,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    key: String,
    value: String,
    negated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed selector term `{term}` in `{selector}`")]
pub struct SelectorError {
    pub term: String,
    pub selector: String,
}

impl Selector {
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let terms = text
            .split(',')
            .map(|term| {
                parse_term(term.trim()).ok_or_else(|| SelectorError {
                    term: term.trim().to_string(),
                    selector: text.to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            terms,
            text: text.to_string(),
        })
    }

    /// Whether every term holds for these labels.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.terms.iter().all(|term| {
            let equal = labels.get(&term.key) == Some(&term.value);
            equal != term.negated
        })
    }
}

fn parse_term(term: &str) -> Option<Term> {
    let (key, value, negated) = if let Some((key, value)) = term.split_once("!=") {
        (key, value, true)
    } else {
        let (key, value) = term.split_once('=')?;
        (key, value, false)
    };
    let (key, value) = (key.trim(), value.trim());
    let valid_key = |text: &str| {
        !text.is_empty()
            && !text
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '=' | '!'))
    };
    let valid_value = |text: &str| !text.is_empty() && !text.chars().any(char::is_whitespace);
    (valid_key(key) && valid_value(value)).then(|| Term {
        key: key.to_string(),
        value: value.to_string(),
        negated,
    })
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// True when any selector matches (OR); no selectors match everything.
pub(crate) fn any_matches(selectors: &[Selector], labels: &BTreeMap<String, String>) -> bool {
    selectors.is_empty() || selectors.iter().any(|selector| selector.matches(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn equality_inequality_and() {
        let core = labels(&[("tier", "core"), ("app", "db")]);
        assert!(Selector::parse("tier=core").unwrap().matches(&core));
        assert!(!Selector::parse("tier!=core").unwrap().matches(&core));
        assert!(Selector::parse("team!=x").unwrap().matches(&core));
        assert!(Selector::parse("tier=core,app=db").unwrap().matches(&core));
        assert!(!Selector::parse("tier=core,app=web").unwrap().matches(&core));
    }

    #[test]
    fn malformed_terms_are_named() {
        let error = Selector::parse("tier=core,app").unwrap_err();
        assert_eq!(error.term, "app");
        assert!(Selector::parse("=x").is_err());
        assert!(Selector::parse("tier=").is_err());
        assert!(Selector::parse("tier in (a,b)").is_err());
        assert!(Selector::parse("a b=c").is_err());
    }

    #[test]
    fn values_are_free_strings_as_in_helmfile() {
        let release = labels(&[("version", "1.2.3+123"), ("owner", "team@acme")]);
        assert!(
            Selector::parse("version=1.2.3+123,owner=team@acme")
                .unwrap()
                .matches(&release)
        );
        assert!(
            !Selector::parse("version!=1.2.3+123")
                .unwrap()
                .matches(&release)
        );
    }
}

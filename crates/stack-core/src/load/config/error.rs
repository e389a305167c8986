//! What can be wrong with stack files, environments and values files.

use std::path::PathBuf;

use crate::diagnostic::Span;
use crate::yaml::SyntaxError;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "cannot read {}: {}",
        crate::diagnostic::display_path(path),
        crate::diagnostic::io_reason(source)
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
        span: Option<Span>,
    },
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    #[error("unknown key `{key}` in {context}")]
    UnknownKey {
        key: String,
        context: &'static str,
        span: Span,
        suggestion: Option<String>,
        valid: Vec<&'static str>,
    },
    #[error("`{key}` must be {expected}, found {found}")]
    WrongType {
        key: String,
        expected: &'static str,
        found: &'static str,
        span: Span,
    },
    #[error("{context} is missing the required key `{key}`")]
    MissingKey {
        key: &'static str,
        context: String,
        span: Span,
    },
    #[error("{message}")]
    Invalid {
        message: String,
        span: Span,
        hint: Option<String>,
    },
    #[error("no stack file found in {}", crate::diagnostic::display_path(dir))]
    NoStackFiles { dir: PathBuf },
    #[error("release `{id}` is defined twice")]
    DuplicateRelease {
        id: String,
        first: Span,
        second: Span,
    },
    #[error("environment `{name}` is defined twice")]
    DuplicateEnvironment {
        name: String,
        first: Span,
        second: Span,
    },
    #[error("unknown environment `{name}`")]
    UnknownEnvironment {
        name: String,
        known: Vec<String>,
        suggestion: Option<String>,
    },
}

impl ConfigError {
    pub fn span(&self) -> Option<&Span> {
        match self {
            Self::Read { span, .. } => span.as_ref(),
            Self::Syntax(error) => Some(&error.span),
            Self::UnknownKey { span, .. }
            | Self::WrongType { span, .. }
            | Self::MissingKey { span, .. }
            | Self::Invalid { span, .. } => Some(span),
            Self::DuplicateRelease { second, .. } | Self::DuplicateEnvironment { second, .. } => {
                Some(second)
            }
            Self::NoStackFiles { .. } | Self::UnknownEnvironment { .. } => None,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            Self::UnknownKey {
                suggestion, valid, ..
            } => Some(match suggestion {
                Some(name) => format!("did you mean `{name}`?"),
                None => format!("valid keys here: {}", valid.join(", ")),
            }),
            Self::Invalid { hint, .. } => hint.clone(),
            Self::NoStackFiles { .. } => Some(
                "pass -f FILE or -f DIR; a directory needs stack.yaml, stacks/*.yaml or *.yaml"
                    .into(),
            ),
            Self::DuplicateRelease { first, .. } => Some(format!(
                "the first definition is at {}; give one of them another name or namespace",
                first.location()
            )),
            Self::DuplicateEnvironment { first, .. } => {
                Some(format!("the first definition is at {}", first.location()))
            }
            Self::UnknownEnvironment {
                known, suggestion, ..
            } => Some(match suggestion {
                Some(name) => format!(
                    "did you mean `{name}`? (environments: {})",
                    known.join(", ")
                ),
                None if known.is_empty() => {
                    "this stack defines no environments; add an `environments:` section".into()
                }
                None => format!("environments of this stack: {}", known.join(", ")),
            }),
            Self::Read { .. }
            | Self::Syntax(_)
            | Self::WrongType { .. }
            | Self::MissingKey { .. } => None,
        }
    }
}

//! The top-level error: every module's errors, with the wording the user
//! reads, the exit code, the source span and the hint in one place.

use std::path::PathBuf;

use crate::cluster::ClusterError;
use crate::diagnostic::{Diagnostic, display_path};
use crate::load::config::ConfigError;
use crate::load::graph::GraphError;
use crate::load::render::RenderError;
use crate::load::values::SetError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Set(#[from] SetError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Engine(#[from] crate::execute::error::EngineError),
    /// A release's run failed (`destroy`, `test`).
    #[error(transparent)]
    Release(#[from] crate::execute::error::ReleaseError),
    #[error(transparent)]
    Promote(#[from] crate::promote::PromoteError),
    #[error("{error}")]
    Secrets {
        error: crate::secrets::SecretsError,
        span: Option<crate::diagnostic::Span>,
    },
    #[error("{message}")]
    Failed {
        message: String,
        hint: Option<String>,
    },
    /// A run whose releases failed; `code` is 1, 3 (rolled back) or 4
    /// (the rollback failed too).
    #[error("{message}")]
    Deploy {
        message: String,
        hint: String,
        code: u8,
    },
    #[error(
        "cannot write {}: {}",
        display_path(path),
        crate::diagnostic::io_reason(source)
    )]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Exit codes (product.md §6): 0 success, 1 error, 2 changes
/// (`diff --detailed-exitcode`), 3 failed and rolled back, 4 rollback failed.
pub const EXIT_ERROR: u8 = 1;
pub const EXIT_CHANGES: u8 = 2;
pub const EXIT_ROLLED_BACK: u8 = 3;
pub const EXIT_ROLLBACK_FAILED: u8 = 4;

impl Error {
    pub fn diagnostic(&self) -> Diagnostic {
        let (span, hint) = match self {
            Self::Config(error) => (error.span().cloned(), error.hint()),
            Self::Render(error) => (error.span().cloned(), error.hint()),
            Self::Graph(error) => (error.span().cloned(), error.hint()),
            Self::Set(_) => (
                None,
                Some(
                    "write --set key.path=value; use --set-string to keep a value a string".into(),
                ),
            ),
            Self::Cluster(error) => (None, error.hint()),
            Self::Engine(error) => (None, Some(error.hint())),
            Self::Promote(error) => (error.span().cloned(), error.hint()),
            Self::Failed { hint, .. } => (None, hint.clone()),
            Self::Deploy { hint, .. } => (None, Some(hint.clone())),
            Self::Secrets { error, span } => (span.clone(), error.hint()),
            Self::Release(_) | Self::Write { .. } => (None, None),
        };
        Diagnostic::error(self.to_string())
            .with_span(span)
            .with_hint(hint)
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Deploy { code, .. } => *code,
            // Recovering an interrupted run failed: the cluster is in between.
            Self::Engine(crate::execute::error::EngineError::Recovery { .. }) => {
                EXIT_ROLLBACK_FAILED
            }
            _ => EXIT_ERROR,
        }
    }
}

/// Several errors, reported together (`stack lint` shows them all).
#[derive(Debug, Default)]
pub struct Errors(pub Vec<Error>);

impl<E: Into<Error>> From<E> for Errors {
    fn from(error: E) -> Self {
        Self(vec![error.into()])
    }
}

impl Errors {
    pub fn from_all<E: Into<Error>>(errors: impl IntoIterator<Item = E>) -> Self {
        Self(errors.into_iter().map(Into::into).collect())
    }

    pub fn exit_code(&self) -> u8 {
        self.0
            .iter()
            .map(Error::exit_code)
            .max()
            .unwrap_or(EXIT_ERROR)
    }
}

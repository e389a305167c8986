//! An environment's `imagePullSecrets`: the registry credentials its
//! namespaces get, in one of three modes (as Rise has them):
//!
//! ```yaml
//! imagePullSecrets:
//!   managed: {name: regcred, registry: ghcr.io, dockerConfig: ../secrets/registry.json}
//!   # or {name: regcred, registry: 1234.dkr.ecr.eu-west-1.amazonaws.com,
//!   #     command: [aws, ecr, get-login-password], username: AWS, refreshEvery: 1h}
//! # or
//! imagePullSecrets: {external: regcred}      # a Secret that exists in each namespace
//! # or
//! imagePullSecrets: none
//! ```

use std::time::Duration;

use crate::diagnostic::Span;
use crate::load::config::reader::{MapReader, expect_string};
use crate::load::config::{ConfigError, FileRef};
use crate::yaml::{Node, NodeKind};

const KEYS: &[&str] = &["managed", "external"];
const MANAGED_KEYS: &[&str] = &[
    "name",
    "registry",
    "dockerConfig",
    "command",
    "username",
    "refreshEvery",
];

/// How a managed pull secret's docker config is had.
#[derive(Debug, Clone)]
pub enum PullSource {
    /// A SOPS-encrypted docker config file (`{"auths": …}`).
    DockerConfig(FileRef),
    /// A program (no shell) printing a password, or a docker config.
    Command(Vec<String>),
}

/// An environment's pull secret.
#[derive(Debug, Clone)]
pub enum PullSecretSpec {
    /// `stack` writes it into every namespace it deploys into.
    Managed {
        name: String,
        registry: String,
        source: PullSource,
        /// The user a command's password is for (default `AWS`, as ECR has it).
        username: String,
        refresh_every: Duration,
        span: Span,
    },
    /// It exists in every namespace already; `stack` checks it does.
    External { name: String, span: Span },
}

impl PullSecretSpec {
    pub fn name(&self) -> &str {
        match self {
            Self::Managed { name, .. } | Self::External { name, .. } => name,
        }
    }

    pub fn span(&self) -> &Span {
        match self {
            Self::Managed { span, .. } | Self::External { span, .. } => span,
        }
    }
}

fn invalid(message: &str, hint: &str, span: &Span) -> ConfigError {
    ConfigError::Invalid {
        message: message.into(),
        span: span.clone(),
        hint: Some(hint.into()),
    }
}

/// `imagePullSecrets:` of an environment.
pub(crate) fn parse(
    node: &Node,
    base: &std::path::Path,
    errors: &mut Vec<ConfigError>,
) -> Option<PullSecretSpec> {
    if node.as_str() == Some("none") || node.is_null() {
        return None;
    }
    let map = MapReader::new(node, "imagePullSecrets", KEYS, errors)?;
    match (map.get("managed"), map.get("external")) {
        (Some(managed), None) => parse_managed(managed, base, errors),
        (None, Some(external)) => {
            let name = expect_string(external, "external", errors)?;
            Some(PullSecretSpec::External {
                name: name.as_str().unwrap_or_default().to_string(),
                span: external.span.clone(),
            })
        }
        _ => {
            errors.push(invalid(
                "`imagePullSecrets` is one of `managed`, `external` or `none`",
                "write `imagePullSecrets: {external: NAME}`, `{managed: {name, registry, dockerConfig|command}}`, or `none`",
                &node.span,
            ));
            None
        }
    }
}

fn parse_managed(
    node: &Node,
    base: &std::path::Path,
    errors: &mut Vec<ConfigError>,
) -> Option<PullSecretSpec> {
    let map = MapReader::new(node, "imagePullSecrets.managed", MANAGED_KEYS, errors)?;
    let text = |key: &'static str, errors: &mut Vec<ConfigError>| {
        map.require(key, "imagePullSecrets.managed", errors)
            .and_then(|n| expect_string(n, key, errors))
            .and_then(Node::as_str)
            .map(str::to_string)
    };
    let name = text("name", errors);
    let registry = text("registry", errors);
    let source = match (map.get("dockerConfig"), map.get("command")) {
        (Some(file), None) => expect_string(file, "dockerConfig", errors).map(|path| {
            PullSource::DockerConfig(FileRef {
                path: path.clone(),
                base: base.to_path_buf(),
            })
        }),
        (None, Some(command)) => match &command.kind {
            NodeKind::Sequence(items) if !items.is_empty() => Some(PullSource::Command(
                items
                    .iter()
                    .filter_map(|item| expect_string(item, "command", errors))
                    .filter_map(|item| item.as_str().map(str::to_string))
                    .collect(),
            )),
            _ => {
                errors.push(invalid(
                    "`command` is a program and its arguments, as a list",
                    "write `command: [aws, ecr, get-login-password]` (it runs without a shell)",
                    &command.span,
                ));
                None
            }
        },
        _ => {
            errors.push(invalid(
                "a managed pull secret comes from `dockerConfig` or `command`, one of them",
                "`dockerConfig: FILE` (a SOPS-encrypted docker config) or `command: [PROGRAM, ARGS…]` (prints a password or a docker config)",
                &node.span,
            ));
            None
        }
    };
    let username = map
        .string("username", errors)
        .and_then(Node::as_str)
        .unwrap_or("AWS")
        .to_string();
    let refresh_every = map
        .duration("refreshEvery", errors)
        .unwrap_or(Duration::from_secs(3600));
    Some(PullSecretSpec::Managed {
        name: name?,
        registry: registry?,
        source: source?,
        username,
        refresh_every,
        span: node.span.clone(),
    })
}

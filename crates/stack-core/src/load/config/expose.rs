//! Exposure: an environment's `ingress:` (how releases are reached: URL
//! templates by sub-domain or sub-path, TLS, custom domains, the auth of
//! private releases) and a release's `expose:` (which Service and port,
//! public or private, its custom domains). Every problem is located.

use std::collections::BTreeMap;

use crate::diagnostic::Span;
use crate::load::config::ConfigError;
use crate::load::config::reader::{MapReader, expect_string};
use crate::yaml::{Node, NodeKind};

const INGRESS_KEYS: &[&str] = &[
    "className",
    "urlTemplate",
    "previewUrlTemplate",
    "tlsSecret",
    "annotations",
    "customDomains",
    "auth",
];
const DOMAINS_KEYS: &[&str] = &["tls", "annotations"];
const AUTH_KEYS: &[&str] = &["url", "signin", "responseHeaders"];
const EXPOSE_KEYS: &[&str] = &[
    "service",
    "port",
    "access",
    "customDomains",
    "urlTemplate",
    "previewUrlTemplate",
];

/// A URL template (`{release}.apps.example.com`, `example.com/{release}`).
#[derive(Debug, Clone)]
pub struct UrlTemplate {
    pub text: String,
    pub span: Span,
}

impl UrlTemplate {
    /// The host and, for a sub-path template, the path, with the
    /// placeholders filled in (`{release}`, `{group}`, `{environment}`).
    pub fn fill(
        &self,
        release: &str,
        group: Option<&str>,
        environment: &str,
    ) -> (String, Option<String>) {
        let text = self
            .text
            .replace("{release}", release)
            .replace("{environment}", environment);
        let text = match group {
            Some(group) => text.replace("{group}", group),
            None => text,
        };
        match text.split_once('/') {
            Some((host, path)) => (
                host.to_string(),
                Some(format!("/{}", path.trim_matches('/'))),
            ),
            None => (text, None),
        }
    }
}

/// How custom domains get their certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainTls {
    /// `tls-<domain>` per domain (a certificate issuer fills them).
    PerDomain,
    /// The environment's `tlsSecret` for every domain.
    Shared,
}

/// The auth in front of private releases (ingress-nginx external auth).
#[derive(Debug, Clone)]
pub struct Auth {
    pub url: String,
    pub signin: Option<String>,
    pub response_headers: Vec<String>,
}

/// An environment's `ingress:`.
#[derive(Debug, Clone)]
pub struct IngressSettings {
    pub class_name: Option<String>,
    pub url_template: Option<UrlTemplate>,
    pub preview_url_template: Option<UrlTemplate>,
    pub tls_secret: Option<String>,
    pub annotations: BTreeMap<String, String>,
    pub domain_tls: DomainTls,
    pub domain_annotations: BTreeMap<String, String>,
    pub auth: Option<Auth>,
    pub span: Span,
}

/// Who may reach an exposed release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    /// Behind the environment's `auth`.
    Private,
}

/// A release's `expose:`.
#[derive(Debug, Clone)]
pub struct ExposeSpec {
    pub service: String,
    /// A port name, or a number.
    pub port: serde_json::Value,
    pub access: Access,
    pub custom_domains: Vec<(String, Span)>,
    /// The release's own URL templates, over the environment's (a release
    /// reached by sub-path where the others are by sub-domain).
    pub url_template: Option<UrlTemplate>,
    pub preview_url_template: Option<UrlTemplate>,
    pub span: Span,
}

impl PartialEq for ExposeSpec {
    fn eq(&self, other: &Self) -> bool {
        let domains = |spec: &Self| {
            spec.custom_domains
                .iter()
                .map(|(d, _)| d.clone())
                .collect::<Vec<_>>()
        };
        let templates = |spec: &Self| {
            [&spec.url_template, &spec.preview_url_template]
                .map(|t| t.as_ref().map(|t| t.text.clone()))
        };
        (&self.service, &self.port, self.access) == (&other.service, &other.port, other.access)
            && domains(self) == domains(other)
            && templates(self) == templates(other)
    }
}

fn invalid(message: String, hint: &str, span: &Span) -> ConfigError {
    ConfigError::Invalid {
        message,
        span: span.clone(),
        hint: Some(hint.into()),
    }
}

/// A string map (`annotations:`).
fn string_map(node: Option<&Node>, errors: &mut Vec<ConfigError>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(node) = node else {
        return out;
    };
    let NodeKind::Mapping(entries) = &node.kind else {
        errors.push(crate::load::config::reader::wrong_type(
            "annotations",
            "a map of strings",
            node,
        ));
        return out;
    };
    for (key, value) in entries {
        let text = value
            .as_str()
            .map_or_else(|| value.to_value().to_string(), str::to_string);
        out.insert(key.name.clone(), text);
    }
    out
}

/// A template that must hold each of `placeholders`.
fn template(
    node: Option<&Node>,
    key: &'static str,
    placeholders: &[&str],
    errors: &mut Vec<ConfigError>,
) -> Option<UrlTemplate> {
    let node = node?;
    let text = expect_string(node, key, errors)?.as_str()?.to_string();
    for placeholder in placeholders {
        if !text.contains(placeholder) {
            errors.push(invalid(
                format!("`{key}` has no `{placeholder}`: every release would get the same URL"),
                "a template names the release (and a preview's group): `{release}.apps.example.com`, `example.com/{release}`, `{release}-{group}.preview.example.com`",
                &node.span,
            ));
            return None;
        }
    }
    Some(UrlTemplate {
        text,
        span: node.span.clone(),
    })
}

/// `urlTemplate` (with `{release}`) and `previewUrlTemplate` (with
/// `{release}` and `{group}`) of an environment's `ingress:` or a
/// release's `expose:`.
fn templates(
    map: &MapReader,
    errors: &mut Vec<ConfigError>,
) -> (Option<UrlTemplate>, Option<UrlTemplate>) {
    let url = template(
        map.get("urlTemplate"),
        "urlTemplate",
        &["{release}"],
        errors,
    );
    let preview = template(
        map.get("previewUrlTemplate"),
        "previewUrlTemplate",
        &["{release}", "{group}"],
        errors,
    );
    (url, preview)
}

/// `ingress:` of an environment.
pub(crate) fn parse_ingress(node: &Node, errors: &mut Vec<ConfigError>) -> Option<IngressSettings> {
    let map = MapReader::new(node, "ingress", INGRESS_KEYS, errors)?;
    let text = |key: &'static str, errors: &mut Vec<ConfigError>| {
        map.string(key, errors)
            .and_then(Node::as_str)
            .map(str::to_string)
    };
    let (domain_tls, domain_annotations) = match map.get("customDomains") {
        Some(domains) => {
            let reader = MapReader::new(domains, "ingress.customDomains", DOMAINS_KEYS, errors);
            let tls = match reader.as_ref().and_then(|r| r.get("tls")) {
                None => DomainTls::PerDomain,
                Some(node) if node.as_str() == Some("per-domain") => DomainTls::PerDomain,
                Some(node) if node.as_str() == Some("shared") => DomainTls::Shared,
                Some(node) => {
                    errors.push(invalid(
                        "`customDomains.tls` is `per-domain` or `shared`".into(),
                        "`per-domain`: a `tls-<domain>` secret each (a certificate issuer makes them); `shared`: the environment's `tlsSecret`",
                        &node.span,
                    ));
                    DomainTls::PerDomain
                }
            };
            let annotations =
                string_map(reader.as_ref().and_then(|r| r.get("annotations")), errors);
            (tls, annotations)
        }
        None => (DomainTls::PerDomain, BTreeMap::new()),
    };
    let auth = map.get("auth").and_then(|node| {
        let reader = MapReader::new(node, "ingress.auth", AUTH_KEYS, errors)?;
        let url = reader
            .require("url", "ingress.auth", errors)
            .and_then(|n| expect_string(n, "url", errors))
            .and_then(Node::as_str)
            .map(str::to_string)?;
        Some(Auth {
            url,
            signin: reader
                .string("signin", errors)
                .and_then(Node::as_str)
                .map(str::to_string),
            response_headers: reader
                .list("responseHeaders", errors)
                .iter()
                .filter_map(|h| expect_string(h, "responseHeaders", errors))
                .filter_map(|h| h.as_str().map(str::to_string))
                .collect(),
        })
    });
    let (url_template, preview_url_template) = templates(&map, errors);
    Some(IngressSettings {
        class_name: text("className", errors),
        url_template,
        preview_url_template,
        tls_secret: text("tlsSecret", errors),
        annotations: string_map(map.get("annotations"), errors),
        domain_tls,
        domain_annotations,
        auth,
        span: node.span.clone(),
    })
}

/// Whether `name` is a DNS name a certificate can be for.
pub fn is_domain(name: &str) -> bool {
    name.len() <= 253 && name.contains('.') && name.split('.').all(stack_kube::object::is_dns_label)
}

/// `expose:` of a release.
pub(crate) fn parse_expose(node: &Node, errors: &mut Vec<ConfigError>) -> Option<ExposeSpec> {
    let map = MapReader::new(node, "expose", EXPOSE_KEYS, errors)?;
    let service = map
        .require("service", "expose", errors)
        .and_then(|n| expect_string(n, "service", errors))
        .and_then(Node::as_str)
        .map(str::to_string);
    let port = match map.get("port") {
        Some(node) => match &node.kind {
            NodeKind::String(_) | NodeKind::Number(_) => node.to_value(),
            _ => {
                errors.push(crate::load::config::reader::wrong_type(
                    "port",
                    "a port name or number",
                    node,
                ));
                serde_json::Value::Null
            }
        },
        None => serde_json::Value::Null,
    };
    let access = match map.get("access") {
        None => Access::Public,
        Some(node) if node.as_str() == Some("public") => Access::Public,
        Some(node) if node.as_str() == Some("private") => Access::Private,
        Some(node) => {
            errors.push(invalid(
                "`access` is `public` or `private`".into(),
                "`private` puts the environment's `ingress.auth` in front of it",
                &node.span,
            ));
            Access::Public
        }
    };
    let mut custom_domains = Vec::new();
    for item in map.list("customDomains", errors) {
        let Some(domain) = expect_string(item, "customDomains", errors).and_then(Node::as_str)
        else {
            continue;
        };
        if is_domain(domain) {
            custom_domains.push((domain.to_string(), item.span.clone()));
        } else {
            errors.push(invalid(
                format!("custom domain `{domain}` is not a DNS name"),
                "lowercase labels of letters, digits and '-', separated by dots: `shop.example.com`",
                &item.span,
            ));
        }
    }
    let (url_template, preview_url_template) = templates(&map, errors);
    Some(ExposeSpec {
        service: service?,
        port,
        access,
        custom_domains,
        url_template,
        preview_url_template,
        span: node.span.clone(),
    })
}

//! A release's `expose:` rendered: the Ingress of its URL from the
//! environment's template — by sub-domain (`{release}.apps.example.com`,
//! at `/`) or by sub-path (`example.com/{release}`: the path
//! `/{release}(/|$)(.*)` rewritten to `/$2`, with `X-Forwarded-Prefix`, as
//! ingress-nginx does it) — and the Ingress of its custom domains (at
//! `/`, TLS per domain or shared); a private release gets ingress-nginx's
//! external auth annotations on both. Checked against the render: the
//! Service and port must be the release's.

use serde_json::{Value, json};

use crate::load::config::{
    Access, ConfigError, DomainTls, ExposeSpec, IngressSettings, UrlTemplate,
};
use crate::load::release::Release;
use crate::load::render::RenderedRelease;
use stack_kube::object::Object;

const NGINX: &str = "nginx.ingress.kubernetes.io";

/// The URLs a release is reached at in `environment` (none when it is
/// not exposed).
pub(crate) fn urls(
    release: &Release,
    settings: Option<&IngressSettings>,
    environment: &str,
) -> Vec<String> {
    let (Some(expose), Some(settings)) = (&release.options.expose, settings) else {
        return Vec::new();
    };
    let scheme = if settings.tls_secret.is_some() {
        "https"
    } else {
        "http"
    };
    let mut out = Vec::new();
    if let Some(template) = template(release, settings) {
        let (host, path) = template.fill(&release.name, release.group(), environment);
        out.push(format!("{scheme}://{host}{}/", path.unwrap_or_default()));
    }
    if release.group().is_some() {
        return out;
    }
    let domain_scheme = match settings.domain_tls {
        DomainTls::PerDomain => "https",
        DomainTls::Shared => scheme,
    };
    out.extend(
        expose
            .custom_domains
            .iter()
            .map(|(domain, _)| format!("{domain_scheme}://{domain}/")),
    );
    out
}

/// The URL template of a release (its own, else the environment's): a
/// group's copy is at the preview one.
fn template<'a>(release: &'a Release, settings: &'a IngressSettings) -> Option<&'a UrlTemplate> {
    let expose = release.options.expose.as_ref()?;
    match release.group() {
        Some(_) => expose
            .preview_url_template
            .as_ref()
            .or(settings.preview_url_template.as_ref()),
        None => expose
            .url_template
            .as_ref()
            .or(settings.url_template.as_ref()),
    }
}

fn located(message: String, hint: String, expose: &ExposeSpec) -> ConfigError {
    ConfigError::Invalid {
        message,
        span: expose.span.clone(),
        hint: Some(hint),
    }
}

/// The Service port to route to: the one named or numbered, else the
/// Service's first.
fn backend_port(expose: &ExposeSpec, service: &Value) -> Option<Value> {
    let ports = service["spec"]["ports"].as_array()?;
    let port = match &expose.port {
        Value::Null => ports.first()?,
        Value::String(name) => ports.iter().find(|p| p["name"] == *name)?,
        number => ports.iter().find(|p| p["port"] == *number)?,
    };
    Some(match port["name"].as_str() {
        Some(name) => json!({"name": name}),
        None => json!({"number": port["port"]}),
    })
}

/// The Ingresses of a release's `expose:`, or what is wrong with it.
pub(crate) fn objects(
    release: &Release,
    rendered: &RenderedRelease,
    settings: Option<&IngressSettings>,
    environment: &str,
) -> Result<Vec<Object>, ConfigError> {
    let Some(expose) = &release.options.expose else {
        return Ok(Vec::new());
    };
    let Some(settings) = settings else {
        return Err(located(
            format!("release `{}` is exposed, but the environment has no `ingress:`", release.id),
            "give the environment `ingress: {urlTemplate: \"{release}.apps.example.com\"}` (and its className, tlsSecret)".into(),
            expose,
        ));
    };
    let port = backend(release, rendered, expose)?;
    let annotations = annotations(release, expose, settings)?;
    let backend = json!({"service": {"name": expose.service, "port": port}});
    let mut out = Vec::new();
    if let Some(template) = template(release, settings) {
        let (host, path) = template.fill(&release.name, release.group(), environment);
        out.push(url_ingress(
            release,
            settings,
            (host, path),
            annotations.clone(),
            &backend,
        ));
    }
    // A preview never takes the environment's own domains.
    if !expose.custom_domains.is_empty() && release.group().is_none() {
        out.push(domains_ingress(
            release,
            settings,
            expose,
            annotations,
            &backend,
        ));
    }
    if out.is_empty() && release.group().is_some() {
        return Err(located(
            format!(
                "release `{}` is exposed, but the environment's `ingress` has no `previewUrlTemplate` for group `{}`",
                release.id,
                release.group().unwrap_or_default()
            ),
            "give the environment's `ingress` a `previewUrlTemplate`: `{release}-{group}.preview.example.com` or `example.com/{release}/{group}`".into(),
            expose,
        ));
    }
    if out.is_empty() {
        return Err(located(
            format!(
                "release `{}` is exposed, but there is no URL for it",
                release.id
            ),
            "give the environment's `ingress` a `urlTemplate`, or the release `customDomains`"
                .into(),
            expose,
        ));
    }
    Ok(out)
}

/// The Service port `expose:` names, checked against the render.
fn backend(
    release: &Release,
    rendered: &RenderedRelease,
    expose: &ExposeSpec,
) -> Result<Value, ConfigError> {
    let services: Vec<&Object> = rendered
        .objects
        .iter()
        .filter(|o| o.kind == "Service")
        .collect();
    let Some(service) = services.iter().find(|s| s.name == expose.service) else {
        let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
        return Err(located(
            format!(
                "`expose.service` names Service `{}`, which release `{}` does not render",
                expose.service, release.id
            ),
            if names.is_empty() {
                "the release renders no Service".into()
            } else {
                format!("the release renders: {}", names.join(", "))
            },
            expose,
        ));
    };
    backend_port(expose, &service.body).ok_or_else(|| {
        let ports: Vec<String> = service.body["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                p["name"]
                    .as_str()
                    .map_or_else(|| p["port"].to_string(), str::to_string)
            })
            .collect();
        located(
            format!(
                "`expose.port` {} is not a port of Service `{}`",
                expose.port, expose.service
            ),
            format!("its ports are: {}", ports.join(", ")),
            expose,
        )
    })
}

/// The environment's annotations, and for a private release those of
/// ingress-nginx's external auth.
fn annotations(
    release: &Release,
    expose: &ExposeSpec,
    settings: &IngressSettings,
) -> Result<serde_json::Map<String, Value>, ConfigError> {
    let mut annotations: serde_json::Map<String, Value> = settings
        .annotations
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.clone())))
        .collect();
    if expose.access == Access::Private {
        let Some(auth) = &settings.auth else {
            return Err(located(
                format!("release `{}` is private, but the environment's `ingress` has no `auth`", release.id),
                "give `ingress.auth: {url: …, signin: …}` (ingress-nginx external auth), or make it `access: public`".into(),
                expose,
            ));
        };
        let fill = |text: &str| {
            text.replace("{release}", &release.name)
                .replace("{group}", release.group().unwrap_or_default())
        };
        annotations.insert(format!("{NGINX}/auth-url"), fill(&auth.url).into());
        if let Some(signin) = &auth.signin {
            annotations.insert(format!("{NGINX}/auth-signin"), fill(signin).into());
        }
        if !auth.response_headers.is_empty() {
            annotations.insert(
                format!("{NGINX}/auth-response-headers"),
                auth.response_headers.join(",").into(),
            );
        }
    }
    Ok(annotations)
}

/// The Ingress of the template URL: at `/` of its host, or at its path
/// rewritten away.
fn url_ingress(
    release: &Release,
    settings: &IngressSettings,
    (host, path): (String, Option<String>),
    mut annotations: serde_json::Map<String, Value>,
    backend: &Value,
) -> Object {
    let rule_path = match &path {
        Some(prefix) => {
            annotations.insert(format!("{NGINX}/use-regex"), "true".into());
            annotations.insert(format!("{NGINX}/rewrite-target"), "/$2".into());
            annotations.insert(format!("{NGINX}/x-forwarded-prefix"), prefix.clone().into());
            json!({"path": format!("{prefix}(/|$)(.*)"), "pathType": "ImplementationSpecific", "backend": backend})
        }
        None => json!({"path": "/", "pathType": "Prefix", "backend": backend}),
    };
    let tls = settings
        .tls_secret
        .as_ref()
        .map(|secret| json!([{"hosts": [host], "secretName": secret}]));
    let rules = vec![json!({"host": host, "http": {"paths": [rule_path]}})];
    ingress(
        release,
        settings,
        &format!("{}-url", release.name),
        annotations,
        rules,
        tls,
    )
}

/// The Ingress of the custom domains, at `/`, with a certificate each
/// (and the custom-domain annotations) or the shared one.
fn domains_ingress(
    release: &Release,
    settings: &IngressSettings,
    expose: &ExposeSpec,
    mut annotations: serde_json::Map<String, Value>,
    backend: &Value,
) -> Object {
    let domains: Vec<&str> = expose
        .custom_domains
        .iter()
        .map(|(d, _)| d.as_str())
        .collect();
    let tls = match settings.domain_tls {
        DomainTls::PerDomain => {
            annotations.extend(
                settings
                    .domain_annotations
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.clone()))),
            );
            Some(Value::Array(
                domains
                    .iter()
                    .map(|d| json!({"hosts": [d], "secretName": format!("tls-{d}")}))
                    .collect(),
            ))
        }
        DomainTls::Shared => settings
            .tls_secret
            .as_ref()
            .map(|secret| json!([{"hosts": domains, "secretName": secret}])),
    };
    let rules = domains
        .iter()
        .map(|d| json!({"host": d, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}))
        .collect();
    ingress(
        release,
        settings,
        &format!("{}-domains", release.name),
        annotations,
        rules,
        tls,
    )
}

fn ingress(
    release: &Release,
    settings: &IngressSettings,
    name: &str,
    annotations: serde_json::Map<String, Value>,
    rules: Vec<Value>,
    tls: Option<Value>,
) -> Object {
    let mut body = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": release.namespace, "annotations": Value::Object(annotations)},
        "spec": {"rules": Value::Array(rules)},
    });
    if let Some(class) = &settings.class_name {
        body["spec"]["ingressClassName"] = class.clone().into();
    }
    if let Some(tls) = tls {
        body["spec"]["tls"] = tls;
    }
    let mut object = Object::from_body(&body, "expose");
    object.label(&format!("{}.{}", release.namespace, release.name));
    object
}

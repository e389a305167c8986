//! Exposure: releases reached at the environment's URL templates (by
//! sub-domain or sub-path), at custom domains in both TLS modes, privately
//! behind the environment's auth — observed as routed requests, not only
//! as objects; bad exposure refused with a located error, nothing written.

use serde_json::Value;

use crate::harness::{Server, Test};

/// Two apps, `web` and `admin` (private), in `shop`, with this environment
/// `ingress:` (YAML under it) and `web`'s custom domains.
fn exposed(ingress: &str, domains: &str) -> Test {
    Test::new().file(
        "stacks/stack.yaml",
        &format!(
            "defaultEnvironment: development
environments:
  development:
    cluster: simulated
    ingress: {ingress}
releases:
  - name: web
    namespace: shop
    chart: builtin:app
    expose: {{service: web, port: http, customDomains: {domains}}}
    values:
      - image: ghcr.io/acme/web:1.0.0
        ports: [8080]
  - name: admin
    namespace: shop
    chart: builtin:app
    expose: {{service: admin, access: private}}
    values:
      - image: ghcr.io/acme/admin:1.0.0
        ports: [\"80:3000\"]
"
        ),
    )
}

const AUTH: &str = "auth: {url: \"http://auth.platform.svc:3000/check?project={release}\", signin: \"https://login.example.com/?rd=$escaped_request_uri\", responseHeaders: [X-Auth-User, X-Auth-Email]}";

/// `stack cluster traffic --host H --path P -o json`: (workload, path the
/// workload sees, auth asked first) of all 1000 requests.
fn reaches(test: &Test, host: &str, path: &str) -> (String, String, Option<String>) {
    crate::harness::one_route(test, host, path, "workload")
}

fn ingress(server: &Server, name: &str) -> Value {
    server.get(&format!(
        "/apis/networking.k8s.io/v1/namespaces/shop/ingresses/{name}"
    ))
}

#[test]
fn a_sub_domain_template_routes_each_release_at_its_host() {
    let test = exposed(
        &format!(
            "{{className: nginx, urlTemplate: \"{{release}}.apps.example.com\", tlsSecret: wildcard-apps, {AUTH}}}"
        ),
        "[]",
    );
    test.stack(&["apply", "-q"]).success();
    assert_eq!(
        reaches(&test, "web.apps.example.com", "/cart"),
        ("web".into(), "/cart".into(), None)
    );
    let (workload, _, auth) = reaches(&test, "admin.apps.example.com", "/");
    assert_eq!(workload, "admin");
    assert_eq!(
        auth.as_deref(),
        Some("http://auth.platform.svc:3000/check?project=admin")
    );
    let server = Server::start(test.path(), &[]);
    let web = ingress(&server, "web-url");
    assert_eq!(web["spec"]["ingressClassName"], "nginx");
    assert_eq!(
        web["spec"]["tls"],
        serde_json::json!([{"hosts": ["web.apps.example.com"], "secretName": "wildcard-apps"}])
    );
    let admin = ingress(&server, "admin-url");
    let annotations = &admin["metadata"]["annotations"];
    assert_eq!(
        annotations["nginx.ingress.kubernetes.io/auth-signin"],
        "https://login.example.com/?rd=$escaped_request_uri"
    );
    assert_eq!(
        annotations["nginx.ingress.kubernetes.io/auth-response-headers"],
        "X-Auth-User,X-Auth-Email"
    );
    drop(server);
    let list = test.stack(&["list", "-o", "json"]).success().json();
    assert_eq!(
        list[0]["urls"],
        serde_json::json!(["https://web.apps.example.com/"])
    );
    let status = test.stack(&["status"]).success();
    assert!(
        status.stdout.contains("https://admin.apps.example.com/"),
        "{}",
        status.stdout
    );
}

#[test]
fn a_sub_path_template_rewrites_the_path_for_each_release() {
    let test = exposed(
        &format!("{{urlTemplate: \"example.com/{{release}}\", {AUTH}}}"),
        "[]",
    );
    test.stack(&["apply", "-q"]).success();
    assert_eq!(
        reaches(&test, "example.com", "/web/cart"),
        ("web".into(), "/cart".into(), None)
    );
    assert_eq!(
        reaches(&test, "example.com", "/web"),
        ("web".into(), "/".into(), None)
    );
    let (workload, path, auth) = reaches(&test, "example.com", "/admin/users/7");
    assert_eq!((workload.as_str(), path.as_str()), ("admin", "/users/7"));
    assert!(auth.is_some());
    let server = Server::start(test.path(), &[]);
    let web = ingress(&server, "web-url");
    let annotations = &web["metadata"]["annotations"];
    assert_eq!(
        annotations["nginx.ingress.kubernetes.io/rewrite-target"],
        "/$2"
    );
    assert_eq!(
        annotations["nginx.ingress.kubernetes.io/x-forwarded-prefix"],
        "/web"
    );
    assert_eq!(
        web["spec"]["rules"][0]["http"]["paths"][0]["path"],
        "/web(/|$)(.*)"
    );
    drop(server);
    let list = test.stack(&["list", "-o", "json"]).success().json();
    assert_eq!(
        list[0]["urls"],
        serde_json::json!(["http://example.com/web/"])
    );
}

#[test]
fn custom_domains_get_a_certificate_each_or_share_one() {
    let per_domain = exposed(
        &format!(
            "{{urlTemplate: \"{{release}}.apps.example.com\", tlsSecret: wildcard-apps, customDomains: {{tls: per-domain, annotations: {{cert-manager.io/cluster-issuer: letsencrypt-prod}}}}, {AUTH}}}"
        ),
        "[shop.example.com, www.shop.example.com]",
    );
    per_domain.stack(&["apply", "-q"]).success();
    assert_eq!(
        reaches(&per_domain, "www.shop.example.com", "/basket").0,
        "web"
    );
    let server = Server::start(per_domain.path(), &[]);
    let domains = ingress(&server, "web-domains");
    assert_eq!(
        domains["spec"]["tls"],
        serde_json::json!([
            {"hosts": ["shop.example.com"], "secretName": "tls-shop.example.com"},
            {"hosts": ["www.shop.example.com"], "secretName": "tls-www.shop.example.com"},
        ])
    );
    assert_eq!(
        domains["metadata"]["annotations"]["cert-manager.io/cluster-issuer"],
        "letsencrypt-prod"
    );
    drop(server);

    let shared = exposed(
        &format!(
            "{{urlTemplate: \"{{release}}.apps.example.com\", tlsSecret: wildcard-apps, customDomains: {{tls: shared}}, {AUTH}}}"
        ),
        "[shop.example.com]",
    );
    shared.stack(&["apply", "-q"]).success();
    let server = Server::start(shared.path(), &[]);
    let domains = ingress(&server, "web-domains");
    assert_eq!(
        domains["spec"]["tls"],
        serde_json::json!([{"hosts": ["shop.example.com"], "secretName": "wildcard-apps"}])
    );
    assert!(domains["metadata"]["annotations"]["cert-manager.io/cluster-issuer"].is_null());
}

#[test]
fn bad_exposure_is_a_located_error_and_nothing_is_written() {
    let template = format!("{{urlTemplate: \"{{release}}.apps.example.com\", {AUTH}}}");
    let cases: Vec<(String, String, &str)> = vec![
        ("{urlTemplate: \"apps.example.com\"}".into(), "[]".into(), "`urlTemplate` has no `{release}`"),
        (
            "{urlTemplate: \"{release}.example.com\", previewUrlTemplate: \"{release}.preview.example.com\"}".into(),
            "[]".into(),
            "`previewUrlTemplate` has no `{group}`",
        ),
        (template.clone(), "[Shop_Example.com]".into(), "custom domain `Shop_Example.com` is not a DNS name"),
        ("{urlTemplate: \"{release}.apps.example.com\"}".into(), "[]".into(), "release `shop/admin` is private, but the environment's `ingress` has no `auth`"),
    ];
    let mut test = exposed(&template, "[]");
    let server = Server::start(test.path(), &[]);
    let before = server.mutating();
    for (ingress, domains, message) in &cases {
        test = test.file(
            "stacks/stack.yaml",
            &std::fs::read_to_string(exposed(ingress, domains).path().join("stacks/stack.yaml"))
                .unwrap(),
        );
        let output = test.stack(&["apply"]).code(1);
        assert!(
            output.stderr.contains(message) && output.stderr.contains("stacks/stack.yaml:"),
            "{message}: {}",
            output.stderr
        );
    }
    let stack =
        std::fs::read_to_string(exposed(&template, "[]").path().join("stacks/stack.yaml")).unwrap();
    for (from, to, message) in [
        (
            "expose: {service: web, port: http",
            "expose: {service: wbe, port: http",
            "`expose.service` names Service `wbe`, which release `shop/web` does not render",
        ),
        (
            "expose: {service: web, port: http",
            "expose: {service: web, port: grpc",
            "`expose.port` \"grpc\" is not a port of Service `web`",
        ),
    ] {
        test = test.file("stacks/stack.yaml", &stack.replace(from, to));
        let output = test.stack(&["apply"]).code(1);
        assert!(
            output.stderr.contains(message),
            "{message}: {}",
            output.stderr
        );
    }
    let no_ingress = Test::new().file(
        "stacks/stack.yaml",
        "defaultEnvironment: development\nenvironments:\n  development:\n    cluster: simulated\nreleases:\n  - name: web\n    namespace: shop\n    chart: builtin:app\n    expose: {service: web}\n    values:\n      - image: ghcr.io/acme/web:1.0.0\n        ports: [8080]\n",
    );
    let output = no_ingress.stack(&["lint"]).code(1);
    assert!(
        output
            .stderr
            .contains("release `shop/web` is exposed, but the environment has no `ingress:`"),
        "{}",
        output.stderr
    );
    assert_eq!(server.mutating(), before, "a refused apply wrote");
}

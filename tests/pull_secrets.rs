//! The environment's image pull secret (`imagePullSecrets`): managed from
//! a credentials command or a SOPS-encrypted docker config, refreshed when
//! older than `refreshEvery`; external, checked before any write; none.
//! The secret's value is never in any output.

use base64::Engine as _;
use serde_json::Value;

use crate::harness::{Server, Test, http};

/// A stack of one app, `shop/web`, whose environment's pull secret is
/// `pull` (the YAML under `imagePullSecrets:`).
fn with_pull_secret(pull: &str) -> Test {
    Test::new().file(
        "stacks/stack.yaml",
        &format!(
            "defaultEnvironment: development\nenvironments:\n  development:\n    cluster: simulated\n    imagePullSecrets: {pull}\nreleases:\n  - name: web\n    namespace: shop\n    chart: builtin:app\n    values:\n      - image: ghcr.io/acme/web:1.0.0\n        ports: [8080]\n"
        ),
    )
}

const PASSWORD: &str = "p4ss-from-the-command";

fn managed_by_command(password: &str) -> String {
    format!(
        "{{managed: {{name: regcred, registry: ghcr.io, command: [printf, {password}], username: bot, refreshEvery: 1h}}}}"
    )
}

/// The live pull secret's docker config and its `refreshed-at`.
fn pull_secret(server: &Server) -> (Value, String) {
    let secret = server.get("/api/v1/namespaces/shop/secrets/regcred");
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson", "{secret}");
    let config = base64::engine::general_purpose::STANDARD
        .decode(secret["data"][".dockerconfigjson"].as_str().unwrap())
        .unwrap();
    (
        serde_json::from_slice(&config).unwrap(),
        secret["metadata"]["annotations"]["stack.dev/refreshed-at"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

/// No output of `output` shows the password.
fn hides(output: &crate::harness::Output, password: &str) {
    assert!(
        !output.stdout.contains(password) && !output.stderr.contains(password),
        "the password was printed:\n{}{}",
        output.stdout,
        output.stderr
    );
}

#[test]
fn a_managed_pull_secret_is_written_used_and_refreshed_when_old() {
    let test = with_pull_secret(&managed_by_command(PASSWORD));
    hides(&test.stack(&["apply", "-v"]).success(), PASSWORD);
    let server = Server::start(test.path(), &[]);
    let (config, refreshed) = pull_secret(&server);
    let auth = &config["auths"]["ghcr.io"];
    assert_eq!(auth["username"], "bot");
    assert_eq!(auth["password"], PASSWORD);
    assert_eq!(
        auth["auth"],
        base64::engine::general_purpose::STANDARD.encode(format!("bot:{PASSWORD}"))
    );
    let account = server.get("/api/v1/namespaces/shop/serviceaccounts/default");
    assert_eq!(
        account["imagePullSecrets"],
        serde_json::json!([{"name": "regcred"}])
    );
    let deployment = server.get("/apis/apps/v1/namespaces/shop/deployments/web");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["imagePullSecrets"],
        serde_json::json!([{"name": "regcred"}])
    );
    // Fresh: the next apply writes nothing.
    let before = server.mutating();
    hides(&test.stack(&["apply"]).success(), PASSWORD);
    assert_eq!(
        server.mutating(),
        before,
        "a fresh pull secret was written again"
    );
    hides(&test.stack(&["diff"]).success(), PASSWORD);
    hides(&test.stack(&["template"]).success(), PASSWORD);
    // The clock moved past `refreshEvery`: the next apply refreshes it.
    let url = format!("{}/api/v1/namespaces/shop/secrets/regcred", server.address);
    let (code, body) = http(
        &url,
        "PATCH",
        "application/merge-patch+json",
        r#"{"metadata":{"annotations":{"stack.dev/refreshed-at":"2020-01-01T00:00:00Z"}}}"#,
    );
    assert_eq!(code, 200, "{body}");
    drop(server);
    let test = test.file(
        "stacks/stack.yaml",
        &std::fs::read_to_string(
            with_pull_secret(&managed_by_command("n3w-p4ss-after-refresh"))
                .path()
                .join("stacks/stack.yaml"),
        )
        .unwrap(),
    );
    hides(&test.stack(&["apply"]).success(), "n3w-p4ss-after-refresh");
    let server = Server::start(test.path(), &[]);
    let (config, again) = pull_secret(&server);
    assert_ne!(again, "2020-01-01T00:00:00Z");
    assert!(again >= refreshed, "{again} {refreshed}");
    assert_eq!(
        config["auths"]["ghcr.io"]["password"],
        "n3w-p4ss-after-refresh"
    );
    drop(server);
    // `stack pull-secrets refresh` writes it now, whatever its age.
    let refreshed = test.stack(&["pull-secrets", "refresh"]).success();
    assert!(
        refreshed
            .stdout
            .contains("refreshed the pull secret `regcred` in shop"),
        "{}",
        refreshed.stdout
    );
    hides(&refreshed, "n3w-p4ss-after-refresh");
}

#[test]
fn a_failing_credentials_command_is_named_and_nothing_is_written() {
    let test = with_pull_secret(
        "{managed: {name: regcred, registry: ghcr.io, command: [sh, -c, 'echo token expired >&2; exit 3']}}",
    );
    let server = Server::start(test.path(), &[]);
    let before = server.mutating();
    let output = test.stack(&["apply"]).code(1);
    assert!(
        output.stderr.contains(
            "the pull secret's credentials command `sh -c echo token expired >&2; exit 3` failed (exit status: 3): token expired"
        ),
        "{}",
        output.stderr
    );
    assert_eq!(server.mutating(), before, "a refused run wrote");
    assert_eq!(server.get("/api/v1/namespaces/shop")["code"], 404);
}

#[test]
fn an_external_pull_secret_must_exist_in_each_namespace_before_any_write() {
    let test = with_pull_secret("{external: corp-registry}");
    let server = Server::start(test.path(), &[]);
    let before = server.mutating();
    let output = test.stack(&["apply"]).code(1);
    assert!(
        output.stderr.contains(
            "the image pull secret `corp-registry` (imagePullSecrets: external) is missing in namespace: shop"
        ),
        "{}",
        output.stderr
    );
    assert_eq!(server.mutating(), before, "a refused run wrote");
    // Once it is there, the app and the namespace's account use it.
    let create = |path: &str, body: &str| {
        let (code, answer) = http(
            &format!("{}{path}", server.address),
            "POST",
            "application/json",
            body,
        );
        assert!(code == 201 || code == 200, "{answer}");
    };
    create(
        "/api/v1/namespaces",
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop"}}"#,
    );
    create(
        "/api/v1/namespaces/shop/secrets",
        r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"corp-registry"},"type":"kubernetes.io/dockerconfigjson","data":{".dockerconfigjson":"e30="}}"#,
    );
    test.stack(&["apply", "-q"]).success();
    let deployment = server.get("/apis/apps/v1/namespaces/shop/deployments/web");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["imagePullSecrets"],
        serde_json::json!([{"name": "corp-registry"}])
    );
    let secret = server.get("/api/v1/namespaces/shop/secrets/corp-registry");
    assert_eq!(
        secret["data"][".dockerconfigjson"], "e30=",
        "an external secret is not written"
    );
}

#[test]
fn a_docker_config_file_is_decrypted_into_the_secret_and_none_means_none() {
    let test = with_pull_secret("{managed: {name: regcred, registry: ghcr.io, dockerConfig: ../registry.json}}")
        .file(".sops.yaml", "creation_rules:\n  - path_regex: registry\\.json$\n    age: age1ue44m360uxt840d0d44mhl4sat8aljsu7n8802sgpq4ejhzztuvsw4kga4\n")
        .file(
            "registry.json",
            r#"{"auths": {"ghcr.io": {"auth": "Ym90OmZpbGUtcGFzc3dvcmQtNzc="}}}"#,
        )
        .env(
            "SOPS_AGE_KEY_FILE",
            crate::harness::repository().join("secrets/demo-age-key.txt").to_str().unwrap(),
        );
    test.stack(&["secrets", "encrypt", "--in-place", "registry.json"])
        .success();
    assert!(
        !test
            .read("registry.json")
            .contains("Ym90OmZpbGUtcGFzc3dvcmQtNzc=")
    );
    hides(
        &test.stack(&["apply"]).success(),
        "Ym90OmZpbGUtcGFzc3dvcmQtNzc=",
    );
    let server = Server::start(test.path(), &[]);
    let (config, _) = pull_secret(&server);
    assert_eq!(
        config["auths"]["ghcr.io"]["auth"],
        "Ym90OmZpbGUtcGFzc3dvcmQtNzc="
    );
    drop(server);

    let none = with_pull_secret("none");
    none.stack(&["apply", "-q"]).success();
    let server = Server::start(none.path(), &[]);
    assert_eq!(
        server.get("/api/v1/namespaces/shop/secrets/regcred")["code"],
        404
    );
    let deployment = server.get("/apis/apps/v1/namespaces/shop/deployments/web");
    assert!(deployment["spec"]["template"]["spec"]["imagePullSecrets"].is_null());
}

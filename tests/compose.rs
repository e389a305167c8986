//! `stack import compose`: five Compose projects written for these tests,
//! each imported, linted, applied to the simulated cluster and ready; the
//! secrets it found encrypted at once (and readable by the real sops); no
//! secret in any output or any file it wrote; bad input refused with a
//! located error and nothing written.

use std::path::Path;

use crate::harness::{Output, Test, external_tool, repository};

/// A test folder with the compose project `name` in `project/`, the demo
/// key and the repository's `.sops.yaml` (whose rule encrypts
/// `secrets/*.yaml` to it).
fn project(name: &str) -> Test {
    let test = Test::new()
        .copy(&format!("tests/fixtures/compose/{name}"), "project")
        .env(
            "SOPS_AGE_KEY_FILE",
            repository()
                .join("secrets/demo-age-key.txt")
                .to_str()
                .unwrap(),
        );
    std::fs::create_dir_all(test.path().join("secrets")).unwrap();
    std::fs::copy(
        repository().join("secrets/demo-age-key.txt"),
        test.path().join("secrets/demo-age-key.txt"),
    )
    .unwrap();
    std::fs::copy(
        repository().join(".sops.yaml"),
        test.path().join(".sops.yaml"),
    )
    .unwrap();
    test
}

/// `stack import compose project/FILE --output-dir . ARGS`.
fn import(test: &Test, file: &str, args: &[&str]) -> Output {
    let compose = format!("project/{file}");
    let mut command = vec!["import", "compose", compose.as_str(), "--output-dir", "."];
    command.extend_from_slice(args);
    test.stack(&command)
}

/// Import, lint, apply: every release deployed and ready.
fn imported_and_running(test: &Test, file: &str, args: &[&str]) -> Output {
    let imported = import(test, file, args).success();
    test.stack(&["lint"]).success();
    test.stack(&["apply", "-q"]).success();
    let status = test.stack(&["status", "--check", "-o", "json"]).success();
    for release in status.json().as_array().unwrap() {
        assert_eq!(release["state"], "deployed", "{release}");
        assert_eq!(release["ready"], true, "{release}");
    }
    imported
}

/// Every file under `dir` (the import's output), as text.
fn written(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in walk(dir) {
        if let Ok(text) = std::fs::read_to_string(&entry) {
            out.push((entry.display().to_string(), text));
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            if entry.file_name() != ".stack" && entry.file_name() != "project" {
                files.extend(walk(&path));
            }
        } else {
            files.push(path);
        }
    }
    files
}

/// No file the import wrote holds any of `secrets` in plaintext.
fn assert_no_plaintext(test: &Test, secrets: &[&str]) {
    for (path, text) in written(test.path()) {
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{path} holds {secret:?} in plaintext"
            );
        }
    }
}

/// The live object at `path` of the simulated cluster.
fn live(test: &Test, path: &str) -> serde_json::Value {
    crate::harness::Server::start(test.path(), &[]).get(path)
}

#[test]
fn a_web_app_with_its_database_cache_and_worker_runs_from_one_import() {
    let test = project("webapp");
    let imported = imported_and_running(&test, "docker-compose.yml", &[]);
    for expected in [
        "host `db` → `db.shop.svc.cluster.local`",
        "host `cache` → `cache.shop.svc.cluster.local`",
        "to the encrypted secrets file (their names or values look sensitive): DATABASE_URL, STRIPE_API_KEY",
        "release shop/worker (builtin:app)",
    ] {
        assert!(
            imported.stdout.contains(expected),
            "{expected}:\n{}",
            imported.stdout
        );
    }
    assert!(
        !imported.stdout.contains("host `worker`"),
        "a command's bare word is not a host:\n{}",
        imported.stdout
    );
    assert_no_plaintext(&test, &["hunter2-compose-db", "sk_test_compose_4242"]);
    let secrets = std::fs::read_to_string(test.path().join("secrets/development.yaml")).unwrap();
    assert!(
        secrets.contains("ENC[AES256_GCM,") && secrets.contains("sops:"),
        "{secrets}"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(test.path().join("secrets/development.yaml"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // The values reach the cluster: in the app's Secret and ConfigMap.
    let web = live(&test, "/apis/apps/v1/namespaces/shop/deployments/web");
    assert_eq!(web["spec"]["replicas"], 2);
    assert_eq!(web["status"]["readyReplicas"], 2);
    let secret_name =
        web["spec"]["template"]["spec"]["containers"][0]["envFrom"][1]["secretRef"]["name"]
            .as_str()
            .unwrap()
            .to_string();
    let secret = live(
        &test,
        &format!("/api/v1/namespaces/shop/secrets/{secret_name}"),
    );
    let decoded = |key: &str| {
        use base64::Engine as _;
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(secret["data"][key].as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(decoded("STRIPE_API_KEY"), "sk_test_compose_4242");
    assert_eq!(
        decoded("DATABASE_URL"),
        "postgres://app:hunter2-compose-db@db.shop.svc.cluster.local:5432/app"
    );
    let worker = live(&test, "/apis/apps/v1/namespaces/shop/deployments/worker");
    assert_eq!(
        worker["spec"]["template"]["spec"]["containers"][0]["args"],
        serde_json::json!(["celery", "-A", "shop", "worker"])
    );
    let graph = test.stack(&["list", "-o", "json"]).success().json();
    let needs = graph
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "web")
        .unwrap()["needs"]
        .clone();
    assert_eq!(needs, serde_json::json!(["shop/db", "shop/cache"]));
    // The real sops reads what the import encrypted.
    if let Some(sops) = external_tool("STACK_SOPS", "sops") {
        let decrypted = std::process::Command::new(sops)
            .args(["decrypt", "secrets/development.yaml"])
            .current_dir(test.path())
            .env(
                "SOPS_AGE_KEY_FILE",
                repository().join("secrets/demo-age-key.txt"),
            )
            .output()
            .expect("run sops");
        assert!(
            decrypted.status.success(),
            "{}",
            String::from_utf8_lossy(&decrypted.stderr)
        );
        let text = String::from_utf8(decrypted.stdout).unwrap();
        assert!(text.contains("sk_test_compose_4242"), "sops decrypted it");
    }
}

#[test]
fn interpolation_reads_the_env_file_defaults_and_escapes() {
    let test = project("interpolation");
    imported_and_running(
        &test,
        "compose.yaml",
        &["--env-file", "project/vars.env", "--namespace", "team"],
    );
    let values =
        std::fs::read_to_string(test.path().join("environments/development.yaml")).unwrap();
    for expected in [
        "image: registry.example.com/team/api:2.0.1",
        "GREETING: ${NOT_INTERPOLATED}",
        "REGION: eu-west-1",
    ] {
        assert!(values.contains(expected), "{expected}:\n{values}");
    }
    assert_no_plaintext(&test, &["tok-interpolated-9911", "quoted-session-secret"]);
    let service = live(&test, "/api/v1/namespaces/team/services/api");
    assert_eq!(service["spec"]["ports"][0]["port"], 80);
    assert_eq!(service["spec"]["ports"][0]["name"], "http");
}

#[test]
fn health_checks_become_probes_and_conditions_become_needs() {
    let test = project("health");
    let imported = imported_and_running(&test, "docker-compose.yml", &["--namespace", "health"]);
    assert!(
        imported
            .stdout
            .contains("healthcheck → HTTP probes on /health")
            && imported.stdout.contains("healthcheck command not imported"),
        "{}",
        imported.stdout
    );
    let api = live(&test, "/apis/apps/v1/namespaces/health/deployments/api");
    let container = &api["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/health");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], "http");
    let db = live(&test, "/apis/apps/v1/namespaces/health/deployments/db");
    assert_eq!(
        db["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["tcpSocket"]["port"],
        "tcp-5432"
    );
    let migrate = live(&test, "/apis/apps/v1/namespaces/health/deployments/migrate");
    assert!(migrate["spec"]["template"]["spec"]["containers"][0]["readinessProbe"].is_null());
    let list = test.stack(&["list", "-o", "json"]).success().json();
    let api_needs = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "api")
        .unwrap()["needs"]
        .clone();
    assert_eq!(
        api_needs,
        serde_json::json!(["health/db", "health/migrate"])
    );
}

#[test]
fn named_volumes_become_claims_and_resources_requests() {
    let test = project("volumes");
    imported_and_running(&test, "docker-compose.yml", &["--namespace", "files"]);
    for claim in ["files-uploads", "files-cache"] {
        let pvc = live(
            &test,
            &format!("/api/v1/namespaces/files/persistentvolumeclaims/{claim}"),
        );
        assert_eq!(
            pvc["spec"]["resources"]["requests"]["storage"], "1Gi",
            "{claim}"
        );
    }
    let files = live(&test, "/apis/apps/v1/namespaces/files/deployments/files");
    let container = &files["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["command"], serde_json::json!(["/usr/bin/files"]));
    assert_eq!(
        container["args"],
        serde_json::json!(["--root", "/srv/files", "--port", "9000"])
    );
    assert_eq!(
        container["resources"],
        serde_json::json!({"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "512Mi"}})
    );
}

#[test]
fn what_cannot_run_from_an_image_is_refused_and_named() {
    let test = project("refused");
    let imported = imported_and_running(&test, "docker-compose.yml", &["--namespace", "site"]);
    for expected in [
        "refused: it has `build` and no `image`",
        "port 9000-9005:9000-9005 refused: a range",
        "bind mount ./html:/usr/share/nginx/html refused",
        "volume at /var/cache/nginx refused: name it",
        "`container_name` left out",
        "`restart` left out",
        "`networks` left out",
        "profiles after `web` left out",
        "`version`",
    ] {
        assert!(
            imported.stdout.contains(expected),
            "{expected}:\n{}",
            imported.stdout
        );
    }
    let list = test.stack(&["list", "-o", "json"]).success().json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["site"]);
    let site = test
        .stack(&["list", "-l", "profile=web", "-o", "json"])
        .success()
        .json();
    assert_eq!(site.as_array().unwrap().len(), 1);
}

#[test]
fn bad_compose_input_is_a_located_error_and_nothing_is_written() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("services: [unclosed", "project/docker-compose.yml:", &[]),
        (
            "servics:\n  web: {image: nginx:1}\n",
            "did you mean `services`?",
            &[],
        ),
        (
            "services:\n  web:\n    image: nginx:${TAG:?the release tag}\n",
            "`$TAG` is required: the release tag",
            &[],
        ),
    ];
    for (compose, expected, args) in cases {
        let test = project("webapp").file("project/docker-compose.yml", compose);
        let output = import(&test, "docker-compose.yml", args).code(1);
        assert!(
            output.stderr.contains(expected) && output.stderr.contains("docker-compose.yml:"),
            "{compose}: {}",
            output.stderr
        );
        assert!(
            !test.path().join("stack.yaml").exists(),
            "{compose}: wrote stack.yaml"
        );
    }
    // No creation rule for the secrets file: not even the plain files.
    let test = project("webapp").file(".sops.yaml", "creation_rules:\n  - path_regex: elsewhere/.*\n    age: age1ue44m360uxt840d0d44mhl4sat8aljsu7n8802sgpq4ejhzztuvsw4kga4\n");
    let output = import(&test, "docker-compose.yml", &[]).code(1);
    assert!(output.stderr.contains("creation rule"), "{}", output.stderr);
    assert!(!test.path().join("stack.yaml").exists());
    assert!(!test.path().join("environments").exists());
    assert!(!test.path().join("secrets/development.yaml").exists());
}

#[test]
fn the_example_compose_project_imports_as_committed_and_runs() {
    let test = Test::new().copy("examples/compose", "example").env(
        "SOPS_AGE_KEY_FILE",
        repository()
            .join("secrets/demo-age-key.txt")
            .to_str()
            .unwrap(),
    );
    std::fs::copy(
        repository().join(".sops.yaml"),
        test.path().join(".sops.yaml"),
    )
    .unwrap();
    let committed =
        |path: &str| std::fs::read_to_string(test.path().join("example/stack").join(path)).unwrap();
    let (stack, values) = (
        committed("stack.yaml"),
        committed("environments/development.yaml"),
    );
    std::fs::remove_dir_all(test.path().join("example/stack")).unwrap();
    test.stack(&[
        "import",
        "compose",
        "example/docker-compose.yml",
        "--output-dir",
        "example/stack",
    ])
    .success();
    assert_eq!(
        committed("stack.yaml"),
        stack,
        "examples/compose/stack/stack.yaml is not what the import makes"
    );
    assert_eq!(committed("environments/development.yaml"), values);
    let example = test.cwd("example/stack");
    example.stack(&["apply", "-q"]).success();
    example.stack(&["status", "--check"]).success();
}

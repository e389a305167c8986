//! `stack diff` and `stack apply` against the simulated cluster, on the
//! example platform (product.md §4, §6).

use serde_json::Value;

use crate::harness::{Server, Test, http, metric};

/// The example platform, applied once.
fn deployed() -> Test {
    let test = Test::example().rolling_backend();
    test.stack(&["apply", "-q"]).success();
    test
}

fn server(test: &Test) -> Server {
    Server::start(test.path(), &[])
}

fn labels(object: &Value) -> (&str, &str) {
    let labels = &object["metadata"]["labels"];
    (
        labels["app.kubernetes.io/managed-by"]
            .as_str()
            .unwrap_or_default(),
        labels["stack.dev/release"].as_str().unwrap_or_default(),
    )
}

#[test]
fn first_apply_deploys_every_object_labelled_and_ready() {
    let test = Test::example().rolling_backend();
    let output = test.stack(&["apply"]).success();
    for id in [
        "core/namespaces",
        "core/network-policies",
        "data/postgres",
        "apps/backend",
        "apps/frontend",
    ] {
        assert!(
            output
                .stdout
                .lines()
                .any(|l| l.starts_with(id) && l.contains("deployed")),
            "{id}:\n{}",
            output.stdout
        );
    }
    let status = test.stack(&["status", "-o", "json"]).success().json();
    for release in status.as_array().unwrap() {
        assert_eq!(
            (
                release["state"].as_str(),
                release["ready"].as_bool(),
                release["revision"].as_u64()
            ),
            (Some("deployed"), Some(true), Some(1)),
            "{release}"
        );
    }
    let server = server(&test);
    let deployment = server.get("/apis/apps/v1/namespaces/apps/deployments/backend");
    assert_eq!(labels(&deployment), ("stack", "apps.backend"));
    assert_eq!(deployment["status"]["availableReplicas"], 1);
    let ingress = server.get("/apis/networking.k8s.io/v1/namespaces/apps/ingresses/frontend");
    assert_eq!(labels(&ingress), ("stack", "apps.frontend"));
    let claim = server.get("/api/v1/namespaces/data/persistentvolumeclaims/postgres-data");
    assert_eq!(claim["status"]["phase"], "Bound");
}

#[test]
fn diff_is_empty_right_after_apply() {
    let test = deployed();
    let output = test.stack(&["diff", "--detailed-exitcode"]).code(0);
    assert_eq!(output.stdout, "");
}

#[test]
fn a_values_change_shows_exactly_that_change() {
    let test = deployed();
    let output = test
        .stack(&["diff", "--detailed-exitcode", "--set", "scale.backend=3"])
        .code(2);
    insta::assert_snapshot!(output.stdout, @"
    apps/backend
      ~ Deployment/apps/backend (changed)
        @@ -10,7 +10,7 @@
             app.kubernetes.io/name: backend
             stack.dev/release: apps.backend
         spec:
        -  replicas: 1
        +  replicas: 3
           selector:
             matchLabels:
               app: backend

    RELEASE       CREATE  CHANGE  DELETE
    apps/backend  0       1       0
    ");
    let json = test
        .stack(&["diff", "-o", "json", "--set", "scale.backend=3"])
        .success()
        .json();
    assert_eq!(json["releases"][0]["changes"][0]["action"], "update");
    assert_eq!(json["releases"][0]["changes"][0]["kind"], "Deployment");
}

#[test]
fn a_removed_template_object_is_pruned() {
    let test = deployed();
    std::fs::remove_file(
        test.path()
            .join("stacks/charts/network-policies/templates/default-deny.yaml"),
    )
    .unwrap();
    let diff = test.stack(&["diff"]).success();
    assert!(
        diff.stdout.contains(
            "- NetworkPolicy/apps/default-deny-ingress (deleted: the render no longer has it)"
        ),
        "{}",
        diff.stdout
    );
    test.stack(&["apply", "-q"]).success();
    let server = server(&test);
    let (code, _) = http(
        &format!(
            "{}/apis/networking.k8s.io/v1/namespaces/apps/networkpolicies/default-deny-ingress",
            server.address
        ),
        "GET",
        "application/json",
        "",
    );
    assert_eq!(code, 404);
}

#[test]
fn drift_is_shown_and_restored_by_apply() {
    let test = deployed();
    {
        let server = server(&test);
        let url = format!(
            "{}/apis/apps/v1/namespaces/apps/deployments/backend?fieldManager=kubectl-edit",
            server.address
        );
        let (code, body) = http(
            &url,
            "PATCH",
            "application/merge-patch+json",
            r#"{"spec":{"replicas":5}}"#,
        );
        assert_eq!(code, 200, "{body}");
    }
    let diff = test.stack(&["diff", "--detailed-exitcode"]).code(2);
    assert!(
        diff.stdout
            .contains("drift: .spec.replicas was changed by kubectl-edit; apply restores it"),
        "{}",
        diff.stdout
    );
    let apply = test.stack(&["apply"]).success();
    assert!(
        apply
            .stderr
            .contains("restoring drift in Deployment/apps/backend: .spec.replicas"),
        "{}",
        apply.stderr
    );
    test.stack(&["diff", "--detailed-exitcode"]).code(0);
}

#[test]
fn a_field_another_manager_owns_stops_the_apply_naming_it() {
    let test = Test::example();
    {
        let server = server(&test);
        let namespace = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"apps"}}"#;
        http(
            &format!(
                "{}/api/v1/namespaces/apps?fieldManager=helm",
                server.address
            ),
            "PATCH",
            "application/apply-patch+yaml",
            namespace,
        );
        let map = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"backend-config","namespace":"apps"},"data":{"LOG_LEVEL":"debug"}}"#;
        let (code, body) = http(
            &format!(
                "{}/api/v1/namespaces/apps/configmaps/backend-config?fieldManager=helm",
                server.address
            ),
            "PATCH",
            "application/apply-patch+yaml",
            map,
        );
        assert_eq!(code, 201, "{body}");
    }
    let output = test
        .stack(&["apply", "-l", "name=backend", "--include-transitive-needs"])
        .code(3);
    assert!(
        output
            .stderr
            .contains("conflict with \"helm\": .data.LOG_LEVEL"),
        "{}",
        output.stderr
    );
    assert!(
        output.stderr.contains("--force-conflicts"),
        "{}",
        output.stderr
    );
    {
        // The failed first install is removed, but not what it found there.
        let server = server(&test);
        let map = server.get("/api/v1/namespaces/apps/configmaps/backend-config");
        assert_eq!(map["data"]["LOG_LEVEL"], "debug", "{map}");
        let deployment = server.get("/apis/apps/v1/namespaces/apps/deployments/backend");
        assert_eq!(deployment["code"], 404, "{deployment}");
    }
    test.stack(&["apply", "-q", "--force-conflicts"]).success();
}

#[test]
fn a_no_op_apply_makes_no_write_requests() {
    let test = deployed();
    let server = server(&test);
    let before = metric(
        &server.metrics(),
        "stack_simulator_mutating_requests_total",
        &[],
    );
    let output = test.stack(&["apply"]).success();
    assert!(
        output
            .stdout
            .lines()
            .skip(1)
            .all(|line| line.contains("unchanged")),
        "{}",
        output.stdout
    );
    let after = metric(
        &server.metrics(),
        "stack_simulator_mutating_requests_total",
        &[],
    );
    assert_eq!(after - before, 0, "writes made by a no-op apply");
}

#[test]
fn a_release_that_is_not_installed_is_removed() {
    let test = deployed();
    let output = test
        .stack(&["apply", "--set", "frontend.enabled=false"])
        .success();
    assert!(
        output
            .stdout
            .lines()
            .any(|l| l.starts_with("apps/frontend") && l.contains("removed")),
        "{}",
        output.stdout
    );
    let server = server(&test);
    let (code, _) = http(
        &format!(
            "{}/apis/apps/v1/namespaces/apps/deployments/frontend",
            server.address
        ),
        "GET",
        "application/json",
        "",
    );
    assert_eq!(code, 404);
}

#[test]
fn destroy_deletes_in_reverse_order() {
    let test = deployed();
    let output = test.stack(&["destroy"]).success();
    let position = |id: &str| {
        output
            .stderr
            .find(&format!("[{id}] removed"))
            .unwrap_or_else(|| panic!("{id} not removed:\n{}", output.stderr))
    };
    assert!(position("apps/frontend") < position("apps/backend"));
    assert!(position("apps/backend") < position("data/postgres"));
    assert!(position("data/postgres") < position("core/namespaces"));
    let status = test.stack(&["status", "-o", "json"]).success().json();
    assert!(
        status
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] == "not-installed"),
        "{status}"
    );
}

#[test]
fn history_and_status_after_several_applies() {
    let test = deployed();
    test.stack(&["apply", "-q", "--set", "scale.backend=2"])
        .success();
    test.stack(&["apply", "-q", "--set", "scale.backend=3"])
        .success();
    let history = test
        .stack(&["history", "backend", "-o", "json"])
        .success()
        .json();
    let states: Vec<(u64, &str)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["revision"].as_u64().unwrap(),
                r["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [(1, "superseded"), (2, "superseded"), (3, "deployed")]
    );
    let status = test
        .stack(&["status", "-o", "json", "-l", "name=backend"])
        .success()
        .json();
    assert_eq!(status[0]["revision"], 3);
    assert_eq!(status[0]["state"], "deployed");
}

#[test]
fn needs_run_before_the_releases_that_need_them() {
    let test = Test::example();
    let output = test.stack(&["apply"]).success();
    let at = |text: &str| {
        output
            .stderr
            .find(text)
            .unwrap_or_else(|| panic!("{text} missing:\n{}", output.stderr))
    };
    assert!(at("[core/namespaces] deployed") < at("[data/postgres] applying"));
    assert!(at("[data/postgres] deployed") < at("[apps/backend] applying"));
    assert!(at("[apps/backend] deployed") < at("[apps/frontend] applying"));
}

#[test]
fn kubectl_sees_what_stack_applied() {
    let Some(kubectl) = crate::harness::external_tool("STACK_KUBECTL", "kubectl") else {
        return;
    };
    let test = deployed();
    let server = server(&test);
    let home = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(kubectl)
        .args([
            "get",
            "deployments,statefulsets,ingresses",
            "-A",
            "-l",
            "app.kubernetes.io/managed-by=stack",
            "-o",
            "json",
        ])
        .env("KUBECONFIG", &server.kubeconfig)
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let list: Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut seen: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{}/{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["namespace"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            "Deployment/apps/admin",
            "Deployment/apps/backend",
            "Deployment/apps/frontend",
            "Deployment/apps/worker",
            "Ingress/apps/admin-url",
            "Ingress/apps/frontend",
            "Ingress/apps/frontend-url",
            "StatefulSet/data/postgres"
        ]
    );
}

#[test]
fn apply_retries_through_injected_faults() {
    let test = Test::example();
    let server = Server::start(test.path(), &["--fault-rate", "0.08", "--seed", "11"]);
    test.stack(&["apply", "-q"]).success();
    test.stack(&["diff", "--detailed-exitcode"]).code(0);
    let faults = metric(
        &server.metrics(),
        "stack_simulator_injected_faults_total",
        &[],
    );
    assert!(faults > 0, "no fault was injected");
}

/// The resourceVersion each object was created at, from the simulator's
/// journal (one line per write, in order).
fn created_at(test: &Test) -> std::collections::HashMap<String, u64> {
    let journal = test
        .path()
        .join("stacks/.stack/cluster/development/journal");
    let text = std::fs::read_to_string(&journal).expect("read the journal");
    let mut created = std::collections::HashMap::new();
    for line in text.lines() {
        let record: Value = serde_json::from_str(line).expect("a journal line");
        let key = format!(
            "{} {}/{}",
            record["resource"].as_str().unwrap_or_default(),
            record["namespace"].as_str().unwrap_or_default(),
            record["name"].as_str().unwrap_or_default()
        );
        created
            .entry(key)
            .or_insert(record["rv"].as_u64().unwrap_or_default());
    }
    created
}

#[test]
fn objects_are_created_in_kind_order_within_a_release() {
    let test = Test::example().rolling_backend();
    let _server = server(&test);
    test.stack(&["apply", "-q"]).success();
    let created = created_at(&test);
    let at = |key: &str| {
        *created
            .get(key)
            .unwrap_or_else(|| panic!("{key} never written: {created:?}"))
    };
    // apps/backend: configuration and its Service, then the Deployment.
    for before in [
        "/configmaps apps/backend-config",
        "/secrets apps/backend-database",
        "/services apps/backend",
    ] {
        assert!(at(before) < at("apps/deployments apps/backend"), "{before}");
    }
    // apps/frontend: Service, Deployment, then the Ingress.
    assert!(at("/services apps/frontend") < at("apps/deployments apps/frontend"));
    assert!(at("apps/deployments apps/frontend") < at("networking.k8s.io/ingresses apps/frontend"));
    // data/postgres: the claim and the Service before the StatefulSet.
    for before in [
        "/persistentvolumeclaims data/postgres-data",
        "/services data/postgres",
    ] {
        assert!(
            at(before) < at("apps/statefulsets data/postgres"),
            "{before}"
        );
    }
}

/// `-o json`: stdout is the summary document, stderr one JSON object per
/// event, each naming its release; the backend's events follow its run.
#[test]
fn apply_with_json_output_streams_events_as_json_lines() {
    let test = Test::example().rolling_backend();
    let output = test.stack(&["apply", "-o", "json"]).success();
    let summary = output.json();
    assert_eq!(summary.as_array().map(Vec::len), Some(7), "{summary}");
    let events: Vec<Value> = output
        .stderr
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("not a JSON line ({error}): {line}"))
        })
        .collect();
    let backend: Vec<&str> = events
        .iter()
        .filter(|e| e["release"] == "apps/backend")
        .filter_map(|e| e["event"].as_str())
        .filter(|e| *e != "waiting_for")
        .collect();
    assert_eq!(
        backend,
        ["applying", "running_tests", "tests_passed", "deployed"],
        "{}",
        output.stderr
    );
    let applying = events
        .iter()
        .find(|e| e["release"] == "apps/backend" && e["event"] == "applying")
        .expect("applying");
    assert_eq!(
        (&applying["revision"], &applying["deletes"]),
        (&Value::from(1), &Value::from(0)),
        "{applying}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "deployed" && e["seconds"].as_f64().is_some()),
        "{}",
        output.stderr
    );
}

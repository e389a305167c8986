//! Deployment groups (previews) of the example platform: `stack apply
//! --group NAME` deploys the apps again in preview namespaces at preview
//! URLs — shared releases (the database) not copied — beside the
//! environment's own release and beside other groups; `destroy --group`,
//! `--ttl` and `groups prune` remove exactly a group; names escape to DNS
//! labels and never collide; a deploy killed at any write is recovered.

use serde_json::Value;

use crate::harness::{Server, Test, http};

const APPS: &[&str] = &["backend", "frontend", "worker", "admin"];

/// The API path of a Deployment.
fn deployment(namespace: &str, name: &str) -> String {
    format!("/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
}

/// `stack cluster traffic --host H --path P -o json` of all 1000
/// requests: (service, path the workload sees, auth asked first).
fn reaches(test: &Test, host: &str, path: &str) -> (String, String, Option<String>) {
    crate::harness::one_route(test, host, path, "service")
}

/// The resource versions of the environment's own app Deployments and
/// Ingresses: a group deploy must not move them.
fn environment_versions(server: &Server) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for path in [
        "/apis/apps/v1/namespaces/apps/deployments",
        "/apis/networking.k8s.io/v1/namespaces/apps/ingresses",
        "/api/v1/namespaces/apps/services",
    ] {
        for item in server.get(path)["items"].as_array().unwrap() {
            out.push((
                format!("{path}/{}", item["metadata"]["name"].as_str().unwrap()),
                item["metadata"]["resourceVersion"].clone(),
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn groups(test: &Test) -> Vec<Value> {
    test.stack(&["groups", "list", "-o", "json"])
        .success()
        .json()
        .as_array()
        .unwrap()
        .clone()
}

/// `stack groups list` of the example with groups `mr/26` and
/// `feature/Login_Page@v2`.
fn lists_both_groups(test: &Test) {
    let mut listed = groups(test);
    listed.sort_by_key(|g| g["group"] != "mr/26");
    let names: Vec<&str> = listed
        .iter()
        .map(|g| g["group"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mr/26", "feature/Login_Page@v2"]);
    assert_eq!(listed[0]["label"], "mr--26");
    assert_eq!(
        listed[0]["releases"],
        serde_json::json!([
            "apps-mr--26/backend",
            "apps-mr--26/frontend",
            "apps-mr--26/worker",
            "apps-mr--26/admin"
        ])
    );
    assert_eq!(
        listed[0]["urls"],
        serde_json::json!([
            "http://frontend-mr--26.preview.dev.example.com/",
            "http://ops.development.example.com/mr--26/admin/"
        ])
    );
    // The example's `previews.ttl: 7d`.
    assert!(listed[0]["expires"].as_str().unwrap() > listed[0]["created"].as_str().unwrap());
}

#[test]
fn two_groups_deploy_beside_each_other_and_the_environment_stays_untouched() {
    let test = Test::example();
    test.stack(&["apply", "-q"]).success();
    let server = Server::start(test.path(), &[]);
    let before = environment_versions(&server);
    test.stack(&["apply", "-q", "--group", "mr/26"]).success();
    test.stack(&["apply", "-q", "--group", "feature/Login_Page@v2"])
        .success();
    assert_eq!(
        environment_versions(&server),
        before,
        "a group moved the environment's objects"
    );
    test.stack(&["diff", "--detailed-exitcode"]).success();

    for (group, label) in [
        ("mr/26", "mr--26"),
        ("feature/Login_Page@v2", "feature--login--page--v2"),
    ] {
        let namespace = format!("apps-{label}");
        let made = server.get(&format!("/api/v1/namespaces/{namespace}"));
        assert_eq!(made["metadata"]["labels"]["stack.dev/group"], label);
        assert_eq!(
            made["metadata"]["annotations"]["stack.dev/group-name"],
            group
        );
        for app in APPS {
            let copy = server.get(&deployment(&namespace, app));
            let copy = if copy["kind"] == "Deployment" {
                copy
            } else {
                server.get(&deployment(&namespace, &format!("{app}-blue")))
            };
            assert_eq!(
                copy["metadata"]["labels"]["stack.dev/group"], label,
                "{namespace}/{app}"
            );
            assert_eq!(
                copy["metadata"]["annotations"]["stack.dev/group-name"],
                group
            );
            assert_eq!(copy["status"]["readyReplicas"], 1, "{namespace}/{app}");
        }
        // The shared database is not copied: the copies use the environment's.
        let missing = server.get(&format!("/api/v1/namespaces/data-{label}"));
        assert_eq!(missing["code"], 404, "the shared postgres was copied");
        // `release.namespace` in the stack file is the preview namespace.
        let frontend = server.get(&deployment(&namespace, "frontend"));
        let env = frontend["spec"]["template"]["spec"]["containers"][0]["env"].to_string();
        assert!(
            env.contains(&format!(
                "http://backend.{namespace}.svc.cluster.local:8080"
            )),
            "{env}"
        );
        // `previews.values` over the environment's: the frontend's own host.
        assert_eq!(
            reaches(&test, &format!("shop-{label}.preview.dev.example.com"), "/").0,
            format!("{namespace}/frontend")
        );
        // Exposed by sub-domain, and the private admin by sub-path.
        assert_eq!(
            reaches(
                &test,
                &format!("frontend-{label}.preview.dev.example.com"),
                "/cart"
            ),
            (format!("{namespace}/frontend"), "/cart".into(), None)
        );
        let (service, path, auth) = reaches(
            &test,
            "ops.development.example.com",
            &format!("/{label}/admin/users"),
        );
        assert_eq!(
            (service.as_str(), path.as_str()),
            (format!("{namespace}/admin").as_str(), "/users")
        );
        assert_eq!(
            auth.as_deref(),
            Some("http://oauth2-proxy.core.svc.cluster.local/oauth2/auth?project=admin")
        );
    }
    // The environment's own are where they were.
    assert_eq!(
        reaches(&test, "frontend.apps.dev.example.com", "/").0,
        "apps/frontend"
    );
    assert_eq!(
        reaches(&test, "ops.development.example.com", "/admin/").0,
        "apps/admin"
    );

    lists_both_groups(&test);
    let status = test.stack(&["status", "--group", "mr/26"]).success();
    assert!(
        status.stdout.contains("apps-mr--26/frontend"),
        "{}",
        status.stdout
    );
    assert!(
        !status.stdout.contains("apps/frontend "),
        "{}",
        status.stdout
    );
}

#[test]
fn a_group_deploy_that_changes_nothing_writes_nothing_and_diff_shows_its_changes() {
    let test = Test::example();
    test.stack(&["apply", "-q", "--group", "mr/26"]).success();
    let server = Server::start(test.path(), &[]);
    let before = server.mutating();
    test.stack(&["apply", "-q", "--group", "mr/26"]).success();
    assert_eq!(server.mutating(), before, "a no-op group deploy wrote");
    test.stack(&["diff", "--group", "mr/26", "--detailed-exitcode"])
        .success();
    let diff = test
        .stack(&[
            "diff",
            "--group",
            "mr/26",
            "--set",
            "images.frontend.tag=2.3.0",
        ])
        .success();
    assert!(
        diff.stdout.contains("apps-mr--26/frontend"),
        "{}",
        diff.stdout
    );
    assert!(
        diff.stdout
            .contains("Deployment/apps-mr--26/frontend (changed)")
            && diff
                .stdout
                .contains("registry.example.com/shop/frontend:2.3.0"),
        "{}",
        diff.stdout
    );
    assert_eq!(server.mutating(), before, "a diff wrote");
}

#[test]
fn destroy_group_removes_exactly_the_group() {
    let test = Test::example();
    test.stack(&["apply", "-q"]).success();
    test.stack(&["apply", "-q", "--group", "mr/26"]).success();
    test.stack(&["apply", "-q", "--group", "mr/27"]).success();
    let server = Server::start(test.path(), &[]);
    let before = environment_versions(&server);
    let kept =
        server.get(&deployment("apps-mr--27", "frontend"))["metadata"]["resourceVersion"].clone();

    let destroyed = test.stack(&["destroy", "--group", "mr/26"]).success();
    assert!(
        destroyed.stderr.contains("deleted namespace"),
        "{}",
        destroyed.stderr
    );
    assert_eq!(server.get("/api/v1/namespaces/apps-mr--26")["code"], 404);
    let revisions = server.get("/api/v1/secrets?labelSelector=stack.dev%2Fhistory-of");
    let left: Vec<&str> = revisions["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["metadata"]["namespace"].as_str())
        .collect();
    assert!(!left.contains(&"apps-mr--26"), "{left:?}");
    assert!(
        left.contains(&"apps-mr--27") && left.contains(&"apps"),
        "{left:?}"
    );
    let leases = server.get("/apis/coordination.k8s.io/v1/namespaces/default/leases");
    assert_eq!(leases["items"], serde_json::json!([]), "a lease was left");
    let records =
        server.get("/api/v1/namespaces/default/configmaps?labelSelector=stack.dev%2Fgroup");
    let names: Vec<&str> = records["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].ends_with(".mr--27"), "{names:?}");

    assert_eq!(
        environment_versions(&server),
        before,
        "destroying a group touched the environment"
    );
    assert_eq!(
        server.get(&deployment("apps-mr--27", "frontend"))["metadata"]["resourceVersion"],
        kept
    );
    test.stack(&["diff", "--detailed-exitcode"]).success();
    test.stack(&["diff", "--group", "mr/27", "--detailed-exitcode"])
        .success();
    let names: Vec<String> = groups(&test)
        .iter()
        .map(|g| g["group"].to_string())
        .collect();
    assert_eq!(names, ["\"mr/27\""]);
}

#[test]
fn an_expired_group_is_pruned_and_the_others_stay() {
    let test = Test::example();
    let applied = test
        .stack(&["apply", "-q", "--group", "mr/26", "--ttl", "1h"])
        .success();
    assert!(applied.stderr.is_empty(), "{}", applied.stderr);
    test.stack(&["apply", "-q", "--group", "mr/27", "-l", "name=backend"])
        .success();
    let listed = groups(&test);
    let hour = stack_kube::clock::after(std::time::Duration::from_secs(3600));
    assert!(
        listed[0]["expires"].as_str().unwrap() <= hour.as_str(),
        "{listed:?}"
    );
    let nothing = test.stack(&["groups", "prune"]).success();
    assert!(
        nothing.stderr.contains("no deployment group has expired"),
        "{}",
        nothing.stderr
    );

    // The clock moves past mr/26's expiry.
    let server = Server::start(test.path(), &[]);
    let records = server
        .get("/api/v1/namespaces/default/configmaps?labelSelector=stack.dev%2Fgroup%3Dmr--26");
    let name = records["items"][0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, body) = http(
        &format!(
            "{}/api/v1/namespaces/default/configmaps/{name}",
            server.address
        ),
        "PATCH",
        "application/merge-patch+json",
        r#"{"data":{"expires":"2020-01-01T00:00:00Z"}}"#,
    );
    assert_eq!(code, 200, "{body}");
    let pruned = test.stack(&["groups", "prune"]).success();
    assert!(
        pruned
            .stdout
            .contains("pruned group mr/26 (expired 2020-01-01T00:00:00Z)"),
        "{}",
        pruned.stdout
    );
    let gone = server.get("/api/v1/namespaces/apps-mr--26");
    assert_eq!(gone["code"], 404, "{gone}");
    assert_eq!(
        server.get(&deployment("apps-mr--27", "backend-blue"))["status"]["readyReplicas"],
        1
    );
    let names: Vec<String> = groups(&test)
        .iter()
        .map(|g| g["group"].to_string())
        .collect();
    assert_eq!(names, ["\"mr/27\""]);
}

#[test]
fn group_names_escape_to_dns_labels_and_never_collide() {
    let test = Test::example();
    let long = format!("feature/{}", "a-very-long-branch-name-".repeat(4))
        .chars()
        .take(100)
        .collect::<String>();
    assert_eq!(long.len(), 100);
    test.stack(&["apply", "-q", "--group", &long, "-l", "name=backend"])
        .success();
    let listed = groups(&test);
    let label = listed[0]["label"].as_str().unwrap().to_string();
    assert!(
        label.len() <= 30 && label.starts_with("feature--a-very-long"),
        "{label}"
    );
    let server = Server::start(test.path(), &[]);
    let namespace = server.get(&format!("/api/v1/namespaces/apps-{label}"));
    assert_eq!(
        namespace["metadata"]["annotations"]["stack.dev/group-name"],
        long.as_str()
    );
    // Another long name with the same start is another group.
    let other = format!("{long}-b");
    test.stack(&["apply", "-q", "--group", &other, "-l", "name=backend"])
        .success();
    let labels: Vec<String> = groups(&test)
        .iter()
        .map(|g| g["label"].to_string())
        .collect();
    assert_eq!(labels.len(), 2);
    assert_ne!(labels[0], labels[1]);

    // Two names that escape alike: the second is refused, nothing written.
    test.stack(&["apply", "-q", "--group", "mr/26", "-l", "name=backend"])
        .success();
    let before = server.mutating();
    for (command, name) in [("apply", "MR/26"), ("destroy", "mr@26"), ("diff", "Mr/26")] {
        let refused = test.stack(&[command, "--group", name]).code(1);
        assert!(
            refused.stderr.contains(&format!(
                "group `{name}` escapes to `mr--26`, the name of the deployed group `mr/26`"
            )),
            "{}",
            refused.stderr
        );
    }
    assert_eq!(server.mutating(), before, "a refused group wrote");
}

#[test]
fn a_group_deploy_killed_at_any_write_is_recovered_by_the_next_one() {
    let test = Test::example();
    test.stack(&["apply", "-q"]).success();
    let server = Server::start(test.path(), &[]);
    let before = environment_versions(&server);
    let args = [
        "apply",
        "-q",
        "--group",
        "mr/26",
        "-l",
        "name=frontend",
        "--include-needs",
    ];
    let mut kills = 0;
    for after in 1..=40 {
        if !crate::harness::killed_after(&test, &args, after) {
            break;
        }
        kills += 1;
        test.stack(&args).success();
        let diff = test.stack(&[
            "diff",
            "--group",
            "mr/26",
            "-l",
            "name=frontend",
            "--include-needs",
            "--detailed-exitcode",
        ]);
        assert_eq!(
            diff.code, 0,
            "killed after {after} writes, then recovered: {}",
            diff.stdout
        );
        for app in ["frontend", "backend-blue"] {
            let copy = server.get(&deployment("apps-mr--26", app));
            assert_eq!(copy["status"]["readyReplicas"], 1, "after {after}: {app}");
        }
        assert_eq!(
            environment_versions(&server),
            before,
            "after {after}: the environment moved"
        );
        test.stack(&["destroy", "-q", "--group", "mr/26"]).success();
        assert_eq!(server.get("/api/v1/namespaces/apps-mr--26")["code"], 404);
    }
    assert!(kills >= 10, "only {kills} kill points");
    // The run that was not killed deployed the group whole.
    let listed = groups(&test);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        listed[0]["releases"],
        serde_json::json!(["apps-mr--26/backend", "apps-mr--26/frontend"])
    );
    test.stack(&[
        "diff",
        "--group",
        "mr/26",
        "-l",
        "name=frontend",
        "--include-needs",
        "--detailed-exitcode",
    ])
    .success();
}

#[test]
fn templates_see_the_group_and_a_preview_namespace_is_checked() {
    let stack = |previews: &str| {
        format!(
            "defaultEnvironment: development
environments:
  development:
    cluster: simulated
    previews: {previews}
releases:
  - name: config
    namespace: shop
    chart: ./charts/config
    values:
      - data: {{in: \"{{{{ group | default('none') }}}}\"}}
"
        )
    };
    let test = Test::new()
        .file(
            "stacks/stack.yaml",
            &stack("{namespace: \"preview-{group}\", values: [{extra: \"yes\"}]}"),
        )
        .file(
            "stacks/charts/config/templates/configmap.yaml",
            "
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: config
            data:
              group: {{ group | default('none') | tojson }}
              stack: {{ values.data.in | tojson }}
              extra: {{ values.extra | default('no') | tojson }}
            ",
        );
    test.stack(&["apply", "-q"]).success();
    test.stack(&["apply", "-q", "--group", "mr/26"]).success();
    let server = Server::start(test.path(), &[]);
    let own = server.get("/api/v1/namespaces/shop/configmaps/config");
    assert_eq!(
        own["data"],
        serde_json::json!({"group": "none", "stack": "none", "extra": "no"})
    );
    let copy = server.get("/api/v1/namespaces/preview-mr--26/configmaps/config");
    assert_eq!(
        copy["data"],
        serde_json::json!({"group": "mr--26", "stack": "mr--26", "extra": "yes"})
    );
    let before = server.mutating();
    drop(server);

    let long = "x".repeat(40);
    let bad = test.file(
        "stacks/stack.yaml",
        &stack("{namespace: \"{namespace}-{group}-{group}-preview\"}"),
    );
    let refused = bad.stack(&["apply", "--group", &long]).code(1);
    assert!(
        refused.stderr.contains("is not a namespace name")
            && refused.stderr.contains("stacks/stack.yaml:5:"),
        "{}",
        refused.stderr
    );
    let bad = bad.file("stacks/stack.yaml", &stack("{namespace: \"previews\"}"));
    let refused = bad.stack(&["lint"]).code(1);
    assert!(
        refused
            .stderr
            .contains("`previews.namespace` has no `{group}`")
            && refused.stderr.contains("stacks/stack.yaml:5:"),
        "{}",
        refused.stderr
    );
    let bad = bad.file("stacks/stack.yaml", &stack("{}"));
    for name in ["", "///", "@@"] {
        let refused = bad.stack(&["apply", "--group", name]).code(1);
        assert!(
            refused.stderr.contains("has no letter or digit"),
            "{}",
            refused.stderr
        );
    }
    let server = Server::start(bad.path(), &[]);
    assert_eq!(server.mutating(), before, "bad input wrote");
}

//! What a careless user does: editors' leftovers in a chart, a link out of
//! it, a flag with a value that cannot work, a revision that does not exist.
//! Each is handled before anything is written.

use crate::harness::{Server, Test};

fn with_chart() -> Test {
    Test::new().configmap_chart("charts/cm").file(
        "stack.yaml",
        "
        releases:
          - name: web
            chart: charts/cm
        ",
    )
}

/// `stack template` succeeds and renders the chart's one ConfigMap, once.
fn renders_one_config_map(test: &Test) {
    let output = test.stack(&["template"]).success();
    assert_eq!(
        output.stdout.matches("kind: ConfigMap").count(),
        1,
        "{}",
        output.stdout
    );
}

#[test]
fn editor_leftovers_in_templates_are_not_rendered() {
    let test = with_chart();
    let templates = test.path().join("charts/cm/templates");
    // A vim swap file is binary, and not UTF-8.
    std::fs::write(
        templates.join(".configmap.yaml.swp"),
        [0xff, 0xfe, 0x00, 0x42],
    )
    .expect("swap");
    std::fs::write(templates.join("configmap.yaml~"), "kind: [broken").expect("backup");
    std::fs::write(templates.join("#configmap.yaml#"), "kind: [broken").expect("autosave");
    renders_one_config_map(&test);
}

#[test]
fn a_link_out_of_the_chart_is_refused_without_reading_it() {
    let test = with_chart();
    let templates = test.path().join("charts/cm/templates");
    std::os::unix::fs::symlink("/usr", templates.join("usr")).expect("link");
    let output = test.stack(&["lint"]).code(1);
    assert!(
        output
            .stderr
            .contains("templates/usr is a link to /usr, outside the chart"),
        "{}",
        output.stderr
    );
}

#[test]
fn a_link_inside_the_chart_is_followed_once() {
    let test = with_chart();
    let templates = test.path().join("charts/cm/templates");
    // A link to the folder itself would loop forever if followed blindly.
    std::os::unix::fs::symlink(&templates, templates.join("again")).expect("link");
    renders_one_config_map(&test);
}

#[test]
fn template_with_json_output_prints_a_json_list() {
    let output = with_chart()
        .stack(&["template", "-o", "json", "--set", "data.a=1"])
        .success();
    let list = output.json();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"][0]["kind"], "ConfigMap");
    assert_eq!(list["items"][0]["metadata"]["name"], "web");
}

#[test]
fn concurrency_zero_is_refused() {
    let output = with_chart().stack(&["apply", "--concurrency", "0"]).code(1);
    assert!(output.stderr.contains("--concurrency"), "{}", output.stderr);
}

#[test]
fn rollback_to_a_revision_that_does_not_exist_writes_nothing() {
    let test = Test::example();
    let server = Server::start(test.path(), &[]);
    test.stack(&["apply", "-q"]).success();
    let before = server.mutating();
    let output = test.stack(&["rollback", "backend", "999"]).code(1);
    assert!(
        output.stderr.contains("no revision 999"),
        "{}",
        output.stderr
    );
    // Not even the lock was taken and given back.
    assert_eq!(server.mutating(), before);
}

#[test]
fn one_value_changed_writes_a_revision_only_for_the_release_it_reaches() {
    let test = crate::atomic::deployed();
    let server = Server::start(test.path(), &[]);
    let before = server.mutating();
    let output = test
        .stack(&["apply", "-o", "json", "--set", "scale.backend=2"])
        .success();
    let results: Vec<(String, String)> = output
        .json()
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap_or_default().to_string(),
                r["result"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for (id, result) in &results {
        let expected = if id == "apps/backend" {
            "deployed"
        } else {
            "unchanged"
        };
        assert_eq!(result, expected, "{id}: {results:?}");
    }
    for release in ["namespaces", "network-policies", "postgres", "frontend"] {
        assert_eq!(crate::atomic::states(&test, release).len(), 1, "{release}");
    }
    assert_eq!(crate::atomic::states(&test, "backend").len(), 2);
    // The lock, the backend's pending revision, its Deployment, the
    // deployed mark, the superseded one: nothing for the other releases.
    assert!(
        server.mutating() - before <= 8,
        "{}",
        server.mutating() - before
    );
    // The promotion gate verifies every release with the values applied,
    // those without a new revision included.
    let promote = [
        &crate::promote::PROMOTE[..],
        &["--dry-run", "--set", "scale.backend=2"],
    ]
    .concat();
    test.stack(&promote).success();
}

#[test]
fn a_misspelt_kind_is_refused_before_any_write_with_the_nearest_served_one() {
    let test = crate::atomic::deployed().unexposed_frontend();
    let path = "stacks/charts/frontend/templates/service.yaml";
    let template = test.read(path);
    let test = test.file(path, &template.replacen("kind: Service", "kind: Servic", 1));
    let server = Server::start(test.path(), &[]);
    let before = server.mutating();
    for args in [&["diff"][..], &["apply", "--set", "scale.backend=2"][..]] {
        let output = test.stack(args).code(1);
        crate::harness::shows_all(
            &output.stderr,
            &[
                "no CustomResourceDefinition of the selected releases defines",
                "Servic/frontend (v1) of apps/frontend, from",
                "service.yaml; did you mean `Service` (v1)?",
            ],
        );
    }
    assert_eq!(server.mutating(), before, "nothing was written");
    assert_eq!(crate::atomic::states(&test, "backend").len(), 1);
}

#[test]
fn objects_the_cluster_would_refuse_stop_the_run_before_its_first_write() {
    let test = crate::atomic::deployed().unexposed_frontend();
    let server = Server::start(test.path(), &[]);
    let before = server.mutating();
    let service = "stacks/charts/frontend/templates/service.yaml";
    let deployment = "stacks/charts/backend/templates/deployment.yaml";
    let (service_text, deployment_text) = (test.read(service), test.read(deployment));
    let long = "x".repeat(64);
    let cases = [
        // A new object with a name the server refuses.
        (
            service,
            service_text.replacen("name: frontend", "name: FrontEnd", 1),
            "creating Service/FrontEnd of apps/frontend: Service \"FrontEnd\" is invalid",
        ),
        (
            service,
            service_text.replacen("name: frontend", &format!("name: {long}"), 1),
            "must be no more than 63 characters",
        ),
        // A change the server refuses to a live object (its selector).
        (
            deployment,
            deployment_text.replacen("matchLabels:", "matchLabels:\n      tier: changed", 1),
            "changing Deployment/backend of apps/backend: Deployment.apps \"backend\" is invalid",
        ),
    ];
    let write = |path: &str, text: &str| std::fs::write(test.path().join(path), text).unwrap();
    for (path, text, expected) in cases {
        write(path, &text);
        for args in [&["diff"][..], &["apply", "--set", "scale.frontend=2"][..]] {
            let output = test.stack(args).code(1);
            crate::harness::shows_all(
                &output.stderr,
                &[
                    "the cluster refuses an object (a server-side dry run)",
                    expected,
                ],
            );
            assert!(!output.stderr.contains("Status {"), "{}", output.stderr);
        }
        // `lint --cluster` says the same, from Kubernetes' rules or the
        // cluster's dry run, whichever finds it first.
        let linted = test.stack(&["lint", "--cluster"]).code(1);
        let message = expected.rsplit(": ").next().unwrap();
        assert!(linted.stderr.contains(message), "{}", linted.stderr);
        write(
            path,
            if path == service {
                &service_text
            } else {
                &deployment_text
            },
        );
    }
    let checked = test.stack(&["lint", "--cluster"]).success();
    assert!(
        checked
            .stdout
            .contains("checked with its cluster: no problems"),
        "{}",
        checked.stdout
    );
    assert_eq!(server.mutating(), before, "nothing was written");
    for release in ["backend", "frontend"] {
        assert_eq!(crate::atomic::states(&test, release).len(), 1, "{release}");
    }
}

#[test]
fn lint_applies_kubernetes_rules_to_every_object_without_a_cluster() {
    let test = Test::example().unexposed_frontend();
    let service = "stacks/charts/frontend/templates/service.yaml";
    let text = test.read(service);
    std::fs::write(
        test.path().join(service),
        text.replacen("name: frontend", "name: FrontEnd", 1)
            .replacen("port: 80", "port: 80000", 1),
    )
    .unwrap();
    let output = test.stack(&["lint"]).code(1);
    crate::harness::shows_all(
        &output.stderr,
        &[
            "Kubernetes would refuse an object",
            "Service/FrontEnd of apps/frontend, from templates/service.yaml: Service \"FrontEnd\" is invalid: [metadata.name: Invalid value: \"FrontEnd\"",
            "spec.ports[0].port: Invalid value: 80000: must be between 1 and 65535, inclusive",
        ],
    );
    assert!(
        !test.path().join("stacks/.stack").exists(),
        "lint needs no cluster and writes nothing"
    );
}

#[test]
fn a_template_of_thousands_of_documents_renders() {
    // A CRD bundle is often more documents than a YAML parser's default
    // limit (1,024) allows.
    let test = Test::new()
        .file(
            "stack.yaml",
            "
            releases:
              - name: bundle
                chart: charts/bundle
            ",
        )
        .file(
            "charts/bundle/templates/many.yaml",
            "
            {% for i in range(1500) %}
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: c{{ i }}
            {% endfor %}",
        );
    let output = test.stack(&["template"]).success();
    assert_eq!(output.stdout.matches("kind: ConfigMap").count(), 1500);
}

#[test]
fn releases_started_together_create_their_namespace_once() {
    let mut stack = String::from("environments:\n  default:\n    cluster: simulated\nreleases:\n");
    for index in 0..12 {
        stack.push_str(&format!(
            "  - {{name: r{index}, namespace: team{}, chart: charts/cm}}\n",
            index % 2
        ));
    }
    let test = Test::new()
        .configmap_chart("charts/cm")
        .file("stack.yaml", &stack);
    let server = Server::start(test.path(), &[]);
    test.stack(&["apply", "-q"]).success();
    let creates = crate::harness::metric(
        &server.metrics(),
        "stack_simulator_requests_total",
        &[("verb", "create"), ("resource", "namespaces")],
    );
    assert_eq!(creates, 2, "one create per namespace");
    assert_eq!(
        server.get("/api/v1/namespaces/team1")["metadata"]["name"],
        "team1"
    );
}

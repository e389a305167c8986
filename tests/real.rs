//! The real tier: `stack` on a real Kubernetes control plane (see
//! `harness::real`), the referee for what the simulator only rehearses.
//! Each test starts its own cluster; objects are checked with kubectl.

use crate::atomic::{POD_FAULT, Seen, last_states};
use crate::faults::{slow_rollout, start_slow_apply};
use crate::harness::Test;
use crate::harness::real::{CONTEXT, RealCluster};

fn replicas(cluster: &RealCluster) -> serde_json::Value {
    cluster
        .get("deployment", "apps", "backend")
        .expect("the backend Deployment")["spec"]["replicas"]
        .clone()
}

#[test]
fn the_example_deploys_diffs_and_is_destroyed_on_a_real_cluster() {
    let Some(cluster) = RealCluster::start() else {
        return;
    };
    let mut seen = Seen::default();
    let test = cluster.example();
    seen.keep(test.stack(&["apply", "-q"]).success());
    for (kind, namespace, name) in [
        ("namespace", "", "apps"),
        ("statefulset", "data", "postgres"),
        ("deployment", "apps", "backend-blue"),
        ("deployment", "apps", "frontend"),
        ("ingress", "apps", "frontend"),
    ] {
        assert!(
            cluster.get(kind, namespace, name).is_some(),
            "{kind} {name}"
        );
    }
    // Nothing to change right after: an empty diff, and no write at all.
    seen.keep(test.stack(&["diff", "--detailed-exitcode"]).code(0));
    let before = cluster.writes_by_stack();
    assert!(
        before >= 20,
        "the first apply's writes are counted: {before}"
    );
    seen.keep(test.stack(&["apply", "-q"]).success());
    assert_eq!(cluster.writes_by_stack(), before, "a no-op apply wrote");
    // A values change of the blue/green backend: the green colour with
    // it, and the Service switched to it; blue kept beside it.
    let diff = seen.keep(
        test.stack(&["diff", "--detailed-exitcode", "--set", "scale.backend=3"])
            .code(2),
    );
    assert!(
        diff.stdout
            .contains("+ Deployment/apps/backend-green (created)")
            && diff.stdout.contains("+  replicas: 3")
            && diff.stdout.contains("~ Service/apps/backend (changed)"),
        "{}",
        diff.stdout
    );
    seen.keep(
        test.stack(&["apply", "-q", "--set", "scale.backend=3"])
            .success(),
    );
    let green = cluster.get("deployment", "apps", "backend-green");
    assert_eq!(green.expect("backend-green")["spec"]["replicas"], 3);
    let service = cluster.get("service", "apps", "backend").expect("Service");
    assert_eq!(service["spec"]["selector"]["stack.dev/color"], "green");
    assert!(cluster.get("deployment", "apps", "backend-blue").is_some());
    let status = seen.keep(test.stack(&["status", "--check"]).success());
    assert!(status.stdout.contains("apps/backend"), "{}", status.stdout);
    seen.keep(test.stack(&["destroy", "-q"]).success());
    assert!(cluster.get("deployment", "apps", "backend-green").is_none());
    assert!(cluster.get("deployment", "apps", "backend-blue").is_none());
    assert!(cluster.get("statefulset", "data", "postgres").is_none());
}

#[test]
fn drift_is_restored_dropped_fields_and_list_items_removed_and_objects_pruned_on_a_real_cluster() {
    let Some(cluster) = RealCluster::start() else {
        return;
    };
    let mut seen = Seen::default();
    let test = cluster.example().rolling_backend();
    seen.keep(
        test.stack(&["apply", "-q", "--set", "scale.backend=2"])
            .success(),
    );
    // Someone scales by hand: the diff names the field and its manager,
    // and apply takes it back.
    cluster.kubectl(&["scale", "-n", "apps", "deployment/backend", "--replicas=5"]);
    assert_eq!(replicas(&cluster), 5);
    let drift = seen.keep(
        test.stack(&["diff", "--detailed-exitcode", "--set", "scale.backend=2"])
            .code(2),
    );
    assert!(drift.stdout.contains("replicas"), "{}", drift.stdout);
    seen.keep(
        test.stack(&[
            "apply",
            "-q",
            "--set",
            "scale.backend=2",
            "--force-conflicts",
        ])
        .success(),
    );
    assert_eq!(replicas(&cluster), 2);
    // A field the render stops sending is removed by server-side apply.
    let annotated = format!("{POD_FAULT}-note=kept-for-now");
    let pod_note = annotated.replace("sim\\.stack\\.dev/fail-note", "example\\.com/note");
    seen.keep(test.stack(&["apply", "-q", "--set", &pod_note]).success());
    let note = |cluster: &RealCluster| {
        cluster
            .get("deployment", "apps", "backend")
            .expect("backend")["spec"]["template"]["metadata"]["annotations"]["example.com/note"]
            .clone()
    };
    assert_eq!(note(&cluster), "kept-for-now");
    seen.keep(test.stack(&["apply", "-q"]).success());
    assert!(note(&cluster).is_null(), "the dropped annotation stays");
    // An item of a list keyed by name, dropped from the render, goes whole.
    let lists = Test::new()
        .env("KUBECONFIG", cluster.kubeconfig.to_str().expect("UTF-8"))
        .file(
            "stack.yaml",
            &format!(
                "
                environments:
                  default:
                    kubeContext: {CONTEXT}
                defaults:
                  createNamespace: true
                releases:
                  - name: web
                    namespace: lists
                    chart: charts/web
                "
            ),
        )
        .file(
            "charts/web/templates/deployment.yaml",
            "
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: web
            spec:
              selector: {matchLabels: {app: web}}
              template:
                metadata: {labels: {app: web}}
                spec:
                  containers:
                    - name: web
                      image: registry.example.com/web:1
                      env:
                      {%- for name, value in values.env | dictsort %}
                        - {name: {{ name }}, value: {{ value | string | tojson }}}
                      {%- endfor %}
            ",
        );
    let env = |cluster: &RealCluster| {
        cluster.get("deployment", "lists", "web").expect("web")["spec"]["template"]["spec"]
            ["containers"][0]["env"]
            .clone()
    };
    seen.keep(
        lists
            .stack(&["apply", "-q", "--set", "env.A=1", "--set", "env.B=2"])
            .success(),
    );
    assert_eq!(
        env(&cluster),
        serde_json::json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    );
    seen.keep(lists.stack(&["apply", "-q", "--set", "env.A=1"]).success());
    assert_eq!(
        env(&cluster),
        serde_json::json!([{"name": "A", "value": "1"}])
    );
    // An object the render no longer has is pruned; one it never had stays.
    let lists = lists.file(
        "charts/web/templates/settings.yaml",
        "
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: web-settings
        data:
          level: info
        ",
    );
    seen.keep(lists.stack(&["apply", "-q", "--set", "env.A=1"]).success());
    assert!(cluster.get("configmap", "lists", "web-settings").is_some());
    cluster.kubectl(&["create", "configmap", "by-hand", "-n", "lists"]);
    std::fs::remove_file(lists.path().join("charts/web/templates/settings.yaml"))
        .expect("remove the template");
    let pruned = seen.keep(
        lists
            .stack(&["diff", "--detailed-exitcode", "--set", "env.A=1"])
            .code(2),
    );
    assert!(
        pruned
            .stdout
            .contains("ConfigMap/lists/web-settings (deleted"),
        "{}",
        pruned.stdout
    );
    seen.keep(lists.stack(&["apply", "-q", "--set", "env.A=1"]).success());
    assert!(cluster.get("configmap", "lists", "web-settings").is_none());
    assert!(cluster.get("configmap", "lists", "by-hand").is_some());
}

#[test]
fn a_crash_loop_is_rolled_back_on_a_real_cluster() {
    let Some(cluster) = RealCluster::start() else {
        return;
    };
    let mut seen = Seen::default();
    let test = cluster.example().rolling_backend();
    seen.keep(test.stack(&["apply", "-q"]).success());
    let fault = format!("{POD_FAULT}=crash-loop");
    let output = seen.keep(
        test.stack(&[
            "apply",
            "-l",
            "name=backend",
            "--set",
            &fault,
            "--set",
            "scale.backend=2",
        ])
        .code(3),
    );
    assert!(
        output.stderr.contains("CrashLoopBackOff"),
        "{}",
        output.stderr
    );
    // Rolled back: the previous spec is live again, and the diff is empty.
    assert_eq!(replicas(&cluster), 1);
    seen.keep(test.stack(&["diff", "--detailed-exitcode"]).code(0));
}

#[test]
fn one_apply_holds_the_lock_and_a_killed_one_is_recovered_on_a_real_cluster() {
    let Some(cluster) = RealCluster::start() else {
        return;
    };
    let mut seen = Seen::default();
    let test = cluster.example().rolling_backend();
    seen.keep(test.stack(&["apply", "-q"]).success());
    let (mut first, _, _) = start_slow_apply(&test, 120);
    let second = seen.keep(test.stack(&["apply", "--set", &slow_rollout(120)]).code(1));
    crate::faults::names_the_holder(&second, &first);
    // kill -9 while it waits: its revision is left pending, the lock held
    // by a process that is gone.
    first.kill().expect("kill -9");
    first.wait().expect("reap");
    seen.keep(test.stack(&["status", "--check"]).code(1));
    assert_eq!(last_states(&test, "backend", 1), ["pending"]);
    // The next apply takes the lock over and rolls the pending revision
    // back (the default recovery), then finds nothing else to do.
    crate::faults::recovers_pending(&seen.keep(test.stack(&["apply"]).success()));
    let backend = cluster
        .get("deployment", "apps", "backend")
        .expect("backend");
    assert!(
        backend["spec"]["template"]["metadata"]["annotations"]["sim.stack.dev/rollout-seconds"]
            .is_null(),
        "the pending revision's change is undone: {backend}"
    );
    seen.keep(test.stack(&["status", "--check"]).success());
    seen.keep(test.stack(&["diff", "--detailed-exitcode"]).code(0));
    let leases = cluster.kubectl(&["get", "leases", "-n", "default", "-o", "name"]);
    assert!(
        !leases.stdout.contains("stack-lock."),
        "the lock is released: {}",
        leases.stdout
    );
}

#[test]
fn test_jobs_pass_and_fail_and_gate_promotion_on_a_real_cluster() {
    let Some(cluster) = RealCluster::start() else {
        return;
    };
    let mut seen = Seen::default();
    let test = cluster.example().rolling_backend();
    let applied = seen.keep(test.stack(&["apply", "-e", "development"]).success());
    assert!(
        applied.stderr.contains("Job/backend-smoke-test"),
        "the backend's test ran: {}",
        applied.stderr
    );
    let staging = test.read("environments/staging.yaml");
    seen.keep(
        test.stack(&[&crate::promote::PROMOTE[..], &["--dry-run"]].concat())
            .success(),
    );
    // A new version whose test fails: rolled back, and promotion refused.
    let development = test
        .read("environments/development.yaml")
        .replace("\"1.5.0\"", "\"1.6.0\"");
    let test = test
        .file("environments/development.yaml", &development)
        .file(
            crate::promote::FAILING_TEST.0,
            crate::promote::FAILING_TEST.1,
        );
    let failed = seen.keep(test.stack(&["apply", "-e", "development"]).code(3));
    assert!(
        failed
            .stderr
            .contains("test failed: Job/backend-failing-test failed"),
        "{}",
        failed.stderr
    );
    let image = cluster
        .get("deployment", "apps", "backend")
        .expect("backend")["spec"]["template"]["spec"]["containers"][0]["image"]
        .clone();
    assert!(
        image.as_str().is_some_and(|i| i.ends_with(":1.5.0")),
        "rolled back to the tested version: {image}"
    );
    let refused = seen.keep(
        test.stack(&["promote", "--from", "development", "--to", "staging"])
            .code(1),
    );
    assert!(
        refused.stderr.contains("failed its tests"),
        "{}",
        refused.stderr
    );
    assert_eq!(test.read("environments/staging.yaml"), staging);
}

#[test]
fn atomic_stack_undoes_the_whole_run_on_a_real_cluster() {
    let Some(cluster) = RealCluster::start() else {
        return;
    };
    let mut seen = Seen::default();
    let test = cluster.example().rolling_backend();
    seen.keep(test.stack(&["apply", "-q"]).success());
    // A crash loop: kwok trips a progress deadline only after 600 s.
    crate::atomic::undo_whole_run(&test, "crash-loop", &mut seen);
    assert_eq!(replicas(&cluster), 1, "the backend is undone too");
}

#[test]
fn a_helm_release_is_taken_over_only_with_adopt_helm_on_a_real_cluster() {
    let Some(helm) = crate::harness::external_tool("STACK_HELM", "helm") else {
        return;
    };
    let Some(cluster) = RealCluster::start() else {
        return;
    };
    let test = cluster
        .example()
        .copy("tests/fixtures/helm/demo", "stacks/charts/demo")
        .env("STACK_HELM", helm.to_str().unwrap());
    let stack_file = test.path().join("stacks/platform.yaml");
    let platform = std::fs::read_to_string(&stack_file).unwrap().replacen(
        "releases:\n",
        "releases:\n  - name: web\n    namespace: shop\n    chart: charts/demo\n    values:\n      - replicaCount: 2\n",
        1,
    );
    std::fs::write(&stack_file, &platform).unwrap();
    let installed = std::process::Command::new(&helm)
        .args(["install", "web"])
        .arg(test.path().join("stacks/charts/demo"))
        .args(["--namespace", "shop", "--create-namespace", "--kubeconfig"])
        .arg(&cluster.kubeconfig)
        .env("HOME", test.path())
        .output()
        .unwrap();
    assert!(installed.status.success(), "helm install: {installed:?}");
    let before = cluster
        .get("deployment", "shop", "web-demo")
        .expect("helm's Deployment");
    let uid = before["metadata"]["uid"].clone();

    let refused = test.stack(&["apply", "-l", "name=web"]).code(1);
    assert!(
        refused
            .stderr
            .contains("Deployment/shop/web-demo (helm release shop/web; stack release shop/web)")
            && refused.stderr.contains("--adopt-helm"),
        "{}",
        refused.stderr
    );
    let untouched = cluster.get("deployment", "shop", "web-demo").unwrap();
    assert_eq!(
        untouched["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "Helm"
    );
    assert_eq!(untouched["spec"]["replicas"], 1, "nothing was written");

    test.stack(&["apply", "-l", "name=web", "--adopt-helm"])
        .success();
    let adopted = cluster.get("deployment", "shop", "web-demo").unwrap();
    assert_eq!(adopted["metadata"]["uid"], uid, "taken over, not recreated");
    assert_eq!(
        adopted["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "stack"
    );
    assert_eq!(
        adopted["metadata"]["labels"]["stack.dev/release"],
        "shop.web"
    );
    assert_eq!(adopted["spec"]["replicas"], 2);
    assert!(
        cluster
            .get("secret", "shop", "sh.helm.release.v1.web.v1")
            .is_some(),
        "helm's record is kept without --forget-helm"
    );
    let history = test
        .stack(&["history", "web", "-o", "json"])
        .success()
        .json();
    assert!(
        history[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("taken over from helm release shop/web revision 1")),
        "{history}"
    );

    std::fs::write(
        &stack_file,
        platform.replacen("replicaCount: 2", "replicaCount: 3", 1),
    )
    .unwrap();
    test.stack(&["apply", "-q", "-l", "name=web"]).success();
    test.stack(&["rollback", "web", "1"]).success();
    let rolled_back = cluster.get("deployment", "shop", "web-demo").unwrap();
    assert_eq!(rolled_back["spec"]["replicas"], 2, "a later rollback works");
    assert_eq!(rolled_back["metadata"]["uid"], uid);
}

#[test]
fn a_blue_green_release_switches_and_rolls_back_by_its_services_on_a_real_cluster() {
    let Some(cluster) = RealCluster::start() else {
        return;
    };
    let mut seen = Seen::default();
    let test = crate::strategies::make_blue_green(cluster.example());
    seen.keep(test.stack(&["apply", "-q"]).success());
    let selects = |name: &str| {
        cluster.get("service", "apps", name).expect("the Service")["spec"]["selector"]
            ["stack.dev/color"]
            .clone()
    };
    assert_eq!(selects("backend"), "blue");
    assert!(cluster.get("deployment", "apps", "backend-blue").is_some());
    seen.keep(test.stack(&crate::harness::APPLY_BACKEND_1_6).success());
    assert_eq!(selects("backend"), "green");
    assert_eq!(selects("backend-preview"), "green");
    let blue = cluster
        .get("deployment", "apps", "backend-blue")
        .expect("blue kept");
    assert_eq!(
        blue["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/shop/backend:1.5.0"
    );
    let routed = seen.keep(
        test.stack(&[
            "cluster",
            "traffic",
            "--service",
            "apps/backend",
            "-o",
            "json",
        ])
        .success(),
    );
    assert_eq!(
        routed.json()[0]["workload"],
        "backend-green",
        "{}",
        routed.stdout
    );

    let before = cluster.writes_by_stack();
    seen.keep(test.stack(&["rollback", "apps/backend"]).success());
    assert_eq!(selects("backend"), "blue");
    assert!(
        cluster.get("deployment", "apps", "backend-green").is_some(),
        "green kept"
    );
    eprintln!(
        "real cluster: a blue/green rollback made {} writes (2 Services, the rest the lock and the history)",
        cluster.writes_by_stack() - before
    );
    // The stack files say 1.5.0: what the rollback restored, blue serving.
    seen.keep(
        test.stack(&["diff", "--detailed-exitcode", "-l", "name=backend"])
            .code(0),
    );
}

#[test]
fn a_canary_steps_through_its_weights_and_is_promoted_on_a_real_cluster() {
    let Some(cluster) = RealCluster::start() else {
        return;
    };
    let mut seen = Seen::default();
    let test = cluster.example();
    crate::strategies::set_canary_steps(&test, "[{setWeight: 20}, {setWeight: 50}]");
    seen.keep(test.stack(&["apply", "-q"]).success());
    let frontend = cluster
        .get("deployment", "apps", "frontend")
        .expect("frontend");
    assert_eq!(
        frontend["spec"]["template"]["metadata"]["labels"]["stack.dev/track"],
        "stable"
    );
    let change = [
        "apply",
        "-l",
        "name=frontend",
        "--set",
        "images.frontend.tag=2.3.0",
    ];
    let deployed = seen.keep(test.stack(&change).success());
    assert!(
        deployed.stderr.contains("canary step 2: canary weight 50%")
            && deployed.stderr.contains("canary: promoting"),
        "{}",
        deployed.stderr
    );
    let frontend = cluster
        .get("deployment", "apps", "frontend")
        .expect("frontend");
    assert_eq!(
        frontend["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/shop/frontend:2.3.0"
    );
    for (kind, name) in [
        ("deployment", "frontend-canary"),
        ("service", "frontend-canary"),
        ("ingress", "frontend-canary"),
    ] {
        assert!(
            cluster.get(kind, "apps", name).is_none(),
            "{kind} {name} left"
        );
    }
    let routed = seen.keep(
        test.stack(&[
            "cluster",
            "traffic",
            "--host",
            "shop.dev.example.com",
            "-o",
            "json",
        ])
        .success(),
    );
    assert_eq!(
        routed.json()[0]["workload"],
        "frontend",
        "{}",
        routed.stdout
    );
}

#[test]
fn a_preview_group_deploys_beside_the_environment_and_is_destroyed_on_a_real_cluster() {
    let Some(cluster) = RealCluster::start() else {
        return;
    };
    let test = cluster.example();
    test.stack(&["apply", "-q"]).success();
    let version = |namespace: &str| {
        cluster
            .get("deployment", namespace, "frontend")
            .expect("the frontend")["metadata"]["resourceVersion"]
            .clone()
    };
    let before = version("apps");
    test.stack(&["apply", "-q", "--group", "mr/26"]).success();
    let namespace = cluster
        .get("namespace", "", "apps-mr--26")
        .expect("the preview namespace");
    assert_eq!(namespace["metadata"]["labels"]["stack.dev/group"], "mr--26");
    assert_eq!(
        namespace["metadata"]["annotations"]["stack.dev/group-name"],
        "mr/26"
    );
    let copy = cluster
        .get("ingress", "apps-mr--26", "frontend-url")
        .expect("the preview's Ingress");
    assert_eq!(
        copy["spec"]["rules"][0]["host"],
        "frontend-mr--26.preview.dev.example.com"
    );
    assert!(cluster.get("namespace", "", "data-mr--26").is_none());
    test.stack(&["diff", "--group", "mr/26", "--detailed-exitcode"])
        .success();
    test.stack(&["destroy", "-q", "--group", "mr/26"]).success();
    assert!(
        cluster.get("namespace", "", "apps-mr--26").is_none(),
        "the preview namespace is left"
    );
    assert_eq!(version("apps"), before, "the group moved the environment");
    test.stack(&["diff", "--detailed-exitcode"]).success();
    let groups = test.stack(&["groups", "list", "-o", "json"]).success();
    assert_eq!(groups.json(), serde_json::json!([]));
}

//! Fault suites against the simulated cluster's fault injection: injected
//! 500s/429s with latency, kill -9 at many points of a run, the lock.
//! Every output is checked for leaked secrets (see `atomic::Seen`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead as _;

use serde_json::{Value, json};

use crate::atomic::{POD_FAULT, Seen};
use crate::harness::{Server, Test, http, metric, output_of, shows_all};

/// The example's collections, by API path.
const COLLECTIONS: &[&str] = &[
    "/api/v1/namespaces",
    "/api/v1/configmaps",
    "/api/v1/secrets",
    "/api/v1/services",
    "/api/v1/persistentvolumeclaims",
    "/apis/apps/v1/deployments",
    "/apis/apps/v1/statefulsets",
    "/apis/batch/v1/jobs",
    "/apis/networking.k8s.io/v1/ingresses",
    "/apis/networking.k8s.io/v1/networkpolicies",
];

type Key = (String, String, String);

fn key_of(object: &Value) -> Key {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (
        text(&object["kind"]),
        text(&object["metadata"]["namespace"]),
        text(&object["metadata"]["name"]),
    )
}

/// Every object carrying a release label, by release label.
fn labelled(server: &Server) -> BTreeMap<String, BTreeSet<Key>> {
    let mut found: BTreeMap<String, BTreeSet<Key>> = BTreeMap::new();
    for path in COLLECTIONS {
        let list = server.get(&format!("{path}?labelSelector=stack.dev/release"));
        let kind = list["kind"]
            .as_str()
            .unwrap_or_default()
            .trim_end_matches("List")
            .to_string();
        for item in list["items"].as_array().into_iter().flatten() {
            let mut item = item.clone();
            item["kind"] = json!(kind);
            let release = item["metadata"]["labels"]["stack.dev/release"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            found.entry(release).or_default().insert(key_of(&item));
        }
    }
    found
}

/// Each release's deployed revision's objects (and tests), by release
/// label; panics when a release's newest revision is not deployed.
fn deployed_revisions(server: &Server) -> BTreeMap<String, BTreeSet<Key>> {
    let list = server.get("/api/v1/secrets?labelSelector=stack.dev/history-of");
    let mut newest: BTreeMap<String, stack_kube::revision::Revision> = BTreeMap::new();
    for secret in list["items"].as_array().into_iter().flatten() {
        let revision = stack_kube::revision::Revision::from_secret(secret).expect("a revision");
        let label = revision.release.replacen('/', ".", 1);
        if newest
            .get(&label)
            .is_none_or(|r| r.number < revision.number)
        {
            newest.insert(label, revision);
        }
    }
    newest
        .into_iter()
        .map(|(label, revision)| {
            assert_eq!(
                revision.state,
                stack_kube::revision::State::Deployed,
                "{label} revision {}",
                revision.number
            );
            let objects = revision
                .objects
                .parse()
                .iter()
                .chain(&revision.tests.parse())
                .map(key_of)
                .collect();
            (label, objects)
        })
        .collect()
}

/// No object that belongs to no revision exists, and none of a deployed
/// revision is missing. The number of objects checked.
fn check_objects(server: &Server) -> usize {
    let live = labelled(server);
    let deployed = deployed_revisions(server);
    let mut checked = 0;
    for (release, objects) in &deployed {
        let present = live.get(release).cloned().unwrap_or_default();
        for object in objects {
            // A finished test Job may be gone (a TTL); everything else must be there.
            assert!(
                present.contains(object) || object.0 == "Job",
                "{release}: {object:?} is missing"
            );
            checked += 1;
        }
        for object in &present {
            assert!(
                objects.contains(object),
                "{release}: {object:?} belongs to no revision"
            );
        }
    }
    for release in live.keys() {
        assert!(
            deployed.contains_key(release),
            "{release} has objects but no deployed revision"
        );
    }
    checked
}

/// The example with a ConfigMap in every chart that renders `--set
/// marker=...`: a run that changes the marker changes every release (a
/// release whose render did not change gets no new revision).
fn marked() -> Test {
    let mut test = Test::example();
    for chart in [
        "namespaces",
        "network-policies",
        "postgres",
        "backend",
        "frontend",
    ] {
        test = test.file(
            &format!("stacks/charts/{chart}/templates/marker.yaml"),
            "
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: {{ release.name }}-marker
            data:
              marker: {{ values.marker | default('none') | string | tojson }}
            ",
        );
    }
    test
}

#[test]
fn the_example_applies_twenty_times_in_a_row_through_faults_and_latency() {
    let mut seen = Seen::default();
    let test = marked();
    let server = Server::start(
        test.path(),
        &["--fault-rate", "0.05", "--latency-ms", "1", "--seed", "5"],
    );
    let mut checked = 0;
    for run in 0..20 {
        let replicas = format!("scale.backend={}", 1 + run % 3);
        let marker = format!("marker={run}");
        seen.keep(
            test.stack(&["apply", "-q", "--set", &replicas, "--set", &marker])
                .success(),
        );
        checked += check_objects(&server);
    }
    seen.keep(
        test.stack(&[
            "diff",
            "--detailed-exitcode",
            "--set",
            "scale.backend=2",
            "--set",
            "marker=19",
        ])
        .code(0),
    );
    let faults = metric(
        &server.metrics(),
        "stack_simulator_injected_faults_total",
        &[],
    );
    assert!(faults > 0, "no fault was injected");
    eprintln!(
        "fault suite 1: 20 runs, {faults} faults injected, {checked} objects checked, 0 lost"
    );
}

#[test]
fn kill_9_at_twenty_points_of_a_run_is_recovered_by_the_next_apply() {
    let mut seen = Seen::default();
    let test = marked();
    // Every run makes the same writes in the same order: one release at a
    // time, and no history trimmed on the way.
    let stack = test.read("stacks/platform.yaml").replace(
        "  createNamespace: true\n",
        "  createNamespace: true\n  historyMax: 100\n",
    );
    std::fs::write(test.path().join("stacks/platform.yaml"), stack).unwrap();
    let server = Server::start(test.path(), &[]);
    seen.keep(test.stack(&["apply", "-q"]).success());
    let before = server.mutating();
    seen.keep(
        test.stack(&[
            "apply",
            "-q",
            "--concurrency",
            "1",
            "--set",
            "scale.backend=2",
            "--set",
            "marker=measure",
        ])
        .success(),
    );
    let writes = server.mutating() - before;
    assert!(writes >= 20, "a run makes {writes} writes");
    let (mut recovered, mut checked) = (0, 0);
    for point in 1..=20_u64 {
        let after = (point * writes / 21).max(1);
        let replicas = format!("scale.backend={}", 1 + point % 3);
        let marker = format!("marker={point}");
        let killed = output_of(
            test.command(&[
                "apply",
                "-q",
                "--concurrency",
                "1",
                "--set",
                &replicas,
                "--set",
                &marker,
            ])
            .env("STACK_FAULT_KILL_AFTER_WRITES", after.to_string()),
        );
        assert_eq!(
            killed.code, -1,
            "killed after {after} writes: {}",
            killed.stderr
        );
        let output = seen.keep(
            test.stack(&["apply", "--set", &replicas, "--set", &marker])
                .success(),
        );
        if output.stderr.contains("left pending by an interrupted run") {
            recovered += 1;
        }
        checked += check_objects(&server);
        seen.keep(
            test.stack(&[
                "diff",
                "--detailed-exitcode",
                "--set",
                &replicas,
                "--set",
                &marker,
            ])
            .code(0),
        );
    }
    assert!(
        recovered >= 5,
        "only {recovered} of 20 kills left a pending revision"
    );
    eprintln!(
        "fault suite 5: 20 kills over a {writes}-write run, {recovered} pending revisions recovered, {checked} objects checked, 0 lost"
    );
}

/// Create a Lease as a run on this machine would hold it.
fn hold_lock(server: &Server, pid: u32, renewed: &str) {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_string();
    write_lease(server, &host, pid, renewed);
}

/// Create a Lease as a run on another machine would hold it: only its
/// renewal time tells whether it is alive.
fn hold_lock_elsewhere(server: &Server, renewed: &str) {
    write_lease(server, "build-7.ci.example", 4242, renewed);
}

fn write_lease(server: &Server, host: &str, pid: u32, renewed: &str) {
    let stack = crate::harness::stack_label(&server.dir);
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": format!("stack-lock.{stack}.development"), "namespace": "default",
            "annotations": {"stack.dev/pid": pid.to_string(), "stack.dev/host": host, "stack.dev/command": "stack apply"}},
        "spec": {"holderIdentity": format!("ops@{host} (pid {pid})"), "leaseDurationSeconds": 30,
            "acquireTime": renewed, "renewTime": renewed},
    });
    let (code, body) = http(
        &format!(
            "{}/apis/coordination.k8s.io/v1/namespaces/default/leases/stack-lock.{stack}.development?fieldManager=test",
            server.address
        ),
        "PATCH",
        "application/apply-patch+yaml",
        &lease.to_string(),
    );
    assert!(code == 200 || code == 201, "{code} {body}");
}

#[test]
fn a_held_lock_stops_apply_naming_its_holder_and_an_expired_one_is_taken_over() {
    let mut seen = Seen::default();
    let test = Test::example();
    let server = Server::start(test.path(), &[]);
    let now = jiff::Timestamp::now().to_string();
    hold_lock(&server, std::process::id(), &now);
    let before = server.mutating();
    let output = seen.keep(test.stack(&["apply"]).code(1));
    shows_all(
        &output.stderr,
        &[
            "another run holds the lock",
            "(pid ",
            "running `stack apply` since",
            "--wait-for-lock",
        ],
    );
    let waited = seen.keep(test.stack(&["apply", "--wait-for-lock", "1s"]).code(1));
    assert!(
        waited.stderr.contains("another run holds the lock"),
        "{}",
        waited.stderr
    );
    let after = server.mutating();
    assert_eq!(after, before, "writes while the lock was held elsewhere");
    hold_lock_elsewhere(&server, "2000-01-01T00:00:00.000000Z");
    let output = seen.keep(test.stack(&["apply"]).success());
    assert!(output.stderr.contains("expired"), "{}", output.stderr);
    let lease = server.get(&format!(
        "/apis/coordination.k8s.io/v1/namespaces/default/leases/stack-lock.{}.development",
        crate::harness::stack_label(test.path())
    ));
    assert_eq!(lease["code"], 404, "the lock is released: {lease}");
}

#[test]
fn two_applies_started_together_one_runs_the_other_names_the_holder() {
    let mut seen = Seen::default();
    let test = Test::example();
    let _server = Server::start(test.path(), &[]);
    seen.keep(test.stack(&["apply", "-q"]).success());
    let (mut first, mut first_output, lines) = start_slow_apply(&test, SLOW);
    let second = seen.keep(test.stack(&["apply", "--set", &slow_rollout(SLOW)]).code(1));
    names_the_holder(&second, &first);
    first_output.extend(lines.map(|line| line + "\n"));
    let status = first.wait().expect("wait for the first apply");
    assert!(status.success(), "{first_output}");
    seen.keep(crate::harness::Output {
        code: 0,
        stdout: String::new(),
        stderr: first_output,
    });
}

/// A run that found a release left pending by an interrupted run said so.
#[track_caller]
pub fn recovers_pending(output: &crate::harness::Output) {
    shows_all(&output.stderr, &["left pending by an interrupted run"]);
}

/// A run refused the lock names the one holding it, by its pid.
#[track_caller]
pub fn names_the_holder(refused: &crate::harness::Output, holder: &std::process::Child) {
    shows_all(
        &refused.stderr,
        &[
            "another run holds the lock default/stack-lock.",
            &format!("(pid {})", holder.id()),
        ],
    );
}

/// The `--set` that makes the backend's rollout take `seconds` (simulated
/// seconds on the simulator, real ones on a real cluster).
pub fn slow_rollout(seconds: u32) -> String {
    format!("{}={seconds}", POD_FAULT.replace("fail", "rollout-seconds"))
}

/// How long the simulator tests' slow rollouts take.
const SLOW: u32 = 250;

/// Start `stack apply` with a backend rollout of `seconds`; the stderr
/// lines up to the one where it waits for the backend.
pub fn start_slow_apply(
    test: &Test,
    seconds: u32,
) -> (std::process::Child, String, impl Iterator<Item = String>) {
    let mut child = test
        .command(&["apply", "--set", &slow_rollout(seconds)])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start apply");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufReader::new(stderr)
        .lines()
        .map(|line| line.expect("read stderr"));
    let mut seen = String::new();
    for line in lines.by_ref() {
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("waiting for Deployment/backend") {
            break;
        }
    }
    (child, seen, lines)
}

#[test]
fn sigterm_starts_nothing_new_cuts_the_wait_short_and_releases_the_lock() {
    let mut seen = Seen::default();
    let test = Test::example();
    let server = Server::start(test.path(), &[]);
    seen.keep(test.stack(&["apply", "-q"]).success());
    let (mut child, mut stderr, rest) = start_slow_apply(&test, SLOW);
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(sent.success());
    stderr.extend(rest.map(|line| line + "\n"));
    let status = child.wait().expect("wait for apply");
    assert_eq!(status.code(), Some(1), "{stderr}");
    shows_all(
        &stderr,
        &[
            "interrupted: starting no more releases",
            "[apps/backend] stopped: the run was interrupted; left pending",
            "[apps/frontend] skipped: the run was interrupted",
            "run `stack apply` to finish",
        ],
    );
    let stack = crate::harness::stack_label(test.path());
    let lease = server.get(&format!(
        "/apis/coordination.k8s.io/v1/namespaces/default/leases/stack-lock.{stack}.development"
    ));
    assert_eq!(lease["code"], 404, "the lock is released: {lease}");
    seen.keep(crate::harness::Output {
        code: 1,
        stdout: String::new(),
        stderr,
    });
    // The 250-second rollout was not waited for; the next apply recovers.
    assert_eq!(
        crate::atomic::states(&test, "backend")
            .last()
            .map(|s| s.1.clone()),
        Some("pending".to_string())
    );
    recovers_pending(&seen.keep(test.stack(&["apply"]).success()));
}

#[test]
fn recover_forward_applies_the_pending_revision_again() {
    let mut seen = Seen::default();
    let test = Test::example().rolling_backend();
    let server = Server::start(test.path(), &[]);
    seen.keep(test.stack(&["apply", "-q"]).success());
    let (mut child, _, _) = start_slow_apply(&test, SLOW);
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    // A pending release is not ready, whatever its previous revision was.
    let status = seen.keep(test.stack(&["status", "-o", "json"]).success());
    let backend = status
        .json()
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["id"] == "apps/backend").cloned())
        .expect("a row for the backend");
    assert_eq!(
        (backend["state"].as_str(), backend["ready"].as_bool()),
        (Some("pending"), Some(false))
    );
    seen.keep(test.stack(&["status", "--check"]).code(1));
    let output = seen.keep(
        test.stack(&[
            "apply",
            "--recover",
            "forward",
            "--set",
            &slow_rollout(SLOW),
        ])
        .success(),
    );
    assert!(
        output
            .stderr
            .contains("left pending by an interrupted run; recovering it (applying it again)"),
        "{}",
        output.stderr
    );
    let deployment = server.get("/apis/apps/v1/namespaces/apps/deployments/backend");
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["annotations"]["sim.stack.dev/rollout-seconds"],
        "250",
        "the pending revision's objects are applied"
    );
    check_objects(&server);
}

#[test]
fn a_kill_during_stack_rollback_is_recovered_without_removing_the_release() {
    let mut seen = Seen::default();
    let test = Test::example();
    let server = Server::start(test.path(), &[]);
    seen.keep(test.stack(&["apply", "-q"]).success());
    seen.keep(
        test.stack(&["apply", "-q", "--set", "scale.backend=2"])
            .success(),
    );
    let uid = |server: &Server| {
        server.get("/apis/apps/v1/namespaces/apps/deployments/backend")["metadata"]["uid"].clone()
    };
    let before = uid(&server);
    // The lock, the restoring revision, then killed before the first object.
    let killed = output_of(
        test.command(&["rollback", "backend"])
            .env("STACK_FAULT_KILL_AFTER_WRITES", "2"),
    );
    assert_eq!(killed.code, -1, "{}", killed.stderr);
    let output = seen.keep(test.stack(&["apply", "--set", "scale.backend=2"]).success());
    recovers_pending(&output);
    assert!(!output.stderr.contains("removing"), "{}", output.stderr);
    assert_eq!(uid(&server), before, "the Deployment was never deleted");
    check_objects(&server);
}

#[test]
fn an_object_adopted_by_an_interrupted_first_install_survives_its_recovery() {
    let mut seen = Seen::default();
    let test = Test::example();
    let server = Server::start(test.path(), &[]);
    for (path, body) in [
        (
            "/api/v1/namespaces/apps",
            r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"apps"}}"#,
        ),
        (
            "/api/v1/namespaces/apps/configmaps/backend-config",
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"backend-config","namespace":"apps"},"data":{"legacy":"yes"}}"#,
        ),
    ] {
        let (code, body) = http(
            &format!("{}{path}?fieldManager=legacy-tool", server.address),
            "PATCH",
            "application/apply-patch+yaml",
            body,
        );
        assert!(code == 200 || code == 201, "{code} {body}");
    }
    // The lock, the pending revision, then the ConfigMap, the Secret and the
    // Service (one stage, sent together); killed before the Deployment.
    let killed = output_of(
        test.command(&["apply", "-q", "-l", "name=backend"])
            .env("STACK_FAULT_KILL_AFTER_WRITES", "5"),
    );
    assert_eq!(killed.code, -1, "{}", killed.stderr);
    let map = server.get("/api/v1/namespaces/apps/configmaps/backend-config");
    assert_eq!(
        map["metadata"]["labels"]["stack.dev/release"], "apps.backend",
        "adopted: {map}"
    );
    let output = seen.keep(test.stack(&["apply", "-l", "name=backend"]).success());
    assert!(
        output
            .stderr
            .contains("removing the unfinished first install"),
        "{}",
        output.stderr
    );
    let map = server.get("/api/v1/namespaces/apps/configmaps/backend-config");
    assert_eq!(
        map["data"]["legacy"], "yes",
        "the adopted object is kept: {map}"
    );
}

//! Atomic deploys (product.md §6): readiness failures that explain
//! themselves, test jobs that gate, rollback to the previous revision,
//! `--atomic=stack`, `--no-atomic` and `stack rollback`, `stack test`. Every
//! output is checked for leaked secrets.

use serde_json::Value;

use crate::harness::{Output, Server, Test, shows_all};

/// The example's decrypted values, which no output may contain.
pub const SECRET_VALUES: [&str; 2] = ["dev-s3cret-password", "shop_app"];

pub const POD_FAULT: &str = "podAnnotations.sim\\.stack\\.dev/fail";
pub const TEST_FAULT: &str = "testAnnotations.sim\\.stack\\.dev/fail";
const TEST_LOG: &str = "testAnnotations.sim\\.stack\\.dev/log";

/// Outputs seen by a test, checked for leaks when it ends.
#[derive(Default)]
pub struct Seen(Vec<String>);

impl Seen {
    pub fn keep(&mut self, output: Output) -> Output {
        self.0.push(format!("{}{}", output.stdout, output.stderr));
        output
    }
}

impl Drop for Seen {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        for (index, output) in self.0.iter().enumerate() {
            for secret in SECRET_VALUES {
                assert!(
                    !output.contains(secret),
                    "output {index} leaks {secret}:\n{output}"
                );
            }
        }
    }
}

/// The example platform, applied once.
pub fn deployed() -> Test {
    let test = Test::example().rolling_backend();
    test.stack(&["apply", "-q"]).success();
    test
}

/// `(revision, state)` of a release's history, oldest first.
pub fn states(test: &Test, release: &str) -> Vec<(u64, String)> {
    let history = test
        .stack(&["history", release, "-o", "json"])
        .success()
        .json();
    history
        .as_array()
        .expect("history is a list")
        .iter()
        .map(|r| {
            (
                r["revision"].as_u64().unwrap_or(0),
                r["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

pub fn last_states(test: &Test, release: &str, count: usize) -> Vec<String> {
    let states = states(test, release);
    states[states.len().saturating_sub(count)..]
        .iter()
        .map(|(_, state)| state.clone())
        .collect()
}

fn status_of(test: &Test, id: &str) -> Value {
    let status = test.stack(&["status", "-o", "json"]).success().json();
    status
        .as_array()
        .expect("status is a list")
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_deployment_that_never_becomes_ready_is_rolled_back_and_its_dependents_skipped() {
    let mut seen = Seen::default();
    let test = deployed();
    let fault = format!("{POD_FAULT}=progress-deadline");
    let output = seen.keep(
        test.stack(&["apply", "--set", "scale.backend=3", "--set", &fault])
            .code(3),
    );
    shows_all(
        &output.stderr,
        &[
            "Deployment/backend failed: ProgressDeadlineExceeded",
            "condition Progressing=False ProgressDeadlineExceeded",
            "[apps/frontend] skipped: its need apps/backend did not succeed",
            "rolled back (revision 3)",
        ],
    );
    assert!(
        output
            .stdout
            .lines()
            .any(|l| l.starts_with("apps/backend") && l.contains("failed, rolled back")),
        "{}",
        output.stdout
    );
    // The live objects equal the previous revision exactly.
    let diff = seen.keep(test.stack(&["diff", "--detailed-exitcode"]).code(0));
    assert_eq!(diff.stdout, "");
    assert_eq!(
        last_states(&test, "backend", 3),
        ["superseded", "failed", "deployed"]
    );
    assert_eq!(
        states(&test, "frontend").len(),
        1,
        "frontend was not started"
    );
    let backend = status_of(&test, "apps/backend");
    assert_eq!(
        (backend["state"].as_str(), backend["ready"].as_bool()),
        (Some("deployed"), Some(true))
    );
}

#[test]
fn a_crash_loop_fails_at_once_naming_the_pod_its_reason_and_events() {
    let mut seen = Seen::default();
    let test = deployed();
    let fault = format!("{POD_FAULT}=crash-loop");
    let output = seen.keep(
        test.stack(&["apply", "-l", "name=backend", "--set", &fault])
            .code(3),
    );
    shows_all(
        &output.stderr,
        &[
            "container backend: CrashLoopBackOff",
            "restarts)",
            "event Warning BackOff Pod/backend-",
        ],
    );
    seen.keep(test.stack(&["diff", "--detailed-exitcode"]).code(0));
    let image = format!("{POD_FAULT}=image-pull");
    let output = seen.keep(
        test.stack(&["apply", "-l", "name=backend", "--set", &image])
            .code(3),
    );
    assert!(
        output.stderr.contains("ImagePullBackOff"),
        "{}",
        output.stderr
    );
}

#[test]
fn a_failing_test_job_fails_the_release_prints_its_log_and_is_rolled_back() {
    let mut seen = Seen::default();
    let test = deployed();
    let fault = format!("{TEST_FAULT}=job-failed");
    let log = format!("{TEST_LOG}=curl: (22) The requested URL returned error: 503");
    let output = seen.keep(
        test.stack(&[
            "apply",
            "--set",
            "scale.backend=2",
            "--set",
            &fault,
            "--set",
            &log,
        ])
        .code(3),
    );
    shows_all(
        &output.stderr,
        &[
            "test failed: Job/backend-smoke-test failed: BackoffLimitExceeded",
            "log of pod backend-smoke-test-",
            "curl: (22) The requested URL returned error: 503",
            "[apps/frontend] skipped",
        ],
    );
    seen.keep(test.stack(&["diff", "--detailed-exitcode"]).code(0));
    assert_eq!(
        last_states(&test, "backend", 3),
        ["superseded", "failed", "deployed"]
    );
    // --skip-tests deploys the same change without the failing test.
    seen.keep(
        test.stack(&[
            "apply",
            "-q",
            "--skip-tests",
            "--set",
            "scale.backend=2",
            "--set",
            &fault,
        ])
        .success(),
    );
}

#[test]
fn atomic_stack_undoes_every_release_the_run_changed() {
    let mut seen = Seen::default();
    undo_whole_run(&deployed(), "progress-deadline", &mut seen);
}

/// `--atomic=stack` on the deployed example whose frontend now fails with
/// `fault`: every release the run changed is undone, the frontend rolled
/// back, and the diff is empty once the fault is gone.
pub fn undo_whole_run(test: &Test, fault: &str, seen: &mut Seen) {
    let original = test.read("stacks/charts/frontend/values.yaml");
    let values = original.replace(
        "podAnnotations: {}",
        &format!("podAnnotations: {{sim.stack.dev/fail: {fault}}}"),
    );
    std::fs::write(
        test.path().join("stacks/charts/frontend/values.yaml"),
        values,
    )
    .unwrap();
    // The backend and the frontend get a new revision (their renders
    // change; the other releases' do not); the frontend, last, fails.
    let output = seen.keep(
        test.stack(&[
            "apply",
            "--atomic=stack",
            "--set",
            "scale.backend=2",
            "--set",
            "scale.frontend=2",
        ])
        .code(3),
    );
    assert!(
        output.stderr.contains("[apps/backend] undoing"),
        "{}",
        output.stderr
    );
    assert_eq!(
        last_states(test, "backend", 3),
        ["superseded", "rolled-back", "deployed"]
    );
    assert_eq!(
        last_states(test, "frontend", 3),
        ["superseded", "failed", "deployed"]
    );
    for release in ["namespaces", "network-policies", "postgres"] {
        assert_eq!(states(test, release).len(), 1, "{release} was not changed");
    }
    std::fs::write(
        test.path().join("stacks/charts/frontend/values.yaml"),
        original,
    )
    .unwrap();
    seen.keep(test.stack(&["diff", "--detailed-exitcode"]).code(0));
}

#[test]
fn no_atomic_leaves_the_failure_and_stack_rollback_restores() {
    let mut seen = Seen::default();
    let test = deployed();
    let fault = format!("{POD_FAULT}=progress-deadline");
    let output = seen.keep(
        test.stack(&[
            "apply",
            "--no-atomic",
            "-l",
            "name=backend",
            "--set",
            &fault,
        ])
        .code(1),
    );
    assert!(
        output.stderr.contains("`stack rollback RELEASE`"),
        "{}",
        output.stderr
    );
    let backend = status_of(&test, "apps/backend");
    assert_eq!(
        (backend["state"].as_str(), backend["revision"].as_u64()),
        (Some("failed"), Some(2))
    );
    seen.keep(test.stack(&["diff", "--detailed-exitcode"]).code(2));
    let rolled = seen.keep(test.stack(&["rollback", "backend"]).success());
    assert!(
        rolled
            .stderr
            .contains("rolling back to revision 1 as revision 3"),
        "{}",
        rolled.stderr
    );
    seen.keep(test.stack(&["diff", "--detailed-exitcode"]).code(0));
    assert_eq!(
        last_states(&test, "backend", 3),
        ["superseded", "failed", "deployed"]
    );
    // Back to a named revision; a revision that does not exist is an error.
    seen.keep(test.stack(&["rollback", "apps/backend", "1"]).success());
    let missing = seen.keep(test.stack(&["rollback", "backend", "99"]).code(1));
    assert!(
        missing.stderr.contains("no revision 99"),
        "{}",
        missing.stderr
    );
}

#[test]
fn a_failed_first_install_is_removed() {
    let mut seen = Seen::default();
    let test = Test::example();
    let fault = format!("{POD_FAULT}=crash-loop");
    let output = seen.keep(test.stack(&["apply", "--set", &fault]).code(3));
    assert!(
        output.stderr.contains("removed (first install)"),
        "{}",
        output.stderr
    );
    let server = Server::start(test.path(), &[]);
    for path in [
        "/apis/apps/v1/namespaces/apps/deployments/backend",
        "/api/v1/namespaces/apps/configmaps/backend-config",
        "/api/v1/namespaces/apps/services/backend",
    ] {
        assert_eq!(server.get(path)["code"], 404, "{path}");
    }
    let postgres = server.get("/apis/apps/v1/namespaces/data/statefulsets/postgres");
    assert_eq!(postgres["metadata"]["name"], "postgres");
    drop(server);
    assert_eq!(status_of(&test, "apps/backend")["state"], "failed");
    seen.keep(test.stack(&["apply", "-q"]).success());
    assert_eq!(last_states(&test, "backend", 2), ["failed", "deployed"]);
}

#[test]
fn stack_test_runs_the_deployed_tests_again() {
    let mut seen = Seen::default();
    let test = deployed();
    let output = seen.keep(test.stack(&["test"]).success());
    assert!(
        output.stderr.contains("[apps/backend] tests passed"),
        "{}",
        output.stderr
    );
    assert!(
        output.stderr.contains("[apps/frontend] has no tests"),
        "{}",
        output.stderr
    );
}

#[test]
fn a_test_job_its_ttl_removes_counts_as_done() {
    let test = Test::new()
        .file(
            "stack.yaml",
            "
            environments:
              default:
                cluster: simulated
            releases:
              - name: app
                chart: chart
                tests: true
            ",
        )
        .configmap_chart("chart")
        .file(
            "chart/templates/tests/check.yaml",
            "
            apiVersion: batch/v1
            kind: Job
            metadata:
              name: check
            spec:
              ttlSecondsAfterFinished: 0
              template:
                spec:
                  restartPolicy: Never
                  containers: [{name: check, image: busybox}]
            ",
        );
    let output = test.stack(&["apply"]).success();
    assert!(
        output.stderr.contains("[default/app] tests passed"),
        "{}",
        output.stderr
    );
    let status = test.stack(&["status", "-o", "json"]).success().json();
    assert_eq!(status[0]["state"], "deployed");
}

#[test]
fn a_test_log_that_prints_a_secret_is_masked_on_screen_and_in_history() {
    let mut seen = Seen::default();
    let test = deployed();
    let fault = format!("{TEST_FAULT}=job-failed");
    let log = format!("{TEST_LOG}=connecting with password dev-s3cret-password");
    let output = seen.keep(
        test.stack(&["apply", "--set", &fault, "--set", &log])
            .code(3),
    );
    assert!(
        output
            .stderr
            .contains("connecting with password (sensitive value)"),
        "{}",
        output.stderr
    );
    let history = seen.keep(
        test.stack(&["history", "backend", "-o", "json", "--show-secrets"])
            .success(),
    );
    assert!(
        history
            .stdout
            .contains("connecting with password (sensitive value)"),
        "{}",
        history.stdout
    );
}

#[test]
fn atomic_stack_brings_back_a_release_the_failed_run_removed() {
    let mut seen = Seen::default();
    let test = deployed();
    let fault = format!("{POD_FAULT}=progress-deadline");
    // The frontend is uninstalled (removed first) and the backend fails.
    let output = seen.keep(
        test.stack(&[
            "apply",
            "--atomic=stack",
            "--set",
            "frontend.enabled=false",
            "--set",
            "scale.backend=2",
            "--set",
            &fault,
        ])
        .code(3),
    );
    assert!(
        output
            .stderr
            .contains("[apps/frontend] restoring: the run removed it"),
        "{}",
        output.stderr
    );
    let frontend = status_of(&test, "apps/frontend");
    assert_eq!(
        (frontend["state"].as_str(), frontend["ready"].as_bool()),
        (Some("deployed"), Some(true)),
        "{frontend}"
    );
    seen.keep(test.stack(&["diff", "--detailed-exitcode"]).code(0));
}

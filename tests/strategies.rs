//! Deployment strategies: a blue/green release brings up its idle colour,
//! tests it, then switches its Services in one write each; a failure
//! before the switch leaves the active colour serving; a rollback while
//! the previous colour runs is the switch back and nothing else. Every
//! output is leak-checked by the harness.

use serde_json::Value;

use crate::harness::{Server, Test, metric, shows_all};

const TEST_FAULT: &str = "testAnnotations.sim\\.stack\\.dev/fail";

/// The example platform with its backend blue/green, with a preview
/// Service.
fn blue_green() -> Test {
    make_blue_green(Test::example())
}

/// A copy of the example platform, its backend made blue/green.
pub fn make_blue_green(test: Test) -> Test {
    edit_platform(&test, |platform| {
        platform.replacen(
            "    strategy: {blueGreen: {service: backend}}\n",
            "    strategy:\n      blueGreen:\n        service: backend\n        previewService: true\n",
            1,
        )
    });
    test
}

/// Run `attempt` for 1, 2, … writes until it says the run was not killed
/// (`None`) or `most` is reached; how many runs were killed.
fn killed_and_recovered(most: usize, mut attempt: impl FnMut(usize) -> Option<()>) -> usize {
    (1..=most)
        .take_while(|after| attempt(*after).is_some())
        .count()
}

/// `stack ARGS` killed after `after` writes (`None` if it ended first):
/// the frontend's host still reaches ready pods only.
fn kill_after(test: &Test, args: &[&str], after: usize) -> Option<()> {
    if !crate::harness::killed_after(test, args, after) {
        return None;
    }
    let served = observed_at_host(test, None);
    assert!(
        served
            .iter()
            .all(|(workload, _)| workload != "(no ready pod)"),
        "killed after {after} writes, requests without a ready pod: {served:?}"
    );
    Some(())
}

/// The frontend's canary is paused before its step 3 at 20 %, and takes
/// that share.
fn paused_before_step_3_at_20(test: &Test) {
    let split = vec![
        ("frontend".to_string(), 800),
        ("frontend-canary".to_string(), 200),
    ];
    assert_eq!(observed_at_host(test, None), split);
    let status = test
        .stack(&["rollout", "status", "frontend", "-o", "json"])
        .success()
        .json();
    assert_eq!(status[0]["paused"]["beforeStep"], 3);
    assert_eq!(status[0]["paused"]["weight"], 20);
}

/// `stack rollout pause frontend` succeeds saying `text`.
fn pause_says(test: &Test, text: &str) {
    let output = test.stack(&["rollout", "pause", "frontend"]).success();
    assert!(output.stdout.contains(text), "{}", output.stdout);
}

/// `stack ARGS` exits 1 and its stderr says `text`.
fn exits_1_saying(test: &Test, args: &[&str], text: &str) {
    let output = test.stack(args).code(1);
    assert!(output.stderr.contains(text), "{}", output.stderr);
}

/// `output`'s summary says `release` is unchanged.
fn assert_unchanged(output: &crate::harness::Output, release: &str, why: &str) {
    assert!(
        output
            .stdout
            .lines()
            .any(|l| l.starts_with(release) && l.contains("unchanged")),
        "{why}:\n{}",
        output.stdout
    );
}

/// Rewrite the test's copy of the example's stack file.
fn edit_platform(test: &Test, edit: impl FnOnce(String) -> String) {
    let stack_file = test.path().join("stacks/platform.yaml");
    let platform = edit(std::fs::read_to_string(&stack_file).unwrap());
    std::fs::write(&stack_file, platform).unwrap();
}

fn deployment(server: &Server, name: &str) -> Value {
    server.get(&format!("/apis/apps/v1/namespaces/apps/deployments/{name}"))
}

fn service(server: &Server, name: &str) -> Value {
    server.get(&format!("/api/v1/namespaces/apps/services/{name}"))
}

fn image(deployment: &Value) -> &str {
    deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
}

/// The colour a Service selects.
fn selects(service: &Value) -> &str {
    service["spec"]["selector"]["stack.dev/color"]
        .as_str()
        .unwrap_or_default()
}

/// Where 1000 requests to the backend Service go, by workload, as
/// `stack cluster traffic` observes them.
fn observed(test: &Test) -> Vec<(String, u64)> {
    routed(test, &["--service", "apps/backend"])
}

/// `stack cluster traffic ARGS -o json`: requests per workload.
fn routed(test: &Test, args: &[&str]) -> Vec<(String, u64)> {
    let mut command = vec!["cluster", "traffic", "-o", "json"];
    command.extend_from_slice(args);
    let routed = test.stack(&command).success().json();
    routed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["workload"].as_str().unwrap().to_string(),
                r["requests"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn all_to(workload: &str) -> Vec<(String, u64)> {
    vec![(workload.to_string(), 1000)]
}

/// Deploy backend 1.5.0 (blue), then 1.6.0 (green).
fn deployed_twice() -> Test {
    let test = blue_green();
    test.stack(&["apply", "-q"]).success();
    test.stack(&crate::harness::APPLY_BACKEND_1_6).success();
    test
}

#[test]
fn a_blue_green_release_deploys_the_idle_colour_and_switches_its_service_after_the_tests() {
    let test = blue_green();
    let first = test.stack(&["apply"]).success();
    assert!(
        first
            .stderr
            .contains("[apps/backend] switched backend to blue"),
        "{}",
        first.stderr
    );
    let server = Server::start(test.path(), &[]);
    let blue = deployment(&server, "backend-blue");
    assert_eq!(blue["metadata"]["labels"]["stack.dev/color"], "blue");
    assert_eq!(
        blue["spec"]["template"]["metadata"]["labels"]["stack.dev/color"],
        "blue"
    );
    assert_eq!(blue["status"]["readyReplicas"], 1);
    assert_eq!(
        deployment(&server, "backend")["code"],
        404,
        "no uncoloured copy"
    );
    assert_eq!(selects(&service(&server, "backend")), "blue");
    assert_eq!(selects(&service(&server, "backend-preview")), "blue");
    drop(server);
    assert_eq!(observed(&test), all_to("backend-blue"));
    test.stack(&["diff", "--detailed-exitcode"]).code(0);
    let again = test.stack(&["apply"]).success();
    assert_unchanged(
        &again,
        "apps/backend",
        "an unchanged release keeps its colour",
    );

    let second = test
        .stack(&[
            "apply",
            "-l",
            "name=backend",
            "--set",
            "images.backend.tag=1.6.0",
        ])
        .success();
    let events = &second.stderr;
    let at = |text: &str| {
        events
            .find(text)
            .unwrap_or_else(|| panic!("no `{text}` in:\n{events}"))
    };
    assert!(at("waiting for Deployment/backend-green") < at("tests passed"));
    assert!(at("tests passed") < at("switched backend to green"));
    let server = Server::start(test.path(), &[]);
    let green = deployment(&server, "backend-green");
    assert_eq!(image(&green), "registry.example.com/shop/backend:1.6.0");
    let blue = deployment(&server, "backend-blue");
    assert_eq!(
        image(&blue),
        "registry.example.com/shop/backend:1.5.0",
        "the previous colour runs on, unchanged"
    );
    assert_eq!(blue["status"]["readyReplicas"], 1);
    assert_eq!(selects(&service(&server, "backend")), "green");
    drop(server);
    assert_eq!(
        observed(&test),
        all_to("backend-green"),
        "blue runs, and receives nothing"
    );

    let status = test
        .stack(&["rollout", "status", "backend", "-o", "json"])
        .success()
        .json();
    let backend = &status[0];
    assert_eq!(backend["strategy"], "blueGreen");
    assert_eq!(
        (&backend["active"], &backend["previous"]),
        (&"green".into(), &"blue".into())
    );
    assert_eq!(backend["colours"]["green"]["ready"], true);
    assert_eq!(backend["colours"]["blue"]["replicas"], 1);
    assert_eq!(backend["services"][0]["selects"], "green");
    let table = test.stack(&["rollout", "status"]).success();
    assert!(
        table.stdout.lines().any(|l| l.starts_with("apps/backend")
            && l.contains("green (1 ready)")
            && l.contains("blue (1 ready)")
            && l.contains("backend → green")),
        "{}",
        table.stdout
    );
}

#[test]
fn a_failure_before_the_switch_leaves_the_active_colour_serving_and_removes_the_new_one() {
    let test = blue_green();
    test.stack(&["apply", "-q"]).success();
    let server = Server::start(test.path(), &[]);
    let before = service(&server, "backend")["metadata"]["resourceVersion"].clone();
    drop(server);
    let fault = format!("{TEST_FAULT}=job-failed");
    let failed = test
        .stack(&[
            "apply",
            "-l",
            "name=backend",
            "--set",
            "images.backend.tag=1.6.0",
            "--set",
            &fault,
        ])
        .code(3);
    shows_all(
        &failed.stderr,
        &["test failed: Job/backend-smoke-test failed", "rolled back"],
    );
    assert!(!failed.stderr.contains("switched"), "{}", failed.stderr);
    let server = Server::start(test.path(), &[]);
    let backend = service(&server, "backend");
    assert_eq!(selects(&backend), "blue");
    assert_eq!(
        backend["metadata"]["resourceVersion"], before,
        "the switched Service was never written"
    );
    assert_eq!(deployment(&server, "backend-green")["code"], 404);
    drop(server);
    assert_eq!(observed(&test), all_to("backend-blue"));
    let server = Server::start(test.path(), &[]);
    assert_eq!(
        image(&deployment(&server, "backend-blue")),
        "registry.example.com/shop/backend:1.5.0"
    );
}

#[test]
fn a_rollback_while_the_previous_colour_runs_switches_the_services_back_and_keeps_both() {
    let test = deployed_twice();
    let server = Server::start(test.path(), &[]);
    let applies = |resource: &str| {
        let labels = [
            ("verb", "apply"),
            ("resource", resource),
            ("dry_run", "false"),
        ];
        metric(&server.metrics(), "stack_simulator_requests_total", &labels)
    };
    let before = (
        server.mutating(),
        applies("services"),
        applies("deployments"),
    );
    let rolled_back = test.stack(&["rollback", "apps/backend"]).success();
    let writes = server.mutating() - before.0;
    assert_eq!(
        (
            applies("services") - before.1,
            applies("deployments") - before.2
        ),
        (2, 0),
        "one write per Service (backend and its preview), none to the Deployments"
    );
    assert!(
        rolled_back
            .stderr
            .contains("rolled back: revision 3 is deployed"),
        "{}",
        rolled_back.stderr
    );
    assert_eq!(selects(&service(&server, "backend")), "blue");
    let green = deployment(&server, "backend-green");
    assert_eq!(
        image(&green),
        "registry.example.com/shop/backend:1.6.0",
        "the colour left keeps running, for a switch forward"
    );
    eprintln!(
        "blue/green rollback: {writes} mutating requests (2 Services, the rest the lock and the history)"
    );
    drop(server);
    assert_eq!(
        observed(&test),
        all_to("backend-blue"),
        "traffic is back on blue"
    );
    // The stack files still say 1.6.0: applying them switches forward,
    // writing the Services only.
    let diff = test
        .stack(&[
            "diff",
            "-l",
            "name=backend",
            "--set",
            "images.backend.tag=1.6.0",
        ])
        .success();
    let changed: Vec<&str> = diff
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with(['+', '~', '-']) && l.contains('/'))
        .filter(|l| l.contains("(created)") || l.contains("(changed)") || l.contains("(deleted)"))
        .collect();
    assert_eq!(
        changed,
        [
            "  ~ Service/apps/backend (changed)",
            "  ~ Service/apps/backend-preview (changed)"
        ],
        "{}",
        diff.stdout
    );
}

/// A bad `strategy:` and what the error must say.
const BAD_STRATEGIES: &[(&str, &str)] = &[
    (
        "    strategy:\n      blueGreen: {service: backnd}\n",
        "names Service `backnd`, which release `apps/backend` does not render",
    ),
    (
        "    strategy:\n      blueGreen: {service: backend, keepPrevious: soon}\n",
        "`keepPrevious` is not a duration",
    ),
    (
        "    strategy:\n      blueGreen: {service: backend}\n      canary: {}\n",
        "`strategy` names both `blueGreen` and `canary`",
    ),
    ("    strategy: {}\n", "`strategy` names no strategy"),
    (
        "    strategy:\n      blueGreen: {previewService: true}\n",
        "missing the required key `service`",
    ),
];

/// Bad canaries on the frontend (which renders an Ingress), and what the
/// error must say.
const BAD_CANARIES: &[(&str, &str)] = &[
    (
        "ingress: frontnd\n        steps: [{setWeight: 10}]",
        "names Ingress `frontnd`, which release `apps/frontend` does not render",
    ),
    (
        "ingress: frontend\n        steps: [{setWeight: 120}]",
        "`setWeight` must be a whole number from 0 to 100",
    ),
    (
        "ingress: frontend\n        steps: [{setWeight: 50}, {setWeight: 20}]",
        "`setWeight` does not increase on the step before it (the weight: 20 after 50)",
    ),
    (
        "ingress: frontend\n        variants: {a: {values: {}}, b: {values: {}}}\n        steps: [{setWeight: {a: 20, b: 30}}, {setWeight: {a: 10, b: 50}}]",
        "`setWeight` does not increase on the step before it (variant `a`'s weight: 10 after 20)",
    ),
    (
        "ingress: frontend\n        variants: {a: {values: {}}, b: {values: {}}}\n        steps: [{setWeight: 60}]",
        "`setWeight` gives the variants 120% of the traffic in all",
    ),
    (
        "ingress: frontend\n        variants: {a: {values: {}}}\n        steps: [{setWeight: {c: 10}}]",
        "`setWeight` names variant `c`, which is not declared",
    ),
    (
        "ingress: frontend\n        variants: {Big_A: {values: {}}}\n        steps: [{setWeight: 10}]",
        "variant name `Big_A` is not a DNS label",
    ),
    (
        "ingress: frontend\n        steps: [{setWeight: {a: 10}}]",
        "`setWeight` gives weights by variant, but the canary has no `variants`",
    ),
    (
        "ingress: frontend\n        variants: {b: {values: {image: null}}}\n        steps: [{setWeight: 10}]",
        "release `apps/frontend (variant b)`: template `templates/deployment.yaml` failed",
    ),
    (
        "ingress: frontend\n        steps: [{setWeight: 10}, {pause: later}]",
        "`pause` is not a duration or `{}`",
    ),
    (
        "ingress: frontend\n        steps: [{setWeight: 10, pause: 1m}]",
        "this one has setWeight and pause",
    ),
    (
        "ingress: frontend\n        steps: [{analysis: {}}]",
        "a canary analysis runs nothing",
    ),
];

#[test]
fn a_bad_strategy_is_a_located_error_and_nothing_is_written() {
    let test = Test::example().rolling_backend();
    test.stack(&["apply", "-q"]).success();
    let server = Server::start(test.path(), &[]);
    let stack_file = test.path().join("stacks/platform.yaml");
    let platform = std::fs::read_to_string(&stack_file).unwrap();
    let before = server.mutating();
    for (strategy, message) in BAD_STRATEGIES {
        let spoiled = platform.replacen(
            "    needs: [data/postgres]\n    tests: true\n",
            &format!("    needs: [data/postgres]\n    tests: true\n{strategy}"),
            1,
        );
        std::fs::write(&stack_file, spoiled).unwrap();
        let output = test.stack(&["apply"]).code(1);
        assert!(
            output.stderr.contains(message) && output.stderr.contains("stacks/platform.yaml:"),
            "{message}:\n{}",
            output.stderr
        );
    }
    for (canary, message) in BAD_CANARIES {
        let spoiled = without_canary(&platform).replacen(
            "    installed: \"{{ values.frontend.enabled }}\"\n",
            &format!(
                "    installed: \"{{{{ values.frontend.enabled }}}}\"\n    strategy:\n      canary:\n        {canary}\n"
            ),
            1,
        );
        std::fs::write(&stack_file, spoiled).unwrap();
        let output = test.stack(&["apply"]).code(1);
        assert!(
            output.stderr.contains(message),
            "{message}:\n{}",
            output.stderr
        );
    }
    let no_deployment = platform.replacen(
        "    labels: {tier: core, app: platform}\n    shared: true\n\n",
        "    labels: {tier: core, app: platform}\n    shared: true\n    strategy:\n      blueGreen: {service: x}\n\n",
        1,
    );
    std::fs::write(&stack_file, no_deployment).unwrap();
    exits_1_saying(
        &test,
        &["apply"],
        "release `core/namespaces` is blue/green but renders no Deployment",
    );
    assert_eq!(server.mutating(), before, "nothing written");
}

/// The colour the backend Service selects has its Deployment ready, and
/// the release owns only its two colours, its Services and its config.
#[track_caller]
fn assert_serving_ready_pods(server: &Server, when: &str) {
    let colour = selects(&service(server, "backend")).to_string();
    let serving = deployment(server, &format!("backend-{colour}"));
    assert!(
        serving["status"]["readyReplicas"].as_u64().unwrap_or(0) >= 1,
        "{when}: the Service selects {colour}, which is not ready: {serving}"
    );
    let owned = |kind: &str| -> Vec<String> {
        let list = server.get(&format!(
            "{kind}?labelSelector=stack.dev%2Frelease%3Dapps.backend"
        ));
        let mut names: Vec<String> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| item["metadata"]["name"].as_str().map(str::to_string))
            .collect();
        names.sort();
        names
    };
    for name in owned("/apis/apps/v1/namespaces/apps/deployments") {
        assert!(
            name == "backend-blue" || name == "backend-green",
            "{when}: an orphan Deployment {name}"
        );
    }
    assert_eq!(
        owned("/api/v1/namespaces/apps/services"),
        ["backend", "backend-preview"],
        "{when}"
    );
}

#[test]
fn a_blue_green_deploy_killed_at_any_write_is_recovered_and_always_serves_ready_pods() {
    let test = blue_green();
    test.stack(&["apply", "-q"]).success();
    let server = Server::start(test.path(), &[]);
    let mut kills = 0;
    for after in 1..=14 {
        let tag = format!("images.backend.tag=1.{}.0", after + 5);
        let args = ["apply", "-q", "-l", "name=backend", "--set", &tag];
        if !crate::harness::killed_after(&test, &args, after) {
            break;
        }
        kills += 1;
        assert_serving_ready_pods(&server, &format!("killed after {after} writes"));
        test.stack(&args).success();
        assert_serving_ready_pods(&server, &format!("recovered after {after} writes"));
        let mut diff = args.to_vec();
        diff[0] = "diff";
        diff.retain(|a| *a != "-q");
        diff.push("--detailed-exitcode");
        test.stack(&diff).code(0);
    }
    assert!(
        kills >= 10,
        "only {kills} write points in a blue/green deploy"
    );
    eprintln!("blue/green crash suite: killed at {kills} write points, all recovered");
}

#[test]
fn traffic_through_an_ingress_reaches_the_ready_pods_of_its_service() {
    let test = Test::example();
    test.stack(&["apply", "-q"]).success();
    let routed = test
        .stack(&[
            "cluster",
            "traffic",
            "--host",
            "shop.dev.example.com",
            "--path",
            "/cart",
            "--requests",
            "500",
        ])
        .success();
    assert!(
        routed
            .stdout
            .lines()
            .any(|l| l.starts_with("apps/frontend") && l.contains("frontend") && l.contains("500")),
        "{}",
        routed.stdout
    );
    exits_1_saying(
        &test,
        &["cluster", "traffic", "--host", "nowhere.example.com"],
        "no Ingress routes nowhere.example.com/",
    );
    exits_1_saying(
        &test,
        &[
            "cluster",
            "traffic",
            "--host",
            "shop.dev.example.com",
            "--header",
            "X",
        ],
        "--header `X` is not NAME=VALUE",
    );
}

#[test]
fn rollout_cleanup_scales_the_previous_colour_away_and_the_next_deploy_uses_it_again() {
    let test = deployed_twice();
    exits_1_saying(
        &test,
        &[
            "rollout",
            "cleanup",
            "-l",
            "name=backend",
            "--set",
            "images.backend.tag=1.7.0",
        ],
        "not deployed as the stack files say, so there is no previous colour to scale away alone: apps/backend",
    );
    test.stack(&[
        "rollout",
        "cleanup",
        "-q",
        "-l",
        "name=backend",
        "--set",
        "images.backend.tag=1.6.0",
    ])
    .success();
    let server = Server::start(test.path(), &[]);
    assert_eq!(deployment(&server, "backend-blue")["spec"]["replicas"], 0);
    drop(server);
    assert_eq!(observed(&test), all_to("backend-green"));
    test.stack(&[
        "apply",
        "-q",
        "-l",
        "name=backend",
        "--set",
        "images.backend.tag=1.7.0",
    ])
    .success();
    let server = Server::start(test.path(), &[]);
    let blue = deployment(&server, "backend-blue");
    assert_eq!(image(&blue), "registry.example.com/shop/backend:1.7.0");
    assert_eq!(blue["status"]["readyReplicas"], 1);
    drop(server);
    assert_eq!(observed(&test), all_to("backend-blue"));
}

/// The example platform with its frontend a canary of these steps.
fn canary(steps: &str) -> Test {
    let test = Test::example();
    set_canary_steps(&test, steps);
    test
}

/// A stack file without the frontend's canary block (as the example and
/// this file write it: it ends with its one-line `steps:`).
fn without_canary(platform: &str) -> String {
    match platform.find("    strategy:\n      canary:") {
        Some(at) => {
            let steps_line = at + platform[at..].find("        steps: ").unwrap();
            let end = steps_line + platform[steps_line..].find('\n').unwrap() + 1;
            format!("{}{}", &platform[..at], &platform[end..])
        }
        None => platform.to_string(),
    }
}

/// Make the example's frontend (or change it to) a canary of these steps.
pub fn set_canary_steps(test: &Test, steps: &str) {
    edit_platform(test, |platform| {
        without_canary(&platform).replacen(
        "    installed: \"{{ values.frontend.enabled }}\"\n",
        &format!(
            "    installed: \"{{{{ values.frontend.enabled }}}}\"\n    strategy:\n      canary:\n        ingress: frontend\n        header: X-Canary\n        steps: {steps}\n"
        ),
        1,
    )
    });
}

/// Where 1000 requests for the example's host go, by workload.
fn observed_at_host(test: &Test, header: Option<&str>) -> Vec<(String, u64)> {
    let mut args = vec!["--host", "shop.dev.example.com"];
    if let Some(header) = header {
        args.extend(["--header", header]);
    }
    routed(test, &args)
}

/// The canary's copies of the frontend.
const CANARY_OBJECTS: [&str; 3] = [
    "/apis/apps/v1/namespaces/apps/deployments/frontend-canary",
    "/api/v1/namespaces/apps/services/frontend-canary",
    "/apis/networking.k8s.io/v1/namespaces/apps/ingresses/frontend-canary",
];

const NEW_FRONTEND: &str = "images.frontend.tag=2.3.0";

#[test]
fn a_canary_takes_its_steps_then_is_promoted_and_removed() {
    let test = canary("[{setWeight: 20}, {pause: 1s}, {setWeight: 60}]");
    test.stack(&["apply", "-q"]).success();
    assert_eq!(observed_at_host(&test, None), all_to("frontend"));
    let deployed = test
        .stack(&["apply", "-l", "name=frontend", "--set", NEW_FRONTEND])
        .success();
    let events = &deployed.stderr;
    let at = |text: &str| {
        events
            .find(text)
            .unwrap_or_else(|| panic!("no `{text}` in:\n{events}"))
    };
    assert!(at("waiting for Deployment/frontend-canary") < at("canary step 1: canary weight 20%"));
    assert!(at("canary step 1: canary weight 20%") < at("canary step 2: pause 1.0s"));
    assert!(at("canary step 3: canary weight 60%") < at("canary: promoting"));
    assert!(at("canary: promoting") < at("waiting for Deployment/frontend:"));
    let server = Server::start(test.path(), &[]);
    let frontend = deployment(&server, "frontend");
    assert_eq!(image(&frontend), "registry.example.com/shop/frontend:2.3.0");
    for gone in CANARY_OBJECTS {
        assert_eq!(server.get(gone)["code"], 404, "{gone}");
    }
    drop(server);
    assert_eq!(observed_at_host(&test, None), all_to("frontend"));
    frontend_diff_exit_0(&test);
}

/// `stack diff --detailed-exitcode` of the new frontend: nothing to apply.
fn frontend_diff_exit_0(test: &Test) -> crate::harness::Output {
    test.stack(&[
        "diff",
        "--detailed-exitcode",
        "-l",
        "name=frontend",
        "--set",
        NEW_FRONTEND,
    ])
    .code(0)
}

#[test]
fn a_canary_at_its_weight_takes_that_share_and_every_request_with_its_header() {
    let test = canary("[{setWeight: 20}, {pause: 10m}, {setWeight: 60}]");
    test.stack(&["apply", "-q"]).success();
    let mut child = test
        .command(&["apply", "-l", "name=frontend", "--set", NEW_FRONTEND])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start apply");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = String::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
        let line = line.expect("read stderr");
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("canary step 2: pause") {
            break;
        }
    }
    assert!(seen.contains("canary step 2: pause 600.0s"), "{seen}");
    let split = observed_at_host(&test, None);
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(sent.success());
    let status = child.wait().expect("wait for apply");
    assert_eq!(
        split,
        [
            ("frontend".to_string(), 800),
            ("frontend-canary".to_string(), 200)
        ]
    );
    assert_eq!(status.code(), Some(1), "interrupted during the pause");
    // Interrupted mid-canary: the next run recovers it (back to the stable
    // version, the canary removed), then runs the canary again.
    set_canary_steps(&test, "[{setWeight: 50}]");
    test.stack(&["apply", "-q", "-l", "name=frontend", "--set", NEW_FRONTEND])
        .success();
    assert_eq!(
        observed_at_host(&test, Some("X-Canary=always")),
        all_to("frontend")
    );
    let server = Server::start(test.path(), &[]);
    assert_eq!(
        image(&deployment(&server, "frontend")),
        "registry.example.com/shop/frontend:2.3.0"
    );
    assert_eq!(deployment(&server, "frontend-canary")["code"], 404);
}

#[test]
fn a_canary_that_fails_is_removed_and_the_stable_version_never_changed() {
    let test = canary("[{setWeight: 20}, {setWeight: 60}]");
    test.stack(&["apply", "-q"]).success();
    let server = Server::start(test.path(), &[]);
    let before = deployment(&server, "frontend")["metadata"]["resourceVersion"].clone();
    drop(server);
    let fault = "podAnnotations.sim\\.stack\\.dev/fail=crash-loop";
    let failed = test
        .stack(&[
            "apply",
            "-l",
            "name=frontend",
            "--set",
            NEW_FRONTEND,
            "--set",
            fault,
        ])
        .code(3);
    assert!(
        failed.stderr.contains("Deployment/frontend-canary")
            && !failed.stderr.contains("canary step 1"),
        "{}",
        failed.stderr
    );
    let server = Server::start(test.path(), &[]);
    let frontend = deployment(&server, "frontend");
    assert_eq!(
        frontend["metadata"]["resourceVersion"], before,
        "stable untouched"
    );
    assert_eq!(deployment(&server, "frontend-canary")["code"], 404);
    assert_eq!(
        server.get("/apis/networking.k8s.io/v1/namespaces/apps/ingresses/frontend-canary")["code"],
        404
    );
    drop(server);
    assert_eq!(
        observed_at_host(&test, Some("X-Canary=always")),
        all_to("frontend")
    );
}

#[test]
fn a_canary_killed_at_any_write_is_recovered_without_orphans_and_always_serves() {
    let test = canary("[{setWeight: 20}, {setWeight: 50}]");
    test.stack(&["apply", "-q"]).success();
    let server = Server::start(test.path(), &[]);
    let kills = killed_and_recovered(16, |after| {
        let tag = format!("images.frontend.tag=2.{}.0", after + 3);
        let args = ["apply", "-q", "-l", "name=frontend", "--set", &tag];
        kill_after(&test, &args, after)?;
        test.stack(&args).success();
        for gone in CANARY_OBJECTS {
            assert_eq!(
                server.get(gone)["code"],
                404,
                "after {after} writes: {gone} left"
            );
        }
        let frontend = deployment(&server, "frontend");
        assert_eq!(
            image(&frontend),
            format!("registry.example.com/shop/frontend:2.{}.0", after + 3)
        );
        assert_eq!(observed_at_host(&test, None), all_to("frontend"));
        let mut diff = args.to_vec();
        diff[0] = "diff";
        diff.retain(|a| *a != "-q");
        diff.push("--detailed-exitcode");
        test.stack(&diff).code(0);
        Some(())
    });
    assert!(kills >= 8, "only {kills} write points in a canary deploy");
    eprintln!("canary crash suite: killed at {kills} write points, all recovered");
}

#[test]
fn a_paused_canary_holds_its_share_until_it_is_promoted_or_aborted() {
    let test = canary("[{setWeight: 20}, {pause: {}}, {setWeight: 60}]");
    test.stack(&["apply", "-q"]).success();
    let paused = test
        .stack(&["apply", "-l", "name=frontend", "--set", NEW_FRONTEND])
        .success();
    assert!(
        paused.stderr.contains(
            "canary step 2: paused at 20%: `stack rollout promote apps/frontend` goes on"
        ) && !paused.stderr.contains("promoting"),
        "{}",
        paused.stderr
    );
    let split = vec![
        ("frontend".to_string(), 800),
        ("frontend-canary".to_string(), 200),
    ];
    assert_eq!(observed_at_host(&test, None), split);
    assert_eq!(
        observed_at_host(&test, Some("X-Canary=always")),
        all_to("frontend-canary")
    );
    let again = test
        .stack(&["apply", "-l", "name=frontend", "--set", NEW_FRONTEND])
        .success();
    assert_unchanged(&again, "apps/frontend", "a paused canary stays as it is");
    let diff = frontend_diff_exit_0(&test);
    let preview = diff
        .stdout
        .split_once("paused canaries: what `stack rollout promote --full` would change")
        .map_or_else(
            || panic!("no promotion preview:\n{}", diff.stdout),
            |(_, after)| after,
        );
    assert!(
        preview.contains("~ Deployment/apps/frontend (changed)")
            && preview.contains("+        image: registry.example.com/shop/frontend:2.3.0"),
        "{}",
        diff.stdout
    );
    paused_before_step_3_at_20(&test);

    goes_on_to_promotion(&test, "promote");
    exits_1_saying(
        &test,
        &["rollout", "promote", "frontend"],
        "apps/frontend is not a paused canary",
    );

    test.stack(&[
        "apply",
        "-q",
        "-l",
        "name=frontend",
        "--set",
        "images.frontend.tag=2.4.0",
    ])
    .success();
    assert_eq!(observed_at_host(&test, None), split);
    test.stack(&["rollout", "abort", "frontend"]).success();
    assert_eq!(
        observed_at_host(&test, Some("X-Canary=always")),
        all_to("frontend")
    );
    let server = Server::start(test.path(), &[]);
    assert_eq!(
        image(&deployment(&server, "frontend")),
        "registry.example.com/shop/frontend:2.3.0",
        "aborted: the stable version as it was"
    );
    for gone in CANARY_OBJECTS {
        assert_eq!(server.get(gone)["code"], 404, "{gone}");
    }
}

#[test]
fn releases_with_strategies_pass_the_promotion_gate_once_deployed_and_tested() {
    let test = make_blue_green(canary("[{setWeight: 50}]"));
    test.stack(&["apply", "-q"]).success();
    test.stack(&crate::harness::APPLY_BACKEND_1_6).success();
    let refused = test
        .stack(&["promote", "--from", "development", "--to", "staging"])
        .code(1);
    assert!(
        refused.stderr.contains("apps/backend") && !refused.stderr.contains("apps/frontend"),
        "the backend runs 1.6.0, not what the files say; the frontend is verified:\n{}",
        refused.stderr
    );
    test.stack(&["apply", "-q"]).success();
    let promoted = test
        .stack(&["promote", "--from", "development", "--to", "staging"])
        .success();
    assert!(
        test.read("environments/staging.yaml")
            .contains("shop/backend, tag: \"1.5.0\""),
        "{}",
        promoted.stdout
    );
}

/// The example's frontend a canary with variants `a` and `b` (images
/// 2.3.0-a and 2.3.0-b) of these steps.
fn variants(steps: &str) -> Test {
    let test = canary(steps);
    add_variants(&test);
    test
}

/// Give the frontend's canary variants `a` and `b` (after its steps are
/// set: setting them drops the canary block).
fn add_variants(test: &Test) {
    edit_platform(test, |platform| {
        platform.replacen(
            "        header: X-Canary\n",
            "        header: X-Canary\n        variants:\n          a: {values: {image: {tag: 2.3.0-a}}}\n          b: {values: {image: {tag: 2.3.0-b}}}\n",
            1,
        )
    });
}

fn sorted(mut routed: Vec<(String, u64)>) -> Vec<(String, u64)> {
    routed.sort();
    routed
}

fn split(shares: &[(&str, u64)]) -> Vec<(String, u64)> {
    sorted(shares.iter().map(|(w, n)| (w.to_string(), *n)).collect())
}

const VARIANT_OBJECTS: [&str; 4] = [
    "/apis/apps/v1/namespaces/apps/deployments/frontend-canary-a",
    "/apis/apps/v1/namespaces/apps/deployments/frontend-canary-b",
    "/api/v1/namespaces/apps/services/frontend-canary",
    "/apis/networking.k8s.io/v1/namespaces/apps/ingresses/frontend-canary",
];

#[test]
fn variants_share_the_canary_by_their_weights_and_the_promoted_winner_stays_stable() {
    let test = variants("[{setWeight: 10}, {setWeight: {a: 10, b: 30}}]");
    let three = ["--set", "scale.frontend=3"];
    // The first deploy is the stable version alone; the next one, of the
    // same files, runs the experiment.
    test.stack(&["apply", "-q", three[0], three[1]]).success();
    assert_eq!(observed_at_host(&test, None), all_to("frontend"));
    let deployed = test.stack(&["apply", three[0], three[1]]).success();
    assert!(
        deployed.stderr.contains("canary step 1: canary weight a 10%, b 10%")
            && deployed.stderr.contains("the variants run at a 10%, b 30%: `stack rollout promote apps/frontend --variant NAME`"),
        "{}",
        deployed.stderr
    );
    // b runs 3 pods, a 1: the canary's 40 % splits 10 / 30.
    let experiment = split(&[
        ("frontend", 600),
        ("frontend-canary-a", 100),
        ("frontend-canary-b", 300),
    ]);
    assert_eq!(sorted(observed_at_host(&test, None)), experiment);
    let status = test
        .stack(&["rollout", "status", "frontend", "-o", "json"])
        .success()
        .json();
    assert_eq!(
        status[0]["paused"]["weights"],
        serde_json::json!({"a": 10, "b": 30})
    );
    assert_eq!(status[0]["paused"]["stepsDone"], true);
    let text = test.stack(&["rollout", "status", "frontend"]).success();
    assert!(
        text.stdout
            .contains("variants a 10%, b 30% (waiting for a winner: promote --variant)"),
        "{}",
        text.stdout
    );
    let again = test.stack(&["apply", three[0], three[1]]).success();
    assert_unchanged(&again, "apps/frontend", "the variants run on");

    let undecided = test
        .stack(&["rollout", "promote", "frontend", three[0], three[1]])
        .code(1);
    assert!(
        undecided.stderr.contains("one of them has to win"),
        "{}",
        undecided.stderr
    );
    let unknown = test
        .stack(&[
            "rollout",
            "promote",
            "frontend",
            "--variant",
            "c",
            three[0],
            three[1],
        ])
        .code(1);
    assert!(
        unknown
            .stderr
            .contains("`--variant c`: the canary of apps/frontend has no such variant")
            && unknown.stderr.contains("its variants are: a, b")
            && unknown.stderr.contains("platform.yaml:"),
        "{}",
        unknown.stderr
    );
    let full = test
        .stack(&[
            "rollout", "promote", "frontend", "--full", three[0], three[1],
        ])
        .code(1);
    assert!(
        full.stderr.contains("`--full` cannot tell which one wins"),
        "{}",
        full.stderr
    );
    assert_eq!(
        sorted(observed_at_host(&test, None)),
        experiment,
        "refused: nothing written"
    );

    let promoted = test
        .stack(&[
            "rollout",
            "promote",
            "frontend",
            "--variant",
            "b",
            three[0],
            three[1],
        ])
        .success();
    assert!(
        promoted.stderr.contains("canary: promoting"),
        "{}",
        promoted.stderr
    );
    let frontend = assert_stable_alone(&test, "2.3.0-b", &VARIANT_OBJECTS);
    assert_eq!(frontend["status"]["readyReplicas"], 3);
    let status = test.stack(&["rollout", "status", "frontend"]).success();
    assert!(
        status.stdout.contains("stable (variant b won)"),
        "{}",
        status.stdout
    );
    test.stack(&["diff", "--detailed-exitcode", three[0], three[1]])
        .code(0);

    // A new experiment (a changed), then aborted: every variant goes, b stays.
    edit_platform(&test, |platform| {
        platform.replace("tag: 2.3.0-a", "tag: 2.4.0-a")
    });
    test.stack(&["apply", "-q", three[0], three[1]]).success();
    assert_eq!(sorted(observed_at_host(&test, None)), experiment);
    test.stack(&["rollout", "abort", "frontend"]).success();
    assert_stable_alone(&test, "2.3.0-b", &VARIANT_OBJECTS);
}

/// `stack rollout VERB frontend` of a canary paused before its step 3
/// (`setWeight: 60`) runs that step and promotes it.
fn goes_on_to_promotion(test: &Test, verb: &str) {
    let output = test
        .stack(&["rollout", verb, "frontend", "--set", NEW_FRONTEND])
        .success();
    assert!(
        output.stderr.contains("canary step 3: canary weight 60%")
            && output.stderr.contains("canary: promoting"),
        "{}",
        output.stderr
    );
    assert_stable_alone(test, "2.3.0", &CANARY_OBJECTS);
}

/// Every request reaches the stable frontend, which runs `tag`; the
/// canary's objects are gone.
fn assert_stable_alone(test: &Test, tag: &str, gone: &[&str]) -> Value {
    assert_eq!(observed_at_host(test, None), all_to("frontend"));
    let server = Server::start(test.path(), &[]);
    let frontend = deployment(&server, "frontend");
    assert_eq!(
        image(&frontend),
        format!("registry.example.com/shop/frontend:{tag}")
    );
    for gone in gone {
        assert_eq!(server.get(gone)["code"], 404, "{gone}");
    }
    frontend
}

#[test]
fn promote_full_skips_the_steps_left_and_variant_is_refused_without_variants() {
    let test = canary("[{setWeight: 20}, {pause: {}}, {setWeight: 60}, {pause: {}}]");
    test.stack(&["apply", "-q"]).success();
    test.stack(&["apply", "-q", "-l", "name=frontend", "--set", NEW_FRONTEND])
        .success();
    exits_1_saying(
        &test,
        &[
            "rollout",
            "promote",
            "frontend",
            "--variant",
            "a",
            "--set",
            NEW_FRONTEND,
        ],
        "`--variant a`: the canary of apps/frontend has no variants",
    );
    let promoted = test
        .stack(&[
            "rollout",
            "promote",
            "frontend",
            "--full",
            "--set",
            NEW_FRONTEND,
        ])
        .success();
    assert!(
        promoted.stderr.contains("canary: promoting") && !promoted.stderr.contains("60%"),
        "{}",
        promoted.stderr
    );
    assert_stable_alone(&test, "2.3.0", &CANARY_OBJECTS);
}

#[test]
fn rollout_pause_holds_a_running_canary_at_its_share_until_it_is_resumed() {
    let test = canary("[{setWeight: 20}, {pause: 10m}, {setWeight: 60}]");
    test.stack(&["apply", "-q"]).success();
    exits_1_saying(
        &test,
        &["rollout", "pause", "frontend"],
        "no run is rolling out apps/frontend: there is nothing to pause",
    );
    let mut child = test
        .command(&["apply", "-l", "name=frontend", "--set", NEW_FRONTEND])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start apply");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.expect("read stderr");
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("canary step 2: pause") {
            break;
        }
    }
    pause_says(&test, "to pause apps/frontend at its next step");
    for line in lines {
        seen.push_str(&line.expect("read stderr"));
        seen.push('\n');
    }
    let status = child.wait().expect("wait for apply");
    assert_eq!(status.code(), Some(0), "{seen}");
    assert!(
        seen.contains(
            "paused at 20% by `stack rollout pause`: `stack rollout resume apps/frontend` goes on"
        ),
        "{seen}"
    );
    paused_before_step_3_at_20(&test);
    pause_says(&test, "apps/frontend is paused already, before step 3");
    goes_on_to_promotion(&test, "resume");
}

#[test]
fn variants_killed_at_any_write_are_recovered_without_orphans_and_always_serve() {
    let test = variants("[{setWeight: 10}, {setWeight: {a: 10, b: 30}}]");
    let three = ["--set", "scale.frontend=3"];
    test.stack(&["apply", "-q", three[0], three[1]]).success();
    let experiment = split(&[
        ("frontend", 600),
        ("frontend-canary-a", 100),
        ("frontend-canary-b", 300),
    ]);
    let args = ["apply", "-q", three[0], three[1]];
    let kills = killed_and_recovered(20, |after| {
        kill_after(&test, &args, after)?;
        test.stack(&args).success();
        assert_eq!(
            sorted(observed_at_host(&test, None)),
            experiment,
            "after {after} writes"
        );
        test.stack(&["rollout", "abort", "frontend"]).success();
        let frontend = assert_stable_alone(&test, "2.2.0", &VARIANT_OBJECTS);
        assert_eq!(
            frontend["status"]["readyReplicas"], 3,
            "after {after} writes"
        );
        Some(())
    });
    assert!(kills >= 10, "only {kills} write points in an experiment");
    eprintln!("variants crash suite: killed at {kills} write points, all recovered");
}

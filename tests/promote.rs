//! `stack promote` and `stack env diff` on the example platform, with its
//! development and staging environments on two simulated clusters
//! (product.md §5).

use crate::harness::{Server, Test};

const STAGING: &str = "environments/staging.yaml";
const LOG: &str = "environments/promotions.jsonl";
pub const PROMOTE: [&str; 5] = ["promote", "--from", "development", "--to", "staging"];

/// The example platform: its backend has tests, which `stack apply` runs
/// and records, so the gate sees them passed.
fn example() -> Test {
    Test::example()
}

/// Replace `from` (which must be there) in the example's stack file.
fn edit_stack(test: Test, from: &str, to: &str) -> Test {
    let stack = test.read("stacks/platform.yaml");
    assert!(stack.contains(from), "{from:?} is not in the stack file");
    test.file("stacks/platform.yaml", &stack.replace(from, to))
}

/// The example with development applied.
fn developed() -> Test {
    let test = example().rolling_backend();
    test.stack(&["apply", "-q", "-e", "development"]).success();
    test
}

/// `text` holds `expected`.
#[track_caller]
fn shows(text: &str, expected: &str) {
    assert!(text.contains(expected), "expected {expected:?} in:\n{text}");
}

fn promote(test: &Test, extra: &[&str]) -> crate::harness::Output {
    let mut args = PROMOTE.to_vec();
    args.extend_from_slice(extra);
    test.stack(&args)
}

/// A test of the backend that fails (on the simulator, which reads the
/// Job's annotation, and on a real cluster's kwok, which reads its pods').
pub const FAILING_TEST: (&str, &str) = (
    "stacks/charts/backend/templates/tests/failing.yaml",
    "
    apiVersion: batch/v1
    kind: Job
    metadata:
      name: backend-failing-test
      annotations:
        sim.stack.dev/fail: job-failed
    spec:
      backoffLimit: 0
      template:
        metadata:
          annotations:
            sim.stack.dev/fail: job-failed
        spec:
          restartPolicy: Never
          containers:
            - name: check
              image: curlimages/curl:8.10.1
    ",
);

/// The original staging file with development's two versions in it.
fn promoted_staging(original: &str) -> String {
    original
        .replace(
            "shop/backend, tag: \"1.4.2\"",
            "shop/backend, tag: \"1.5.0\"",
        )
        .replace(
            "shop/frontend, tag: \"2.1.0\"",
            "shop/frontend, tag: \"2.2.0\"",
        )
}

#[test]
fn promote_after_a_successful_apply_changes_only_the_promoted_lines() {
    let test = developed();
    let original = test.read(STAGING);
    let output = promote(&test, &[]).success();
    assert_eq!(test.read(STAGING), promoted_staging(&original));
    insta::assert_snapshot!(output.stdout, @r#"
    --- environments/staging.yaml
    +++ environments/staging.yaml
    @@ -1,7 +1,7 @@
     # Staging: what development has proven, promoted by `stack promote`.
     images:
    -  backend: {repository: registry.example.com/shop/backend, tag: "1.4.2"}
    -  frontend: {repository: registry.example.com/shop/frontend, tag: "2.1.0"}
    +  backend: {repository: registry.example.com/shop/backend, tag: "1.5.0"}
    +  frontend: {repository: registry.example.com/shop/frontend, tag: "2.2.0"}
     scale:
       backend: 2
       frontend: 2
    "#);
    shows(&output.stderr, "promoted 2 values");
    let log = test.read(LOG);
    assert_eq!(log.lines().count(), 1, "{log}");
    let entry: serde_json::Value = serde_json::from_str(log.trim()).unwrap();
    assert_eq!(
        (entry["from"].as_str(), entry["to"].as_str()),
        (Some("development"), Some("staging"))
    );
    assert_eq!(entry["file"], "staging.yaml");
    assert!(
        entry["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{entry}"
    );
    assert!(
        entry["digest"].as_str().is_some_and(|d| d.len() == 24),
        "{entry}"
    );
    let releases = entry["releases"].as_array().unwrap();
    assert_eq!(releases.len(), 7, "{entry}");
    assert!(
        releases
            .iter()
            .all(|r| r["revision"] == 1 && r["verified"] == true && r["valuesDigest"].is_string()),
        "{entry}"
    );
    assert!(entry.get("forced").is_none(), "{entry}");
    let values = entry["values"].as_array().unwrap();
    assert!(
        values.iter().any(
            |v| v["path"] == serde_json::json!(["images", "backend", "tag"])
                && v["value"] == "1.5.0"
        ),
        "{entry}"
    );
    // Promoting again finds nothing to do and writes nothing.
    let again = promote(&test, &[]).success();
    assert_eq!(again.stdout, "");
    shows(&again.stderr, "already has the promotable values");
    assert_eq!(test.read(LOG).lines().count(), 1);
}

/// The backend's Deployment never becomes ready in development.
fn failing_backend(test: Test) -> Test {
    let path = "stacks/charts/backend/templates/deployment.yaml";
    let template = test.read(path);
    let failing = template.replacen(
        "  name: backend\n",
        "  name: backend\n  annotations:\n    sim.stack.dev/fail: progress-deadline\n",
        1,
    );
    test.file(path, &failing)
}

#[test]
fn promotion_is_refused_after_a_failed_apply() {
    let test = failing_backend(example());
    let applied = test.stack(&["apply", "-q", "-e", "development"]);
    assert_ne!(applied.code, 0, "{}", applied.stderr);
    let original = test.read(STAGING);
    let output = promote(&test, &[]).code(1);
    shows(&output.stderr, "promotion from `development` refused");
    shows(&output.stderr, "  apps/backend: ");
    shows(
        &output.stderr,
        "  apps/frontend: it has never been deployed there",
    );
    assert!(
        !output.stderr.contains("data/postgres:"),
        "{}",
        output.stderr
    );
    shows(&output.stderr, "--force");
    assert_eq!(test.read(STAGING), original);
    assert!(!test.path().join(LOG).exists());
    // --force promotes anyway, with a warning the log keeps.
    let forced = promote(&test, &["--force"]).success();
    shows(
        &forced.stderr,
        "warning: --force: promoting unverified releases",
    );
    assert_eq!(test.read(STAGING), promoted_staging(&original));
    let entry: serde_json::Value = serde_json::from_str(test.read(LOG).trim()).unwrap();
    let reasons = entry["forced"].as_array().unwrap();
    assert!(
        reasons
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("apps/backend: ")),
        "{entry}"
    );
    let backend = entry["releases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "apps/backend")
        .unwrap();
    assert_eq!(backend["verified"], false, "{entry}");
}

/// Passes once `stack apply` runs test Jobs: until then the backend's tests
/// count as not run. Development first runs the backend with passing tests,
/// then a new version whose test Job fails (and is rolled back).
#[test]
fn promotion_is_refused_after_an_apply_whose_tests_failed() {
    let test = Test::example();
    test.stack(&["apply", "-q", "-e", "development"]).success();
    let development = test
        .read("environments/development.yaml")
        .replace("\"1.5.0\"", "\"1.6.0\"");
    let test = test
        .file("environments/development.yaml", &development)
        .file(FAILING_TEST.0, FAILING_TEST.1);
    let _ = test.stack(&["apply", "-q", "-e", "development"]);
    let original = test.read(STAGING);
    let output = promote(&test, &[]).code(1);
    shows(&output.stderr, "3 releases are not verified there:");
    // Each refusal names what clears it: here a test run.
    shows(
        &output.stderr,
        "  apps/backend: revision 2 failed its tests; `stack test -e development` runs the tests of what is deployed",
    );
    // The worker and the admin run the backend's image: skipped because
    // their need failed, their deployed revisions are of the version before.
    for app in ["worker", "admin"] {
        shows(
            &output.stderr,
            &format!(
                "  apps/{app}: its deployed revision 1 was rendered from other values than the ones being promoted (apply first)"
            ),
        );
    }
    // The frontend, skipped because its need failed, renders as its
    // deployed revision: the backend's version does not reach it.
    assert!(
        !output.stderr.contains("apps/frontend"),
        "{}",
        output.stderr
    );
    assert_eq!(test.read(STAGING), original);
}

#[test]
fn check_exits_2_while_staging_differs_and_reads_no_cluster() {
    let test = example();
    let original = test.read(STAGING).replace(
        "images:\n",
        "images:\n  worker: {repository: registry.example.com/shop/worker, tag: \"0.9.0\"}\n",
    );
    let test = test.file(STAGING, &original);
    let output = promote(&test, &["--check"]).code(2);
    shows(
        &output.stdout,
        "+  backend: {repository: registry.example.com/shop/backend, tag: \"1.5.0\"}",
    );
    shows(
        &output.stderr,
        "differs from `development` in 2 promotable values",
    );
    shows(
        &output.stderr,
        "kept: `staging` has images.worker, which `development` has not",
    );
    assert_eq!(test.read(STAGING), original);
    assert!(
        !test
            .path()
            .join("stacks/.stack/cluster/development")
            .exists()
    );
    let test = test.file(STAGING, &promoted_staging(&original));
    let same = promote(&test, &["--check"]).success();
    assert_eq!(same.stdout, "");
}

#[test]
fn dry_run_runs_the_gate_and_writes_nothing() {
    let test = developed();
    let original = test.read(STAGING);
    let output = promote(&test, &["--dry-run"]).success();
    shows(
        &output.stdout,
        "+  frontend: {repository: registry.example.com/shop/frontend, tag: \"2.2.0\"}",
    );
    shows(&output.stderr, "dry run");
    assert_eq!(test.read(STAGING), original);
    assert!(!test.path().join(LOG).exists());
    let report = promote(&test, &["--dry-run", "-o", "json"])
        .success()
        .json();
    assert_eq!(report["written"], false);
    assert_eq!(report["changes"][0]["path"], "images.backend.tag");
    assert_eq!(
        (
            report["changes"][0]["from"].as_str(),
            report["changes"][0]["to"].as_str()
        ),
        (Some("1.4.2"), Some("1.5.0"))
    );
    assert_eq!(report["releases"].as_array().map(Vec::len), Some(7));
    assert_eq!(test.read(STAGING), original);
}

#[test]
fn a_selector_limits_the_releases_the_gate_checks() {
    let test = example();
    test.stack(&["apply", "-q", "-e", "development", "-l", "name!=frontend"])
        .success();
    let refused = promote(&test, &[]).code(1);
    shows(&refused.stderr, "1 release is not verified there:");
    shows(
        &refused.stderr,
        "apps/frontend: it has never been deployed there",
    );
    // One release alone; its unselected needs are not checked either.
    let backend = promote(&test, &["-l", "name=backend", "--dry-run", "-o", "json"]).success();
    assert!(!backend.stderr.contains("not run"), "{}", backend.stderr);
    let ids = backend.json()["releases"].clone();
    assert_eq!(ids.as_array().map(Vec::len), Some(1), "{ids}");
    assert_eq!(ids[0]["id"], "apps/backend");
    let output = promote(&test, &["-l", "name!=frontend", "-o", "json"])
        .success()
        .json();
    let ids: Vec<&str> = output["releases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "core/namespaces",
            "core/network-policies",
            "data/postgres",
            "apps/backend",
            "apps/worker",
            "apps/admin"
        ]
    );
    assert_eq!(output["written"], true);
    // Values are environment-wide: the frontend's image moves too.
    assert!(test.read(STAGING).contains("tag: \"2.2.0\""));
}

#[test]
fn staging_runs_the_promoted_versions_after_its_apply() {
    let test = developed();
    promote(&test, &["-q"]).success();
    test.stack(&["apply", "-q", "-e", "staging"]).success();
    let server = Server::start(test.path(), &["-e", "staging"]);
    let backend = server.get("/apis/apps/v1/namespaces/apps/deployments/backend");
    assert_eq!(
        backend["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/shop/backend:1.5.0"
    );
    let frontend = server.get("/apis/apps/v1/namespaces/apps/deployments/frontend");
    assert_eq!(
        frontend["spec"]["replicas"], 2,
        "staging keeps its own scale"
    );
    assert_eq!(
        frontend["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/shop/frontend:2.2.0"
    );
}

#[test]
fn a_hand_edit_since_the_last_promotion_is_never_lost() {
    let test = developed();
    promote(&test, &["-q"]).success();
    let edited = test
        .read(STAGING)
        .replace("tag: \"1.5.0\"", "tag: \"1.5.1-hotfix\"")
        .replace("  backend: 2\n", "  backend: 3 # for the load test\n");
    let test = test.file(STAGING, &edited);
    let development = test
        .read("environments/development.yaml")
        .replace("\"1.5.0\"", "\"1.6.0\"");
    let test = test.file("environments/development.yaml", &development);
    test.stack(&["apply", "-q", "-e", "development"]).success();
    let output = promote(&test, &[]).code(1);
    insta::with_settings!({filters => vec![(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[time]")]}, {
        insta::assert_snapshot!(output.stderr, @r#"
        error: environments/staging.yaml was edited by hand since the last promotion ([time]):
                 images.backend.tag: the last promotion wrote "1.5.0", the file has "1.5.1-hotfix"
        hint: to keep the edit, make it in the source environment and promote again (or revert it); --force overwrites it and the log records what it replaced
        "#);
    });
    assert_eq!(test.read(STAGING), edited);
    promote(&test, &["--force", "-q"]).success();
    assert_eq!(
        test.read(STAGING),
        edited.replace("tag: \"1.5.1-hotfix\"", "tag: \"1.6.0\""),
        "the other edit stays"
    );
    let log = test.read(LOG);
    let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert!(
        last["forced"][0]
            .as_str()
            .unwrap()
            .starts_with("overwrote a hand edit: images.backend.tag"),
        "{last}"
    );
}

#[test]
fn unknown_environments_are_named_with_a_suggestion() {
    let test = example();
    let from = test
        .stack(&["promote", "--from", "developmnt", "--to", "staging"])
        .code(1);
    shows(&from.stderr, "unknown environment `developmnt`");
    shows(&from.stderr, "did you mean `development`?");
    let to = test
        .stack(&["promote", "--from", "development", "--to", "stagin"])
        .code(1);
    shows(&to.stderr, "unknown environment `stagin`");
    let same = test
        .stack(&["promote", "--from", "staging", "--to", "staging"])
        .code(1);
    shows(&same.stderr, "cannot promote `staging` to itself");
    let unlisted = test
        .stack(&["promote", "--from", "staging", "--to", "development"])
        .code(1);
    shows(
        &unlisted.stderr,
        "names no values file for environment `development`",
    );
}

#[test]
fn a_target_file_that_is_not_yaml_is_located_and_left_alone() {
    let test = example().file(STAGING, "images: [unclosed\nscale: 2\n");
    let output = promote(&test, &["--check"]).code(1);
    shows(&output.stderr, "invalid YAML");
    shows(&output.stderr, "environments/staging.yaml:");
    assert_eq!(test.read(STAGING), "images: [unclosed\nscale: 2\n");
}

#[test]
fn env_diff_compares_merged_values_with_secrets_masked() {
    let test = example();
    let output = test
        .stack(&["env", "diff", "development", "staging"])
        .success();
    insta::assert_snapshot!(output.stdout, @r#"
    --- development
    +++ staging
    @@ -4,20 +4,20 @@
         tag: "16.4"
       backend:
         repository: registry.example.com/shop/backend
    -    tag: "1.5.0"
    +    tag: "1.4.2"
       frontend:
         repository: registry.example.com/shop/frontend
    -    tag: "2.2.0"
    +    tag: "2.1.0"
     postgres:
       host: postgres.data.svc.cluster.local
       database: shop
       storage: 1Gi
    -  password: (sensitive value of development)
    +  password: (sensitive value of staging)
       user: (sensitive value)
     frontend:
       enabled: true
     scale:
    -  backend: 1
    -  frontend: 1
    +  backend: 2
    +  frontend: 2
     ingress:
    -  host: shop.dev.example.com
    +  host: shop.staging.example.com
    "#);
    // Production has no secrets: staging's show as removed, masked.
    let output = test
        .stack(&["env", "diff", "staging", "production"])
        .success();
    let secrets = test
        .stack(&[
            "secrets",
            "decrypt",
            "--age-key-file",
            "secrets/demo-age-key.txt",
            "secrets/staging/db.yaml",
        ])
        .success();
    let password = secrets
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .unwrap();
    assert!(
        !output.stdout.contains(password.trim_matches('"')),
        "{}",
        output.stdout
    );
    shows(&output.stdout, "-  password: (sensitive value)\n");
    test.stack(&[
        "env",
        "diff",
        "development",
        "development",
        "--detailed-exitcode",
    ])
    .success();
    test.stack(&[
        "env",
        "diff",
        "development",
        "staging",
        "--detailed-exitcode",
    ])
    .code(2);
}

#[test]
fn the_promotion_section_is_checked_where_the_stack_is_parsed() {
    let test = edit_stack(
        example(),
        "    staging: ../environments",
        "    stagin: ../environments",
    );
    let test = edit_stack(
        test,
        "  paths: [images]",
        "  paths: [images, images..tag]\n  path: []",
    );
    let output = test.stack(&["list"]).code(1);
    for expected in [
        "`promotion.files` names `stagin`, which is not an environment",
        "did you mean `staging`?",
        "`images..tag` is not a value path",
        "unknown key `path` in promotion",
        "did you mean `paths`?",
    ] {
        shows(&output.stderr, expected);
    }
}

#[test]
fn a_damaged_promotion_log_is_named_and_nothing_is_written() {
    let test = developed().file(LOG, "{\"time\": \"t\"\n");
    let original = test.read(STAGING);
    let output = promote(&test, &[]).code(1);
    shows(
        &output.stderr,
        "environments/promotions.jsonl:1: not a promotion log entry",
    );
    assert_eq!(test.read(STAGING), original);
}

#[test]
fn promotion_mistakes_are_located_in_the_stack_file() {
    for (from, to, expected) in [
        (
            "  paths: [images]",
            "  paths: [images, charts.*.version]",
            "promotion path `charts.*.version` matches nothing in the values of `development`",
        ),
        (
            "    staging: ../environments/staging.yaml",
            "    staging: ../environments/production.yaml",
            "environments/production.yaml is not one of the values files of `staging`",
        ),
        (
            "  paths: [images]",
            "  paths: [images, postgres]",
            "`postgres.password` holds a value decrypted from a secret; secrets are not promoted",
        ),
    ] {
        let test = edit_stack(example(), from, to);
        let output = promote(&test, &["--check"]).code(1);
        shows(&output.stderr, expected);
        shows(&output.stderr, "--> stacks/platform.yaml:");
        assert_eq!(output.stdout, "");
    }
}

#[test]
fn a_later_values_file_that_undoes_the_promotion_is_warned_about() {
    let test = edit_stack(
        developed(),
        "../environments/staging.yaml]",
        "../environments/staging.yaml, ../environments/pinned.yaml]",
    )
    .file(
        "environments/pinned.yaml",
        "images: {backend: {tag: \"1.0.0\"}}\n",
    );
    let output = promote(&test, &[]).success();
    shows(
        &output.stderr,
        "warning: `staging` still differs from `development` at images.backend.tag: a values or secrets file listed after the promoted one sets them",
    );
    promote(&test, &["--check"]).code(2);
}

#[test]
fn an_edit_that_would_change_other_keys_is_not_written() {
    let staging = "
        images:
          backend: &shared {repository: registry.example.com/shop/backend, tag: \"1.4.2\"}
          frontend: {repository: registry.example.com/shop/frontend, tag: \"2.2.0\"}
        legacy: *shared
        ";
    let test = developed().file(STAGING, staging);
    let original = test.read(STAGING);
    let output = promote(&test, &[]).code(1);
    shows(
        &output.stderr,
        "writing the values into environments/staging.yaml would not give the promoted values; nothing written",
    );
    assert_eq!(test.read(STAGING), original);
    assert!(!test.path().join(LOG).exists());
}

//! `stack diff` in review: the plan as a pull-request comment
//! (`-o markdown`), masked and kept under a size limit.

use crate::harness::Test;

fn deployed() -> Test {
    let test = Test::example().rolling_backend();
    test.stack(&["apply", "-q"]).success();
    test
}

#[test]
fn the_markdown_comment_has_a_headline_a_table_and_a_section_per_release() {
    let test = deployed();
    let comment = test
        .stack(&[
            "diff",
            "-o",
            "markdown",
            "-l",
            "name=backend",
            "--set",
            "images.backend.tag=1.6.0",
            "--detailed-exitcode",
        ])
        .code(2);
    insta::assert_snapshot!(comment.stdout, @"
    ### `stack diff` — development: 1 release changing (0 to create, 1 to change, 0 to delete)

    | release | create | change | delete |
    |---|---:|---:|---:|
    | `apps/backend` | 0 | 1 | 0 |

    <details><summary><code>apps/backend</code>: 0 to create, 1 to change, 0 to delete</summary>

    ```diff
    ~ Deployment/apps/backend (changed)
    @@ -25,7 +25,7 @@
         spec:
           containers:
           - name: backend
    -        image: registry.example.com/shop/backend:1.5.0
    +        image: registry.example.com/shop/backend:1.6.0
             ports:
             - name: http
               containerPort: 8080
    ```

    </details>
    ");
    let none = test.stack(&["diff", "-o", "markdown"]).success();
    assert_eq!(none.stdout, "### `stack diff` — development: no changes\n");
}

#[test]
fn the_markdown_comment_masks_secrets_and_stays_under_its_size_limit() {
    let test = deployed();
    let args = [
        "diff",
        "-o",
        "markdown",
        "--set-string",
        "postgres.password=n3w-s3cret-value",
        "--set",
        "images.backend.tag=1.6.0",
        "--set",
        "images.frontend.tag=2.3.0",
    ];
    let whole = test.stack(&args).success();
    assert!(
        !whole.stdout.contains("n3w-s3cret-value"),
        "{}",
        whole.stdout
    );
    assert!(
        whole.stdout.contains("(sensitive value changed: "),
        "{}",
        whole.stdout
    );
    assert!(!whole.stdout.contains("shortened"), "{}", whole.stdout);
    for limit in [1_500, 3_000, 6_000] {
        let short = test
            .stack(&[&args[..], &["--max-bytes", &limit.to_string()]].concat())
            .success();
        assert!(
            short.stdout.len() <= limit,
            "{limit}: {} bytes",
            short.stdout.len()
        );
        assert!(
            short
                .stdout
                .contains("lines cut) to keep this comment under"),
            "{}",
            short.stdout
        );
        assert_eq!(
            short.stdout.matches("<details>").count(),
            whole.stdout.matches("<details>").count(),
            "a release's section was dropped"
        );
        assert_eq!(
            short.stdout.matches("```diff").count(),
            short.stdout.matches("```\n").count()
        );
    }
}

#[test]
fn markdown_is_the_output_of_diff_only() {
    let test = Test::example();
    let refused = test.stack(&["list", "-o", "markdown"]).code(1);
    assert!(
        refused
            .stderr
            .contains("`-o markdown` is the output of `stack diff` only"),
        "{}",
        refused.stderr
    );
}

/// What bash completes for `words` (the last one being completed), with
/// the script of `stack completions bash` loaded, in the test's folder.
fn bash_completes(test: &Test, script: &str, words: &[&str]) -> Vec<String> {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_stack"));
    let path = format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "{script}\nCOMP_WORDS=({}); COMP_CWORD={}; COMP_TYPE=9; _clap_complete_stack stack '{}' stack; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        quoted.join(" "),
        words.len() - 1,
        words.last().unwrap()
    );
    let output = std::process::Command::new("bash")
        .args(["-c", &program])
        .current_dir(test.path())
        .env("PATH", path)
        .env_remove("STACK_FILE")
        .output()
        .expect("run bash");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_commands_environments_and_release_names_from_the_stack() {
    let test = Test::example();
    let script = test.stack(&["completions", "bash"]).success().stdout;
    let checked = std::process::Command::new("bash")
        .args(["-n", "-c", &script])
        .output()
        .expect("run bash -n");
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert_eq!(
        bash_completes(&test, &script, &["stack", "history", "ba"]),
        ["backend"]
    );
    assert_eq!(
        bash_completes(&test, &script, &["stack", "rollback", "wo"]),
        ["worker"]
    );
    assert_eq!(
        bash_completes(&test, &script, &["stack", "-e", "st"]),
        ["staging"]
    );
    assert_eq!(
        bash_completes(&test, &script, &["stack", "diff", "-l", "name=f"]),
        ["name=frontend"]
    );
    assert!(bash_completes(&test, &script, &["stack", "dest"]).contains(&"destroy".to_string()));
    for shell in ["zsh", "fish", "powershell"] {
        let script = test.stack(&["completions", shell]).success().stdout;
        assert!(script.contains("STACK_COMPLETE"), "{shell}: {script}");
    }
    let refused = test.stack(&["completions", "tcsh"]).code(1);
    assert!(
        refused
            .stderr
            .contains("no completions for the shell `tcsh`"),
        "{}",
        refused.stderr
    );
}

/// `stack diff --out plan.json` of the backend at 1.6.0: the plan's text.
fn planned(test: &Test) -> String {
    test.stack(&[
        "diff",
        "--out",
        "plan.json",
        "-l",
        "name=backend",
        "--set",
        "images.backend.tag=1.6.0",
    ])
    .success();
    test.read("plan.json")
}

const APPLY_PLAN: &[&str] = &[
    "apply",
    "-q",
    "--plan",
    "plan.json",
    "-l",
    "name=backend",
    "--set",
    "images.backend.tag=1.6.0",
];

/// `stack apply --plan` refused saying `reason`, and nothing written.
fn refused(test: &Test, args: &[&str], reason: &str) {
    let server = crate::harness::Server::start(test.path(), &[]);
    let before = server.mutating();
    let output = test.stack(args).code(1);
    assert!(
        output.stderr.contains(reason),
        "{reason}: {}",
        output.stderr
    );
    assert!(
        output.stderr.contains("nothing was written") || output.stderr.contains("plan.json"),
        "{}",
        output.stderr
    );
    assert_eq!(server.mutating(), before, "a refused plan wrote");
}

#[test]
fn a_plan_is_applied_as_reviewed_and_only_once() {
    let test = deployed();
    let plan = planned(&test);
    test.assert_no_known_secret(
        &["diff", "--out"],
        &crate::harness::Output {
            code: 0,
            stdout: plan.clone(),
            stderr: String::new(),
        },
    );
    let shown = test.stack(&["show-plan", "plan.json"]).success();
    assert!(
        shown.stdout.contains("Deployment/apps/backend  update"),
        "{}",
        shown.stdout
    );
    let json = test
        .stack(&["show-plan", "plan.json", "-o", "json"])
        .success()
        .json();
    assert_eq!(json["environment"], "development");
    assert_eq!(json["selection"], serde_json::json!(["apps/backend"]));
    // Without the reviewed --set, the render is not the plan's.
    refused(
        &test,
        &APPLY_PLAN[..6],
        "Deployment/apps/backend: rendered otherwise than in the plan",
    );
    test.stack(APPLY_PLAN).success();
    test.stack(&[
        "diff",
        "-l",
        "name=backend",
        "--set",
        "images.backend.tag=1.6.0",
        "--detailed-exitcode",
    ])
    .success();
    // Once applied, the cluster has moved: the plan is spent.
    refused(
        &test,
        APPLY_PLAN,
        "Deployment/apps/backend: changed in the cluster since the plan",
    );
}

#[test]
fn a_plan_is_refused_after_a_change_in_the_cluster_by_kubectl() {
    let test = deployed();
    planned(&test);
    let Some(kubectl) = crate::kubectl::Kubectl::start(&test) else {
        return;
    };
    kubectl.ok(&[
        "-n",
        "apps",
        "annotate",
        "deployment",
        "backend",
        "reviewed=no",
    ]);
    drop(kubectl);
    refused(
        &test,
        APPLY_PLAN,
        "Deployment/apps/backend: changed in the cluster since the plan (resourceVersion",
    );
    refused(&test, APPLY_PLAN, "by manager kubectl-annotate)");
}

#[test]
fn a_plan_is_refused_after_a_change_to_the_files_a_secret_or_its_age() {
    let test = deployed();
    let plan = planned(&test);
    // A values file.
    let values = test.read("environments/development.yaml");
    let test = test.file(
        "environments/development.yaml",
        &values.replace("backend: 1", "backend: 2"),
    );
    refused(
        &test,
        APPLY_PLAN,
        "Deployment/apps/backend: rendered otherwise than in the plan",
    );
    let test = test.file("environments/development.yaml", &values);
    // A secret.
    let secrets = "secrets/development/db.yaml";
    let encrypted = test.read(secrets);
    let key = ["--age-key-file", "secrets/demo-age-key.txt"];
    test.stack(&[&["secrets", "decrypt", "--in-place", secrets][..], &key].concat())
        .success();
    let plain = test.read(secrets);
    let changed = plain.replace("password: ", "password: x");
    assert_ne!(changed, plain);
    let test = test.file(secrets, &changed);
    test.stack(&["secrets", "encrypt", "--in-place", secrets])
        .success();
    refused(
        &test,
        APPLY_PLAN,
        "Secret/apps/backend-database: rendered otherwise than in the plan",
    );
    let test = test.file(secrets, &encrypted);
    // Its age.
    let old = plan.replace(
        &serde_json::from_str::<serde_json::Value>(&plan).unwrap()["created"]
            .as_str()
            .unwrap()
            .to_string(),
        "2020-01-01T00:00:00Z",
    );
    let test = test.file("plan.json", &old);
    refused(&test, APPLY_PLAN, "more than --max-age (86400s) ago");
    let test = test.file("plan.json", &plan);
    test.stack(APPLY_PLAN).success();
}

#[test]
fn what_is_not_a_plan_of_this_run_is_refused() {
    let test = deployed();
    let plan = planned(&test);
    refused(
        &test,
        &[&["-e", "staging"][..], APPLY_PLAN].concat(),
        "the plan is of environment `development`, this run of `staging`",
    );
    refused(
        &test,
        &[&APPLY_PLAN[..5], &["name=worker"]].concat(),
        "the plan is of selection `apps/backend`, this run of `apps/worker`",
    );
    for (text, reason) in [
        (
            &plan[..plan.len() / 2],
            "not a plan file (truncated, or not JSON",
        ),
        (
            "{\"kind\": \"Deployment\"}",
            "not a plan file (no `kind: StackPlan`)",
        ),
        ("", "not a plan file"),
    ] {
        std::fs::write(test.path().join("plan.json"), text).unwrap();
        refused(&test, APPLY_PLAN, reason);
        let shown = test.stack(&["show-plan", "plan.json"]).code(1);
        assert!(shown.stderr.contains(reason), "{}", shown.stderr);
    }
}

#[test]
fn explain_lists_every_layer_of_a_value_with_file_and_line_and_no_secret() {
    let test = Test::new()
        .file(
            "stacks/stack.yaml",
            "
            defaultEnvironment: development
            environments:
              development:
                cluster: simulated
                values: [../environments/common.yaml, ../environments/development.yaml]
            releases:
              - name: web
                namespace: shop
                chart: ./charts/config
                values:
                  - data: {greeting: yo}
            ",
        )
        .file(
            "stacks/charts/config/values.yaml",
            "data:\n  greeting: hello\n  other: 1\n",
        )
        .file("environments/common.yaml", "data:\n  greeting: hi\n")
        .file(
            "environments/development.yaml",
            "# development\ndata:\n  greeting: hey\n",
        )
        .configmap_chart("stacks/charts/config");
    let explained = test
        .stack(&[
            "explain",
            "web",
            "data.greeting",
            "--set",
            "data.greeting=sup",
            "-o",
            "json",
        ])
        .success()
        .json();
    assert_eq!(
        explained,
        serde_json::json!([
            {"source": "stacks/charts/config/values.yaml:2:13", "value": "hello"},
            {"source": "environments/common.yaml:2:13", "value": "hi"},
            {"source": "environments/development.yaml:3:13", "value": "hey"},
            {"source": "stacks/stack.yaml:11:26", "value": "yo"},
            {"source": "--set", "value": "sup"},
        ])
    );
    let text = test
        .stack(&["explain", "shop/web", "data.greeting"])
        .success();
    assert!(
        text.stdout
            .starts_with("shop/web data.greeting, lowest precedence first:"),
        "{}",
        text.stdout
    );
    let missing = test.stack(&["explain", "web", "data.greting"]).code(1);
    assert!(
        missing
            .stderr
            .contains("release `shop/web` has no value `data.greting`"),
        "{}",
        missing.stderr
    );
    assert!(
        missing.stderr.contains("did you mean `data.greeting`?"),
        "{}",
        missing.stderr
    );
    // A secrets file is named, with its line, never its value.
    let example = Test::example();
    let secret = example
        .stack(&["explain", "backend", "postgres.password"])
        .success();
    assert!(
        secret.stdout.contains("secrets/development/db.yaml:"),
        "{}",
        secret.stdout
    );
    assert!(secret.stdout.contains("(a secret)"), "{}", secret.stdout);
}

/// `git ARGS` in the test's folder, which must succeed.
fn git(test: &Test, args: &[&str]) {
    let done = std::process::Command::new("git")
        .args(["-c", "user.email=ci@example.com", "-c", "user.name=ci"])
        .args(args)
        .current_dir(test.path())
        .output()
        .expect("run git");
    assert!(
        done.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&done.stderr)
    );
}

#[test]
fn diff_against_a_ref_needs_no_cluster_and_no_keys() {
    let test = Test::example();
    // No key to the secrets: as in a CI job without them.
    let stack = test.read("stacks/platform.yaml");
    let mut without_keys: String = stack
        .lines()
        .filter(|line| !line.trim_start().starts_with("ageKeyFile:"))
        .collect::<Vec<_>>()
        .join("\n");
    without_keys.push('\n');
    let test = test.file("stacks/platform.yaml", &without_keys);
    git(&test, &["init", "-q"]);
    git(&test, &["add", "-A"]);
    git(&test, &["commit", "-qm", "the platform"]);
    // A values change, a template change, a release removed, one added,
    // and a secret re-encrypted with another value.
    let values = test
        .read("environments/development.yaml")
        .replace("tag: \"1.5.0\"", "tag: \"1.6.0\"");
    let template = "stacks/charts/frontend/templates/service.yaml";
    let service =
        test.read(template)
            .replacen("app: frontend", "app: frontend\n    reviewed: \"yes\"", 1);
    let start = without_keys.find("  - name: worker").unwrap();
    let end = start + without_keys[start..].find("\n\n").unwrap() + 2;
    let platform = format!(
        "{}  - name: flags\n    namespace: apps\n    chart: charts/flags\n\n{}",
        &without_keys[..start],
        &without_keys[end..]
    );
    let test = test
        .file("environments/development.yaml", &values)
        .file(template, &service)
        .file("stacks/platform.yaml", &platform)
        .configmap_chart("stacks/charts/flags")
        .file(
            "secrets/development/db.yaml",
            "postgres:\n  user: shop_app\n  password: an0ther-s3cret-value\n",
        );
    test.stack(&[
        "secrets",
        "encrypt",
        "--in-place",
        "secrets/development/db.yaml",
    ])
    .success();
    let diff = test
        .stack(&["diff", "--against", "HEAD", "--detailed-exitcode"])
        .code(2);
    let out = &diff.stdout;
    crate::harness::shows_all(
        out,
        &[
            "apps/backend\n",
            "+        image: registry.example.com/shop/backend:1.6.0",
            "apps/frontend\n  ~ Service/apps/frontend (changed)",
            "+    reviewed: \"yes\"",
            "apps/worker (removed from the stack)\n",
            "  - Deployment/apps/worker (deleted)",
            "apps/flags (added to the stack)\n  + ConfigMap/apps/flags (created)",
            "secret changed: ../secrets/development/db.yaml",
        ],
    );
    assert!(!out.contains("an0ther-s3cret-value"), "{out}");
    assert!(
        !test.path().join("stacks/.stack/cluster").exists(),
        "a cluster was started"
    );
    // The same tree: nothing.
    git(&test, &["add", "-A"]);
    git(&test, &["commit", "-qm", "the change"]);
    let same = test
        .stack(&["diff", "--against", "HEAD", "--detailed-exitcode"])
        .success();
    assert!(
        same.stdout.starts_with("no changes against HEAD"),
        "{}",
        same.stdout
    );
    let back = test.stack(&["diff", "--against", "HEAD~1"]).success();
    assert!(
        back.stdout.contains("apps/worker (removed from the stack)"),
        "{}",
        back.stdout
    );
    let unknown = test.stack(&["diff", "--against", "no-such-branch"]).code(1);
    assert!(
        unknown.stderr.contains("`no-such-branch` names no commit"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn diff_against_outside_a_git_repository_is_refused() {
    let test = Test::example();
    let refused = test.stack(&["diff", "--against", "HEAD"]).code(1);
    assert!(
        refused.stderr.contains("is not in a git repository"),
        "{}",
        refused.stderr
    );
}

#[test]
fn diff_explain_tells_where_each_changed_value_was_set() {
    let stack = "
        defaultEnvironment: development
        environments:
          development:
            cluster: simulated
            values: [../environments/common.yaml, ../environments/development.yaml]
            secrets: [../secrets/development.yaml]
            ageKeyFile: ../secrets/demo-age-key.txt
        releases:
          - name: web
            namespace: shop
            chart: ./charts/web
        ";
    let template = "
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: web
        data:
          greeting: {{ values.greeting | tojson }}
          colour: {{ values.colour | tojson }}
          size: {{ values.size | tojson }}
          motto: MOTTO
        ---
        apiVersion: v1
        kind: Secret
        metadata:
          name: web
        stringData:
          TOKEN: {{ values.token | quote }}
        ";
    // The template, the two values files and the secret, with these values.
    let write = |test: Test, [motto, colour, greeting, token]: [&str; 4]| {
        let test = test
            .file(
                "stacks/charts/web/templates/web.yaml",
                &template.replace("MOTTO", motto),
            )
            .file("environments/common.yaml", &format!("colour: {colour}\n"))
            .file(
                "environments/development.yaml",
                &format!("# development\ngreeting: {greeting}\n"),
            )
            .file("secrets/development.yaml", &format!("token: {token}\n"));
        test.stack(&[
            "secrets",
            "encrypt",
            "--in-place",
            "secrets/development.yaml",
        ])
        .success();
        test
    };
    let test = Test::example()
        .file("stacks/platform.yaml", stack)
        .file("stacks/charts/web/values.yaml", "size: small\n");
    let test = write(test, ["steady", "blue", "hi", "t0ken-before-1234"]);
    test.stack(&["apply", "-q"]).success();
    let test = write(test, ["ready", "green", "hey", "t0ken-after-5678"]);
    let diff = test
        .stack(&[
            "diff",
            "--explain",
            "--set",
            "size=large",
            "--detailed-exitcode",
        ])
        .code(2);
    crate::harness::shows_all(
        &diff.stdout,
        &[
            "+  greeting: hey   # ← environments/development.yaml:2:11 (greeting)",
            "+  colour: green   # ← environments/common.yaml:1:9 (colour)",
            "+  size: large   # ← --set (size)",
            "+  motto: ready   # ← stacks/charts/web/templates/web.yaml:9 (written in the chart)",
            "# ← secrets/development.yaml:2:3 (token, a secret)",
        ],
    );
    assert!(
        !diff.stdout.contains("t0ken-after-5678") && !diff.stdout.contains("t0ken-before-1234")
    );
}

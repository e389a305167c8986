//! What users read when something is wrong: every error names what, where
//! (file:line:column with the source line) and what to do.

use crate::harness::Test;

fn with_stack(stack: &str) -> Test {
    Test::new()
        .configmap_chart("charts/cm")
        .file("stack.yaml", stack)
}

#[test]
fn unknown_top_level_key_suggests_the_nearest() {
    let output = with_stack("relases: []\n").stack(&["list"]).code(1);
    insta::assert_snapshot!(output.stderr, @"
    error: unknown key `relases` in a stack file
     --> stack.yaml:1:1
      |
    1 | relases: []
      | ^^^^^^^

    hint: did you mean `releases`?
    ");
}

#[test]
fn unknown_release_key_suggests_the_nearest() {
    let output = with_stack(
        "
        releases:
          - name: web
            chart: charts/cm
            need: [db]
        ",
    )
    .stack(&["list"])
    .code(1);
    insta::assert_snapshot!(output.stderr, @"
    error: unknown key `need` in a release
     --> stack.yaml:4:5
      |
    4 |     need: [db]
      |     ^^^^

    hint: did you mean `needs`?
    ");
}

#[test]
fn unknown_key_far_from_any_lists_the_valid_ones() {
    let output = with_stack("environments:\n  dev:\n    zzz: 1\n")
        .stack(&["list"])
        .code(1);
    insta::assert_snapshot!(output.stderr, @"
    error: unknown key `zzz` in an environment
     --> stack.yaml:3:5
      |
    3 |     zzz: 1
      |     ^^^

    hint: valid keys here: cluster, kubeContext, values, secrets, ageKeyFile, imagePullSecrets, ingress, previews
    ");
}

#[test]
fn every_problem_of_a_file_is_reported() {
    let output = with_stack(
        "
        releases:
          - name: a
            chart: charts/cm
            wiat: true
          - chart: charts/cm
          - name: c
            chart: charts/cm
            timeout: soon
        ",
    )
    .stack(&["lint"])
    .code(1);
    insta::assert_snapshot!(output.stderr, @"
    error: unknown key `wiat` in a release
     --> stack.yaml:4:5
      |
    4 |     wiat: true
      |     ^^^^

    hint: did you mean `wait`?

    error: a release is missing the required key `name`
     --> stack.yaml:5:5
      |
    5 |   - chart: charts/cm
      |     ^

    error: `timeout` is not a duration
     --> stack.yaml:8:14
      |
    8 |     timeout: soon
      |              ^^^^

    hint: write a duration such as 300s, 5m, 1h30m or 7d

    3 errors
    ");
}

#[test]
fn yaml_syntax_error_is_located() {
    let output = with_stack("releases:\n  - {name: a, chart: charts/cm\n")
        .stack(&["list"])
        .code(1);
    insta::assert_snapshot!(output.stderr, @"
    error: invalid YAML: unclosed bracket '{'
     --> stack.yaml:2:5
      |
    2 |   - {name: a, chart: charts/cm
      |     ^
    ");
}

#[test]
fn wrong_type_names_the_key() {
    let output = with_stack("releases:\n  - {name: a, chart: charts/cm, needs: db}\n")
        .stack(&["list"])
        .code(1);
    insta::assert_snapshot!(output.stderr, @"
    error: `needs` must be a list, found a string
     --> stack.yaml:2:40
      |
    2 |   - {name: a, chart: charts/cm, needs: db}
      |                                        ^^
    ");
}

#[test]
fn duplicate_release_names_both_places() {
    let output = with_stack(
        "
        releases:
          - {name: a, namespace: x, chart: charts/cm}
          - {name: b, chart: charts/cm}
          - {name: a, namespace: x, chart: charts/cm}
        ",
    )
    .stack(&["list"])
    .code(1);
    insta::assert_snapshot!(output.stderr, @"
    error: release `x/a` is defined twice
     --> stack.yaml:4:12
      |
    4 |   - {name: a, namespace: x, chart: charts/cm}
      |            ^

    hint: the first definition is at stack.yaml:2:12; give one of them another name or namespace
    ");
}

#[test]
fn an_object_rendered_by_two_releases_is_an_error_naming_both() {
    let output = Test::new()
        .file(
            "charts/fixed/templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\n  namespace: common\n",
        )
        .file(
            "stack.yaml",
            "releases:\n  - {name: a, chart: charts/fixed}\n  - {name: b, chart: charts/fixed}\n",
        )
        .stack(&["template"])
        .code(1);
    insta::assert_snapshot!(output.stderr, @"
    error: object ConfigMap/common/shared is rendered twice: by `default/a (templates/cm.yaml)` and by `default/b (templates/cm.yaml)`
    hint: an object belongs to one release; remove it from one of them
    ");
}

#[test]
fn objects_need_api_version_kind_and_name() {
    let output = Test::new()
        .file(
            "charts/bad/templates/a.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
        )
        .file("charts/bad/templates/b.yaml", "metadata: {name: x}\n")
        .file("stack.yaml", "releases: [{name: a, chart: charts/bad}]\n")
        .stack(&["lint"])
        .code(1);
    insta::assert_snapshot!(output.stderr, @"
    error: release `default/a`: templates/a.yaml renders an invalid object: a ConfigMap has no `metadata.name`
    hint: every document needs apiVersion, kind and metadata.name

    error: release `default/a`: templates/b.yaml renders an invalid object: a document has no `apiVersion`
    hint: every document needs apiVersion, kind and metadata.name

    2 errors
    ");
}

#[test]
fn template_output_that_is_not_yaml_is_shown() {
    let output = Test::new()
        .file(
            "charts/bad/templates/a.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ values.name }}\n",
        )
        .file("charts/bad/values.yaml", "name: 'a: b'\n")
        .file("stack.yaml", "releases: [{name: a, chart: charts/bad}]\n")
        .stack(&["template"])
        .code(1);
    insta::assert_snapshot!(output.stderr, @"
    error: release `default/a`: templates/a.yaml renders an invalid object: the output is not valid YAML: mapping values are not allowed in this context
     --> templates/a.yaml (rendered for default/a):4:10
      |
    4 |   name: a: b
      |          ^

    hint: the line shown is the template's output; check indentation and quoting around `{{ }}`
    ");
}

#[test]
fn unknown_environment_suggests_the_nearest() {
    let output = with_stack("environments:\n  staging: {}\n  production: {}\nreleases: []\n")
        .stack(&["list", "-e", "stagin"])
        .code(1);
    insta::assert_snapshot!(output.stderr, @"
    error: unknown environment `stagin`
    hint: did you mean `staging`? (environments: staging, production)
    ");
}

#[test]
fn a_values_file_that_does_not_exist_is_located() {
    let output =
        with_stack("environments:\n  default:\n    values: [missing.yaml]\nreleases: []\n")
            .stack(&["list"])
            .code(1);
    insta::assert_snapshot!(output.stderr, @"
    error: cannot read missing.yaml: failed to open file `./missing.yaml`: No such file or directory (os error 2)
     --> stack.yaml:3:14
      |
    3 |     values: [missing.yaml]
      |              ^^^^^^^^^^^^
    ");
}

#[test]
fn a_chart_that_does_not_exist_is_located() {
    let output = with_stack("releases:\n  - {name: a, chart: charts/nope}\n")
        .stack(&["list"])
        .code(1);
    insta::assert_snapshot!(output.stderr, @"
    error: chart `charts/nope` not found
     --> stack.yaml:2:22
      |
    2 |   - {name: a, chart: charts/nope}
      |                      ^^^^^^^^^^^

    hint: `chart` is a folder with templates/, relative to the stack file that names it
    ");
}

#[test]
fn no_stack_file_says_where_it_looked() {
    let output = Test::new().stack(&["list"]).code(1);
    insta::assert_snapshot!(output.stderr, @"
    error: no stack file found in .
    hint: pass -f FILE or -f DIR; a directory needs stack.yaml, stacks/*.yaml or *.yaml
    ");
}

#[test]
fn errors_of_several_releases_are_all_reported_by_lint() {
    let output = Test::new()
        .file("charts/a/templates/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ values.nme }}\n")
        .file("charts/b/templates/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ values.x | required('x is needed') }}\n")
        .file("stack.yaml", "releases:\n  - {name: a, chart: charts/a}\n  - {name: b, chart: charts/b}\n")
        .stack(&["lint"])
        .code(1);
    assert!(
        output.stderr.contains("release `default/a`"),
        "{}",
        output.stderr
    );
    assert!(output.stderr.contains("x is needed"), "{}", output.stderr);
    assert!(output.stderr.ends_with("2 errors\n"), "{}", output.stderr);
}

#[test]
fn a_secret_nobody_can_decrypt_is_located_and_lists_recipients() {
    let encrypted = std::fs::read_to_string(
        crate::harness::repository().join("tests/fixtures/sops/simple.enc.yaml"),
    )
    .unwrap();
    let output = with_stack("releases:\n  - {name: a, chart: charts/cm, secrets: [s.yaml]}\n")
        .file("s.yaml", &encrypted)
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .stack(&["list"])
        .code(1);
    insta::assert_snapshot!(output.stderr, @"
    error: s.yaml: no identity can decrypt it (recipients: age1kqr7r4jpvfjyfprhv9pkkytl33pgcghn6cjx94merpxv2tdsm50qjc395g)
     --> stack.yaml:2:43
      |
    2 |   - {name: a, chart: charts/cm, secrets: [s.yaml]}
      |                                           ^^^^^^

    hint: no age identity was found: set SOPS_AGE_KEY_FILE, SOPS_AGE_KEY or SOPS_AGE_KEY_CMD, or put keys in ~/.config/sops/age/keys.txt
    ");
}

#[test]
fn a_tampered_secret_is_refused() {
    let encrypted = std::fs::read_to_string(
        crate::harness::repository().join("tests/fixtures/sops/tampered-mac.enc.yaml"),
    )
    .unwrap();
    let key = crate::harness::repository().join("tests/fixtures/sops/keys.txt");
    let output = with_stack("releases:\n  - {name: a, chart: charts/cm, secrets: [s.yaml]}\n")
        .file("s.yaml", &encrypted)
        .stack(&["list", "--age-key-file", key.to_str().unwrap()])
        .code(1);
    assert!(
        output.stderr.contains("s.yaml: MAC mismatch"),
        "{}",
        output.stderr
    );
}

/// Exit 2 only ever means "differs" (`--detailed-exitcode`, `promote
/// --check`): a CI gate must not read a typo on the command line as
/// "changes found".
#[test]
fn usage_errors_exit_1_not_2() {
    let test = with_stack("releases: []\n");
    for args in [
        &["diff", "--detailed-exitcode", "--bogus"][..],
        &["no-such-command"],
        &["status", "-o", "xml"],
    ] {
        let output = test.stack(args).code(1);
        assert!(
            output.stderr.contains("error:"),
            "{args:?} printed no error: {}",
            output.stderr
        );
    }
    let help = test.stack(&["--help"]).code(0);
    assert!(help.stdout.contains("Usage"), "{}", help.stdout);
}

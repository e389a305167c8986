//! The selector grammar, needs and the three needs flags, batches, cycles
//! (product.md §4).

use crate::harness::Test;

/// A stack of ConfigMap releases; `releases` is the YAML list body.
fn stack(releases: &str) -> Test {
    Test::new().configmap_chart("charts/cm").file(
        "stack.yaml",
        &format!("releases:\n{}", crate::harness::unindent(releases)),
    )
}

fn ids(test: &Test, args: &[&str]) -> Vec<String> {
    let mut all = vec!["list", "-o", "json"];
    all.extend_from_slice(args);
    let output = test.stack(&all).success();
    output
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

fn labelled() -> Test {
    stack(
        "
        - {name: db, namespace: data, chart: charts/cm, labels: {tier: core, team: a}}
        - {name: cache, namespace: data, chart: charts/cm, labels: {tier: core}}
        - {name: web, namespace: apps, chart: charts/cm, labels: {tier: apps, team: b}}
        - {name: api, namespace: apps, chart: charts/cm, labels: {tier: apps, team: a}}
        ",
    )
}

#[test]
fn selector_equality() {
    assert_eq!(
        ids(&labelled(), &["-l", "tier=core"]),
        ["data/db", "data/cache"]
    );
}

#[test]
fn selector_inequality_holds_when_the_label_is_absent() {
    assert_eq!(
        ids(&labelled(), &["-l", "team!=a"]),
        ["data/cache", "apps/web"]
    );
}

#[test]
fn labels_and_selectors_are_free_strings_as_in_helmfile() {
    let test = stack(
        "
        - {name: db, namespace: data, chart: charts/cm, labels: {version: 1.2.3+123}}
        - {name: web, namespace: apps, chart: charts/cm, labels: {version: 1.2.4}}
        ",
    );
    assert_eq!(ids(&test, &["-l", "version=1.2.3+123"]), ["data/db"]);
    let rendered = test
        .stack(&["template", "-l", "version=1.2.3+123"])
        .success();
    assert!(
        !rendered.stdout.contains("1.2.3+123"),
        "stack-file labels never reach objects: {}",
        rendered.stdout
    );
}

#[test]
fn selector_comma_is_and() {
    assert_eq!(ids(&labelled(), &["-l", "tier=apps,team=a"]), ["apps/api"]);
}

#[test]
fn selector_flags_are_or() {
    assert_eq!(
        ids(&labelled(), &["-l", "team=b", "-l", "name=cache"]),
        ["data/cache", "apps/web"]
    );
}

#[test]
fn implicit_labels_win_over_user_labels() {
    let test = stack(
        "
        - {name: db, namespace: data, chart: charts/cm, labels: {name: other, namespace: x, chart: y}}
        ",
    );
    assert_eq!(
        ids(&test, &["-l", "name=db,namespace=data,chart=cm"]),
        ["data/db"]
    );
    let output = test.stack(&["list", "-l", "name=other"]).code(1);
    insta::assert_snapshot!(output.stderr, @"
    error: no release matches the selector name=other
    hint: check with `stack list`, or pass --allow-no-matching-release
    ");
}

#[test]
fn malformed_selector_term_is_named() {
    let output = labelled().stack(&["list", "-l", "tier=core,team"]).code(1);
    insta::assert_snapshot!(output.stderr, @"
    error: malformed selector term `team` in `tier=core,team`
    hint: a term is `key=value` or `key!=value`; join terms with `,` (AND), repeat -l for OR
    ");
}

#[test]
fn no_match_is_an_error_unless_allowed() {
    let test = labelled();
    let output = test.stack(&["list", "-l", "tier=nope"]).code(1);
    insta::assert_snapshot!(output.stderr, @"
    error: no release matches the selector tier=nope
    hint: check with `stack list`, or pass --allow-no-matching-release
    ");
    let output = test
        .stack(&[
            "list",
            "-o",
            "json",
            "-l",
            "tier=nope",
            "--allow-no-matching-release",
        ])
        .success();
    assert_eq!(output.json(), serde_json::json!([]));
}

fn chain() -> Test {
    stack(
        "
        - {name: a, chart: charts/cm}
        - {name: b, chart: charts/cm, needs: [a]}
        - {name: c, chart: charts/cm, needs: [b]}
        - {name: d, chart: charts/cm, needs: [c]}
        ",
    )
}

#[test]
fn unselected_needs_are_not_run_and_named_once() {
    let output = chain()
        .stack(&["list", "-o", "json", "-l", "name=c"])
        .success();
    assert_eq!(output.json().as_array().unwrap().len(), 1);
    insta::assert_snapshot!(output.stderr, @"note: not selected, not run: default/b (needed by the selection; add --include-needs to run them)");
}

#[test]
fn include_needs_adds_only_direct_needs() {
    assert_eq!(
        ids(&chain(), &["-l", "name=d", "--include-needs"]),
        ["default/c", "default/d"]
    );
}

#[test]
fn include_transitive_needs_adds_all() {
    assert_eq!(
        ids(&chain(), &["-l", "name=d", "--include-transitive-needs"]),
        ["default/a", "default/b", "default/c", "default/d"]
    );
}

#[test]
fn needs_across_namespaces_and_bare_names() {
    let test = stack(
        "
        - {name: db, namespace: data, chart: charts/cm}
        - {name: api, namespace: apps, chart: charts/cm, needs: [data/db]}
        - {name: web, namespace: apps, chart: charts/cm, needs: [api]}
        ",
    );
    let output = test.stack(&["list", "-o", "json"]).success();
    let needs: Vec<_> = output
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["needs"].clone())
        .collect();
    assert_eq!(
        needs,
        [
            serde_json::json!([]),
            serde_json::json!(["data/db"]),
            serde_json::json!(["apps/api"])
        ]
    );
}

#[test]
fn unknown_need_is_an_error_with_a_suggestion_even_when_not_selected() {
    let test = stack(
        "
        - {name: database, namespace: data, chart: charts/cm}
        - {name: api, namespace: apps, chart: charts/cm, needs: [data/databse]}
        ",
    );
    let output = test.stack(&["list", "-l", "name=database"]).code(1);
    insta::assert_snapshot!(output.stderr, @"
    error: release `apps/api` needs `data/databse`, which is not a release of this stack
     --> stack.yaml:3:58
      |
    3 | - {name: api, namespace: apps, chart: charts/cm, needs: [data/databse]}
      |                                                          ^^^^^^^^^^^^

    hint: did you mean `data/database`?
    ");
}

#[test]
fn an_unknown_need_never_suggests_the_release_itself() {
    // `frontend` moved to a namespace where its need is not: the nearest id
    // is its own, which it cannot need.
    let test = stack(
        "
        - {name: backend, namespace: apps, chart: charts/cm}
        - {name: frontend, namespace: web-shop-eu, chart: charts/cm, needs: [backend]}
        ",
    );
    let output = test.stack(&["list"]).code(1);
    assert!(
        output.stderr.contains("needs `web-shop-eu/backend`")
            && !output
                .stderr
                .contains("did you mean `web-shop-eu/frontend`"),
        "{}",
        output.stderr
    );
}

#[test]
fn need_on_a_release_that_is_not_installed_is_a_warning() {
    let test = stack(
        "
        - {name: a, chart: charts/cm, installed: false}
        - {name: b, chart: charts/cm, needs: [a]}
        ",
    );
    let output = test.stack(&["list"]).success();
    insta::assert_snapshot!(output.stderr, @"
    warning: release `default/b` needs `default/a`, which is not installed
     --> stack.yaml:3:39
      |
    3 | - {name: b, chart: charts/cm, needs: [a]}
      |                                       ^
    ");
}

#[test]
fn batches_of_a_chain() {
    let output = chain().stack(&["graph", "--format", "json"]).success();
    assert_eq!(
        output.json()["batches"],
        serde_json::json!([["default/a"], ["default/b"], ["default/c"], ["default/d"]])
    );
}

#[test]
fn batches_of_a_diamond_use_the_longest_chain() {
    let test = stack(
        "
        - {name: top, chart: charts/cm, needs: [left, right]}
        - {name: left, chart: charts/cm, needs: [base]}
        - {name: right, chart: charts/cm, needs: [middle]}
        - {name: middle, chart: charts/cm, needs: [base]}
        - {name: base, chart: charts/cm}
        ",
    );
    let output = test.stack(&["graph", "--format", "json"]).success();
    insta::assert_snapshot!(output.stdout, @r#"
    {
      "nodes": [
        "default/base",
        "default/left",
        "default/middle",
        "default/right",
        "default/top"
      ],
      "edges": [
        {
          "from": "default/left",
          "to": "default/top"
        },
        {
          "from": "default/right",
          "to": "default/top"
        },
        {
          "from": "default/base",
          "to": "default/left"
        },
        {
          "from": "default/middle",
          "to": "default/right"
        },
        {
          "from": "default/base",
          "to": "default/middle"
        }
      ],
      "batches": [
        [
          "default/base"
        ],
        [
          "default/left",
          "default/middle"
        ],
        [
          "default/right"
        ],
        [
          "default/top"
        ]
      ]
    }
    "#);
}

#[test]
fn batches_are_computed_over_the_selection() {
    let output = chain()
        .stack(&["graph", "--format", "json", "-l", "name!=b"])
        .success();
    assert_eq!(
        output.json()["batches"],
        serde_json::json!([["default/a", "default/c"], ["default/d"]])
    );
}

#[test]
fn a_cycle_is_printed_as_a_path() {
    let test = stack(
        "
        - {name: a, chart: charts/cm, needs: [c]}
        - {name: b, chart: charts/cm, needs: [a]}
        - {name: c, chart: charts/cm, needs: [b]}
        - {name: d, chart: charts/cm}
        ",
    );
    let output = test.stack(&["graph"]).code(1);
    insta::assert_snapshot!(output.stderr, @"
    error: dependency cycle: default/a -> default/c -> default/b -> default/a
     --> stack.yaml:2:39
      |
    2 | - {name: a, chart: charts/cm, needs: [c]}
      |                                       ^

    hint: remove one of these `needs` to break the cycle
    ");
}

#[test]
fn a_release_that_needs_itself_is_a_cycle() {
    let test = stack("- {name: a, chart: charts/cm, needs: [a]}");
    let output = test.stack(&["list"]).code(1);
    assert!(
        output
            .stderr
            .contains("dependency cycle: default/a -> default/a"),
        "{}",
        output.stderr
    );
}

#[test]
fn needs_cross_stack_files() {
    let test = Test::new()
        .configmap_chart("stacks/charts/cm")
        .file(
            "stacks/core.yaml",
            "releases:\n  - {name: db, namespace: data, chart: charts/cm}\n",
        )
        .file(
            "stacks/apps.yaml",
            "releases:\n  - {name: api, namespace: apps, chart: charts/cm, needs: [data/db]}\n",
        );
    let output = test.stack(&["graph", "--format", "json"]).success();
    assert_eq!(
        output.json()["batches"],
        serde_json::json!([["data/db"], ["apps/api"]])
    );
}

//! Values precedence at every level, `--set`, schemas, strict templates
//! (product.md §3).

use serde_json::{Value, json};

use crate::harness::Test;

/// A chart whose ConfigMap carries the merged values as JSON.
fn values_test(stack: &str) -> Test {
    Test::new()
        .file(
            "charts/show/templates/values.yaml",
            "
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: values
            data:
              values: {{ values | tojson | quote }}
            ",
        )
        .file("stack.yaml", stack)
}

fn rendered_values(test: &Test, args: &[&str]) -> Value {
    let mut all = vec!["template"];
    all.extend_from_slice(args);
    let output = test.stack(&all).success();
    let document = output
        .stdout
        .lines()
        .find(|line| line.trim_start().starts_with("values:"))
        .unwrap();
    let json: String =
        serde_json::from_str(document.trim_start().trim_start_matches("values:").trim()).unwrap();
    serde_json::from_str(&json).unwrap()
}

#[test]
fn precedence_at_every_level() {
    let test = values_test(
        "
        environments:
          default:
            values: [env1.yaml, env2.yaml]
        releases:
          - name: r
            chart: charts/show
            values:
              - release1.yaml
              - {f: release-inline, g: release-inline}
        ",
    )
    .file(
        "charts/show/values.yaml",
        "a: chart\nb: chart\nc: chart\nd: chart\ne: chart\nf: chart\ng: chart\n",
    )
    .file(
        "env1.yaml",
        "b: env1\nc: env1\nd: env1\ne: env1\nf: env1\ng: env1\n",
    )
    .file("env2.yaml", "c: env2\nd: env2\ne: env2\nf: env2\ng: env2\n")
    .file("release1.yaml", "e: release1\nf: release1\ng: release1\n");
    assert_eq!(
        rendered_values(&test, &["--set", "g=set"]),
        json!({"a": "chart", "b": "env1", "c": "env2", "d": "env2", "e": "release1", "f": "release-inline", "g": "set"})
    );
}

#[test]
fn maps_merge_lists_replace_and_null_removes() {
    let test = values_test(
        "
        releases:
          - name: r
            chart: charts/show
            values:
              - {map: {b: 2}, list: [3], gone: null}
        ",
    )
    .file(
        "charts/show/values.yaml",
        "map: {a: 1}\nlist: [1, 2]\ngone: here\n",
    );
    assert_eq!(
        rendered_values(&test, &[]),
        json!({"map": {"a": 1, "b": 2}, "list": [3]})
    );
}

#[test]
fn set_is_typed_and_set_string_is_not() {
    let test = values_test("releases: [{name: r, chart: charts/show}]");
    let values = rendered_values(
        &test,
        &[
            "--set",
            "n=3",
            "--set",
            "on=true",
            "--set",
            "deep.key=v1.2",
            "--set-string",
            "s=3",
        ],
    );
    assert_eq!(
        values,
        json!({"n": 3, "on": true, "deep": {"key": "v1.2"}, "s": "3"})
    );
}

#[test]
fn a_malformed_set_is_an_error() {
    let output = values_test("releases: [{name: r, chart: charts/show}]")
        .stack(&["template", "--set", "novalue"])
        .code(1);
    insta::assert_snapshot!(output.stderr, @"
    error: invalid --set `novalue`: expected key.path=value
    hint: write --set key.path=value; use --set-string to keep a value a string
    ");
}

#[test]
fn stack_file_expressions_see_environment_values_and_keep_types() {
    let test = values_test(
        "
        environments:
          default:
            values: [env.yaml]
        releases:
          - name: r
            namespace: '{{ values.ns }}'
            chart: charts/show
            values:
              - replicas: '{{ values.replicas }}'
                url: 'http://{{ values.host }}:80'
                who: '{{ release.name }}.{{ release.namespace }}'
                env: '{{ environment.name }}'
        ",
    )
    .file("env.yaml", "ns: web\nreplicas: 3\nhost: db\n");
    let values = rendered_values(&test, &[]);
    assert_eq!(values["replicas"], json!(3));
    assert_eq!(values["url"], json!("http://db:80"));
    assert_eq!(values["who"], json!("r.web"));
    assert_eq!(values["env"], json!("default"));
}

#[test]
fn environment_selects_values_files() {
    let test = values_test(
        "
        defaultEnvironment: dev
        environments:
          dev: {values: [dev.yaml]}
          prod: {values: [prod.yaml]}
        releases: [{name: r, chart: charts/show}]
        ",
    )
    .file("dev.yaml", "size: small\n")
    .file("prod.yaml", "size: large\n");
    assert_eq!(rendered_values(&test, &[])["size"], json!("small"));
    assert_eq!(
        rendered_values(&test, &["-e", "prod"])["size"],
        json!("large")
    );
}

#[test]
fn schema_violations_name_the_value_path() {
    let test = values_test(
        "
        releases:
          - {name: r, chart: charts/show, values: [{db: {port: '5432'}, replicas: 0}]}
        ",
    )
    .file(
        "charts/show/values.schema.json",
        r#"{"type": "object", "properties": {
             "db": {"type": "object", "properties": {"port": {"type": "integer"}}},
             "replicas": {"type": "integer", "minimum": 1}}}"#,
    );
    let output = test.stack(&["lint"]).code(1);
    insta::assert_snapshot!(output.stderr, @r#"
    error: release `default/r`: value `db.port` violates the chart's schema: "5432" is not of type "integer"
     --> stack.yaml:2:56
      |
    2 |   - {name: r, chart: charts/show, values: [{db: {port: '5432'}, replicas: 0}]}
      |                                                        ^^^^^^

    hint: fix the value, or the chart's values.schema.json

    error: release `default/r`: value `replicas` violates the chart's schema: 0 is less than the minimum of 1
     --> stack.yaml:2:75
      |
    2 |   - {name: r, chart: charts/show, values: [{db: {port: '5432'}, replicas: 0}]}
      |                                                                           ^

    hint: fix the value, or the chart's values.schema.json

    2 errors
    "#);
}

#[test]
fn a_schema_violation_points_at_the_highest_layer_that_set_the_value() {
    let test = values_test(
        "
        releases:
          - {name: r, chart: charts/show, values: [{replicas: 2}, values/r.yaml]}
        ",
    )
    .file("values/r.yaml", "# the release's own values\nreplicas: 0\n")
    .file(
        "charts/show/values.schema.json",
        r#"{"type": "object", "properties": {"replicas": {"type": "integer", "minimum": 1}}}"#,
    );
    let output = test.stack(&["lint"]).code(1);
    assert!(
        output.stderr.contains("--> values/r.yaml:2:11"),
        "{}",
        output.stderr
    );
    // A value from --set has no line to point at: the schema is shown.
    let output = test
        .stack(&["lint", "--set", "replicas=0", "--set", "x=1"])
        .code(1);
    assert!(
        output
            .stderr
            .contains("--> charts/show/values.schema.json:1:1"),
        "{}",
        output.stderr
    );
}

#[test]
fn a_misspelt_value_in_a_template_is_an_error_with_its_line() {
    let test = Test::new()
        .file(
            "charts/web/templates/deployment.yaml",
            "
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: web
            data:
              image: {{ values.image.tga }}
            ",
        )
        .file("charts/web/values.yaml", "image: {tag: '1.0'}\n")
        .file("stack.yaml", "releases: [{name: web, chart: charts/web}]\n");
    let output = test.stack(&["template"]).code(1);
    insta::assert_snapshot!(output.stderr, @"
    error: release `default/web`: template `templates/deployment.yaml` failed: undefined value: `values.image.tga` is undefined
     --> charts/web/templates/deployment.yaml:6:13
      |
    6 |   image: {{ values.image.tga }}
      |             ^^^^^^^^^^^^^^^^

    hint: check the spelling of the value, or give it a default: `{{ values.x | default('y') }}`
    ");
}

#[test]
fn required_fails_with_its_message() {
    let test = Test::new()
        .file(
            "charts/web/templates/cm.yaml",
            "
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: web
            data:
              host: {{ values.host | required('set host for this environment') }}
            ",
        )
        .file("stack.yaml", "releases: [{name: web, chart: charts/web}]\n");
    let output = test.stack(&["template"]).code(1);
    assert!(
        output.stderr.contains("set host for this environment"),
        "{}",
        output.stderr
    );
}

#[test]
fn an_undefined_value_in_a_stack_file_expression_is_located() {
    let test = values_test(
        "
        releases:
          - {name: r, chart: charts/show, installed: '{{ values.app.enabled }}'}
        ",
    );
    let output = test.stack(&["list"]).code(1);
    insta::assert_snapshot!(output.stderr, @"
    error: undefined value: `values.app` is undefined
     --> stack.yaml:2:46
      |
    2 |   - {name: r, chart: charts/show, installed: '{{ values.app.enabled }}'}
      |                                              ^^^^^^^^^^^^^^^^^^^^^^^^^^

    hint: check the spelling of the value, or give it a default: `{{ values.x | default('y') }}`
    ");
}

//! `stack import helmfile`: a helmfile.yaml becomes a stack file that
//! lints and deploys; what does not convert is listed; bad input writes
//! nothing.

use crate::harness::{Server, Test, external_tool};

const HELMFILE: &str = r#"
helmDefaults:
  wait: true
  timeout: 120
  createNamespace: true
environments:
  development:
    values:
      - environments/dev.yaml
      - {greeting: hello}
---
releases:
  - name: web
    namespace: shop
    chart: ./charts/demo
    labels: {tier: apps, version: 1.2.3+1}
    installed: {{ .Values.webEnabled }}
    values:
      - replicaCount: 2
        podAnnotations:
          env: "{{ .Environment.Name }}"
          region: '{{ env "IMPORT_TEST_REGION" | default "eu" }}'
          owner: "{{ .Release.Name }}-team"
    set:
      - name: service.port
        value: 8080
"#;

fn helmfile_project(helmfile: &str) -> Test {
    Test::new()
        .copy("tests/fixtures/helm/demo", "hf/charts/demo")
        .file("hf/helmfile.yaml", helmfile)
        .file("hf/environments/dev.yaml", "webEnabled: true\n")
}

#[test]
fn a_helmfile_is_imported_linted_and_deployed() {
    let Some(helm) = external_tool("STACK_HELM", "helm") else {
        return;
    };
    let test = helmfile_project(HELMFILE).env("STACK_HELM", helm.to_str().unwrap());
    let imported = test
        .stack(&["import", "helmfile", "hf/helmfile.yaml"])
        .success();
    assert!(
        imported
            .stdout
            .lines()
            .any(|line| line.starts_with("release web") && line.contains("yes")),
        "{}",
        imported.stdout
    );
    let stack = test.read("hf/stack.yaml");
    assert!(stack.contains("{{ environment.name }}"), "{stack}");
    assert!(
        stack.contains("{{ env('IMPORT_TEST_REGION') | default('eu') }}"),
        "{stack}"
    );
    assert!(stack.contains("web-team"), "{stack}");
    assert!(stack.contains("timeout: 120s"), "{stack}");
    assert!(
        test.read("hf/environments/development-1.yaml")
            .contains("greeting: hello")
    );

    // The environment targets the simulated cluster for the test.
    std::fs::write(
        test.path().join("hf/stack.yaml"),
        stack.replacen(
            "  development:\n",
            "  development:\n    cluster: simulated\n",
            1,
        ),
    )
    .unwrap();
    test.stack(&["lint", "-f", "hf", "-e", "development"])
        .success();
    test.stack(&["apply", "-f", "hf", "-e", "development"])
        .success();
    let server = Server::start(&test.path().join("hf"), &["-e", "development"]);
    let deployment = server.get("/apis/apps/v1/namespaces/shop/deployments/web-demo");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["env"], "development");
    assert_eq!(annotations["region"], "eu");
    assert_eq!(annotations["owner"], "web-team");
    let service = server.get("/api/v1/namespaces/shop/services/web-demo");
    assert_eq!(service["spec"]["ports"][0]["port"], 8080);
    drop(server);

    let again = test
        .stack(&["import", "helmfile", "hf/helmfile.yaml"])
        .code(1);
    assert!(
        again.stderr.contains("already exists; nothing was written"),
        "{}",
        again.stderr
    );
}

#[test]
fn what_does_not_convert_is_listed() {
    let test = helmfile_project(
        "releases:\n  - name: api\n    namespace: shop\n    chart: ./charts/demo\n    values:\n      - podAnnotations: {x: \"{{ .Values.greeting | upper }}\"}\n    hooks: []\nhelmfiles: [apps/helmfile.yaml]\n",
    );
    let imported = test
        .stack(&["import", "helmfile", "hf/helmfile.yaml"])
        .success();
    assert!(
        imported
            .stdout
            .lines()
            .any(|line| line.starts_with("release api")
                && line.contains("no")
                && line.contains("`{{ .Values.greeting | upper }}` is not converted")
                && line.contains("`hooks` is not imported")),
        "{}",
        imported.stdout
    );
    assert!(
        imported
            .stdout
            .lines()
            .any(|l| l.starts_with("`helmfiles`") && l.contains("not imported")),
        "{}",
        imported.stdout
    );
}

#[test]
fn a_helmfile_that_is_not_yaml_is_a_located_error_and_writes_nothing() {
    let test = helmfile_project("releases:\n  - name: [web\n");
    let output = test
        .stack(&["import", "helmfile", "hf/helmfile.yaml"])
        .code(1);
    assert!(
        output.stderr.contains("helmfile.yaml:"),
        "{}",
        output.stderr
    );
    assert!(!test.path().join("hf/stack.yaml").exists());
}

#[test]
fn bases_are_layered_and_a_gotmpl_values_file_that_converts_is_inlined() {
    let test = helmfile_project(
        "bases:\n  - bases/environments.yaml\n  - bases/shared.yaml\nreleases:\n  - name: web\n    namespace: shop\n    chart: ./charts/demo\n    values:\n      - values/web.yaml.gotmpl\n      - values/odd.yaml.gotmpl\n",
    )
    .file(
        "hf/bases/environments.yaml",
        "environments:\n  development:\n    values: [environments/dev.yaml]\n",
    )
    .file(
        "hf/bases/shared.yaml",
        "helmDefaults: {timeout: 90}\nreleases:\n  - name: db\n    namespace: data\n    chart: ./charts/demo\n",
    )
    .file(
        "hf/values/web.yaml.gotmpl",
        "podAnnotations:\n  env: {{ .Environment.Name }}\n  owner: \"{{ .Release.Name }}-team\"\n",
    )
    .file("hf/values/odd.yaml.gotmpl", "a: {{ .Values.x | upper }}\n");
    let imported = test
        .stack(&["import", "helmfile", "hf/helmfile.yaml"])
        .success();
    assert!(
        imported
            .stdout
            .lines()
            .any(|l| l.starts_with("`bases`") && l.contains("2 files layered")),
        "{}",
        imported.stdout
    );
    assert!(
        imported.stdout.lines().any(|l| l.starts_with("release web")
            && l.contains("odd.yaml.gotmpl is a Go template with expressions that do not convert")),
        "{}",
        imported.stdout
    );
    let stack = test.read("hf/stack.yaml");
    for expected in [
        "name: db",
        "name: web",
        "timeout: 90s",
        "environments/dev.yaml",
        "env: \"{{ environment.name }}\"",
        "owner: web-team",
        "values/odd.yaml.gotmpl",
    ] {
        assert!(stack.contains(expected), "no `{expected}` in:\n{stack}");
    }
    assert!(!stack.contains("web.yaml.gotmpl"), "{stack}");
}

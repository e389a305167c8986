//! The offline commands on the example platform: list, graph, template,
//! lint, and stack-file discovery.

use crate::harness::Test;

#[test]
fn list_the_example_platform() {
    let output = Test::example().stack(&["list"]).success();
    insta::assert_snapshot!(output.stdout, @"
    NAME              NAMESPACE  CHART             INSTALLED  LABELS                  NEEDS            URLS
    namespaces        core       namespaces        true       app=platform,tier=core
    network-policies  core       network-policies  true       app=platform,tier=core  core/namespaces
    postgres          data       postgres          true       app=postgres,tier=data  core/namespaces
    backend           apps       backend           true       app=shop,tier=apps      data/postgres
    frontend          apps       frontend          true       app=shop,tier=apps      apps/backend     http://frontend.apps.dev.example.com/
    worker            apps       app               true       app=shop,tier=apps      apps/backend
    admin             apps       app               true       app=shop,tier=apps      apps/backend     http://ops.development.example.com/admin/
    ");
}

#[test]
fn list_json_has_the_fixed_shape_in_graph_order() {
    let output = Test::example()
        .stack(&["list", "-o", "json", "-l", "tier=apps"])
        .success();
    insta::assert_snapshot!(output.stdout, @r#"
    [
      {
        "id": "apps/backend",
        "name": "backend",
        "namespace": "apps",
        "chart": "backend",
        "labels": {
          "app": "shop",
          "tier": "apps"
        },
        "needs": [
          "data/postgres"
        ],
        "installed": true,
        "urls": []
      },
      {
        "id": "apps/frontend",
        "name": "frontend",
        "namespace": "apps",
        "chart": "frontend",
        "labels": {
          "app": "shop",
          "tier": "apps"
        },
        "needs": [
          "apps/backend"
        ],
        "installed": true,
        "urls": [
          "http://frontend.apps.dev.example.com/"
        ]
      },
      {
        "id": "apps/worker",
        "name": "worker",
        "namespace": "apps",
        "chart": "app",
        "labels": {
          "app": "shop",
          "tier": "apps"
        },
        "needs": [
          "apps/backend"
        ],
        "installed": true,
        "urls": []
      },
      {
        "id": "apps/admin",
        "name": "admin",
        "namespace": "apps",
        "chart": "app",
        "labels": {
          "app": "shop",
          "tier": "apps"
        },
        "needs": [
          "apps/backend"
        ],
        "installed": true,
        "urls": [
          "http://ops.development.example.com/admin/"
        ]
      }
    ]
    "#);
}

#[test]
fn graph_as_text() {
    let output = Test::example().stack(&["graph"]).success();
    insta::assert_snapshot!(output.stdout, @"
    batch 0:
      core/namespaces
    batch 1:
      core/network-policies  <- core/namespaces
      data/postgres  <- core/namespaces
    batch 2:
      apps/backend  <- data/postgres
    batch 3:
      apps/frontend  <- apps/backend
      apps/worker  <- apps/backend
      apps/admin  <- apps/backend
    ");
}

#[test]
fn graph_as_dot_and_mermaid() {
    let test = Test::example();
    let dot = test
        .stack(&["graph", "--format", "dot", "-l", "tier!=core"])
        .success();
    insta::assert_snapshot!(dot.stdout, @r#"
    digraph stack {
      rankdir=LR;
      "data/postgres";
      "apps/backend";
      "apps/frontend";
      "apps/worker";
      "apps/admin";
      "data/postgres" -> "apps/backend";
      "apps/backend" -> "apps/frontend";
      "apps/backend" -> "apps/worker";
      "apps/backend" -> "apps/admin";
    }
    "#);
    let mermaid = test
        .stack(&["graph", "--format", "mermaid", "-l", "tier!=core"])
        .success();
    insta::assert_snapshot!(mermaid.stdout, @r#"
    graph LR
      n2["data/postgres"]
      n3["apps/backend"]
      n4["apps/frontend"]
      n5["apps/worker"]
      n6["apps/admin"]
      n2 --> n3
      n3 --> n4
      n3 --> n5
      n3 --> n6
    "#);
}

#[test]
fn graph_json_has_the_fixed_shape() {
    let output = Test::example()
        .stack(&["graph", "--format", "json"])
        .success();
    insta::assert_snapshot!(output.stdout, @r#"
    {
      "nodes": [
        "core/namespaces",
        "core/network-policies",
        "data/postgres",
        "apps/backend",
        "apps/frontend",
        "apps/worker",
        "apps/admin"
      ],
      "edges": [
        {
          "from": "core/namespaces",
          "to": "core/network-policies"
        },
        {
          "from": "core/namespaces",
          "to": "data/postgres"
        },
        {
          "from": "data/postgres",
          "to": "apps/backend"
        },
        {
          "from": "apps/backend",
          "to": "apps/frontend"
        },
        {
          "from": "apps/backend",
          "to": "apps/worker"
        },
        {
          "from": "apps/backend",
          "to": "apps/admin"
        }
      ],
      "batches": [
        [
          "core/namespaces"
        ],
        [
          "core/network-policies",
          "data/postgres"
        ],
        [
          "apps/backend"
        ],
        [
          "apps/frontend",
          "apps/worker",
          "apps/admin"
        ]
      ]
    }
    "#);
}

#[test]
fn template_one_release() {
    let output = Test::example()
        .stack(&["template", "-l", "name=backend"])
        .success();
    insta::assert_snapshot!(output.stdout, @r#"
    ---
    # Source: apps/backend templates/configmap.yaml
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: backend-config
      namespace: apps
      labels:
        app: backend
        app.kubernetes.io/name: backend
        app.kubernetes.io/instance: backend
        app.kubernetes.io/managed-by: stack
        stack.dev/release: apps.backend
    data:
      LOG_LEVEL: info
      DATABASE_HOST: postgres.data.svc.cluster.local
      DATABASE_PORT: "5432"
      DATABASE_NAME: shop
    ---
    # Source: apps/backend templates/deployment.yaml
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: backend
      namespace: apps
      labels:
        app: backend
        app.kubernetes.io/name: backend
        app.kubernetes.io/instance: backend
        app.kubernetes.io/managed-by: stack
        stack.dev/release: apps.backend
    spec:
      replicas: 1
      selector:
        matchLabels:
          app: backend
      template:
        metadata:
          labels:
            app: backend
            app.kubernetes.io/name: backend
            app.kubernetes.io/instance: backend
          annotations:
            checksum/config: (sensitive value)
        spec:
          containers:
          - name: backend
            image: registry.example.com/shop/backend:1.5.0
            ports:
            - name: http
              containerPort: 8080
            envFrom:
            - configMapRef:
                name: backend-config
            - secretRef:
                name: backend-database
            readinessProbe:
              httpGet:
                path: /healthz
                port: http
            resources:
              requests:
                cpu: 100m
                memory: 128Mi
              limits:
                memory: 256Mi
    ---
    # Source: apps/backend templates/secret.yaml
    apiVersion: v1
    kind: Secret
    metadata:
      name: backend-database
      namespace: apps
      labels:
        app: backend
        app.kubernetes.io/managed-by: stack
        stack.dev/release: apps.backend
    type: Opaque
    stringData:
      DATABASE_USER: (sensitive value)
      DATABASE_PASSWORD: (sensitive value)
    ---
    # Source: apps/backend templates/service.yaml
    apiVersion: v1
    kind: Service
    metadata:
      name: backend
      namespace: apps
      labels:
        app: backend
        app.kubernetes.io/managed-by: stack
        stack.dev/release: apps.backend
    spec:
      selector:
        app: backend
      ports:
      - name: http
        port: 8080
        targetPort: http
    ---
    # Source: apps/backend templates/tests/smoke.yaml (test)
    apiVersion: batch/v1
    kind: Job
    metadata:
      name: backend-smoke-test
      namespace: apps
      labels:
        app.kubernetes.io/managed-by: stack
        stack.dev/release: apps.backend
    spec:
      backoffLimit: 0
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: smoke
            image: curlimages/curl:8.10.1
            args:
            - --fail
            - --silent
            - http://backend.apps.svc.cluster.local:8080/healthz
    "#);
}

#[test]
fn template_skips_releases_that_are_not_installed() {
    let test = Test::example();
    let output = test
        .stack(&["template", "--set", "frontend.enabled=false"])
        .success();
    assert!(!output.stdout.contains("apps/frontend"));
    assert!(output.stdout.contains("apps/backend"));
}

#[test]
fn template_to_a_directory_writes_one_folder_per_release() {
    let test = Test::example();
    test.stack(&["template", "--output-dir", "out"]).success();
    let mut files: Vec<String> = crate::harness::files_under(&test.path().join("out"))
        .into_iter()
        .map(|path| {
            path.strip_prefix(test.path().join("out"))
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    files.sort();
    insta::assert_snapshot!(files.join("\n"), @"
    apps.admin/configmap.admin-env-e1588b4.yaml
    apps.admin/deployment.admin.yaml
    apps.admin/ingress.admin-url.yaml
    apps.admin/service.admin.yaml
    apps.backend/configmap.backend-config.yaml
    apps.backend/deployment.backend.yaml
    apps.backend/secret.backend-database.yaml
    apps.backend/service.backend.yaml
    apps.backend/tests/job.backend-smoke-test.yaml
    apps.frontend/deployment.frontend.yaml
    apps.frontend/ingress.frontend-url.yaml
    apps.frontend/ingress.frontend.yaml
    apps.frontend/service.frontend.yaml
    apps.worker/configmap.worker-env-645834a.yaml
    apps.worker/deployment.worker.yaml
    apps.worker/secret.worker-secret-env-e2f735c.yaml
    core.namespaces/namespace.apps.yaml
    core.namespaces/namespace.data.yaml
    core.network-policies/networkpolicy.apps.default-deny-ingress.yaml
    core.network-policies/networkpolicy.apps.frontend-to-backend.yaml
    core.network-policies/networkpolicy.data.backend-to-postgres.yaml
    core.network-policies/networkpolicy.data.default-deny-ingress.yaml
    data.postgres/persistentvolumeclaim.postgres-data.yaml
    data.postgres/service.postgres.yaml
    data.postgres/statefulset.postgres.yaml
    ");
    let deployment = test.read("out/apps.backend/deployment.backend.yaml");
    assert!(deployment.contains("kind: Deployment"));
}

#[test]
fn template_masks_secret_data_unless_asked() {
    let test = Test::new()
        .file(
            "charts/s/templates/secret.yaml",
            "
            apiVersion: v1
            kind: Secret
            metadata:
              name: creds
            stringData:
              password: {{ values.password }}
            ",
        )
        .file("charts/s/values.yaml", "password: hunter22\n")
        .file("stack.yaml", "releases: [{name: s, chart: charts/s}]\n");
    let masked = test.stack(&["template"]).success();
    assert!(!masked.stdout.contains("hunter22"));
    assert!(masked.stdout.contains("password: (sensitive value)"));
    let shown = test.stack(&["template", "--show-secrets"]).success();
    assert!(shown.stdout.contains("password: hunter22"));
}

#[test]
fn lint_the_example_platform_in_every_simulated_environment() {
    for environment in ["development", "staging", "production"] {
        let output = Test::example()
            .stack(&["lint", "-e", environment])
            .success();
        assert!(output.stdout.contains("no problems"), "{}", output.stdout);
    }
}

#[test]
fn stack_yaml_is_preferred_over_stacks_folder() {
    let test = Test::new()
        .configmap_chart("charts/cm")
        .configmap_chart("stacks/charts/cm")
        .file(
            "stack.yaml",
            "releases: [{name: from-stack-yaml, chart: charts/cm}]\n",
        )
        .file(
            "stacks/a.yaml",
            "releases: [{name: from-stacks, chart: charts/cm}]\n",
        );
    let output = test.stack(&["list", "-o", "json"]).success();
    assert_eq!(output.json()[0]["name"], "from-stack-yaml");
}

#[test]
fn a_directory_of_yaml_files_is_a_stack() {
    let test = Test::new()
        .configmap_chart("deploy/charts/cm")
        .file(
            "deploy/one.yaml",
            "releases: [{name: one, chart: charts/cm}]\n",
        )
        .file(
            "deploy/two.yaml",
            "releases: [{name: two, chart: charts/cm, needs: [one]}]\n",
        );
    let output = test
        .stack(&["list", "-o", "json", "-f", "deploy"])
        .success();
    let names: Vec<_> = output
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(names, ["one", "two"]);
}

#[test]
fn file_flag_loads_that_file_alone() {
    let test = Test::new()
        .configmap_chart("charts/cm")
        .file("a.yaml", "releases: [{name: a, chart: charts/cm}]\n")
        .file("b.yaml", "releases: [{name: b, chart: charts/cm}]\n");
    let output = test
        .stack(&["list", "-o", "json", "-f", "b.yaml"])
        .success();
    assert_eq!(output.json().as_array().unwrap().len(), 1);
    assert_eq!(output.json()[0]["name"], "b");
}

/// The example's decrypted values, which no output may contain.
const SECRET_VALUES: [&str; 2] = ["dev-s3cret-password", "shop_app"];

#[test]
fn secrets_layer_into_values_and_never_leak() {
    let test = Test::example();
    let mut outputs = Vec::new();
    for args in [
        vec!["template"],
        vec!["lint"],
        vec!["list", "-o", "json"],
        vec!["template", "--set", "scale.backend=oops"],
        vec!["apply"],
        vec!["diff", "--set", "postgres.password=changed-password-1"],
        vec!["status"],
    ] {
        let output = test.stack(&args);
        outputs.push(format!("{}{}", output.stdout, output.stderr));
    }
    let shown = test
        .stack(&["template", "--show-secrets", "-l", "name=backend"])
        .success();
    assert!(
        shown
            .stdout
            .contains("DATABASE_PASSWORD: dev-s3cret-password"),
        "{}",
        shown.stdout
    );
    for (index, output) in outputs.iter().enumerate() {
        for secret in SECRET_VALUES {
            assert!(
                !output.contains(secret),
                "output {index} leaks {secret}:\n{output}"
            );
        }
    }
    assert!(
        outputs[5].contains("(sensitive value changed: "),
        "{}",
        outputs[5]
    );
}

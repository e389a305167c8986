//! The built-in app chart (`chart: builtin:app`) and versioned
//! configuration: renders, refusals, and a deploy whose configuration
//! change rolls out and rolls back exactly.

use serde_json::Value;

use crate::harness::{Server, Test};

/// A stack of one `builtin:app` release `shop/web` with these values (YAML
/// lines indented under `values: - `).
fn app(values: &str) -> Test {
    Test::new().file("stacks/stack.yaml", &app_stack(values))
}

const EVERY_KEY: &str = "
image: ghcr.io/acme/web:1.4.2
replicas: 2
ports: [\"8080:3000\", 9090, \"53/udp\", {port: 7000, name: admin}]
env: {LOG_LEVEL: info, WORKERS: 4, SESSION_SECRET: s3ssion}
secretEnv: {STRIPE_API_KEY: sk_test_123}
healthCheckPath: /healthz
resources: {cpu: 100m, memory: 128Mi}
serviceType: NodePort
command: [/bin/web]
args: [--serve]
volumes: {data: {size: 1Gi, mountPath: /var/lib/web}}
keepConfigVersions: 2
component: api
partOf: shop-platform
imagePullSecrets: [registry]
";

/// `stack template -o json`'s objects, by `Kind/name`.
fn rendered(test: &Test) -> std::collections::BTreeMap<String, Value> {
    let output = test.stack(&["template", "-o", "json"]).success();
    output.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                ),
                o.clone(),
            )
        })
        .collect()
}

/// The one object of `kind` whose name starts with `prefix`.
fn one<'a>(objects: &'a std::collections::BTreeMap<String, Value>, key: &str) -> &'a Value {
    let found: Vec<&Value> = objects
        .iter()
        .filter(|(k, _)| k.starts_with(key))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{key} in {:?}",
        objects.keys().collect::<Vec<_>>()
    );
    found[0]
}

#[test]
fn the_app_chart_renders_every_value_into_its_objects() {
    let test = app(EVERY_KEY);
    let objects = rendered(&test);
    let deployment = one(&objects, "Deployment/web");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "ghcr.io/acme/web:1.4.2");
    assert_eq!(container["command"], serde_json::json!(["/bin/web"]));
    assert_eq!(container["args"], serde_json::json!(["--serve"]));
    let ports: Vec<(&str, u64)> = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["containerPort"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        [
            ("http", 3000),
            ("tcp-9090", 9090),
            ("udp-53", 53),
            ("admin", 7000)
        ]
    );
    assert_eq!(
        container["readinessProbe"],
        serde_json::json!({"httpGet": {"path": "/healthz", "port": "http"}})
    );
    assert_eq!(container["livenessProbe"], container["readinessProbe"]);
    assert_eq!(
        container["resources"],
        serde_json::json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "128Mi"}})
    );
    assert_eq!(
        pod["imagePullSecrets"],
        serde_json::json!([{"name": "registry"}])
    );
    assert_eq!(
        pod["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "web-data"
    );
    assert_eq!(container["volumeMounts"][0]["mountPath"], "/var/lib/web");
    let labels = &deployment["metadata"]["labels"];
    for (key, value) in [
        ("app.kubernetes.io/name", "web"),
        ("app.kubernetes.io/instance", "web"),
        ("app.kubernetes.io/version", "1.4.2"),
        ("app.kubernetes.io/component", "api"),
        ("app.kubernetes.io/part-of", "shop-platform"),
    ] {
        assert_eq!(labels[key], value, "{key}");
    }
    // The environment: plain keys in a versioned ConfigMap, the secret
    // ones in a versioned Secret, both referred to by their versions.
    let config = one(&objects, "ConfigMap/web-env-");
    assert_eq!(
        config["data"],
        serde_json::json!({"LOG_LEVEL": "info", "WORKERS": "4"})
    );
    let secret = one(&objects, "Secret/web-secret-env-");
    let keys: Vec<&String> = secret["stringData"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["SESSION_SECRET", "STRIPE_API_KEY"]);
    assert_eq!(
        container["envFrom"],
        serde_json::json!([
            {"configMapRef": {"name": config["metadata"]["name"]}},
            {"secretRef": {"name": secret["metadata"]["name"]}},
        ])
    );
    let service = one(&objects, "Service/web");
    assert_eq!(service["spec"]["type"], "NodePort");
    let service_ports: Vec<(&str, u64, &str)> = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["port"].as_u64().unwrap(),
                p["protocol"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        service_ports,
        [
            ("http", 8080, "TCP"),
            ("tcp-9090", 9090, "TCP"),
            ("udp-53", 53, "UDP"),
            ("admin", 7000, "TCP")
        ]
    );
    let claim = one(&objects, "PersistentVolumeClaim/web-data");
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "1Gi");
    // The secret values are never printed; the moved key is named.
    let output = test.stack(&["template"]).success();
    assert!(!output.stdout.contains("s3ssion") && !output.stdout.contains("sk_test_123"));
    assert!(
        output
            .stderr
            .contains("`env.SESSION_SECRET` looks like a secret: it goes into the app's Secret"),
        "{}",
        output.stderr
    );
}

#[test]
fn twenty_ports_are_named_uniquely_and_probes_can_be_turned_off() {
    let ports: Vec<String> = (0..20).map(|i| (9100 + i).to_string()).collect();
    let test = app(&format!(
        "image: ghcr.io/acme/web:1\nports: [8080, 3000, {}]\nhealthCheckPath: null",
        ports.join(", ")
    ));
    let objects = rendered(&test);
    let container = &one(&objects, "Deployment/web")["spec"]["template"]["spec"]["containers"][0];
    let names: Vec<&str> = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 22);
    assert_eq!(&names[..3], ["http", "http-2", "tcp-9100"]);
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 22);
    assert!(names.iter().all(|n| n.len() <= 15));
    assert!(container["readinessProbe"].is_null() && container["livenessProbe"].is_null());
    // Without `healthCheckPath`, a TCP probe on the first port.
    let tcp = rendered(&app("image: ghcr.io/acme/web:1\nports: [5432]"));
    let container = &one(&tcp, "Deployment/web")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["readinessProbe"],
        serde_json::json!({"tcpSocket": {"port": "tcp-5432"}})
    );
}

/// Values that `builtin:app` refuses, and what the error says.
const REFUSED: &[(&str, &str)] = &[
    (
        "image: ghcr.io/acme/web:1\nport: [8080]",
        "`port` is not a value of builtin:app",
    ),
    (
        "image: ghcr.io/acme/web:1\nports: [8080, 8080]",
        "`ports[1]` repeats",
    ),
    (
        "image: ghcr.io/acme/web:1\nports: [{port: 8080, name: a-name-far-too-long}]",
        "port name `a-name-far-too-long` breaks Kubernetes' rule for port names: at most 15 characters",
    ),
    (
        "image: ghcr.io/acme/web:1\nports: [70000]",
        "value `ports[0]` violates the chart's schema",
    ),
    (
        "image: Acme/Web:1",
        "image `Acme/Web:1`: `Acme` is not a repository name",
    ),
    (
        "image: ghcr.io/acme/web:1\nhealthCheckPath: /healthz",
        "`healthCheckPath` needs a port to probe",
    ),
    ("replicas: 2", "image"),
];

#[test]
fn bad_app_values_are_located_errors_and_nothing_is_written() {
    let mut test = app("image: ghcr.io/acme/web:1");
    let server = Server::start(test.path(), &[]);
    let before = server.mutating();
    for (values, message) in REFUSED {
        test = test.file("stacks/stack.yaml", &app_stack(values));
        let output = test.stack(&["apply"]).code(1);
        assert!(
            output.stderr.contains(message) && output.stderr.contains("stacks/stack.yaml:"),
            "{values}: {}",
            output.stderr
        );
    }
    assert_eq!(server.mutating(), before, "a refused apply wrote");
    let suggestion = app("image: ghcr.io/acme/web:1\nport: [8080]")
        .stack(&["lint"])
        .code(1);
    assert!(
        suggestion.stderr.contains("did you mean `ports`?"),
        "{}",
        suggestion.stderr
    );
    let untagged = app("image: ghcr.io/acme/web")
        .stack(&["template"])
        .success();
    assert!(
        untagged
            .stderr
            .contains("image `ghcr.io/acme/web` has no tag: it runs whatever `latest` is"),
        "{}",
        untagged.stderr
    );
    let unknown = Test::new()
        .file(
            "stacks/stack.yaml",
            "defaultEnvironment: development\nenvironments:\n  development:\n    cluster: simulated\nreleases:\n  - name: web\n    chart: builtin:ap\n",
        )
        .stack(&["lint"])
        .code(1);
    assert!(
        unknown.stderr.contains("there is no built-in chart `ap`")
            && unknown.stderr.contains("builtin:app"),
        "{}",
        unknown.stderr
    );
}

/// The live Deployment's env ConfigMap, and that ConfigMap's data.
fn live_config(server: &Server) -> (String, Value) {
    let deployment = server.get("/apis/apps/v1/namespaces/shop/deployments/web");
    assert_eq!(deployment["status"]["readyReplicas"], 1, "{deployment}");
    let name = deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]
        ["name"]
        .as_str()
        .unwrap()
        .to_string();
    let config = server.get(&format!("/api/v1/namespaces/shop/configmaps/{name}"));
    (name, config["data"].clone())
}

/// The names of the `web-env-*` ConfigMaps in the cluster.
fn versions(server: &Server) -> Vec<String> {
    let list = server.get("/api/v1/namespaces/shop/configmaps");
    let mut names: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["metadata"]["name"].as_str())
        .filter(|n| n.starts_with("web-env-"))
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

#[test]
fn a_config_change_rolls_out_rolls_back_exactly_and_old_versions_are_pruned() {
    let level = |level: &str| {
        format!(
            "image: ghcr.io/acme/web:1\nports: [8080]\nkeepConfigVersions: 2\nenv: {{LOG_LEVEL: {level}}}"
        )
    };
    let test = app(&level("info"));
    test.stack(&["apply", "-q"]).success();
    let server = Server::start(test.path(), &[]);
    let (first, data) = live_config(&server);
    assert_eq!(data, serde_json::json!({"LOG_LEVEL": "info"}));
    let generation =
        server.get("/apis/apps/v1/namespaces/shop/deployments/web")["metadata"]["generation"]
            .clone();
    drop(server);

    let test = test.file("stacks/stack.yaml", &app_stack(&level("debug")));
    let diff = test.stack(&["diff"]).success();
    assert!(
        diff.stdout.contains("+ ConfigMap/shop/web-env-")
            && diff.stdout.contains("~ Deployment/shop/web (changed)"),
        "{}",
        diff.stdout
    );
    test.stack(&["apply", "-q"]).success();
    let server = Server::start(test.path(), &[]);
    let (second, data) = live_config(&server);
    assert_ne!(first, second);
    assert_eq!(data, serde_json::json!({"LOG_LEVEL": "debug"}));
    let rolled =
        server.get("/apis/apps/v1/namespaces/shop/deployments/web")["metadata"]["generation"]
            .clone();
    assert_ne!(rolled, generation, "a config change is a rollout");
    let mut both = vec![first.clone(), second.clone()];
    both.sort();
    assert_eq!(versions(&server), both, "the previous version is kept");
    drop(server);

    test.stack(&["rollback", "web", "-q"]).success();
    let server = Server::start(test.path(), &[]);
    assert_eq!(
        live_config(&server),
        (first.clone(), serde_json::json!({"LOG_LEVEL": "info"})),
        "a rollback returns to the old config exactly"
    );
    drop(server);

    // Two more versions: with keepConfigVersions 2, the oldest go.
    let test = test.file("stacks/stack.yaml", &app_stack(&level("warn")));
    test.stack(&["apply", "-q"]).success();
    let test = test.file("stacks/stack.yaml", &app_stack(&level("error")));
    test.stack(&["apply", "-q"]).success();
    let server = Server::start(test.path(), &[]);
    let (last, data) = live_config(&server);
    assert_eq!(data, serde_json::json!({"LOG_LEVEL": "error"}));
    let kept = versions(&server);
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(
        kept.contains(&last) && !kept.contains(&first) && !kept.contains(&second),
        "{kept:?}"
    );
}

/// The stack file of [`app`].
fn app_stack(values: &str) -> String {
    format!(
        "defaultEnvironment: development\nenvironments:\n  development:\n    cluster: simulated\nreleases:\n  - name: web\n    namespace: shop\n    chart: builtin:app\n    values:\n      - {}\n",
        values.trim().replace('\n', "\n        ")
    )
}

#[test]
fn any_chart_can_version_a_config_map_by_annotation() {
    let test = Test::new()
        .file(
            "stacks/stack.yaml",
            "defaultEnvironment: development\nenvironments:\n  development:\n    cluster: simulated\nreleases:\n  - name: api\n    namespace: shop\n    chart: charts/api\n",
        )
        .file(
            "stacks/charts/api/templates/config.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: api-files\n  annotations: {stack.dev/versioned: \"true\"}\ndata: {app.conf: \"port=80\"}\n",
        )
        .file(
            "stacks/charts/api/templates/deployment.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec:\n  selector: {matchLabels: {app: api}}\n  template:\n    metadata: {labels: {app: api}}\n    spec:\n      containers:\n        - name: api\n          image: ghcr.io/acme/api:1\n          env: [{name: CONF, valueFrom: {configMapKeyRef: {name: api-files, key: app.conf}}}]\n          volumeMounts: [{name: files, mountPath: /etc/api}]\n      volumes: [{name: files, configMap: {name: api-files}}]\n",
        );
    let objects = rendered(&test);
    let config = one(&objects, "ConfigMap/api-files-");
    let name = config["metadata"]["name"].as_str().unwrap();
    assert_eq!(name.len(), "api-files-".len() + 7);
    let pod = &one(&objects, "Deployment/api")["spec"]["template"]["spec"];
    assert_eq!(pod["volumes"][0]["configMap"]["name"], name);
    assert_eq!(
        pod["containers"][0]["env"][0]["valueFrom"]["configMapKeyRef"]["name"],
        name
    );
    test.stack(&["apply", "-q"]).success();
    let server = Server::start(test.path(), &[]);
    assert_eq!(
        server.get(&format!("/api/v1/namespaces/shop/configmaps/{name}"))["data"]["app.conf"],
        "port=80"
    );
}

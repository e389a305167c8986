//! Synthetic stacks for benchmarks and load tests: `releases` releases of
//! `objects` objects each, over a few charts, with needs forming layers (each
//! release needs up to two releases of the previous layer).

use std::fmt::Write as _;
use std::path::Path;

/// Kinds the synthetic charts cycle through.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "configmap",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ release.name }}-cm-{{ i }}\n  labels:\n    app: {{ release.name }}\ndata:\n  level: {{ values.logLevel | quote }}\n  owner: {{ values.owner | quote }}\n  index: \"{{ i }}\"\n",
    ),
    (
        "service",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ release.name }}-svc-{{ i }}\n  labels:\n    app: {{ release.name }}\nspec:\n  selector:\n    app: {{ release.name }}\n  ports:\n    - name: http\n      port: {{ values.port }}\n      targetPort: {{ values.port }}\n",
    ),
    (
        "deployment",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ release.name }}-deploy-{{ i }}\n  labels:\n    app: {{ release.name }}\nspec:\n  replicas: {{ values.replicas }}\n  selector:\n    matchLabels:\n      app: {{ release.name }}-{{ i }}\n  template:\n    metadata:\n      labels:\n        app: {{ release.name }}-{{ i }}\n    spec:\n      containers:\n        - name: app\n          image: \"{{ values.image.repository }}:{{ values.image.tag }}\"\n          ports:\n            - containerPort: {{ values.port }}\n          resources: {{ values.resources | tojson }}\n",
    ),
    (
        "secret",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ release.name }}-secret-{{ i }}\ntype: Opaque\nstringData:\n  token: \"{{ release.name | sha256 }}-{{ i }}\"\n",
    ),
];

const CHARTS: usize = 4;

/// Releases per layer of the needs graph.
const LAYER: usize = 20;

/// A release's name, namespace, chart, labels and needs (up to two
/// releases of the layer before): the same words in a stack file and a
/// helmfile.
pub fn release_entry(index: usize) -> String {
    let mut text = format!(
        "  - name: r{index}\n    namespace: ns{}\n    chart: charts/chart{}\n    labels: {{tier: t{}}}\n",
        index % 10,
        index % CHARTS,
        index / LAYER
    );
    if index >= LAYER {
        let first = index - LAYER;
        let second = index - LAYER + 1 - usize::from(index % LAYER == LAYER - 1) * 2;
        let _ = writeln!(
            text,
            "    needs: [ns{}/r{first}, ns{}/r{second}]",
            first % 10,
            second % 10
        );
    }
    text
}

/// Write a synthetic stack under `dir` (`stack.yaml`, `charts/`).
pub fn generate(dir: &Path, releases: usize, objects: usize) -> std::io::Result<()> {
    for chart in 0..CHARTS {
        let chart_dir = dir.join(format!("charts/chart{chart}"));
        fs_err::create_dir_all(chart_dir.join("templates"))?;
        fs_err::write(
            chart_dir.join("values.yaml"),
            "replicas: 2\nport: 8080\nlogLevel: info\nowner: platform\nimage: {repository: registry.example.com/app, tag: \"1.0.0\"}\nresources:\n  requests: {cpu: 100m, memory: 128Mi}\n  limits: {memory: 256Mi}\n",
        )?;
        for i in 0..objects {
            let (kind, template) = TEMPLATES[(i + chart) % TEMPLATES.len()];
            let body = template.replace("{{ i }}", &i.to_string());
            fs_err::write(
                chart_dir.join(format!("templates/{i:02}-{kind}.yaml")),
                body,
            )?;
        }
    }
    let mut stack = String::from(
        "environments:\n  default:\n    cluster: simulated\n    values: [common.yaml]\nreleases:\n",
    );
    for index in 0..releases {
        stack.push_str(&release_entry(index));
        stack.push_str("    values:\n      - {owner: \"{{ values.team }}\"}\n");
    }
    fs_err::write(dir.join("stack.yaml"), stack)?;
    fs_err::write(dir.join("common.yaml"), "team: platform-team\n")?;
    Ok(())
}

//! One synthetic stack of Helm charts, written both as a stack file and as
//! a helmfile, for head-to-head benchmarks: `releases` releases of four
//! Helm charts (`Chart.yaml`, Go templates) of `objects` objects each —
//! ConfigMaps, Services and Deployments — over ten namespaces, each release
//! past the first layer of 20 needing two releases of the layer before (as
//! in `synthetic.rs`), and each taking one value from its environment.

use std::path::Path;

/// Kinds the charts cycle through; `INDEX` is the template's number.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "configmap",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm-INDEX\n  labels:\n    app: {{ .Release.Name }}\ndata:\n  level: {{ .Values.logLevel | quote }}\n  owner: {{ .Values.owner | quote }}\n  index: \"INDEX\"\n",
    ),
    (
        "service",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}-svc-INDEX\n  labels:\n    app: {{ .Release.Name }}\nspec:\n  selector:\n    app: {{ .Release.Name }}\n  ports:\n    - name: http\n      port: {{ .Values.port }}\n      targetPort: {{ .Values.port }}\n",
    ),
    (
        "deployment",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-deploy-INDEX\n  labels:\n    app: {{ .Release.Name }}\nspec:\n  replicas: {{ .Values.replicas }}\n  selector:\n    matchLabels:\n      app: {{ .Release.Name }}-INDEX\n  template:\n    metadata:\n      labels:\n        app: {{ .Release.Name }}-INDEX\n    spec:\n      containers:\n        - name: app\n          image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n          ports:\n            - containerPort: {{ .Values.port }}\n          resources:\n            {{- toYaml .Values.resources | nindent 12 }}\n",
    ),
];

const CHARTS: usize = 4;

/// Where the stack file's environment deploys.
pub enum Target<'a> {
    /// `cluster: simulated`: the embedded simulator.
    Simulated,
    /// `kubeContext: CONTEXT` of the caller's KUBECONFIG.
    Context(&'a str),
}

/// Write the charts, `common.yaml` (the environment's values),
/// `stack.yaml` and `helmfile.yaml.gotmpl` under `dir`; both files name
/// `helm` as the helm to run.
pub fn generate(
    dir: &Path,
    releases: usize,
    objects: usize,
    helm: &Path,
    target: &Target,
) -> std::io::Result<()> {
    for chart in 0..CHARTS {
        write_chart(&dir.join(format!("charts/chart{chart}")), chart, objects)?;
    }
    fs_err::write(dir.join("common.yaml"), "team: platform-team\n")?;
    let helm = helm.display();
    let environment = match target {
        Target::Simulated => "cluster: simulated".to_string(),
        Target::Context(context) => format!("kubeContext: {context}"),
    };
    let mut stack = format!(
        "helmBinary: {helm}\nenvironments:\n  default:\n    {environment}\n    values: [common.yaml]\nreleases:\n"
    );
    let context = match target {
        Target::Simulated => String::new(),
        Target::Context(context) => format!("  kubeContext: {context}\n"),
    };
    let mut helmfile = format!(
        "environments:\n  default:\n    values: [common.yaml]\n---\nhelmBinary: {helm}\nhelmDefaults:\n{context}  wait: true\n  createNamespace: true\nreleases:\n"
    );
    for index in 0..releases {
        let release = crate::synthetic::release_entry(index);
        stack.push_str(&release);
        stack.push_str("    values:\n      - {owner: \"{{ values.team }}\"}\n");
        helmfile.push_str(&release.replace("chart: charts/", "chart: ./charts/"));
        helmfile.push_str("    values:\n      - owner: {{ .Values.team | quote }}\n");
    }
    fs_err::write(dir.join("stack.yaml"), stack)?;
    fs_err::write(dir.join("helmfile.yaml.gotmpl"), helmfile)?;
    Ok(())
}

/// A Helm chart of `objects` templates, starting its cycle of kinds at
/// `chart`.
fn write_chart(dir: &Path, chart: usize, objects: usize) -> std::io::Result<()> {
    fs_err::create_dir_all(dir.join("templates"))?;
    fs_err::write(
        dir.join("Chart.yaml"),
        format!("apiVersion: v2\nname: chart{chart}\nversion: 0.1.0\ntype: application\n"),
    )?;
    fs_err::write(
        dir.join("values.yaml"),
        "replicas: 2\nport: 8080\nlogLevel: info\nowner: platform\nimage: {repository: registry.example.com/app, tag: \"1.0.0\"}\nresources:\n  requests: {cpu: 100m, memory: 128Mi}\n  limits: {memory: 256Mi}\n",
    )?;
    for i in 0..objects {
        let (kind, template) = TEMPLATES[(i + chart) % TEMPLATES.len()];
        fs_err::write(
            dir.join(format!("templates/{i:02}-{kind}.yaml")),
            template.replace("INDEX", &i.to_string()),
        )?;
    }
    Ok(())
}

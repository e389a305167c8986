//! Real kubectl as the referee: it must accept the simulator as a cluster
//! (`stack cluster serve`). Skipped without kubectl; required in CI.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::{Server, Test, external_tool, unindent};

pub struct Kubectl {
    binary: PathBuf,
    server: Server,
    home: tempfile::TempDir,
    dir: PathBuf,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Kubectl {
    pub fn start(test: &Test) -> Option<Self> {
        let binary = external_tool("STACK_KUBECTL", "kubectl")?;
        let server = Server::start(test.path(), &[]);
        Some(Self {
            binary,
            server,
            home: tempfile::tempdir().unwrap(),
            dir: test.path().to_path_buf(),
        })
    }

    fn run(&self, args: &[&str]) -> Run {
        let output = Command::new(&self.binary)
            .args(args)
            .env("KUBECONFIG", &self.server.kubeconfig)
            .env("HOME", self.home.path())
            .current_dir(&self.dir)
            .output()
            .expect("run kubectl");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(
            run.code, 0,
            "kubectl {args:?} failed:\n{}\n{}",
            run.stdout, run.stderr
        );
        run.stdout
    }

    fn write(&self, name: &str, yaml: &str) -> String {
        std::fs::write(self.dir.join(name), unindent(yaml)).unwrap();
        name.to_string()
    }

    fn get_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }
}

fn deployment(image: &str, label: Option<&str>) -> String {
    let labels = label.map_or(String::new(), |l| format!("\n  labels: {{team: {l}}}"));
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: ns{labels}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: web\n        image: {image}\n"
    )
}

fn with_namespace(kubectl: &Kubectl) {
    let file = kubectl.write(
        "ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns\n",
    );
    kubectl.ok(&["apply", "--server-side", "-f", &file]);
}

#[test]
fn apply_server_side_creates_updates_and_removes_fields() {
    let test = Test::new();
    let Some(kubectl) = Kubectl::start(&test) else {
        return;
    };
    with_namespace(&kubectl);
    let file = kubectl.write("web.yaml", &deployment("nginx:1.25", Some("a")));
    assert!(
        kubectl
            .ok(&["apply", "--server-side", "-f", &file])
            .contains("serverside-applied")
    );
    let live = kubectl.get_json(&["deployment", "web", "-n", "ns"]);
    assert_eq!(live["metadata"]["labels"]["team"], "a");
    let file = kubectl.write("web.yaml", &deployment("nginx:1.26", None));
    kubectl.ok(&["apply", "--server-side", "-f", &file]);
    let live = kubectl.get_json(&["deployment", "web", "-n", "ns"]);
    assert!(
        live["metadata"]["labels"]["team"].is_null(),
        "a field the manager stopped sending is removed"
    );
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.26"
    );
    assert_eq!(live["metadata"]["generation"], 2);
}

#[test]
fn a_conflict_names_the_other_manager_until_forced() {
    let test = Test::new();
    let Some(kubectl) = Kubectl::start(&test) else {
        return;
    };
    with_namespace(&kubectl);
    let file = kubectl.write("web.yaml", &deployment("nginx:1.25", None));
    kubectl.ok(&["apply", "--server-side", "-f", &file]);
    let file = kubectl.write("other.yaml", &deployment("nginx:9", None));
    let run = kubectl.run(&[
        "apply",
        "--server-side",
        "--field-manager=other",
        "-f",
        &file,
    ]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("conflict with \"kubectl\""),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(".spec.template.spec.containers[name=\"web\"].image"),
        "{}",
        run.stderr
    );
    kubectl.ok(&[
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-f",
        &file,
    ]);
    let live = kubectl.get_json(&["deployment", "web", "-n", "ns"]);
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:9"
    );
}

#[test]
fn get_as_json_and_as_a_table() {
    let test = Test::new();
    let Some(kubectl) = Kubectl::start(&test) else {
        return;
    };
    with_namespace(&kubectl);
    let file = kubectl.write("web.yaml", &deployment("nginx:1.25", None));
    kubectl.ok(&["apply", "--server-side", "-f", &file]);
    kubectl.ok(&[
        "rollout",
        "status",
        "deployment/web",
        "-n",
        "ns",
        "--timeout=60s",
    ]);
    let table = kubectl.ok(&["get", "deployments", "-n", "ns"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[..4], ["web", "1/1", "1", "1"], "{table}");
    let list = kubectl.get_json(&["deployments", "-n", "ns"]);
    assert_eq!(list["items"][0]["metadata"]["name"], "web");
    let pods = kubectl.get_json(&["pods", "-n", "ns", "-l", "app=web"]);
    assert_eq!(pods["items"].as_array().unwrap().len(), 1);
}

#[test]
fn diff_exits_zero_without_changes_and_one_with() {
    let test = Test::new();
    let Some(kubectl) = Kubectl::start(&test) else {
        return;
    };
    with_namespace(&kubectl);
    let file = kubectl.write("web.yaml", &deployment("nginx:1.25", None));
    kubectl.ok(&["apply", "--server-side", "-f", &file]);
    // Let the controllers settle, so the live object stays put while kubectl compares.
    kubectl.ok(&[
        "rollout",
        "status",
        "deployment/web",
        "-n",
        "ns",
        "--timeout=60s",
    ]);
    assert_eq!(kubectl.run(&["diff", "-f", &file]).code, 0);
    assert_eq!(kubectl.run(&["diff", "--server-side", "-f", &file]).code, 0);
    let changed = kubectl.write("changed.yaml", &deployment("nginx:1.26", None));
    let run = kubectl.run(&["diff", "-f", &changed]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout.contains("+      - image: nginx:1.26")
            || run.stdout.contains("+        image: nginx:1.26"),
        "{}",
        run.stdout
    );
    let changed_version = run
        .stdout
        .lines()
        .any(|l| (l.starts_with('-') || l.starts_with('+')) && l.contains("resourceVersion"));
    assert!(
        !changed_version,
        "a dry run keeps the resourceVersion:\n{}",
        run.stdout
    );
}

#[test]
fn delete_and_delete_namespace() {
    let test = Test::new();
    let Some(kubectl) = Kubectl::start(&test) else {
        return;
    };
    with_namespace(&kubectl);
    let file = kubectl.write("web.yaml", &deployment("nginx:1.25", None));
    kubectl.ok(&["apply", "--server-side", "-f", &file]);
    kubectl.ok(&["delete", "-f", &file]);
    let again = kubectl.run(&["delete", "-f", &file]);
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.contains("deployments.apps \"web\" not found"),
        "{}",
        again.stderr
    );
    kubectl.ok(&["apply", "--server-side", "-f", &file]);
    kubectl.ok(&["delete", "namespace", "ns"]);
    let gone = kubectl.run(&["get", "namespace", "ns"]);
    assert_eq!(gone.code, 1);
    assert!(gone.stderr.contains("NotFound"), "{}", gone.stderr);
    let deployments = kubectl.run(&["get", "deployment", "web", "-n", "ns"]);
    assert_eq!(
        deployments.code, 1,
        "the namespace took its content with it"
    );
}

#[test]
fn rollout_status_and_wait_for_a_job() {
    let test = Test::new();
    let Some(kubectl) = Kubectl::start(&test) else {
        return;
    };
    with_namespace(&kubectl);
    let file = kubectl.write("web.yaml", &deployment("nginx:1.25", None));
    kubectl.ok(&["apply", "--server-side", "-f", &file]);
    assert!(
        kubectl
            .ok(&[
                "rollout",
                "status",
                "deployment/web",
                "-n",
                "ns",
                "--timeout=60s"
            ])
            .contains("successfully rolled out")
    );
    let job = kubectl.write(
        "job.yaml",
        "
        apiVersion: batch/v1
        kind: Job
        metadata: {name: hello, namespace: ns}
        spec:
          template:
            spec:
              restartPolicy: Never
              containers: [{name: c, image: busybox}]
        ",
    );
    kubectl.ok(&["apply", "--server-side", "-f", &job]);
    assert!(
        kubectl
            .ok(&[
                "wait",
                "--for=condition=complete",
                "job/hello",
                "-n",
                "ns",
                "--timeout=60s"
            ])
            .contains("condition met")
    );
}

#[test]
fn api_resources_lists_what_is_served() {
    let test = Test::new();
    let Some(kubectl) = Kubectl::start(&test) else {
        return;
    };
    let resources = kubectl.ok(&["api-resources"]);
    for line in [
        "deployments ",
        "configmaps ",
        "leases ",
        "customresourcedefinitions ",
        "ingresses ",
    ] {
        assert!(
            resources.lines().any(|l| l.starts_with(line)),
            "{line} missing:\n{resources}"
        );
    }
}

#[test]
fn a_crd_and_then_its_custom_resource() {
    let test = Test::new();
    let Some(kubectl) = Kubectl::start(&test) else {
        return;
    };
    with_namespace(&kubectl);
    let crd = kubectl.write(
        "crd.yaml",
        "
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata: {name: widgets.example.com}
        spec:
          group: example.com
          scope: Namespaced
          names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
          versions:
          - name: v1
            served: true
            storage: true
            schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
        ",
    );
    kubectl.ok(&["apply", "--server-side", "-f", &crd]);
    kubectl.ok(&[
        "wait",
        "--for=condition=established",
        "crd/widgets.example.com",
        "--timeout=60s",
    ]);
    let widget = kubectl.write("widget.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1, namespace: ns}\nspec: {size: 3}\n");
    kubectl.ok(&["apply", "--server-side", "-f", &widget]);
    assert_eq!(
        kubectl.ok(&["get", "wd", "w1", "-n", "ns", "-o", "jsonpath={.spec.size}"]),
        "3"
    );
}

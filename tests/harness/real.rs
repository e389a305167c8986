//! A real control plane for a test (etcd, kube-apiserver, controller-manager,
//! scheduler and kwok, built by `scripts/real-cluster` into the tools cache):
//! started in a temporary folder, stopped when dropped. Without the built
//! binaries the test is skipped, or fails when `STACK_REQUIRE_EXTERNAL` is
//! set (CI builds them first).

use std::path::PathBuf;
use std::process::Command;

use super::{Output, Test, output_of, repository};

/// The context the script writes into its kubeconfig.
pub const CONTEXT: &str = "stack-real";

pub struct RealCluster {
    dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    kubectl: PathBuf,
}

fn script() -> PathBuf {
    repository().join("scripts/real-cluster")
}

impl RealCluster {
    /// A fresh control plane, ready; `None` (skipped) when its binaries or
    /// kubectl are not there.
    pub fn start() -> Option<Self> {
        let kubectl = super::external_tool("STACK_KUBECTL", "kubectl")?;
        let bin = Command::new(script())
            .arg("env")
            .output()
            .expect("run scripts/real-cluster env");
        let bin = PathBuf::from(String::from_utf8_lossy(&bin.stdout).trim());
        if !bin.join("kube-apiserver").is_file() {
            assert!(
                std::env::var_os("STACK_REQUIRE_EXTERNAL").is_none(),
                "the real control plane is required (STACK_REQUIRE_EXTERNAL is set) but not built in {}; run `scripts/real-cluster build`",
                bin.display()
            );
            eprintln!("skipped: the real control plane is not built (scripts/real-cluster build)");
            return None;
        }
        let dir = tempfile::tempdir().expect("temporary directory");
        let started = output_of(Command::new(script()).arg("start").arg(dir.path()));
        assert_eq!(
            started.code, 0,
            "the real control plane did not start: {}",
            started.stderr
        );
        Some(Self {
            kubeconfig: dir.path().join("kubeconfig"),
            dir,
            kubectl,
        })
    }

    /// `kubectl ARGS` against this cluster.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        output_of(
            Command::new(&self.kubectl)
                .args(args)
                .env("KUBECONFIG", &self.kubeconfig)
                .env("HOME", self.dir.path()),
        )
    }

    /// An object as JSON, or `None` when it does not exist.
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<serde_json::Value> {
        let output = self.kubectl(&["get", kind, name, "-n", namespace, "-o", "json"]);
        (output.code == 0).then(|| serde_json::from_str(&output.stdout).expect("kubectl JSON"))
    }

    /// Write requests `stack` has made so far (creates, updates, patches,
    /// deletes; not dry runs), from the API server's audit log: the
    /// controllers' own writes are not in it, kubectl's and the script's are
    /// told apart by their user agent.
    pub fn writes_by_stack(&self) -> usize {
        self.audited(|verb, uri| {
            matches!(
                verb,
                "create" | "update" | "patch" | "delete" | "deletecollection"
            ) && !uri.contains("dryRun=")
        })
    }

    /// Requests of any kind `stack` has made so far.
    pub fn requests_by_stack(&self) -> usize {
        self.audited(|_, _| true)
    }

    /// Completed requests of `stack` (it sends no user agent) whose verb
    /// and URI `keep`, from the audit log.
    fn audited(&self, keep: impl Fn(&str, &str) -> bool) -> usize {
        let log =
            std::fs::read_to_string(self.dir.path().join("logs/audit.log")).unwrap_or_default();
        log.lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|entry| {
                entry["userAgent"]
                    .as_str()
                    .unwrap_or("stack")
                    .starts_with("stack")
                    && entry["stage"] == "ResponseComplete"
                    && keep(
                        entry["verb"].as_str().unwrap_or_default(),
                        entry["requestURI"].as_str().unwrap_or_default(),
                    )
            })
            .count()
    }

    /// The folder holding the cluster's state, logs and kubeconfig.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The API server's address, as the kubeconfig names it.
    pub fn server(&self) -> String {
        let kubeconfig = std::fs::read_to_string(&self.kubeconfig).expect("read the kubeconfig");
        kubeconfig
            .lines()
            .find_map(|line| line.trim().strip_prefix("server: "))
            .expect("a server in the kubeconfig")
            .to_string()
    }

    /// Run a component action of the script (`kill-apiserver`,
    /// `restart-etcd`, ...) on this cluster.
    pub fn component(&self, action: &str) {
        let done = output_of(Command::new(script()).arg(action).arg(self.dir.path()));
        assert_eq!(done.code, 0, "{action}: {}", done.stderr);
    }

    /// A copy of the example platform whose development environment is
    /// this cluster, reached as a user's cluster is: a context of a
    /// kubeconfig.
    pub fn example(&self) -> Test {
        let test = Test::example().env("KUBECONFIG", self.kubeconfig.to_str().expect("UTF-8"));
        let path = test.path().join("stacks/platform.yaml");
        let stack = std::fs::read_to_string(&path).expect("read the stack");
        let real = stack.replacen(
            "    cluster: simulated",
            &format!("    kubeContext: {CONTEXT}"),
            1,
        );
        std::fs::write(&path, real).expect("write the stack");
        test
    }
}

impl Drop for RealCluster {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

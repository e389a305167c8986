//! `stack` and kubectl on a real control plane (`scripts/real-cluster`:
//! etcd, kube-apiserver, controller-manager, scheduler, kwok nodes), the
//! same synthetic stack as `benches/apply.rs` (200 releases × 10 objects,
//! needs in 10 layers):
//!
//! 1. first `stack apply` (waits for readiness) vs `kubectl apply
//!    --server-side -f` followed by `kubectl wait --for=condition=Available`
//!    of every Deployment (both wait; `kubectl rollout status` takes one
//!    workload per call), and vs the kubectl apply alone; each onto a
//!    fresh cluster, taking turns, best of `STACK_BENCH_RUNS` (3);
//! 2. two floors of that first apply: the chain of needs is 10 layers, and
//!    each must take at least one release's writes and its slowest
//!    rollout, measured as the time of a lone release of each chart (the
//!    latency floor); and the time the control plane needs to roll the
//!    whole platform out with no order at all — the same stack without
//!    needs, every release at once (`--concurrency 200`), onto a fresh
//!    cluster (the throughput floor);
//! 3. `stack diff` with nothing changed vs `kubectl diff --server-side`
//!    and plain `kubectl diff` (kubectl with a warm discovery cache), and
//!    the API requests `stack diff` makes per object;
//! 4. a no-op `stack apply`: its write requests (from the audit log).
//!
//! Needs the control plane built (`scripts/real-cluster build`) and kubectl
//! (`STACK_KUBECTL` or PATH). Run: `cargo bench --bench real`

#[path = "support/synthetic.rs"]
mod synthetic;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const RELEASES: usize = 200;
const OBJECTS: usize = 10;
const LAYERS: usize = 10;
const CHARTS: usize = 4;

#[path = "support/runs.rs"]
mod support_runs;

#[path = "../tests/harness/mod.rs"]
#[allow(dead_code, clippy::all, clippy::pedantic)]
mod harness;

use harness::real::{CONTEXT, RealCluster};

fn runs() -> usize {
    support_runs::runs(3)
}

/// `stack ARGS` in `dir` against `cluster`: its time and stdout.
fn stack(cluster: &RealCluster, dir: &Path, args: &[&str]) -> (Duration, String) {
    let start = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_stack"))
        .args(args)
        .current_dir(dir)
        .env("KUBECONFIG", &cluster.kubeconfig)
        .output()
        .expect("run stack");
    let elapsed = start.elapsed();
    let code = output.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 2,
        "stack {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        elapsed,
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// `kubectl ARGS` against `cluster`, with its discovery cache in `home`.
fn kubectl(binary: &Path, cluster: &RealCluster, home: &Path, args: &[&str]) -> Duration {
    let start = Instant::now();
    let output = Command::new(binary)
        .args(args)
        .env("KUBECONFIG", &cluster.kubeconfig)
        .env("HOME", home)
        .output()
        .expect("run kubectl");
    let elapsed = start.elapsed();
    assert!(
        output.status.code().unwrap_or(-1) <= 1,
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn ratio(theirs: Duration, ours: Duration) -> f64 {
    theirs.as_secs_f64() / ours.as_secs_f64()
}

/// Point a generated stack at the real cluster's context.
fn on_real_cluster(dir: &Path) {
    let path = dir.join("stack.yaml");
    let stack = std::fs::read_to_string(&path).expect("read the stack");
    let real = stack.replacen("cluster: simulated", &format!("kubeContext: {CONTEXT}"), 1);
    std::fs::write(path, real).expect("write the stack");
}

/// The rendered manifests (`stack template --output-dir`), the namespaces
/// they need, and the Deployments among them in one file, for kubectl.
struct Manifests {
    dir: PathBuf,
    namespaces: PathBuf,
    workloads: PathBuf,
}

fn manifests(cluster: &RealCluster, ours: &Path) -> Manifests {
    let dir = ours.join("manifests");
    let dir_arg = dir.to_str().expect("UTF-8 path");
    stack(
        cluster,
        ours,
        &[
            "template",
            "--show-secrets",
            "--skip-tests",
            "--output-dir",
            dir_arg,
        ],
    );
    let mut deployments = Vec::new();
    let mut stack_files = vec![dir.clone()];
    while let Some(path) = stack_files.pop() {
        if path.is_dir() {
            stack_files.extend(
                std::fs::read_dir(&path)
                    .expect("read the manifests")
                    .map(|entry| entry.expect("an entry").path()),
            );
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read a manifest");
        deployments.extend(
            text.split("\n---")
                .filter(|document| document.contains("kind: Deployment"))
                .map(|document| document.trim_start_matches('\n').to_string()),
        );
    }
    let workloads = ours.join("workloads.yaml");
    std::fs::write(&workloads, deployments.join("\n---\n")).expect("write the workloads");
    let namespaces = ours.join("namespaces.yaml");
    let documents: Vec<String> = (0..10)
        .map(|n| format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns{n}\n"))
        .collect();
    std::fs::write(&namespaces, documents.join("---\n")).expect("write the namespaces");
    Manifests {
        dir,
        namespaces,
        workloads,
    }
}

/// kubectl's first apply onto a fresh cluster (namespaces first, untimed,
/// which also warms its discovery cache): the apply, and the rollout
/// status of every Deployment after it.
fn kubectl_first_apply(binary: &Path, manifests: &Manifests) -> (Duration, Duration) {
    let cluster = RealCluster::start().expect("the real control plane");
    let home = tempfile::tempdir().expect("kubectl home");
    let path = |p: &Path| p.to_str().expect("UTF-8 path").to_string();
    kubectl(
        binary,
        &cluster,
        home.path(),
        &["apply", "--server-side", "-f", &path(&manifests.namespaces)],
    );
    let apply = kubectl(
        binary,
        &cluster,
        home.path(),
        &["apply", "--server-side", "-R", "-f", &path(&manifests.dir)],
    );
    // `kubectl rollout status` takes one resource per call; `kubectl wait`
    // waits for them all in one process, the faster way for kubectl.
    let rollout = kubectl(
        binary,
        &cluster,
        home.path(),
        &[
            "wait",
            "--for=condition=Available",
            "--timeout=600s",
            "-f",
            &path(&manifests.workloads),
        ],
    );
    (apply, rollout)
}

/// The same stack without needs: every release may start at once.
fn unordered(ours: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    synthetic::generate(dir.path(), RELEASES, OBJECTS).expect("generate stack");
    on_real_cluster(dir.path());
    let path = dir.path().join("stack.yaml");
    let stack = std::fs::read_to_string(&path).expect("read the stack");
    let free: Vec<&str> = stack.lines().filter(|l| !l.contains("needs:")).collect();
    std::fs::write(path, free.join("\n") + "\n").expect("write the stack");
    assert_eq!(
        std::fs::read_to_string(ours.join("stack.yaml"))
            .expect("read the stack")
            .matches("needs:")
            .count(),
        RELEASES - RELEASES / LAYERS,
        "every release past the first layer has needs"
    );
    dir
}

/// A stack of one release of `chart` of the synthetic stack, named `name`.
fn lone_release(ours: &Path, chart: usize, name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    let copy = Command::new("cp")
        .arg("-r")
        .arg(ours.join("charts"))
        .arg(ours.join("common.yaml"))
        .arg(dir.path())
        .status()
        .expect("copy the charts");
    assert!(copy.success());
    std::fs::write(
        dir.path().join("stack.yaml"),
        format!(
            "environments:\n  default:\n    kubeContext: {CONTEXT}\n    values: [common.yaml]\nreleases:\n  - name: {name}\n    namespace: floor\n    chart: charts/chart{chart}\n    values:\n      - {{owner: \"{{{{ values.team }}}}\"}}\n"
        ),
    )
    .expect("write the stack");
    dir
}

/// The seconds a release took in `stack apply -o json`.
fn release_seconds(summary: &str) -> Duration {
    let rows: serde_json::Value = serde_json::from_str(summary).expect("apply -o json");
    Duration::from_secs_f64(rows[0]["seconds"].as_f64().expect("seconds"))
}

fn main() {
    let Some(binary) = harness::external_tool("STACK_KUBECTL", "kubectl") else {
        println!("kubectl not found (set STACK_KUBECTL): nothing measured");
        return;
    };
    let runs = runs();
    let ours = tempfile::tempdir().expect("temporary directory");
    synthetic::generate(ours.path(), RELEASES, OBJECTS).expect("generate stack");
    on_real_cluster(ours.path());
    let objects = RELEASES * OBJECTS;
    println!(
        "real control plane: {RELEASES} releases × {OBJECTS} objects = {objects} objects; best of {runs} runs, each first apply onto a fresh cluster"
    );

    // First applies, taking turns; the first stack cluster is kept for the
    // diff figures.
    let mut kept = None;
    let mut manifest_files = None;
    let mut turns = Vec::new();
    let free = unordered(ours.path());
    for run in 0..runs {
        let Some(cluster) = RealCluster::start() else {
            println!(
                "the real control plane is not built (scripts/real-cluster build): nothing measured"
            );
            return;
        };
        let (ours_time, _) = stack(&cluster, ours.path(), &["apply", "-q"]);
        let manifests = manifest_files.get_or_insert_with(|| manifests(&cluster, ours.path()));
        let (apply, rollout) = kubectl_first_apply(&binary, manifests);
        let throughput = {
            let fresh = RealCluster::start().expect("the real control plane");
            stack(
                &fresh,
                free.path(),
                &["apply", "-q", "--concurrency", "200"],
            )
            .0
        };
        println!(
            "  run {}: stack apply {:.0} ms; kubectl apply {:.0} ms + wait {:.0} ms; without needs, all at once {:.0} ms",
            run + 1,
            ms(ours_time),
            ms(apply),
            ms(rollout),
            ms(throughput)
        );
        turns.push((ours_time, apply, apply + rollout, throughput));
        if run == 0 {
            kept = Some(cluster);
        }
    }
    let cluster = kept.expect("one run");
    let manifests = manifest_files.expect("manifests");
    let best = |pick: fn(&(Duration, Duration, Duration, Duration)) -> Duration| {
        turns.iter().map(pick).min().expect("one run")
    };
    let (ours_apply, their_apply, their_waited) = (best(|t| t.0), best(|t| t.1), best(|t| t.2));
    let throughput_floor = best(|t| t.3);

    // The floor: a lone release of each chart, best of the runs, onto the
    // kept cluster (idle by now); every layer holds each chart.
    let mut slowest = Duration::ZERO;
    for chart in 0..CHARTS {
        let lone = (0..runs)
            .map(|run| {
                let dir = lone_release(ours.path(), chart, &format!("floor-{chart}-{run}"));
                release_seconds(&stack(&cluster, dir.path(), &["apply", "-o", "json"]).1)
            })
            .min()
            .expect("one run");
        println!(
            "  a lone release of chart{chart}: {:.0} ms (writes, readiness, revision)",
            ms(lone)
        );
        slowest = slowest.max(lone);
    }
    let floor = slowest * u32::try_from(LAYERS).expect("few layers");

    // Diff and no-op apply on the applied cluster.
    let before = cluster.requests_by_stack();
    stack(&cluster, ours.path(), &["diff", "--detailed-exitcode"]);
    let diff_requests = cluster.requests_by_stack() - before;
    let diff_time = (0..runs)
        .map(|_| stack(&cluster, ours.path(), &["diff", "--detailed-exitcode"]).0)
        .min()
        .expect("one run");
    let writes = cluster.writes_by_stack();
    let (noop_time, _) = stack(&cluster, ours.path(), &["apply", "-q"]);
    let noop_writes = cluster.writes_by_stack() - writes;
    let home = tempfile::tempdir().expect("kubectl home");
    let dir = manifests.dir.to_str().expect("UTF-8 path");
    kubectl(
        &binary,
        &cluster,
        home.path(),
        &["api-resources", "-o", "name"],
    );
    let server_side = kubectl(
        &binary,
        &cluster,
        home.path(),
        // The Secrets' stringData is stack's: without --force-conflicts
        // the dry run stops at the first conflict.
        &[
            "diff",
            "--server-side",
            "--force-conflicts",
            "-R",
            "-f",
            dir,
        ],
    );
    let client_side = kubectl(&binary, &cluster, home.path(), &["diff", "-R", "-f", dir]);

    #[allow(clippy::cast_precision_loss)]
    let per_object = diff_requests as f64 / objects as f64;
    println!(
        "stack apply onto an empty cluster:          {:>9.0} ms   (waits for readiness)",
        ms(ours_apply)
    );
    println!(
        "kubectl apply --server-side + kubectl wait: {:>9.0} ms   stack apply is {:.1}× faster",
        ms(their_waited),
        ratio(their_waited, ours_apply)
    );
    println!(
        "kubectl apply --server-side alone:          {:>9.0} ms   (does not wait) {:.1}× stack apply's time",
        ms(their_apply),
        ratio(their_apply, ours_apply)
    );
    println!(
        "latency floor ({LAYERS} layers × the slowest lone release): {:>6.0} ms   stack apply is {:.2}× it",
        ms(floor),
        ratio(ours_apply, floor)
    );
    println!(
        "throughput floor (no needs, all at once):  {:>9.0} ms   stack apply is {:.2}× it",
        ms(throughput_floor),
        ratio(ours_apply, throughput_floor)
    );
    println!(
        "stack diff, nothing changed:                {:>9.0} ms   {diff_requests} API requests = {per_object:.3} per object",
        ms(diff_time)
    );
    println!(
        "kubectl diff --server-side (same manifests):{:>9.0} ms   stack diff is {:.1}× faster",
        ms(server_side),
        ratio(server_side, diff_time)
    );
    println!(
        "kubectl diff (client-side):                 {:>9.0} ms   stack diff is {:.1}× faster",
        ms(client_side),
        ratio(client_side, diff_time)
    );
    println!(
        "stack apply, nothing changed:               {:>9.0} ms   {noop_writes} write requests",
        ms(noop_time)
    );
}

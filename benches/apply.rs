//! `stack diff` and `stack apply` on a synthetic stack of 200 releases × 10
//! objects against `stack cluster serve`, next to kubectl doing the same job
//! on the same manifests (`stack template --output-dir`) in the same run:
//!
//! 1. `stack diff` with nothing changed vs `kubectl diff -f`; API requests
//!    per object for `stack diff` (from the simulator's `/metrics`);
//! 2. `stack apply` onto an empty cluster (it waits for readiness), and
//!    `stack apply --no-wait` onto another (like kubectl, it does not), vs
//!    `kubectl apply --server-side -f` onto a third;
//! 3. a no-op `stack apply`: write requests, and time next to `stack diff`.
//!
//! Each time is the best of three runs; each first apply, stack's and
//! kubectl's, goes onto a fresh empty simulator, and they take turns.
//!
//! kubectl comes from `STACK_KUBECTL` or PATH; without it the kubectl columns
//! are left out. Run: `cargo bench --bench apply`

#[path = "support/synthetic.rs"]
mod synthetic;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const RELEASES: usize = 200;
const OBJECTS: usize = 10;

#[path = "../tests/harness/mod.rs"]
#[allow(dead_code, clippy::all, clippy::pedantic)]
mod harness;

use harness::Server;

fn requests(server: &Server) -> u64 {
    harness::metric(&server.metrics(), "stack_simulator_requests_total", &[])
}

fn mutating(server: &Server) -> u64 {
    harness::metric(
        &server.metrics(),
        "stack_simulator_mutating_requests_total",
        &[],
    )
}

fn stack(dir: &Path, args: &[&str]) -> Duration {
    let start = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_stack"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run stack");
    let elapsed = start.elapsed();
    let code = output.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 2,
        "stack {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}

fn kubectl(binary: &Path, server: &Server, home: &Path, args: &[&str]) -> Duration {
    let start = Instant::now();
    let output = Command::new(binary)
        .args(args)
        .env("KUBECONFIG", &server.kubeconfig)
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

/// Runs of each first-apply figure, each onto a fresh empty cluster; the
/// best is printed. The machine is a shared VM whose speed moves by up to 2×
/// from minute to minute: one run would measure that instead, and so do
/// runs of one tool minutes apart from the other's. The runs take turns
/// (stack, stack --no-wait, kubectl, again), so each ratio compares the
/// same minutes.
const RUNS: usize = 3;

/// One turn: stack's first apply, with `--no-wait`, and kubectl's (if there).
type Run = (Duration, Duration, Option<Duration>);

/// `stack apply ARGS` onto a fresh simulator.
fn first_apply(args: &[&str]) -> Duration {
    let dir = tempfile::tempdir().expect("temporary directory");
    synthetic::generate(dir.path(), RELEASES, OBJECTS).expect("generate stack");
    let _server = Server::start(dir.path(), &["-q"]);
    stack(dir.path(), &[&["apply", "-q"], args].concat())
}

/// `kubectl apply --server-side -f MANIFESTS` onto a fresh simulator (its
/// namespaces created first, untimed).
fn kubectl_first_apply(binary: &Path, home: &Path, manifests: &str) -> Duration {
    let theirs = tempfile::tempdir().expect("temporary directory");
    let empty = Server::start(theirs.path(), &["-q"]);
    let documents: Vec<String> = (0..10)
        .map(|n| format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns{n}\n"))
        .collect();
    let namespaces = theirs.path().join("namespaces.yaml");
    std::fs::write(&namespaces, documents.join("---\n")).expect("namespaces");
    let namespaces = namespaces.to_str().expect("UTF-8 path");
    kubectl(
        binary,
        &empty,
        home,
        &["apply", "--server-side", "-f", namespaces],
    );
    kubectl(
        binary,
        &empty,
        home,
        &["apply", "--server-side", "-R", "-f", manifests],
    )
}

/// The best of `RUNS` runs of `stack ARGS` in `dir`.
fn best(dir: &Path, args: &[&str]) -> Duration {
    (0..RUNS)
        .map(|_| stack(dir, args))
        .min()
        .expect("at least one run")
}

fn main() {
    let ours = tempfile::tempdir().expect("temporary directory");
    synthetic::generate(ours.path(), RELEASES, OBJECTS).expect("generate stack");
    let objects = RELEASES * OBJECTS;
    let server = Server::start(ours.path(), &["-q"]);
    println!(
        "{RELEASES} releases × {OBJECTS} objects = {objects} objects; best of {RUNS} runs each"
    );

    // The default `--concurrency` unless STACK_BENCH_CONCURRENCY sets one.
    let concurrency: Vec<String> = std::env::var("STACK_BENCH_CONCURRENCY")
        .map(|n| vec!["--concurrency".to_string(), n])
        .unwrap_or_default();
    let concurrency: Vec<&str> = concurrency.iter().map(String::as_str).collect();
    stack(ours.path(), &[&["apply", "-q"], &concurrency[..]].concat());
    let before = requests(&server);
    stack(ours.path(), &["diff", "--detailed-exitcode"]);
    let diff_requests = requests(&server) - before;
    let diff_time = best(ours.path(), &["diff", "--detailed-exitcode"]);
    let writes_before = mutating(&server);
    let noop_time = best(ours.path(), &["apply", "-q"]);
    let noop_writes = mutating(&server) - writes_before;

    let binary = harness::external_tool("STACK_KUBECTL", "kubectl")
        .filter(|_| std::env::var_os("STACK_BENCH_SKIP_KUBECTL").is_none());
    let manifests = ours.path().join("manifests");
    let manifest_dir = manifests.to_str().expect("UTF-8 path");
    if binary.is_some() {
        stack(
            ours.path(),
            &[
                "template",
                "--show-secrets",
                "--skip-tests",
                "--output-dir",
                manifest_dir,
            ],
        );
    }
    let home = tempfile::tempdir().expect("kubectl home");
    let unwaited: Vec<&str> = [&["--no-wait"], &concurrency[..]].concat();
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        runs.push((
            first_apply(&concurrency),
            first_apply(&unwaited),
            binary
                .as_ref()
                .map(|binary| kubectl_first_apply(binary, home.path(), manifest_dir)),
        ));
    }
    let best_of = |pick: fn(&Run) -> Option<Duration>| runs.iter().filter_map(pick).min();
    let apply_time = best_of(|run| Some(run.0)).expect("at least one run");
    let unwaited_time = best_of(|run| Some(run.1)).expect("at least one run");

    println!(
        "stack apply onto an empty cluster:  {:>9.0} ms   (waits for readiness)",
        ms(apply_time)
    );
    println!(
        "stack apply --no-wait, ditto:       {:>9.0} ms",
        ms(unwaited_time)
    );
    #[allow(clippy::cast_precision_loss)]
    let per_object = diff_requests as f64 / objects as f64;
    println!(
        "stack diff, nothing changed:        {:>9.0} ms   {diff_requests} API requests = {per_object:.3} per object",
        ms(diff_time)
    );
    println!(
        "stack apply, nothing changed:       {:>9.0} ms   {noop_writes} write requests   {:.2}× the time of stack diff",
        ms(noop_time),
        noop_time.as_secs_f64() / diff_time.as_secs_f64()
    );

    let Some(binary) = binary else {
        println!("kubectl not found (set STACK_KUBECTL): kubectl comparisons left out");
        return;
    };
    let kubectl_apply = best_of(|run| run.2).expect("at least one run");
    println!(
        "kubectl apply --server-side -f:     {:>9.0} ms   (does not wait) stack apply is {:.1}× faster, stack apply --no-wait {:.1}×",
        ms(kubectl_apply),
        kubectl_apply.as_secs_f64() / apply_time.as_secs_f64(),
        kubectl_apply.as_secs_f64() / unwaited_time.as_secs_f64()
    );
    for (run, (apply, unwaited, theirs)) in runs.iter().enumerate() {
        let theirs = theirs.unwrap_or_default();
        println!(
            "  run {}: stack {:.0} ms, --no-wait {:.0} ms, kubectl {:.0} ms: {:.1}×",
            run + 1,
            ms(*apply),
            ms(*unwaited),
            ms(theirs),
            theirs.as_secs_f64() / apply.as_secs_f64()
        );
    }
    let kubectl_diff = kubectl(
        &binary,
        &server,
        home.path(),
        &["diff", "-R", "-f", manifest_dir],
    );
    println!(
        "kubectl diff -f (same manifests):   {:>9.0} ms   stack diff is {:.1}× faster",
        ms(kubectl_diff),
        kubectl_diff.as_secs_f64() / diff_time.as_secs_f64()
    );
}

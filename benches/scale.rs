//! How `stack` grows with the size of a stack: the synthetic stack (10
//! objects per release, 10 namespaces, needs in layers) at 200, 1,000, 2,000
//! and 5,000 releases, against `stack cluster serve` running as its own
//! process. Per size and command: wall time, API requests (from the
//! simulator's `/metrics`) and the peak memory of the `stack` process; then
//! the growth factor from the smallest size to ten times it, next to 10.
//!
//! Run: `cargo bench --bench scale`; `STACK_SCALE_SIZES=200,2000` picks the
//! sizes. Commands: first apply (waits for readiness), diff with nothing
//! changed, diff with one release changed, no-op apply, template, status,
//! destroy. `STACK_SCALE_GENERATE=DIR` writes the stack of the first size
//! into DIR and stops, to profile one command by hand.
//!
//! `STACK_SCALE_REAL=1` runs each size on a fresh real control plane
//! (`scripts/real-cluster`) instead, API requests and writes counted from its
//! audit log (sizes default to 200,1000 there: a 2-core control plane takes
//! minutes per thousand releases).

#[path = "support/synthetic.rs"]
mod synthetic;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../tests/harness/mod.rs"]
#[allow(dead_code, clippy::all, clippy::pedantic)]
mod harness;

use harness::Server;
use harness::real::{CONTEXT, RealCluster};

const OBJECTS: usize = 10;

/// One measured command.
#[derive(Clone, Copy, Default)]
struct Figure {
    time: Duration,
    requests: u64,
    writes: u64,
    /// Peak resident memory of the `stack` process, in KiB.
    peak_kib: u64,
}

/// Run `stack ARGS` in `dir`: its wall time and peak resident memory (KiB,
/// which `stack` prints on exit when `STACK_REPORT_PEAK_MEMORY` is set).
fn run(cluster: &Cluster, dir: &Path, args: &[&str]) -> (Duration, u64) {
    let start = Instant::now();
    let mut command = Command::new(env!("CARGO_BIN_EXE_stack"));
    if let Cluster::Real(real) = cluster {
        command.env("KUBECONFIG", &real.kubeconfig);
    }
    let output = command
        .args(args)
        .current_dir(dir)
        .env("STACK_REPORT_PEAK_MEMORY", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run stack");
    let elapsed = start.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let code = output.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 2,
        "stack {args:?} exited {code}: {stderr}"
    );
    let peak = stderr
        .lines()
        .find_map(|line| line.strip_prefix("peak memory:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    (elapsed, peak)
}

/// Where a size runs.
enum Cluster {
    Simulated(Server),
    Real(RealCluster),
}

impl Cluster {
    /// API requests and writes so far (the simulator's `/metrics`, or the
    /// real API server's audit log of what `stack` sent).
    fn counts(&self) -> (u64, u64) {
        match self {
            Self::Simulated(server) => {
                let metrics = server.metrics();
                let counter = |name| harness::metric(&metrics, name, &[]);
                (
                    counter("stack_simulator_requests_total"),
                    counter("stack_simulator_mutating_requests_total"),
                )
            }
            Self::Real(real) => (
                real.requests_by_stack() as u64,
                real.writes_by_stack() as u64,
            ),
        }
    }
}

fn measure(cluster: &Cluster, dir: &Path, args: &[&str]) -> Figure {
    let (requests, writes) = cluster.counts();
    let (time, peak_kib) = run(cluster, dir, args);
    let (requests_after, writes_after) = cluster.counts();
    Figure {
        time,
        requests: requests_after - requests,
        writes: writes_after - writes,
        peak_kib,
    }
}

const COMMANDS: [&str; 7] = [
    "first apply",
    "diff, no change",
    "diff, one release changed",
    "no-op apply",
    "template",
    "status",
    "destroy",
];

/// Every command at one size, on a fresh simulator or real control plane.
fn size(releases: usize, real: bool) -> Vec<Figure> {
    let dir = tempfile::tempdir().expect("temporary directory");
    synthetic::generate(dir.path(), releases, OBJECTS).expect("generate stack");
    let server = if real {
        let stack_file = dir.path().join("stack.yaml");
        let text = std::fs::read_to_string(&stack_file).expect("read stack");
        let text = text.replacen("cluster: simulated", &format!("kubeContext: {CONTEXT}"), 1);
        std::fs::write(&stack_file, text).expect("write stack");
        Cluster::Real(
            RealCluster::start()
                .expect("STACK_SCALE_REAL needs the control plane: scripts/real-cluster build"),
        )
    } else {
        Cluster::Simulated(Server::start(dir.path(), &["-q"]))
    };
    let path = dir.path();
    let first = measure(&server, path, &["apply", "-q"]);
    let diff = measure(&server, path, &["diff", "--detailed-exitcode"]);
    let stack_file = path.join("stack.yaml");
    let original = std::fs::read_to_string(&stack_file).expect("read stack");
    let changed = original.replacen(
        "{owner: \"{{ values.team }}\"}",
        "{owner: one-release-changed}",
        1,
    );
    std::fs::write(&stack_file, changed).expect("write stack");
    let one = measure(&server, path, &["diff", "--detailed-exitcode"]);
    std::fs::write(&stack_file, original).expect("write stack");
    let noop = measure(&server, path, &["apply", "-q"]);
    let template = measure(&server, path, &["template"]);
    let status = measure(&server, path, &["status"]);
    let destroy = measure(&server, path, &["destroy", "-q"]);
    vec![first, diff, one, noop, template, status, destroy]
}

#[allow(clippy::cast_precision_loss)]
fn main() {
    let real = std::env::var_os("STACK_SCALE_REAL").is_some();
    let sizes: Vec<usize> = std::env::var("STACK_SCALE_SIZES")
        .unwrap_or_else(|_| {
            if real {
                "200,1000"
            } else {
                "200,1000,2000,5000"
            }
            .into()
        })
        .split(',')
        .map(|s| s.trim().parse().expect("STACK_SCALE_SIZES: numbers"))
        .collect();
    // `STACK_SCALE_GENERATE=DIR`: only write the stack of the first size
    // there, to profile one command by hand.
    if let Some(dir) = std::env::var_os("STACK_SCALE_GENERATE") {
        let releases = sizes.first().copied().unwrap_or(200);
        synthetic::generate(Path::new(&dir), releases, OBJECTS).expect("generate stack");
        return;
    }
    let mut results = Vec::new();
    for &releases in &sizes {
        let figures = size(releases, real);
        println!(
            "\n{releases} releases × {OBJECTS} objects = {} objects{}",
            releases * OBJECTS,
            if real { ", real control plane" } else { "" }
        );
        println!(
            "  {:<28} {:>10} {:>9} {:>8} {:>10} {:>9}",
            "command", "time ms", "requests", "writes", "req/object", "peak MB"
        );
        for (name, figure) in COMMANDS.iter().zip(&figures) {
            println!(
                "  {name:<28} {:>10.0} {:>9} {:>8} {:>10.3} {:>9.0}",
                figure.time.as_secs_f64() * 1000.0,
                figure.requests,
                figure.writes,
                figure.requests as f64 / (releases * OBJECTS) as f64,
                figure.peak_kib as f64 / 1024.0
            );
        }
        results.push((releases, figures));
    }
    let Some((base, base_figures)) = results.first() else {
        return;
    };
    for (releases, figures) in results.iter().skip(1) {
        println!(
            "\ngrowth from {base} to {releases} releases ({}× the stack): time, and memory",
            releases / base
        );
        for ((name, small), large) in COMMANDS.iter().zip(base_figures).zip(figures) {
            println!(
                "  {name:<28} {:>6.1}× time   {:>5.1}× memory",
                large.time.as_secs_f64() / small.time.as_secs_f64(),
                large.peak_kib as f64 / small.peak_kib.max(1) as f64
            );
        }
    }
}

//! `stack template` on synthetic stacks (100 and 1,000 releases × 10
//! objects), next to a floor measured in the same run: parsing and
//! re-serialising the already-rendered objects. Prints both times, the
//! ratio, the scaling from 100 to 1,000 releases, and peak memory.
//!
//! Run: `cargo bench --bench template`

#[path = "support/synthetic.rs"]
mod synthetic;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: usize = 5;

fn main() {
    let binary = env!("CARGO_BIN_EXE_stack");
    let mut results = Vec::new();
    for releases in [100, 1000] {
        let dir = tempfile::tempdir().expect("temporary directory");
        synthetic::generate(dir.path(), releases, 10).expect("generate stack");
        let (template_time, output) = best_of(|| run_template(binary, dir.path()));
        let peak = peak_memory_kib(binary, dir.path());
        let (floor_time, _) = best_of(|| floor(&output));
        let objects = output.matches("\n---\n").count() + 1;
        println!(
            "template {releases:>5} releases × 10 objects ({objects} objects): {:>8.1} ms   floor (parse + re-serialise): {:>8.1} ms   ratio {:.2}×   peak memory {:.1} MB",
            ms(template_time),
            ms(floor_time),
            template_time.as_secs_f64() / floor_time.as_secs_f64(),
            f64::from(u32::try_from(peak).unwrap_or(u32::MAX)) / 1024.0,
        );
        results.push(template_time);
    }
    println!(
        "scaling: 10× the releases took {:.2}× the time",
        results[1].as_secs_f64() / results[0].as_secs_f64()
    );
}

fn run_template(binary: &str, dir: &Path) -> String {
    let output = Command::new(binary)
        .args(["template", "--show-secrets", "-f"])
        .arg(dir)
        .output()
        .expect("run stack template");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// What any tool must do with this output at least: parse every object and
/// serialise it again.
fn floor(rendered: &str) -> String {
    let mut out = String::with_capacity(rendered.len());
    for document in rendered.split("\n---\n") {
        let source = stack_core::diagnostic::SourceFile::new("rendered.yaml", document);
        let value = stack_core::yaml::parse_values(&source).expect("rendered YAML parses");
        out.push_str("---\n");
        out.push_str(&stack_core::yaml::to_string(&value));
    }
    out
}

fn best_of<T>(mut run: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        let value = run();
        best = best.min(start.elapsed());
        last = Some(value);
    }
    (best, last.expect("at least one run"))
}

/// Peak resident memory of one `stack template` run, as the binary reports
/// it on request (`STACK_REPORT_PEAK_MEMORY`, from the kernel's `VmHWM`).
fn peak_memory_kib(binary: &str, dir: &Path) -> u64 {
    let output = Command::new(binary)
        .args(["template", "--show-secrets", "-f"])
        .arg(dir)
        .env("STACK_REPORT_PEAK_MEMORY", "1")
        .output()
        .expect("run stack template");
    let stderr = String::from_utf8_lossy(&output.stderr);
    stderr
        .lines()
        .find_map(|line| line.strip_prefix("peak memory: "))
        .and_then(|value| value.trim_end_matches(" kB").trim().parse().ok())
        .expect("stack reports its peak memory")
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

//! Rolling back a release, today's way and blue/green's, on the example
//! platform against the embedded simulated cluster, in one run, taking
//! turns: deploy backend 1.5.0, then 1.6.0, then time `stack rollback
//! apps/backend` — for a rolling release (the previous revision's
//! Deployment re-applied and its rollout waited for) and for a blue/green
//! one (the previous colour still runs: the Services switch back, nothing
//! is waited for). Best of `STACK_BENCH_RUNS` (5). The same on a real
//! control plane (`scripts/real-cluster`, kwok nodes) when it is built,
//! one fresh cluster for all runs.
//!
//! Run: `cargo bench --bench strategies`

use std::time::{Duration, Instant};

#[path = "support/runs.rs"]
mod support_runs;

#[path = "../tests/harness/mod.rs"]
#[allow(dead_code, clippy::all, clippy::pedantic)]
mod harness;

use harness::Test;
use harness::real::RealCluster;

fn runs() -> usize {
    support_runs::runs(5)
}

fn stack(test: &Test, args: &[&str]) -> Duration {
    let start = Instant::now();
    let output = test.command(args).output().expect("run stack");
    let elapsed = start.elapsed();
    assert!(
        output.status.success(),
        "stack {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}

/// The example platform (on `cluster` when given), its backend blue/green
/// (as the example has it) or rolling.
fn platform(cluster: Option<&RealCluster>, blue_green: bool) -> Test {
    let test = cluster.map_or_else(Test::example, RealCluster::example);
    if blue_green {
        test
    } else {
        test.rolling_backend()
    }
}

/// Deploy 1.5.0 then 1.6.0, and time the rollback.
fn rollback(blue_green: bool) -> Duration {
    let test = platform(None, blue_green);
    stack(&test, &["apply", "-q"]);
    deploy_and_roll_back(&test)
}

/// From 1.5.0 deployed: deploy 1.6.0 and time the rollback to 1.5.0.
fn deploy_and_roll_back(test: &Test) -> Duration {
    stack(test, &harness::APPLY_BACKEND_1_6);
    stack(test, &["rollback", "apps/backend", "-q"])
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The best rollback times on the simulator, rolling and blue/green,
/// taking turns (each run a fresh simulated cluster).
fn measure() -> (Duration, Duration) {
    let mut rolling = Duration::MAX;
    let mut switch = Duration::MAX;
    for run in 0..runs() {
        for blue_green in if run % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        } {
            let time = rollback(blue_green);
            let best = if blue_green {
                &mut switch
            } else {
                &mut rolling
            };
            *best = (*best).min(time);
        }
    }
    (rolling, switch)
}

/// The same on real control planes: one cluster per kind of release (the
/// two would share release names), the platform deployed once, then
/// deploy-and-roll-back repeated.
fn measure_real() -> Option<(Duration, Duration)> {
    let mut best = [Duration::MAX; 2];
    for (slot, blue_green) in [(0, false), (1, true)] {
        let cluster = RealCluster::start()?;
        let test = platform(Some(&cluster), blue_green);
        stack(&test, &["apply", "-q"]);
        for _ in 0..runs() {
            best[slot] = best[slot].min(deploy_and_roll_back(&test));
        }
    }
    Some((best[0], best[1]))
}

fn report(place: &str, (rolling, switch): (Duration, Duration)) {
    println!(
        "stack rollback apps/backend on {place} (best of {}):",
        runs()
    );
    println!(
        "  rolling release (re-apply, wait for the rollout): {:>8.1} ms",
        ms(rolling)
    );
    println!(
        "  blue/green release (switch the Services back):    {:>8.1} ms",
        ms(switch)
    );
    println!(
        "  ratio: blue/green rollback is {:.1}x faster",
        rolling.as_secs_f64() / switch.as_secs_f64()
    );
}

fn main() {
    report("the simulated cluster", measure());
    match measure_real() {
        Some(times) => report("a real control plane", times),
        None => println!("real control plane: not built, skipped (scripts/real-cluster build)"),
    }
}

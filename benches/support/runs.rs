//! How many times a benchmark measures each side: `STACK_BENCH_RUNS`, or
//! the benchmark's own default.

pub fn runs(default: usize) -> usize {
    std::env::var("STACK_BENCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

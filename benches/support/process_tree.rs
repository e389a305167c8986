//! Run a command and measure it whole: its wall time and the peak resident
//! memory of its process tree (the command and every process it starts,
//! such as the helm processes of helmfile and of `stack`), sampled from
//! `/proc` every few milliseconds while it runs. A process that lives
//! shorter than a sample interval can be missed; each sample sums, over the
//! tree, the resident memory (`VmRSS`, which counts shared pages such as a
//! binary's text once per process, as `ps` does) and the anonymous part of
//! it (`RssAnon`: heaps and stacks, private to each process).

use std::collections::HashMap;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often the tree is sampled.
const INTERVAL: Duration = Duration::from_millis(5);

/// A run of one command.
pub struct Measured {
    pub output: Output,
    pub time: Duration,
    /// The highest sum of the tree's resident memory, KiB.
    pub peak_rss_kib: u64,
    /// The highest sum of the tree's anonymous resident memory, KiB.
    pub peak_anon_kib: u64,
    /// The CPU time the sampling took (the measurement's own cost).
    pub sampler_cpu: Duration,
}

/// Run `command` to its end (stdout and stderr captured), sampling its
/// process tree meanwhile.
pub fn run(command: &mut Command) -> Measured {
    let start = Instant::now();
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the command");
    let root = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || sample_until(root, &done))
    };
    let output = child.wait_with_output().expect("wait for the command");
    let time = start.elapsed();
    done.store(true, Ordering::Relaxed);
    let (peak_rss_kib, peak_anon_kib, sampler_cpu) = sampler.join().expect("the sampler");
    Measured {
        output,
        time,
        peak_rss_kib,
        peak_anon_kib,
        sampler_cpu,
    }
}

/// Sample the tree under `root` until `done`: the highest sums seen, and
/// the CPU time this thread spent. Bounded by the command's run.
fn sample_until(root: u32, done: &AtomicBool) -> (u64, u64, Duration) {
    let (mut rss, mut anon) = (0, 0);
    let mut parents = HashMap::new();
    while !done.load(Ordering::Relaxed) {
        let (tree_rss, tree_anon) = tree_memory(root, &mut parents);
        rss = rss.max(tree_rss);
        anon = anon.max(tree_anon);
        std::thread::sleep(INTERVAL);
    }
    (rss, anon, thread_cpu())
}

/// This thread's CPU time so far (user and system, from
/// `/proc/thread-self/stat`, in clock ticks of 10 ms).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let after_name = stat.rfind(')').map_or("", |at| &stat[at + 1..]);
    let ticks: u64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|field| field.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// The sums of resident and anonymous memory (KiB) of `root` and its
/// descendants. `parents` keeps each process's parent from earlier samples,
/// so a process's `stat` is read once (process ids only grow between
/// wraps, and a process leaving the tree by reparenting has ended its part).
fn tree_memory(root: u32, parents: &mut HashMap<u32, Option<u32>>) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return (0, 0);
    };
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut alive = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        alive.push(pid);
        if let Some(parent) = *parents.entry(pid).or_insert_with(|| parent_of(pid)) {
            children.entry(parent).or_default().push(pid);
        }
    }
    if parents.len() > alive.len() {
        let alive: std::collections::HashSet<u32> = alive.into_iter().collect();
        parents.retain(|pid, _| alive.contains(pid));
    }
    let (mut rss, mut anon) = (0, 0);
    let mut pending = vec![root];
    while let Some(pid) = pending.pop() {
        let (process_rss, process_anon) = memory_of(pid);
        rss += process_rss;
        anon += process_anon;
        pending.extend(children.remove(&pid).unwrap_or_default());
    }
    (rss, anon)
}

/// The parent of `pid`, from `/proc/PID/stat` (after the command name,
/// which may hold spaces and parentheses).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

/// Resident and anonymous memory of `pid` in KiB, from `/proc/PID/statm`
/// (resident pages, and the resident pages backed by files or shared
/// memory; 0 for a process already gone). Pages are 4 KiB here.
fn memory_of(pid: u32) -> (u64, u64) {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap_or_default();
    let mut pages = statm
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse::<u64>().unwrap_or(0));
    let resident = pages.next().unwrap_or(0);
    let shared = pages.next().unwrap_or(0);
    (resident * 4, resident.saturating_sub(shared) * 4)
}

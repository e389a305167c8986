//! helmfile (+ helm) and `stack`, head to head on the real control plane
//! (`scripts/real-cluster`), deploying the same stack of Helm charts
//! (`support/helm_stack.rs`: 50 and 200 releases × 10 objects — ConfigMaps,
//! Services, Deployments — four charts, needs in layers of 20), with the
//! same helm (`scripts/helm-tools`). Per size and run, the tools take turns
//! (the one that goes first alternates) and each deploys onto a fresh
//! cluster:
//!
//! - `helmfile template` vs `stack template` (its render cache cleared,
//!   then warm);
//! - first `helmfile sync` (`helm upgrade --install` of every release,
//!   `helmDefaults.wait: true`) vs first `stack apply` (waits), render cache
//!   cleared;
//! - no-op `helmfile sync` vs no-op `stack apply` (render cache warm, then
//!   cleared);
//! - `stack diff` with nothing changed and with one release changed.
//!   `helmfile diff` needs the helm-diff plugin, which cannot be built here
//!   (the Go module proxy refuses github.com/databus23/helm-diff): not
//!   measured.
//!
//! Every figure is the best time of `STACK_BENCH_RUNS` (2) runs, with the
//! highest peak resident memory of the command's whole process tree (the
//! tool and every helm it starts, `support/process_tree.rs`). `stack` alone
//! runs the same commands against its embedded simulator too (helm cannot
//! talk to it), for comparison.
//!
//! Needs helm (`scripts/helm-tools build`), helmfile (`scripts/helm-tools
//! build-helmfile`), the control plane (`scripts/real-cluster build`) and
//! kubectl; skips, saying which is missing, otherwise.
//! Run: `cargo bench --bench helmfile`; `STACK_HELMFILE_SIZES=50` picks the
//! sizes; `STACK_HELMFILE_GENERATE=DIR` only writes the stack of the first
//! size into DIR (for runs by hand).

#[path = "support/helm_stack.rs"]
mod helm_stack;
#[path = "support/process_tree.rs"]
mod process_tree;
#[path = "support/runs.rs"]
mod support_runs;
#[path = "support/synthetic.rs"]
#[allow(dead_code)]
mod synthetic;

#[path = "../tests/harness/mod.rs"]
#[allow(dead_code, clippy::all, clippy::pedantic)]
mod harness;

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use harness::real::{CONTEXT, RealCluster};
use helm_stack::Target;

const OBJECTS: usize = 10;

/// The binaries under test, and a private home for helm's caches.
struct Tools {
    helm: PathBuf,
    helmfile: PathBuf,
    kubectl: PathBuf,
    home: tempfile::TempDir,
    /// The sampler's CPU time and the time sampled, summed over every
    /// measured command: the measurement's own cost.
    sampling: Cell<(Duration, Duration)>,
}

/// A folder printed by `scripts/helm-tools COMMAND`, joined with `binary`.
fn helm_tool(command: &str, binary: &str) -> PathBuf {
    let output = Command::new(harness::repository().join("scripts/helm-tools"))
        .arg(command)
        .output()
        .expect("run scripts/helm-tools");
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()).join(binary)
}

/// The tools, or why the bench cannot run.
fn tools() -> Result<Tools, String> {
    let helm = helm_tool("env", "helm");
    if !helm.is_file() {
        return Err(format!(
            "helm is not built at {} (scripts/helm-tools build)",
            helm.display()
        ));
    }
    let helmfile = helm_tool("helmfile-env", "helmfile");
    if !helmfile.is_file() {
        return Err(format!(
            "helmfile is not built at {} (scripts/helm-tools build-helmfile, about 4 minutes)",
            helmfile.display()
        ));
    }
    let kubectl = harness::external_tool("STACK_KUBECTL", "kubectl")
        .ok_or("kubectl not found (set STACK_KUBECTL)")?;
    let home = tempfile::tempdir().expect("a home for helm");
    Ok(Tools {
        helm,
        helmfile,
        kubectl,
        home,
        sampling: Cell::default(),
    })
}

/// One measured command: its time and the peak memory of its process tree.
#[derive(Clone, Copy)]
struct Figure {
    time: Duration,
    rss_kib: u64,
    anon_kib: u64,
}

/// The best time of `runs`, with the highest peaks.
fn best(runs: impl IntoIterator<Item = Figure>) -> Figure {
    runs.into_iter()
        .reduce(|a, b| Figure {
            time: a.time.min(b.time),
            rss_kib: a.rss_kib.max(b.rss_kib),
            anon_kib: a.anon_kib.max(b.anon_kib),
        })
        .expect("one run")
}

impl Tools {
    /// `program ARGS` in `dir` (against `cluster`, if any), measured; it
    /// must exit 0, or `expected_code`.
    fn measure(
        &self,
        program: &Path,
        args: &[&str],
        dir: &Path,
        cluster: Option<&RealCluster>,
        expected_code: i32,
    ) -> Figure {
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(dir)
            .env("STACK_HELM", &self.helm)
            .env("HELM_CACHE_HOME", self.home.path().join("cache"))
            .env("HELM_CONFIG_HOME", self.home.path().join("config"))
            .env("HELM_DATA_HOME", self.home.path().join("data"))
            .env("HELMFILE_UPGRADE_NOTICE_DISABLED", "1")
            .env("NO_COLOR", "1");
        if let Some(cluster) = cluster {
            command.env("KUBECONFIG", &cluster.kubeconfig);
        }
        let run = process_tree::run(&mut command);
        let (cpu, sampled) = self.sampling.get();
        self.sampling
            .set((cpu + run.sampler_cpu, sampled + run.time));
        let code = run.output.status.code().unwrap_or(-1);
        assert!(
            code == expected_code,
            "{} {args:?} exited {code} (expected {expected_code}): {}",
            program.display(),
            String::from_utf8_lossy(&run.output.stderr)
        );
        Figure {
            time: run.time,
            rss_kib: run.peak_rss_kib,
            anon_kib: run.peak_anon_kib,
        }
    }

    fn helmfile(&self, dir: &Path, cluster: Option<&RealCluster>, args: &[&str]) -> Figure {
        let mut all = vec!["--file", "helmfile.yaml.gotmpl"];
        all.extend(args);
        self.measure(&self.helmfile, &all, dir, cluster, 0)
    }

    fn stack(&self, dir: &Path, cluster: Option<&RealCluster>, args: &[&str], code: i32) -> Figure {
        self.measure(
            Path::new(env!("CARGO_BIN_EXE_stack")),
            args,
            dir,
            cluster,
            code,
        )
    }

    /// The cluster's Deployments, and how many of them are available.
    fn deployments(&self, cluster: &RealCluster) -> (usize, usize) {
        let output = Command::new(&self.kubectl)
            .args(["get", "deployments", "-A", "-o", "json"])
            .env("KUBECONFIG", &cluster.kubeconfig)
            .env("HOME", self.home.path())
            .output()
            .expect("run kubectl");
        let list: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("kubectl's JSON");
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let available = items
            .iter()
            .filter(|d| d["status"]["availableReplicas"] == d["spec"]["replicas"])
            .count();
        (items.len(), available)
    }
}

/// Requests and writes the API server audited from clients whose user
/// agent starts with `agent` (`stack` sends none).
fn audited(cluster: &RealCluster, agent: &str) -> (usize, usize) {
    let log = std::fs::read_to_string(cluster.dir().join("logs/audit.log")).unwrap_or_default();
    let entries: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .filter(|entry: &serde_json::Value| {
            entry["stage"] == "ResponseComplete"
                && entry["userAgent"]
                    .as_str()
                    .unwrap_or("stack")
                    .starts_with(agent)
        })
        .collect();
    let writes = entries
        .iter()
        .filter(|entry| {
            matches!(
                entry["verb"].as_str().unwrap_or_default(),
                "create" | "update" | "patch" | "delete" | "deletecollection"
            ) && !entry["requestURI"]
                .as_str()
                .unwrap_or_default()
                .contains("dryRun=")
        })
        .count();
    (entries.len(), writes)
}

/// helmfile's figures of one run, on a fresh cluster.
struct HelmfileRun {
    template: Figure,
    sync: Figure,
    noop_sync: Figure,
    /// Write requests of helm during the no-op sync.
    noop_writes: usize,
}

fn helmfile_run(tools: &Tools, dir: &Path, expected_deployments: usize) -> HelmfileRun {
    let cluster = RealCluster::start().expect("the real control plane");
    let template = tools.helmfile(dir, None, &["template", "--skip-deps"]);
    let sync = tools.helmfile(dir, Some(&cluster), &["sync", "--skip-deps"]);
    let deployments = tools.deployments(&cluster);
    assert_eq!(
        deployments,
        (expected_deployments, expected_deployments),
        "helmfile sync: every Deployment available"
    );
    let (_, writes) = audited(&cluster, "Helm");
    let noop_sync = tools.helmfile(dir, Some(&cluster), &["sync", "--skip-deps"]);
    let noop_writes = audited(&cluster, "Helm").1 - writes;
    HelmfileRun {
        template,
        sync,
        noop_sync,
        noop_writes,
    }
}

/// `stack`'s figures of one run, on a fresh cluster (or simulator).
struct StackRun {
    template_cold: Figure,
    template_warm: Figure,
    apply: Figure,
    noop_warm: Figure,
    noop_cold: Figure,
    diff: Figure,
    diff_one_changed: Figure,
    /// Write requests of `stack` during the no-op applies (real cluster).
    noop_writes: usize,
}

/// Forget helm's rendered output. README.md places it in
/// `.stack/render-cache/`; this build keeps it in `render-cache/` beside the
/// stack file: both are cleared.
fn clear_render_cache(dir: &Path) {
    for cache in [dir.join(".stack/render-cache"), dir.join("render-cache")] {
        if cache.exists() {
            std::fs::remove_dir_all(cache).expect("remove the render cache");
        }
    }
}

fn stack_run(
    tools: &Tools,
    dir: &Path,
    cluster: Option<&RealCluster>,
    expected_deployments: usize,
) -> StackRun {
    clear_render_cache(dir);
    let template_cold = tools.stack(dir, None, &["template"], 0);
    let template_warm = tools.stack(dir, None, &["template"], 0);
    clear_render_cache(dir);
    let apply = tools.stack(dir, cluster, &["apply", "-q"], 0);
    let writes = cluster.map(|cluster| {
        let deployments = tools.deployments(cluster);
        assert_eq!(
            deployments,
            (expected_deployments, expected_deployments),
            "stack apply: every Deployment available"
        );
        audited(cluster, "stack").1
    });
    let noop_warm = tools.stack(dir, cluster, &["apply", "-q"], 0);
    let diff = tools.stack(dir, cluster, &["diff", "--detailed-exitcode"], 0);
    let diff_one_changed = with_one_release_changed(dir, || {
        tools.stack(dir, cluster, &["diff", "--detailed-exitcode"], 2)
    });
    clear_render_cache(dir);
    let noop_cold = tools.stack(dir, cluster, &["apply", "-q"], 0);
    let noop_writes = cluster
        .zip(writes)
        .map_or(0, |(cluster, writes)| audited(cluster, "stack").1 - writes);
    StackRun {
        template_cold,
        template_warm,
        apply,
        noop_warm,
        noop_cold,
        diff,
        diff_one_changed,
        noop_writes,
    }
}

/// Run `measure` with the first release's values changed in `stack.yaml`.
fn with_one_release_changed(dir: &Path, measure: impl FnOnce() -> Figure) -> Figure {
    let path = dir.join("stack.yaml");
    let original = std::fs::read_to_string(&path).expect("read the stack");
    let changed = original.replacen(
        "{owner: \"{{ values.team }}\"}",
        "{owner: one-release-changed}",
        1,
    );
    assert_ne!(changed, original, "a release to change");
    std::fs::write(&path, changed).expect("write the stack");
    let figure = measure();
    std::fs::write(&path, original).expect("write the stack");
    figure
}

/// The number of Deployments in `stack template`'s output, checked against
/// `helmfile template`'s: both render the same objects.
fn expected_deployments(tools: &Tools, dir: &Path) -> usize {
    let count = |program: &Path, args: &[&str]| {
        let output = Command::new(program)
            .args(args)
            .current_dir(dir)
            .env("STACK_HELM", &tools.helm)
            .env("HELMFILE_UPGRADE_NOTICE_DISABLED", "1")
            .output()
            .expect("run a template");
        assert!(output.status.success(), "{} {args:?}", program.display());
        let text = String::from_utf8_lossy(&output.stdout);
        let kinds = |kind: &str| text.matches(&format!("\nkind: {kind}\n")).count();
        (kinds("Deployment"), kinds("Service"), kinds("ConfigMap"))
    };
    let ours = count(Path::new(env!("CARGO_BIN_EXE_stack")), &["template"]);
    let theirs = count(
        &tools.helmfile,
        &["--file", "helmfile.yaml.gotmpl", "template", "--skip-deps"],
    );
    assert_eq!(
        ours, theirs,
        "the same objects (Deployments, Services, ConfigMaps)"
    );
    ours.0
}

fn main() {
    let sizes: Vec<usize> = std::env::var("STACK_HELMFILE_SIZES")
        .unwrap_or_else(|_| "50,200".into())
        .split(',')
        .map(|s| s.trim().parse().expect("STACK_HELMFILE_SIZES: numbers"))
        .collect();
    let tools = match tools() {
        Ok(tools) => tools,
        Err(why) => {
            println!("{why}: nothing measured");
            return;
        }
    };
    if let Some(dir) = std::env::var_os("STACK_HELMFILE_GENERATE") {
        let releases = sizes.first().copied().unwrap_or(50);
        let target = Target::Context(CONTEXT);
        helm_stack::generate(Path::new(&dir), releases, OBJECTS, &tools.helm, &target)
            .expect("generate the stack");
        return;
    }
    let control_plane = Command::new(harness::repository().join("scripts/real-cluster"))
        .arg("env")
        .output()
        .expect("run scripts/real-cluster env");
    let control_plane = PathBuf::from(String::from_utf8_lossy(&control_plane.stdout).trim());
    if !control_plane.join("kube-apiserver").is_file() {
        println!(
            "the real control plane is not built (scripts/real-cluster build): nothing measured"
        );
        return;
    }
    let runs = support_runs::runs(2);
    for releases in sizes {
        size(&tools, releases, runs);
    }
    let (cpu, sampled) = tools.sampling.get();
    println!(
        "\nthe memory sampler took {:.1} s of CPU over {:.0} s of measured commands ({:.1}% of one core)",
        cpu.as_secs_f64(),
        sampled.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / sampled.as_secs_f64()
    );
}

/// Every figure at one size.
fn size(tools: &Tools, releases: usize, runs: usize) {
    let real = tempfile::tempdir().expect("temporary directory");
    let target = Target::Context(CONTEXT);
    helm_stack::generate(real.path(), releases, OBJECTS, &tools.helm, &target)
        .expect("generate the stack");
    let simulated = tempfile::tempdir().expect("temporary directory");
    helm_stack::generate(
        simulated.path(),
        releases,
        OBJECTS,
        &tools.helm,
        &Target::Simulated,
    )
    .expect("generate the stack");
    let deployments = expected_deployments(tools, real.path());
    println!(
        "\n{releases} releases × {OBJECTS} objects ({deployments} Deployments, {} pods); best of {runs} runs, tools taking turns, each first deploy onto a fresh cluster",
        deployments * 2
    );
    let mut theirs = Vec::new();
    let mut ours = Vec::new();
    let mut simulator = Vec::new();
    for run in 0..runs {
        let helmfile_first = run % 2 == 0;
        if helmfile_first {
            theirs.push(helmfile_run(tools, real.path(), deployments));
        }
        let cluster = RealCluster::start().expect("the real control plane");
        ours.push(stack_run(tools, real.path(), Some(&cluster), deployments));
        drop(cluster);
        if !helmfile_first {
            theirs.push(helmfile_run(tools, real.path(), deployments));
        }
        let _ = std::fs::remove_dir_all(simulated.path().join(".stack"));
        simulator.push(stack_run(tools, simulated.path(), None, deployments));
        let (h, s) = (theirs.last().expect("a run"), ours.last().expect("a run"));
        println!(
            "  run {} ({} first): helmfile sync {:.1} s, stack apply {:.1} s; no-op {:.1} s / {:.2} s",
            run + 1,
            if helmfile_first { "helmfile" } else { "stack" },
            h.sync.time.as_secs_f64(),
            s.apply.time.as_secs_f64(),
            h.noop_sync.time.as_secs_f64(),
            s.noop_warm.time.as_secs_f64(),
        );
    }
    report(&theirs, &ours, &simulator);
}

#[allow(clippy::cast_precision_loss)]
fn mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// A figure as `time ms  peak MB (anonymous MB)`: 26 columns.
fn cell(figure: Figure) -> String {
    format!(
        "{:>8.0} ms {:>6.0} ({:>4.0}) MB",
        figure.time.as_secs_f64() * 1000.0,
        mb(figure.rss_kib),
        mb(figure.anon_kib)
    )
}

/// helmfile's figure over `stack`'s, time and memory: 14 columns.
fn ratios(theirs: Figure, ours: Figure) -> String {
    format!(
        "{:>6.1}× {:>5.1}×",
        theirs.time.as_secs_f64() / ours.time.as_secs_f64(),
        mb(theirs.rss_kib) / mb(ours.rss_kib)
    )
}

const BLANK: &str = "";

/// Which of a run's figures a row shows.
type Pick = fn(&StackRun) -> Figure;

fn report(theirs: &[HelmfileRun], ours: &[StackRun], simulator: &[StackRun]) {
    let helmfile = |pick: fn(&HelmfileRun) -> Figure| best(theirs.iter().map(pick));
    let stack = |pick: fn(&StackRun) -> Figure| best(ours.iter().map(pick));
    let simulated = |pick: fn(&StackRun) -> Figure| best(simulator.iter().map(pick));
    let headers = [
        [
            BLANK,
            "helmfile + helm",
            "stack, real control plane",
            "helmfile/stack",
            "stack, embedded simulator",
        ],
        [
            "(peak: RSS of the process tree (anon.))",
            "time, peak",
            "time, peak",
            "time  memory",
            "time, peak",
        ],
    ];
    for [name, theirs, ours, ratio, simulated] in headers {
        println!("  {name:<42} {theirs:<26}   {ours:<26}   {ratio:<14}   {simulated}");
    }
    let template = helmfile(|r| r.template);
    let noop = helmfile(|r| r.noop_sync);
    let rows: [(&str, Option<Figure>, Pick); 7] = [
        (
            "template (stack: render cache cleared)",
            Some(template),
            |r| r.template_cold,
        ),
        ("template (stack: render cache warm)", Some(template), |r| {
            r.template_warm
        }),
        (
            "first sync / first apply (both wait)",
            Some(helmfile(|r| r.sync)),
            |r| r.apply,
        ),
        ("no-op sync / apply (stack: cache warm)", Some(noop), |r| {
            r.noop_warm
        }),
        (
            "no-op sync / apply (stack: cache cleared)",
            Some(noop),
            |r| r.noop_cold,
        ),
        ("diff, nothing changed", None, |r| r.diff),
        ("diff, one release changed", None, |r| r.diff_one_changed),
    ];
    for (name, their, pick) in rows {
        let (their_cell, ratio) = match their {
            Some(their) => (cell(their), ratios(their, stack(pick))),
            None => (
                format!("{:<26}", "not measured (helm-diff)"),
                format!("{BLANK:<14}"),
            ),
        };
        println!(
            "  {name:<42} {their_cell}   {}   {ratio}   {}",
            cell(stack(pick)),
            cell(simulated(pick))
        );
    }
    println!(
        "  write requests of a no-op run: helmfile sync {} (helm), stack apply {} (both no-op applies)",
        theirs[0].noop_writes, ours[0].noop_writes
    );
    println!(
        "  helmfile diff and helmfile apply need the helm-diff plugin; the Go module proxy refuses github.com/databus23/helm-diff (403), so it cannot be built here: not measured"
    );
}

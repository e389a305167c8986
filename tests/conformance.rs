//! Differential conformance: the corpus of API interactions in
//! `tests/conformance/corpus.yaml` is replayed against the simulator and a
//! real API server (`harness::real`), and their answers compared after the
//! normalisation `compare` documents. Status codes are always compared.
//! Every disagreement must be listed, with its reason, in
//! `tests/conformance/known-gaps.yaml`; a listed step that agrees (or no
//! longer exists) fails the test too, so the list only shrinks by fixing.

mod compare;
mod replay;

use std::collections::BTreeMap;
use std::path::PathBuf;

use futures::StreamExt as _;
use serde::Deserialize;

use crate::harness::Server;
use crate::harness::real::RealCluster;
use replay::{Answer, Case, Step};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Gap {
    step: String,
    reason: String,
    /// The real server's answer here depends on how far an eventually
    /// consistent controller got (a CRD's cleanup under a loaded machine):
    /// agreeing now and then is not a stale entry.
    #[serde(default)]
    timing: bool,
}

/// Cases replayed at once on each side.
const PARALLEL_CASES: usize = 6;

fn folder() -> PathBuf {
    crate::harness::repository().join("tests/conformance")
}

/// How one step's two answers compare: `None` when they agree.
fn disagreement(step: &Step, real: &Answer, simulator: &Answer) -> Option<Vec<String>> {
    if real.status != simulator.status {
        let error = |answer: &Answer| {
            let body = &answer.body;
            let reason = body.get("reason").and_then(|r| r.as_str()).unwrap_or("");
            let message = body.get("message").and_then(|m| m.as_str()).unwrap_or("");
            format!("{} {reason} {message}", answer.status)
        };
        let mut lines = vec![format!(
            "status: real {} / simulator {}",
            real.status, simulator.status
        )];
        lines.push(format!("  real: {}", short(&error(real))));
        lines.push(format!("  simulator: {}", short(&error(simulator))));
        return Some(lines);
    }
    let default_fields = (real.status >= 400 && step.watch.is_none()).then(|| {
        compare::ERROR_FIELDS
            .iter()
            .map(ToString::to_string)
            .collect()
    });
    let fields: Option<Vec<String>> = step.compare.clone().or(default_fields);
    let view = |answer: &Answer| {
        let mut body = answer.body.clone();
        compare::normalise(&mut body);
        compare::remove(&mut body, &step.ignore);
        let mut view = compare::project(&body, fields.as_deref());
        if let (Some(map), Some(_)) = (view.as_object_mut(), &fields) {
            map.retain(|pointer, _| !step.ignore.contains(pointer));
        }
        view
    };
    let differences = compare::differences(&view(real), &view(simulator));
    (!differences.is_empty()).then_some(differences)
}

fn short(text: &str) -> String {
    if text.chars().count() > 160 {
        format!("{}…", text.chars().take(160).collect::<String>())
    } else {
        text.to_string()
    }
}

/// Replay every case on one side, several at a time.
async fn replay_all(client: &kube::Client, cases: &[(String, &Case)]) -> Vec<Vec<Answer>> {
    futures::stream::iter(cases)
        .map(|(namespace, case)| replay::replay(client, namespace, case))
        .buffered(PARALLEL_CASES)
        .collect()
        .await
}

#[test]
fn the_simulator_answers_the_corpus_as_a_real_api_server_does() {
    let Some(cluster) = RealCluster::start() else {
        return;
    };
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().expect("temporary directory");
    let server = Server::start(dir.path(), &[]);
    let topics = replay::load(&folder().join("corpus.yaml"));
    let gaps: Vec<Gap> = serde_saphyr::from_str(
        &std::fs::read_to_string(folder().join("known-gaps.yaml")).expect("read known gaps"),
    )
    .expect("parse known gaps");
    let cases: Vec<(String, &Case)> = topics
        .iter()
        .flat_map(|topic| {
            topic
                .cases
                .iter()
                .map(|case| (replay::namespace_of(&topic.topic, &case.id), case))
        })
        .collect();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (real, simulator) = runtime.block_on(async {
        let real = replay::client(&cluster.kubeconfig).await;
        let simulator = replay::client(&server.kubeconfig).await;
        tokio::join!(replay_all(&real, &cases), replay_all(&simulator, &cases))
    });

    let known: BTreeMap<&str, &str> = gaps
        .iter()
        .map(|gap| (gap.step.as_str(), gap.reason.as_str()))
        .collect();
    let timing: Vec<&str> = gaps
        .iter()
        .filter(|gap| gap.timing)
        .map(|gap| gap.step.as_str())
        .collect();
    assert_eq!(
        known.len(),
        gaps.len(),
        "a step is listed twice in known-gaps.yaml"
    );
    let mut report = String::new();
    let mut seen = Vec::new();
    let mut unexpected = Vec::new();
    let mut stale = Vec::new();
    let (mut agree, mut total) = (0, 0);
    let mut index = 0;
    for topic in &topics {
        let (mut topic_agree, mut topic_total) = (0, 0);
        let mut lines = String::new();
        for case in &topic.cases {
            for (position, step) in case.steps.iter().enumerate() {
                let id = format!("{}/{}/{}", topic.topic, case.id, step.id);
                let found = disagreement(step, &real[index][position], &simulator[index][position]);
                seen.push(id.clone());
                topic_total += 1;
                match (found, known.contains_key(id.as_str())) {
                    (None, false) => topic_agree += 1,
                    (None, true) => {
                        topic_agree += 1;
                        if !timing.contains(&id.as_str()) {
                            stale.push(id);
                        }
                    }
                    (Some(differences), listed) => {
                        let mark = if listed { "known gap" } else { "NEW" };
                        lines.push_str(&format!("  {id} ({mark})\n"));
                        for difference in differences.iter().take(4) {
                            lines.push_str(&format!("      {difference}\n"));
                        }
                        if !listed {
                            unexpected.push(id);
                        }
                    }
                }
            }
            index += 1;
        }
        report.push_str(&format!(
            "{}: {topic_agree} of {topic_total} agree\n{lines}",
            topic.topic
        ));
        agree += topic_agree;
        total += topic_total;
    }
    report.push_str(&format!(
        "conformance: {agree} of {total} agree ({:.1}s)\n",
        started.elapsed().as_secs_f64()
    ));
    println!("{report}");
    if !unexpected.is_empty() {
        println!("new disagreements, as known-gaps.yaml entries (give each its reason):");
        for id in &unexpected {
            println!("- step: {id}\n  reason: ");
        }
    }
    stale.extend(
        known
            .keys()
            .filter(|step| !seen.iter().any(|id| id == *step))
            .map(|step| format!("{step} (no such step)")),
    );
    assert!(
        unexpected.is_empty() && stale.is_empty(),
        "{report}\ndisagreements not in known-gaps.yaml: {unexpected:#?}\nknown gaps that agree now (remove them): {stale:#?}"
    );
}

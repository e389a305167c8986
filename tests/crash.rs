//! Crash safety of the simulated cluster: a server killed (SIGKILL) during a
//! burst of writes, restarted on the same directory, holds only whole
//! objects, and every write it acknowledged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

use crate::harness::{Server, Test};

const KEYS: usize = 40;

fn client(address: &str) -> kube::Client {
    let mut config = kube::Config::new(address.parse().unwrap());
    config.default_namespace = "default".into();
    kube::Client::try_from(config).unwrap()
}

fn config_map(name: &str, version: usize) -> serde_json::Value {
    let data: serde_json::Map<String, serde_json::Value> = (0..KEYS)
        .map(|k| {
            (
                format!("k{k}"),
                json!(format!("{version}-{}", "x".repeat(64))),
            )
        })
        .collect();
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"version": version.to_string()}}, "data": data})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_burst_keeps_only_whole_objects() {
    let test = Test::new();
    let mut server = Server::start(test.path(), &[]);
    let api: Api<ConfigMap> = Api::namespaced(client(&server.address), "default");
    let acknowledged: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let count = Arc::new(AtomicUsize::new(0));
    let (enough_tx, enough_rx) = tokio::sync::oneshot::channel::<()>();
    let enough_tx = Arc::new(Mutex::new(Some(enough_tx)));
    let mut writers = Vec::new();
    for writer in 0..8 {
        let (api, acknowledged, count, enough) = (
            api.clone(),
            Arc::clone(&acknowledged),
            Arc::clone(&count),
            Arc::clone(&enough_tx),
        );
        writers.push(tokio::spawn(async move {
            for version in 1..=200 {
                let name = format!("cm-{writer}-{}", version % 5);
                let patch = Patch::Apply(config_map(&name, version));
                if api
                    .patch(&name, &PatchParams::apply("burst").force(), &patch)
                    .await
                    .is_err()
                {
                    return;
                }
                acknowledged.lock().unwrap().insert(name, version);
                if count.fetch_add(1, Ordering::SeqCst) + 1 == 300
                    && let Some(sender) = enough.lock().unwrap().take()
                {
                    let _ = sender.send(());
                }
            }
        }));
    }
    enough_rx.await.expect("300 writes acknowledged");
    server.kill();
    for writer in writers {
        let _ = writer.await;
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let restarted = Server::start(test.path(), &[]);
    let api: Api<ConfigMap> = Api::namespaced(client(&restarted.address), "default");
    let stored = api
        .list(&ListParams::default().labels("version"))
        .await
        .unwrap();
    let mut versions = HashMap::new();
    for map in &stored.items {
        let name = map.metadata.name.clone().unwrap();
        let version: usize = map.metadata.labels.as_ref().unwrap()["version"]
            .parse()
            .unwrap();
        let data = map.data.clone().unwrap();
        assert_eq!(data.len(), KEYS, "{name} is whole");
        assert!(
            data.values().all(|v| v.starts_with(&format!("{version}-"))),
            "{name} holds one version only"
        );
        versions.insert(name, version);
    }
    for (name, version) in &acknowledged {
        let stored = versions
            .get(name)
            .unwrap_or_else(|| panic!("acknowledged {name} was lost"));
        assert!(
            stored >= version,
            "{name}: acknowledged version {version}, stored {stored}"
        );
    }
    assert!(
        acknowledged.len() >= 30,
        "the burst reached every object before the kill"
    );
}

#[test]
fn one_process_serves_a_cluster_directory_at_a_time() {
    let test = Test::new();
    let _first = Server::start(test.path(), &[]);
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_stack"))
        .args(["cluster", "serve"])
        .current_dir(test.path())
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("is already served by another process at http://127.0.0.1:"),
        "{stderr}"
    );
}

#[test]
fn metrics_count_requests_by_verb_and_resource() {
    let test = Test::new();
    let server = Server::start(test.path(), &[]);
    crate::harness::http_get(&format!(
        "{}/api/v1/namespaces/default/configmaps",
        server.address
    ));
    let metrics = server.metrics();
    assert_eq!(
        crate::harness::metric(
            &metrics,
            "stack_simulator_requests_total",
            &[("verb", "list"), ("resource", "configmaps")]
        ),
        1
    );
    assert_eq!(
        crate::harness::metric(&metrics, "stack_simulator_mutating_requests_total", &[]),
        0
    );
}

#[test]
fn fault_injection_answers_500s_and_429s_with_retry_after_reproducibly() {
    let run = || {
        let test = Test::new();
        let server = Server::start(test.path(), &["--fault-rate", "0.5", "--seed", "7"]);
        let url = format!("{}/api/v1/namespaces/default/configmaps", server.address);
        let codes: Vec<u16> = (0..40)
            .map(|_| crate::harness::http(&url, "GET", "application/json", "").0)
            .collect();
        let faults = crate::harness::metric(
            &server.metrics(),
            "stack_simulator_injected_faults_total",
            &[],
        );
        (codes, faults)
    };
    let (codes, faults) = run();
    assert!(
        codes.contains(&429) && codes.contains(&500) && codes.contains(&200),
        "{codes:?}"
    );
    assert_eq!(
        faults,
        u64::try_from(codes.iter().filter(|c| **c != 200).count()).unwrap()
    );
    assert_eq!(run().0, codes, "the same seed injects the same faults");
}

#[test]
fn the_conflict_writer_moves_resource_versions_of_stack_objects() {
    let test = Test::new();
    let server = Server::start(test.path(), &["--conflict-writer-ms", "5"]);
    let map = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","labels":{"app.kubernetes.io/managed-by":"stack"}},"data":{"a":"1"}}"#;
    let url = format!(
        "{}/api/v1/namespaces/default/configmaps/c?fieldManager=stack",
        server.address
    );
    let (code, created) = crate::harness::http(&url, "PATCH", "application/apply-patch+yaml", map);
    assert_eq!(code, 201, "{created}");
    let created: serde_json::Value = serde_json::from_str(&created).unwrap();
    let watch = format!(
        "{}/api/v1/namespaces/default/configmaps?watch=true&fieldSelector=metadata.name%3Dc&resourceVersion={}&timeoutSeconds=30",
        server.address,
        created["metadata"]["resourceVersion"].as_str().unwrap()
    );
    let events = crate::harness::http_first_line(&watch);
    let event: serde_json::Value = serde_json::from_str(&events).unwrap();
    assert_eq!(event["type"], "MODIFIED");
    assert!(
        event["object"]["metadata"]["annotations"]["sim.stack.dev/touched"].is_string(),
        "{event}"
    );
}

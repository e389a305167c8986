//! The simulator through kube-rs, in-process (no socket): typed and dynamic
//! APIs, server-side apply semantics, dry runs, watches, controllers.

use std::time::Duration;

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Pod, Service};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::{ApiResource, Discovery};
use serde_json::json;
use stack_simulator::{Config, Simulator};

fn simulator() -> Simulator {
    Simulator::start(Config::default()).expect("simulator starts")
}

fn error_of<T: std::fmt::Debug>(result: kube::Result<T>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn deployment(image: &str) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image}]}}}
    })
}

#[tokio::test]
async fn create_get_list_and_already_exists() {
    let client = simulator().client();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default");
    let map: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v"}}),
    )
    .unwrap();
    let created = maps.create(&PostParams::default(), &map).await.unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.resource_version.is_some());
    assert_eq!(maps.get("a").await.unwrap().data.unwrap()["k"], "v");
    let status = error_of(maps.create(&PostParams::default(), &map).await);
    assert_eq!(
        (status.code, status.reason.as_str()),
        (409, "AlreadyExists")
    );
    assert_eq!(
        maps.list(&ListParams::default().labels("x=1"))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(
        maps.list(&ListParams::default().labels("x=2"))
            .await
            .unwrap()
            .items
            .len(),
        0
    );
    let status = error_of(maps.get("missing").await);
    assert_eq!(
        (status.code, status.reason.as_str(), status.message.as_str()),
        (404, "NotFound", "configmaps \"missing\" not found")
    );
}

#[tokio::test]
async fn create_in_a_missing_namespace_fails_like_the_real_server() {
    let client = simulator().client();
    let maps: Api<ConfigMap> = Api::namespaced(client, "nowhere");
    let map: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "a"}})).unwrap();
    let status = error_of(maps.create(&PostParams::default(), &map).await);
    assert_eq!(
        (status.code, status.message.as_str()),
        (404, "namespaces \"nowhere\" not found")
    );
    let status = error_of(
        maps.patch(
            "a",
            &PatchParams::apply("stack"),
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}),
            ),
        )
        .await,
    );
    assert_eq!(status.code, 404);
}

#[tokio::test]
async fn optimistic_concurrency_rejects_stale_updates() {
    let client = simulator().client();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default");
    let map: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "a"}, "data": {"k": "1"}})).unwrap();
    let created = maps.create(&PostParams::default(), &map).await.unwrap();
    let mut first = created.clone();
    first.data = Some([("k".to_string(), "2".to_string())].into());
    maps.replace("a", &PostParams::default(), &first)
        .await
        .unwrap();
    let mut stale = created;
    stale.data = Some([("k".to_string(), "3".to_string())].into());
    let status = error_of(maps.replace("a", &PostParams::default(), &stale).await);
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
}

#[tokio::test]
async fn server_side_apply_creates_updates_and_is_idempotent() {
    let client = simulator().client();
    let deployments: Api<Deployment> = Api::namespaced(client, "default");
    let params = PatchParams::apply("stack");
    let created = deployments
        .patch("web", &params, &Patch::Apply(deployment("nginx:1")))
        .await
        .unwrap();
    let version = created.metadata.resource_version.clone();
    assert_eq!(created.metadata.generation, Some(1));
    let fields = &created.metadata.managed_fields.as_ref().unwrap()[0];
    assert_eq!(
        (fields.manager.as_deref(), fields.operation.as_deref()),
        (Some("stack"), Some("Apply"))
    );
    // Defaults the user never set are filled in and not owned.
    assert_eq!(
        created.spec.as_ref().unwrap().revision_history_limit,
        Some(10)
    );
    let again = deployments
        .patch("web", &params, &Patch::Apply(deployment("nginx:1")))
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version, version,
        "a no-op apply does not write"
    );
    let updated = deployments
        .patch("web", &params, &Patch::Apply(deployment("nginx:2")))
        .await
        .unwrap();
    assert_eq!(updated.metadata.generation, Some(2));
}

#[tokio::test]
async fn apply_removes_fields_the_manager_stopped_sending() {
    let client = simulator().client();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default");
    let params = PatchParams::apply("stack");
    let first = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"keep": "1", "drop": "1"}}, "data": {"keep": "1", "drop": "1"}});
    maps.patch("a", &params, &Patch::Apply(first))
        .await
        .unwrap();
    let second = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"keep": "1"}}, "data": {"keep": "1"}});
    let result = maps
        .patch("a", &params, &Patch::Apply(second))
        .await
        .unwrap();
    assert_eq!(result.data.unwrap().keys().collect::<Vec<_>>(), ["keep"]);
    assert_eq!(
        result.metadata.labels.unwrap().keys().collect::<Vec<_>>(),
        ["keep"]
    );
}

#[tokio::test]
async fn conflicting_managers_get_a_409_unless_forced() {
    let client = simulator().client();
    let deployments: Api<Deployment> = Api::namespaced(client, "default");
    deployments
        .patch(
            "web",
            &PatchParams::apply("stack"),
            &Patch::Apply(deployment("nginx:1")),
        )
        .await
        .unwrap();
    let status = error_of(
        deployments
            .patch(
                "web",
                &PatchParams::apply("other"),
                &Patch::Apply(deployment("nginx:2")),
            )
            .await,
    );
    assert_eq!(status.code, 409);
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"stack\": .spec.template.spec.containers[name=\"web\"].image"
    );
    // The same value is not a conflict: both own it.
    deployments
        .patch(
            "web",
            &PatchParams::apply("other"),
            &Patch::Apply(deployment("nginx:1")),
        )
        .await
        .unwrap();
    let forced = deployments
        .patch(
            "web",
            &PatchParams::apply("other").force(),
            &Patch::Apply(deployment("nginx:3")),
        )
        .await
        .unwrap();
    let image = forced.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("nginx:3"));
}

#[tokio::test]
async fn update_managers_conflict_with_appliers() {
    let client = simulator().client();
    let deployments: Api<Deployment> = Api::namespaced(client, "default");
    deployments
        .patch(
            "web",
            &PatchParams::apply("stack"),
            &Patch::Apply(deployment("nginx:1")),
        )
        .await
        .unwrap();
    let scale = PatchParams {
        field_manager: Some("kubectl-edit".into()),
        ..PatchParams::default()
    };
    deployments
        .patch(
            "web",
            &scale,
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    let status = error_of(
        deployments
            .patch(
                "web",
                &PatchParams::apply("stack"),
                &Patch::Apply(deployment("nginx:1")),
            )
            .await,
    );
    assert!(
        status
            .message
            .contains("conflict with \"kubectl-edit\" using apps/v1: .spec.replicas"),
        "{}",
        status.message
    );
}

#[tokio::test]
async fn dry_run_returns_what_a_write_would_without_writing() {
    let client = simulator().client();
    let deployments: Api<Deployment> = Api::namespaced(client, "default");
    let dry = PatchParams::apply("stack").dry_run();
    let preview = deployments
        .patch("web", &dry, &Patch::Apply(deployment("nginx:1")))
        .await
        .unwrap();
    assert!(preview.metadata.resource_version.is_none());
    assert_eq!(preview.spec.unwrap().progress_deadline_seconds, Some(600));
    assert_eq!(error_of(deployments.get("web").await).code, 404);
    let real = deployments
        .patch(
            "web",
            &PatchParams::apply("stack"),
            &Patch::Apply(deployment("nginx:1")),
        )
        .await
        .unwrap();
    let preview = deployments
        .patch("web", &dry, &Patch::Apply(deployment("nginx:2")))
        .await
        .unwrap();
    assert_eq!(preview.metadata.generation, Some(2));
    let live = deployments.get("web").await.unwrap();
    assert_eq!(
        live.metadata.resource_version,
        real.metadata.resource_version
    );
    assert_eq!(live.metadata.generation, Some(1));
}

#[tokio::test]
async fn deployments_roll_out_through_replica_sets_and_pods() {
    let client = simulator().client();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deployments
        .patch(
            "web",
            &PatchParams::apply("stack"),
            &Patch::Apply(deployment("nginx:1")),
        )
        .await
        .unwrap();
    let ready = watch_until(&deployments, "web", |d: &Deployment| {
        let status = d.status.clone().unwrap_or_default();
        status.observed_generation == d.metadata.generation
            && status.available_replicas == Some(2)
            && status.updated_replicas == Some(2)
    })
    .await;
    let conditions = ready.status.unwrap().conditions.unwrap();
    let progressing = conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(
        progressing.reason.as_deref(),
        Some("NewReplicaSetAvailable")
    );
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let pods = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(pods.items.len(), 2);
    for pod in &pods.items {
        let status = pod.status.clone().unwrap_or_default();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        // Created with its status in one write, owned as a create and a
        // status write would own it.
        let entries = pod.metadata.managed_fields.clone().unwrap_or_default();
        let owns = |subresource: Option<&str>, field: &str| {
            entries.iter().any(|e| {
                e.subresource.as_deref() == subresource
                    && e.fields_v1
                        .as_ref()
                        .is_some_and(|f| f.0.get(field).is_some())
            })
        };
        assert!(
            owns(None, "f:spec") && !owns(None, "f:status"),
            "{entries:?}"
        );
        assert!(owns(Some("status"), "f:status") && !owns(Some("status"), "f:spec"));
    }
}

#[tokio::test]
async fn progress_deadline_fault_is_reported() {
    let client = simulator().client();
    let deployments: Api<Deployment> = Api::namespaced(client, "default");
    let mut broken = deployment("nginx:1");
    broken["metadata"]["annotations"] = json!({"sim.stack.dev/fail": "progress-deadline"});
    deployments
        .patch("web", &PatchParams::apply("stack"), &Patch::Apply(broken))
        .await
        .unwrap();
    watch_until(&deployments, "web", |d: &Deployment| {
        d.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
            })
    })
    .await;
}

#[tokio::test]
async fn jobs_complete_or_fail_on_request() {
    let client = simulator().client();
    let jobs: Api<Job> = Api::namespaced(client, "default");
    for (name, fail) in [("ok", None), ("bad", Some("job-failed"))] {
        let mut job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}});
        if let Some(fail) = fail {
            job["metadata"]["annotations"] = json!({"sim.stack.dev/fail": fail});
        }
        jobs.patch(name, &PatchParams::apply("stack"), &Patch::Apply(job))
            .await
            .unwrap();
    }
    let condition = |job: &Job, kind: &str| {
        job.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == kind && c.status == "True"))
    };
    watch_until(&jobs, "ok", |j: &Job| condition(j, "Complete")).await;
    watch_until(&jobs, "bad", |j: &Job| condition(j, "Failed")).await;
}

#[tokio::test]
async fn claims_bind_and_load_balancers_get_an_address() {
    let client = simulator().client();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    claims.patch("data", &PatchParams::apply("stack"), &Patch::Apply(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1024Mi"}}}}))).await.unwrap();
    let bound = watch_until(&claims, "data", |c: &PersistentVolumeClaim| {
        c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
    })
    .await;
    assert_eq!(
        bound.spec.unwrap().resources.unwrap().requests.unwrap()["storage"].0,
        "1Gi"
    );
    let services: Api<Service> = Api::namespaced(client, "default");
    services
        .patch(
            "lb",
            &PatchParams::apply("stack"),
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}),
            ),
        )
        .await
        .unwrap();
    watch_until(&services, "lb", |s: &Service| {
        s.status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .is_some()
    })
    .await;
}

#[tokio::test]
async fn namespaces_terminate_and_take_their_content() {
    let client = simulator().client();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            "temp",
            &PatchParams::apply("stack"),
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "temp"}}),
            ),
        )
        .await
        .unwrap();
    let live = namespaces.get("temp").await.unwrap();
    assert_eq!(live.status.unwrap().phase.as_deref(), Some("Active"));
    let maps: Api<ConfigMap> = Api::namespaced(client, "temp");
    maps.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "a"}})).unwrap(),
    )
    .await
    .unwrap();
    namespaces
        .delete("temp", &DeleteParams::default())
        .await
        .unwrap();
    let status = error_of(
        maps.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "b"}})).unwrap(),
        )
        .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    let mut stream = namespaces
        .watch(&WatchParams::default().fields("metadata.name=temp"), "0")
        .await
        .unwrap()
        .boxed();
    while let Some(event) = stream.try_next().await.unwrap() {
        if matches!(event, WatchEvent::Deleted(_)) {
            break;
        }
    }
    assert_eq!(error_of(namespaces.get("temp").await).code, 404);
}

#[tokio::test]
async fn crds_become_served_and_discoverable() {
    let client = simulator().client();
    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    );
    crds.patch("widgets.example.com", &PatchParams::apply("stack"), &Patch::Apply(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    }))).await.unwrap();
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    let mut found = None;
    for _ in 0..200 {
        let discovery = Discovery::new(client.clone()).run().await.unwrap();
        if let Some((resource, _)) = discovery.resolve_gvk(&gvk) {
            found = Some(resource);
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let resource = found.expect("the CRD's kind is discovered once established");
    let widgets: Api<DynamicObject> = Api::namespaced_with(client, "default", &resource);
    widgets.patch("w", &PatchParams::apply("stack"), &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3}}))).await.unwrap();
    assert_eq!(widgets.get("w").await.unwrap().data["spec"]["size"], 3);
}

#[tokio::test]
async fn pagination_with_limit_and_continue() {
    let client = simulator().client();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default");
    for index in 0..7 {
        maps.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": format!("m{index}")}})).unwrap(),
        )
        .await
        .unwrap();
    }
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut params = ListParams::default().limit(3);
        if let Some(token) = &token {
            params = params.continue_token(token);
        }
        let page = maps.list(&params).await.unwrap();
        names.extend(page.items.iter().map(|m| m.metadata.name.clone().unwrap()));
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    assert_eq!(names, ["m0", "m1", "m2", "m3", "m4", "m5", "m6"]);
}

#[tokio::test]
async fn bad_selectors_are_400s() {
    let client = simulator().client();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default");
    let status = error_of(maps.list(&ListParams::default().labels("a in b")).await);
    assert_eq!((status.code, status.reason.as_str()), (400, "BadRequest"));
    let status = error_of(maps.list(&ListParams::default().fields("spec.x=1")).await);
    // The real server's wording (tests/conformance: list-watch/selectors/field-unsupported).
    assert_eq!(
        status.message,
        "\"spec.x\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
    );
}

#[tokio::test]
async fn labels_and_annotations_that_are_not_strings_are_400s() {
    let client = simulator().client();
    let api: Api<DynamicObject> =
        Api::namespaced_with(client, "default", &ApiResource::erase::<Deployment>(&()));
    let mut body = deployment("nginx:1.27");
    body["spec"]["template"]["metadata"]["annotations"] =
        json!({"sim.stack.dev/rollout-seconds": 250});
    let params = PatchParams::apply("test");
    let status = error_of(api.patch("web", &params, &Patch::Apply(&body)).await);
    assert_eq!(status.code, 400);
    assert_eq!(
        status.message,
        "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal number into Go struct field ObjectMeta.metadata.annotations of type string"
    );
}

/// Watch one object until `done` holds (no sleeps: the watch wakes us).
async fn watch_until<K>(api: &Api<K>, name: &str, done: impl Fn(&K) -> bool) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let params = WatchParams::default()
        .fields(&format!("metadata.name={name}"))
        .timeout(60);
    let mut stream = api.watch(&params, "0").await.unwrap().boxed();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let event = tokio::time::timeout_at(deadline, stream.try_next())
            .await
            .expect("condition reached in time")
            .unwrap();
        match event {
            Some(WatchEvent::Added(object) | WatchEvent::Modified(object)) if done(&object) => {
                return object;
            }
            Some(_) => {}
            None => panic!("watch ended before the condition held"),
        }
    }
}

#[tokio::test]
async fn generation_moves_only_with_the_spec_and_status_is_a_subresource() {
    let client = simulator().client();
    let deployments: Api<Deployment> = Api::namespaced(client, "default");
    let params = PatchParams::apply("stack");
    deployments
        .patch("web", &params, &Patch::Apply(deployment("nginx:1")))
        .await
        .unwrap();
    let mut labelled = deployment("nginx:1");
    labelled["metadata"]["labels"]["extra"] = json!("yes");
    let after_label = deployments
        .patch("web", &params, &Patch::Apply(labelled))
        .await
        .unwrap();
    assert_eq!(
        after_label.metadata.generation,
        Some(1),
        "metadata changes do not bump generation"
    );
    let mut with_status = deployment("nginx:1");
    with_status["status"] = json!({"replicas": 99});
    let ignored = deployments
        .patch("web", &params, &Patch::Apply(with_status))
        .await
        .unwrap();
    assert_ne!(
        ignored.status.and_then(|s| s.replicas),
        Some(99),
        "status is ignored on the main resource"
    );
    let status_patch = PatchParams {
        field_manager: Some("tester".into()),
        ..PatchParams::default()
    };
    let written = deployments
        .patch_status(
            "web",
            &status_patch,
            &Patch::Merge(json!({"status": {"replicas": 7}})),
        )
        .await
        .unwrap();
    assert_eq!(written.status.unwrap().replicas, Some(7));
    assert_eq!(written.metadata.generation, Some(1));
}

#[tokio::test]
async fn deleting_an_owner_cascades_to_its_dependents() {
    let client = simulator().client();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deployments
        .patch(
            "web",
            &PatchParams::apply("stack"),
            &Patch::Apply(deployment("nginx:1")),
        )
        .await
        .unwrap();
    watch_until(&deployments, "web", |d: &Deployment| {
        d.status.as_ref().and_then(|s| s.available_replicas) == Some(2)
    })
    .await;
    deployments
        .delete("web", &DeleteParams::background())
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let mut stream = pods
        .watch(&WatchParams::default().labels("app=web"), "0")
        .await
        .unwrap()
        .boxed();
    let mut remaining = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items
        .len();
    while remaining > 0 {
        match stream.try_next().await.unwrap() {
            Some(WatchEvent::Deleted(_)) => remaining -= 1,
            Some(_) => {}
            None => break,
        }
    }
    assert!(
        pods.list(&ListParams::default().labels("app=web"))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

/// Bad input gets the real server's codes and Status bodies, never a 500.
#[tokio::test]
async fn bad_input_gets_real_status_codes() {
    let simulator = simulator();
    let send = |method: &str, uri: &str, content_type: &str, body: &str| {
        let request = http::Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", content_type)
            .body(bytes::Bytes::from(body.to_string()))
            .unwrap();
        let simulator = simulator.clone();
        async move {
            let response = simulator.handle(request).await;
            let status = response.status().as_u16();
            let body = http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap()
                .to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    let maps = "/api/v1/namespaces/default/configmaps";
    let (code, body) = send("POST", maps, "application/json", "{not json").await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("\"reason\":\"BadRequest\""));
    let (code, _) = send(
        "POST",
        maps,
        "application/json",
        r#"{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"x"}}"#,
    )
    .await;
    assert_eq!(code, 400, "an apiVersion that does not match the URL");
    let (code, body) = send(
        "POST",
        maps,
        "application/json",
        r#"{"metadata":{"name":"Not_Valid"}}"#,
    )
    .await;
    assert_eq!(code, 422, "{body}");
    let (code, body) = send("PATCH", &format!("{maps}/x"), "text/plain", "x").await;
    assert_eq!(code, 415, "{body}");
    // A body the simulator cannot read names what it can, for the request.
    let (code, body) = send("POST", maps, "application/vnd.kubernetes.protobuf", "x").await;
    assert_eq!(code, 415, "{body}");
    assert!(
        body.contains("accepted media types include: application/json, application/yaml"),
        "{body}"
    );
    let (code, body) = send(
        "PATCH",
        &format!("{maps}/x"),
        "application/apply-patch+yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    )
    .await;
    assert_eq!(code, 422, "apply without fieldManager: {body}");
    assert!(body.contains("fieldManager: Required value"));
    let (code, body) = send(
        "GET",
        "/apis/example.com/v1/widgets",
        "application/json",
        "",
    )
    .await;
    assert_eq!((code, body.as_str()), (404, "404 page not found"));
    let (code, _) = send(
        "GET",
        "/apis/apps/v1/deployments/web",
        "application/json",
        "",
    )
    .await;
    assert_eq!(code, 404, "a namespaced resource through a cluster path");
    let (code, body) = send(
        "GET",
        &format!("{maps}?labelSelector=a%20in%20b"),
        "application/json",
        "",
    )
    .await;
    assert_eq!(code, 400, "{body}");
    let (code, body) = send(
        "GET",
        &format!("{maps}?watch=true&sendInitialEvents=true"),
        "application/json",
        "",
    )
    .await;
    assert_eq!(
        code, 422,
        "streaming lists need resourceVersionMatch and bookmarks: {body}"
    );
}

/// As a real API server does, a list of a built-in kind carries
/// `apiVersion` and `kind` once, on the list; its items have neither (a
/// client that keys objects by kind must take it from the list).
#[tokio::test]
async fn items_of_a_built_in_list_carry_no_kind() {
    let client = simulator().client();
    let maps: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::erase::<ConfigMap>(&()),
    );
    let map: DynamicObject = serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}),
    )
    .unwrap();
    maps.create(&PostParams::default(), &map).await.unwrap();
    let request = http::Request::get("/api/v1/namespaces/default/configmaps")
        .body(Vec::new())
        .unwrap();
    let list: serde_json::Value = client.request(request).await.unwrap();
    assert_eq!(
        (list["kind"].as_str(), list["apiVersion"].as_str()),
        (Some("ConfigMapList"), Some("v1"))
    );
    let item = &list["items"][0];
    assert_eq!(item["metadata"]["name"], "a");
    assert!(
        item.get("kind").is_none() && item.get("apiVersion").is_none(),
        "{item}"
    );
}

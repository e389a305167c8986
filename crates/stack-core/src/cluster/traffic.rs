//! Where requests would go: a model of ingress-nginx's routing over the
//! live Ingresses, Services and Pods, so that a blue/green switch or a
//! canary's weights can be observed as a split of requests, not only read
//! off annotations.
//!
//! A request for `host` and `path` matches the Ingress rules with that host
//! (or none) and the longest matching path (`Exact` equal, `Prefix` by path
//! segments, `ImplementationSpecific` as a prefix). Among the matching
//! Ingresses, one without `nginx.ingress.kubernetes.io/canary: "true"` is
//! the main route and the first canary (by namespace and name) its canary:
//! `canary-by-header` sends requests whose header is `always` (or equals
//! `canary-by-header-value`) to the canary and `never` to the main route;
//! the others go to the canary by `canary-weight` out of
//! `canary-weight-total` (100). The split is exact, not sampled: 10 % of
//! 1000 requests is 100. Within a Service, requests are spread evenly over
//! its ready Pods (round robin), each counted for its workload (the Pod's
//! name without its ReplicaSet and Pod suffixes); a Service without a
//! ready Pod answers 503.

use std::collections::BTreeMap;

use serde_json::Value;

/// What to send.
#[derive(Debug, Clone)]
pub struct Requests<'a> {
    pub host: &'a str,
    pub path: &'a str,
    pub count: u64,
    /// A header every request carries (`name`, `value`).
    pub header: Option<(&'a str, &'a str)>,
}

/// Requests that reached one workload through one Service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Routed {
    /// `namespace/service`.
    pub service: String,
    /// The Pods' workload (`backend-green`); `(no ready pod)` for 503s.
    pub workload: String,
    pub requests: u64,
    /// The path the workload sees (after a `rewrite-target`).
    pub path: String,
    /// The auth URL a request goes to first (a private Ingress's
    /// `auth-url`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
}

const CANARY: &str = "nginx.ingress.kubernetes.io/canary";

fn annotation<'a>(ingress: &'a Value, name: &str) -> Option<&'a str> {
    ingress["metadata"]["annotations"][format!("nginx.ingress.kubernetes.io/{name}")].as_str()
}

/// How well `path` matches a rule path (the rule's length) and the path
/// the backend sees; `None` if it does not match. With `use-regex` (or a
/// `rewrite-target`) the rule path is a regex matched from the start, and
/// `rewrite-target`'s `$N` take its groups.
fn path_match(ingress: &Value, rule: &Value, path: &str) -> Option<(usize, String)> {
    let wanted = rule["path"].as_str().unwrap_or("/");
    let rewrite = annotation(ingress, "rewrite-target");
    if annotation(ingress, "use-regex") == Some("true") || rewrite.is_some() {
        let pattern = regex::Regex::new(&format!("(?i)^{wanted}")).ok()?;
        let captures = pattern.captures(path)?;
        let seen = match rewrite {
            Some(target) => {
                let mut out = String::new();
                captures.expand(target, &mut out);
                if out.is_empty() { "/".to_string() } else { out }
            }
            None => path.to_string(),
        };
        return Some((wanted.len(), seen));
    }
    let matches = match rule["pathType"].as_str().unwrap_or("Prefix") {
        "Exact" => path == wanted,
        "Prefix" => {
            let base = wanted.trim_end_matches('/');
            path == base
                || base.is_empty()
                || path
                    .strip_prefix(base)
                    .is_some_and(|rest| rest.starts_with('/'))
        }
        _ => path.starts_with(wanted),
    };
    matches.then(|| (wanted.len(), path.to_string()))
}

/// The Service an Ingress sends `host`/`path` to, how well it matched, and
/// the path the Service sees.
fn backend_of(ingress: &Value, host: &str, path: &str) -> Option<(usize, String, String)> {
    let namespace = ingress["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    ingress["spec"]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|rule| rule["host"].as_str().is_none_or(|h| h == host))
        .flat_map(|rule| rule["http"]["paths"].as_array().into_iter().flatten())
        .filter_map(|rule| {
            let service = rule["backend"]["service"]["name"].as_str()?;
            let (length, seen) = path_match(ingress, rule, path)?;
            Some((length, format!("{namespace}/{service}"), seen))
        })
        .max_by_key(|(length, ..)| *length)
}

/// Whether a request with `header` goes to the canary by its header:
/// `Some(true)` always, `Some(false)` never, `None` by weight.
fn by_header(canary: &Value, header: Option<(&str, &str)>) -> Option<bool> {
    let name = annotation(canary, "canary-by-header")?;
    let (sent, value) = header.filter(|(sent, _)| sent.eq_ignore_ascii_case(name))?;
    if let Some(wanted) = annotation(canary, "canary-by-header-value") {
        return (value == wanted).then_some(true);
    }
    match value {
        "always" => Some(true),
        "never" => Some(false),
        _ => None,
    }
    .filter(|_| !sent.is_empty())
}

/// How many of `count` requests the canary gets.
fn canary_share(canary: &Value, requests: &Requests<'_>) -> u64 {
    match by_header(canary, requests.header) {
        Some(true) => return requests.count,
        Some(false) => return 0,
        None => {}
    }
    let number = |name: &str, default: u64| {
        annotation(canary, name)
            .and_then(|text| text.trim().parse::<u64>().ok())
            .unwrap_or(default)
    };
    let total = number("canary-weight-total", 100).max(1);
    let weight = number("canary-weight", 0).min(total);
    (requests.count * weight + total / 2) / total
}

/// The workload a Pod belongs to: its name without the ReplicaSet hash and
/// the Pod suffix (`backend-green-7d9f-x2k4` → `backend-green`).
fn workload(pod: &Value) -> String {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let owned = pod["metadata"]["labels"]["pod-template-hash"].is_string();
    let parts: Vec<&str> = name.split('-').collect();
    let keep = parts.len().saturating_sub(if owned { 2 } else { 0 }).max(1);
    parts[..keep].join("-")
}

fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// Where an Ingress sends a request: its Service, the path the Service
/// sees, the auth URL asked first.
struct Target<'a> {
    service: &'a str,
    path: &'a str,
    auth: Option<&'a str>,
}

/// Spread `count` requests for a target's Service over its ready Pods.
fn spread(
    target: &Target<'_>,
    count: u64,
    services: &[Value],
    pods: &[Value],
    out: &mut Vec<Routed>,
) {
    let service = target.service;
    let routed = |workload: String, requests: u64| Routed {
        service: service.to_string(),
        workload,
        requests,
        path: target.path.to_string(),
        auth: target.auth.map(str::to_string),
    };
    let (namespace, name) = service.split_once('/').unwrap_or(("default", service));
    let selector = services
        .iter()
        .find(|s| {
            s["metadata"]["namespace"].as_str() == Some(namespace)
                && s["metadata"]["name"].as_str() == Some(name)
        })
        .and_then(|s| s["spec"]["selector"].as_object());
    let endpoints: Vec<&Value> = pods
        .iter()
        .filter(|pod| pod["metadata"]["namespace"].as_str() == Some(namespace) && ready(pod))
        .filter(|pod| {
            selector.is_some_and(|selector| {
                !selector.is_empty()
                    && selector
                        .iter()
                        .all(|(key, value)| pod["metadata"]["labels"][key] == *value)
            })
        })
        .collect();
    if endpoints.is_empty() {
        if count > 0 {
            out.push(routed("(no ready pod)".into(), count));
        }
        return;
    }
    let mut by_workload: BTreeMap<String, u64> = BTreeMap::new();
    let pods = endpoints.len() as u64;
    for (index, pod) in endpoints.iter().enumerate() {
        let share = count / pods + u64::from((index as u64) < count % pods);
        *by_workload.entry(workload(pod)).or_default() += share;
    }
    out.extend(
        by_workload
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(workload, requests)| routed(workload, requests)),
    );
}

/// The routing objects of the whole cluster: Ingresses, Services, Pods
/// (one LIST each; a kind the cluster does not serve is none).
pub async fn routing_objects(
    client: &kube::Client,
    resources: &super::resources::Resources,
) -> Result<[Vec<Value>; 3], kube::Error> {
    let list = |api_version: &str, kind: &str| {
        let api = resources
            .api(client, api_version, kind, None)
            .map(|(api, _)| api);
        async move {
            let Some(api) = api else {
                return Ok(Vec::new());
            };
            let items = api.list(&kube::api::ListParams::default()).await?;
            Ok::<_, kube::Error>(
                items
                    .items
                    .into_iter()
                    .map(|item| serde_json::to_value(item).unwrap_or_default())
                    .collect(),
            )
        }
    };
    let (ingresses, services, pods) = futures::try_join!(
        list("networking.k8s.io/v1", "Ingress"),
        list("v1", "Service"),
        list("v1", "Pod"),
    )?;
    Ok([ingresses, services, pods])
}

/// Where `count` requests sent straight to a Service (`namespace/name`,
/// from inside the cluster) would go.
pub fn to_service(service: &str, count: u64, services: &[Value], pods: &[Value]) -> Vec<Routed> {
    let mut out = Vec::new();
    let target = Target {
        service,
        path: "/",
        auth: None,
    };
    spread(&target, count, services, pods, &mut out);
    out
}

/// Where `requests` would go; `None` when no Ingress routes them.
pub fn route(
    requests: &Requests<'_>,
    ingresses: &[Value],
    services: &[Value],
    pods: &[Value],
) -> Option<Vec<Routed>> {
    // (canary, the match's length, namespace/name, Service, path seen, ingress)
    let mut matched: Vec<(bool, usize, String, String, String, &Value)> = ingresses
        .iter()
        .filter_map(|ingress| {
            let (length, service, seen) = backend_of(ingress, requests.host, requests.path)?;
            let canary = ingress["metadata"]["annotations"][CANARY] == "true";
            let id = format!(
                "{}/{}",
                ingress["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default(),
                ingress["metadata"]["name"].as_str().unwrap_or_default()
            );
            Some((canary, usize::MAX - length, id, service, seen, ingress))
        })
        .collect();
    // The longest match wins; among equals, the first by namespace and name.
    matched.sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
    let main = matched.iter().find(|m| !m.0)?;
    let canary = matched.iter().find(|m| m.0);
    let target = |m: &(bool, usize, String, String, String, &Value)| {
        (
            m.3.clone(),
            m.4.clone(),
            annotation(m.5, "auth-url").map(str::to_string),
        )
    };
    let mut out = Vec::new();
    let to_canary = canary.map_or(0, |m| canary_share(m.5, requests));
    let (service, path, auth) = target(main);
    let main_target = Target {
        service: &service,
        path: &path,
        auth: auth.as_deref(),
    };
    spread(
        &main_target,
        requests.count - to_canary,
        services,
        pods,
        &mut out,
    );
    if let Some(canary) = canary {
        let (service, path, auth) = target(canary);
        let canary_target = Target {
            service: &service,
            path: &path,
            auth: auth.as_deref(),
        };
        spread(&canary_target, to_canary, services, pods, &mut out);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ingress(name: &str, service: &str, annotations: &Value) -> Value {
        json!({"metadata": {"name": name, "namespace": "apps", "annotations": annotations},
            "spec": {"rules": [{"host": "shop.test", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": service}}}]}}]}})
    }

    fn service(name: &str, colour: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "apps"},
            "spec": {"selector": {"app": "web", "stack.dev/color": colour}}})
    }

    fn pod(name: &str, colour: &str, is_ready: bool) -> Value {
        json!({"metadata": {"name": name, "namespace": "apps",
                "labels": {"app": "web", "stack.dev/color": colour, "pod-template-hash": "abc"}},
            "status": {"conditions": [{"type": "Ready", "status": if is_ready {"True"} else {"False"}}]}})
    }

    fn requests(header: Option<(&'static str, &'static str)>) -> Requests<'static> {
        Requests {
            host: "shop.test",
            path: "/api/items",
            count: 1000,
            header,
        }
    }

    fn split(routed: &[Routed]) -> Vec<(&str, u64)> {
        routed
            .iter()
            .map(|r| (r.workload.as_str(), r.requests))
            .collect()
    }

    #[test]
    fn a_service_sends_everything_to_the_ready_pods_of_the_colour_it_selects() {
        let pods = [
            pod("web-blue-abc-1", "blue", true),
            pod("web-blue-abc-2", "blue", true),
            pod("web-green-abc-1", "green", true),
            pod("web-green-abc-2", "green", false),
        ];
        let routed = route(
            &requests(None),
            &[ingress("web", "web", &json!({}))],
            &[service("web", "green")],
            &pods,
        )
        .unwrap();
        assert_eq!(split(&routed), [("web-green", 1000)]);
    }

    #[test]
    fn a_canary_takes_its_weight_and_a_header_overrides_it() {
        let ingresses = [
            ingress("web", "web", &json!({})),
            ingress(
                "web-canary",
                "web-canary",
                &json!({CANARY: "true", "nginx.ingress.kubernetes.io/canary-weight": "10",
                    "nginx.ingress.kubernetes.io/canary-by-header": "X-Canary"}),
            ),
        ];
        let services = [service("web", "blue"), service("web-canary", "green")];
        let pods = [
            pod("web-blue-abc-1", "blue", true),
            pod("web-green-abc-1", "green", true),
        ];
        let weighted = route(&requests(None), &ingresses, &services, &pods).unwrap();
        assert_eq!(split(&weighted), [("web-blue", 900), ("web-green", 100)]);
        let always = route(
            &requests(Some(("x-canary", "always"))),
            &ingresses,
            &services,
            &pods,
        )
        .unwrap();
        assert_eq!(split(&always), [("web-green", 1000)]);
        let never = route(
            &requests(Some(("X-Canary", "never"))),
            &ingresses,
            &services,
            &pods,
        )
        .unwrap();
        assert_eq!(split(&never), [("web-blue", 1000)]);
    }

    #[test]
    fn no_ready_pod_is_a_503_and_no_ingress_is_no_route() {
        let routed = route(
            &requests(None),
            &[ingress("web", "web", &json!({}))],
            &[service("web", "blue")],
            &[],
        )
        .unwrap();
        assert_eq!(split(&routed), [("(no ready pod)", 1000)]);
        let other = Requests {
            host: "other.test",
            ..requests(None)
        };
        assert_eq!(
            route(&other, &[ingress("web", "web", &json!({}))], &[], &[]),
            None
        );
    }
}

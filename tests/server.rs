//! `stack server`, the deploy API, and `stack deploy`, its client: signed
//! requests refused for every reason with nothing queued, deployments that
//! succeed, fail and are rolled back, serialised per environment and with
//! the command line's lock, followed as server-sent events, reported to a
//! callback, and kept across a restart. Loopback only.

use std::io::{BufRead as _, Read as _, Write as _};
use std::process::{Child, Stdio};

use serde_json::{Value, json};

use crate::atomic::POD_FAULT;
use crate::harness::{Server, Test, http, http_with};

pub const SHOP_KEY: &str = "shop-key-0123456789abcdef";
const CORE_KEY: &str = "core-key-0123456789abcdef";

/// The example platform with a teams file encrypted to the demo key:
/// `shop` deploys the apps (`tier=apps`) to development and staging,
/// `core` anything to development; `notify` is `shop`'s callback.
pub fn with_teams(notify: Option<&str>) -> Test {
    let notify = notify.map_or(String::new(), |url| {
        format!("    notify: {{url: \"{url}\", secret: callback-secret-0123456789}}\n")
    });
    let test = Test::example().rolling_backend();
    // Encrypted to the demo key, outside `secrets/` (whose values the
    // leak check looks for: team names and environments are not secret).
    let rules = test.read(".sops.yaml").replace(
        "creation_rules:\n",
        "creation_rules:\n  - path_regex: teams\\.yaml$\n    age: age1ue44m360uxt840d0d44mhl4sat8aljsu7n8802sgpq4ejhzztuvsw4kga4\n",
    );
    let test = test.file(".sops.yaml", &rules).file(
        "teams.yaml",
        &format!(
            "teams:\n  shop:\n    keys: [\"{SHOP_KEY}\"]\n    environments: [development, staging]\n    selector: tier=apps\n{notify}  core:\n    keys: [\"old-core-key-0123456789\", \"{CORE_KEY}\"]\n    environments: [development]\n"
        ),
    );
    test.stack(&["secrets", "encrypt", "--in-place", "teams.yaml"])
        .success();
    assert!(!test.read("teams.yaml").contains(SHOP_KEY));
    test
}

/// `stack server` on a free loopback port, killed on drop.
pub struct DeployServer {
    child: Child,
    pub url: String,
}

impl DeployServer {
    pub fn start(test: &Test) -> Self {
        Self::start_with(test, &[])
    }

    /// `stack server` with these further arguments.
    pub fn start_with(test: &Test, extra: &[&str]) -> Self {
        let base = [
            "server",
            "--teams",
            "teams.yaml",
            "--age-key-file",
            "secrets/demo-age-key.txt",
            "--listen",
            "127.0.0.1:0",
        ];
        let mut child = test
            .command(&[&base[..], extra].concat())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start stack server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the server's first line");
        let url = line
            .trim()
            .strip_prefix("stack server listening on ")
            .unwrap_or_else(|| panic!("not the listening line: {line:?}"))
            .to_string();
        Self { child, url }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn get(&self, path: &str) -> Value {
        let (code, body) = http(
            &format!("{}{path}", self.url),
            "GET",
            "application/json",
            "",
        );
        assert_eq!(code, 200, "{path}: {body}");
        serde_json::from_str(&body).expect("JSON")
    }

    /// POST a body signed with `key` (`None`: unsigned): status and answer.
    pub fn post(&self, body: &str, key: Option<&str>, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut extra: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        if let Some(key) = key {
            extra.push((
                "X-Stack-Signature".into(),
                stack_server::signature(key.as_bytes(), body.as_bytes()),
            ));
        }
        let url = format!("{}/api/v1/deploy", self.url);
        let (code, answer) = http_with(&url, "POST", "application/json", body, &extra);
        (code, serde_json::from_str(&answer).unwrap_or(Value::Null))
    }

    /// The deployment `id` once it has a final status.
    pub fn finished(&self, id: &str) -> Value {
        let events = self.events(id);
        assert!(!events.is_empty());
        self.get(&format!("/api/v1/deployments/{id}"))
    }

    /// Shop's deploy of backend 1.6.0 with a rollout of 250 simulated
    /// seconds, followed on its event stream until it waits for that
    /// rollout: its id.
    pub fn slow_backend_deploy(&self) -> String {
        let slow = crate::faults::slow_rollout(250);
        let (path, _) = slow.split_once('=').unwrap();
        let set =
            json!({"selector": "name=backend", "set": {path: 250, "images.backend.tag": "1.6.0"}});
        let answer = self.accepted("shop", "development", "slow", &set);
        let id = answer["correlationID"].as_str().unwrap().to_string();
        assert_eq!(answer["logURL"], format!("{}/deployments/{id}", self.url));
        let url = format!("{}/api/v1/deployments/{id}/events", self.url);
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_once('/').unwrap();
        let mut stream = std::net::TcpStream::connect(host).expect("connect");
        write!(
            stream,
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let waiting = std::io::BufReader::new(stream)
            .lines()
            .map_while(Result::ok)
            .any(|line| {
                line.starts_with("data:")
                    && line.contains("\"event\":\"waiting_for\"")
                    && line.contains("Deployment/backend")
            });
        assert!(
            waiting,
            "the deployment ended without waiting for its rollout"
        );
        id
    }

    /// A deploy request of `team` (signed with its key) that must be
    /// accepted: the answer.
    pub fn accepted(&self, team: &str, environment: &str, git_ref: &str, extra: &Value) -> Value {
        let key = if team == "core" { CORE_KEY } else { SHOP_KEY };
        let (code, answer) = self.post(&request(team, environment, git_ref, extra), Some(key), &[]);
        assert_eq!(code, 201, "{answer}");
        answer
    }

    /// Every event of a deployment, read from its event stream to the end.
    pub fn events(&self, id: &str) -> Vec<Value> {
        let (_, body) = http(
            &format!("{}/api/v1/deployments/{id}/events", self.url),
            "GET",
            "text/event-stream",
            "",
        );
        body.lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(|data| serde_json::from_str(data.trim()).expect("an event"))
            .collect()
    }
}

impl Drop for DeployServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A deploy request body of `team` (now, unique by `ref`).
pub fn request(team: &str, environment: &str, git_ref: &str, extra: &Value) -> String {
    let mut body = json!({
        "team": team, "environment": environment, "repository": "acme/shop",
        "ref": git_ref, "timestamp": stack_kube::clock::now(),
    });
    if let Value::Object(extra) = extra {
        for (key, value) in extra {
            body[key] = value.clone();
        }
    }
    body.to_string()
}

/// `stack deploy` to `server` as team shop (its key in `shop.key`), to
/// development, with these further arguments.
fn shop_deploy(test: &Test, server: &DeployServer, extra: &[&str]) -> crate::harness::Output {
    std::fs::write(test.path().join("shop.key"), SHOP_KEY).unwrap();
    let mut args = vec![
        "deploy",
        "--server",
        &server.url,
        "--team",
        "shop",
        "--key-file",
        "shop.key",
        "-e",
        "development",
    ];
    args.extend_from_slice(extra);
    test.stack(&args)
}

fn deployments(server: &DeployServer) -> Vec<Value> {
    server
        .get("/api/v1/deployments")
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn every_refusal_has_its_status_and_message_and_queues_nothing() {
    let test = with_teams(None);
    let server = DeployServer::start(&test);
    let good = request("shop", "development", "r1", &json!({}));
    let stale = request(
        "shop",
        "development",
        "r2",
        &json!({"timestamp": "2020-01-01T00:00:00Z"}),
    );
    let cases: Vec<(String, Option<&str>, u16, &str)> = vec![
        (good.clone(), None, 403, "X-Stack-Signature"),
        (good.clone(), Some(CORE_KEY), 403, "X-Stack-Signature"),
        (
            request("nobody", "development", "r", &json!({})),
            Some(SHOP_KEY),
            403,
            "unknown team `nobody`",
        ),
        (
            request("shop", "production", "r", &json!({})),
            Some(SHOP_KEY),
            403,
            "team `shop` may not deploy to `production`",
        ),
        (
            request("shop", "qa", "r", &json!({})),
            Some(SHOP_KEY),
            400,
            "unknown environment `qa`",
        ),
        (
            stale,
            Some(SHOP_KEY),
            400,
            "more than 5 minutes from the server's clock",
        ),
        (
            "{not json".into(),
            Some(SHOP_KEY),
            400,
            "the body is not JSON",
        ),
        (
            json!({"team": "shop", "environment": "development"}).to_string(),
            Some(SHOP_KEY),
            400,
            "`repository` is missing",
        ),
        (
            request(
                "shop",
                "development",
                "r",
                &json!({"selector": "tier=core"}),
            ),
            Some(SHOP_KEY),
            403,
            "reaches releases outside team `shop`'s `tier=apps`: core/namespaces",
        ),
        (
            request(
                "shop",
                "development",
                "r",
                &json!({"resources": [{"kind": "ConfigMap"}]}),
            ),
            Some(SHOP_KEY),
            400,
            "`resources`",
        ),
        (
            format!("{{\"team\":\"shop\",\"pad\":\"{}\"}}", "x".repeat(2 << 20)),
            Some(SHOP_KEY),
            413,
            "",
        ),
    ];
    for (body, key, status, message) in &cases {
        let (code, answer) = server.post(body, *key, &[]);
        assert_eq!(code, *status, "{message}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap_or_default()
                .contains(message),
            "{message}: {answer}"
        );
    }
    assert_eq!(
        deployments(&server),
        Vec::<Value>::new(),
        "a refused request was queued"
    );
    // The same signed body twice: the second is a replay.
    let (code, first) = server.post(&good, Some(SHOP_KEY), &[]);
    assert_eq!(code, 201, "{first}");
    let (code, replay) = server.post(&good, Some(SHOP_KEY), &[]);
    assert_eq!(code, 409, "{replay}");
    // An Idempotency-Key gets the first answer again.
    let keyed = request(
        "core",
        "development",
        "r3",
        &json!({"selector": "name=worker"}),
    );
    let headers = [("Idempotency-Key", "build-77")];
    let (code, one) = server.post(&keyed, Some(CORE_KEY), &headers);
    assert_eq!(code, 201, "{one}");
    let (code, again) = server.post(&keyed, Some(CORE_KEY), &headers);
    assert_eq!((code, &again), (201, &one));
    assert_eq!(deployments(&server).len(), 2);
    for id in [&first["correlationID"], &one["correlationID"]] {
        assert_eq!(server.finished(id.as_str().unwrap())["status"], "success");
    }
}

#[test]
fn a_deploy_succeeds_and_its_events_stream_in_order() {
    let test = with_teams(None);
    test.stack(&["apply", "-q"]).success();
    let cluster = Server::start(test.path(), &[]);
    let server = DeployServer::start(&test);
    let deployed = shop_deploy(
        &test,
        &server,
        &[
            "-l",
            "name=backend",
            "--set",
            "images.backend.tag=1.6.0",
            "--repository",
            "acme/shop",
            "--ref",
            "v1.6.0",
            "--wait",
        ],
    )
    .success();
    let url = deployed.stdout.trim();
    assert!(
        url.starts_with(&format!("{}/api/v1/deployments/", server.url)),
        "{url}"
    );
    assert!(
        deployed
            .stderr
            .contains("[apps/backend] deployed revision 2"),
        "{}",
        deployed.stderr
    );
    assert!(
        deployed.stderr.ends_with("status: success\n"),
        "{}",
        deployed.stderr
    );
    let live = cluster.get("/apis/apps/v1/namespaces/apps/deployments/backend");
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/shop/backend:1.6.0"
    );
    let id = url.rsplit('/').next().unwrap();
    let deployment = server.finished(id);
    assert_eq!(deployment["status"], "success");
    assert_eq!(deployment["team"], "shop");
    assert_eq!(deployment["ref"], "v1.6.0");
    assert_eq!(deployment["request"]["selector"], "tier=apps,name=backend");
    assert_eq!(
        deployment["releases"],
        json!([{"id": "apps/backend", "result": "deployed"}])
    );
    let events = server.events(id);
    let numbers: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    let expected: Vec<i64> = (1..).take(numbers.len()).collect();
    assert_eq!(numbers, expected);
    let statuses: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "status")
        .filter_map(|e| e["status"].as_str())
        .collect();
    assert_eq!(statuses, ["queued", "in_progress", "success"]);
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    let position = |kind: &str| {
        kinds
            .iter()
            .position(|k| *k == kind)
            .unwrap_or_else(|| panic!("{kind}: {kinds:?}"))
    };
    assert!(position("applying") < position("deployed"), "{kinds:?}");
    assert_eq!(deployment["events"].as_array().unwrap().len(), events.len());
    // The leak check: no secret of the stack nor key of a team in any
    // answer, event, page or the database file.
    let page = http(
        &format!("{}/deployments/{id}", server.url),
        "GET",
        "text/html",
        "",
    )
    .1;
    assert!(page.contains("status") && page.contains(id), "{page}");
    let mut database = Vec::new();
    for file in ["server.db", "server.db-wal"] {
        if let Ok(bytes) = std::fs::read(test.path().join("stacks/.stack/server").join(file)) {
            database.extend(bytes);
        }
    }
    assert!(!database.is_empty());
    let everything = format!(
        "{:?}{events:?}{page}{}{}",
        deployments(&server),
        http(&format!("{}/", server.url), "GET", "text/html", "").1,
        String::from_utf8_lossy(&database)
    );
    for key in [SHOP_KEY, CORE_KEY] {
        assert!(!everything.contains(key));
    }
    test.assert_no_known_secret(
        &["server"],
        &crate::harness::Output {
            code: 0,
            stdout: everything,
            stderr: String::new(),
        },
    );
}

#[test]
fn a_deploy_whose_rollout_or_tests_fail_is_a_failure_rolled_back() {
    let test = with_teams(None);
    test.stack(&["apply", "-q"]).success();
    let server = DeployServer::start(&test);
    let faults = [
        (
            format!("{POD_FAULT}=progress-deadline"),
            "ProgressDeadlineExceeded",
        ),
        (
            format!("{}=job-failed", crate::atomic::TEST_FAULT),
            "test failed",
        ),
    ];
    for (fault, reason) in &faults {
        let args = [
            "-l",
            "name=backend",
            "--set",
            fault,
            "--set",
            "images.backend.tag=1.6.0",
            "--wait",
        ];
        let failed = shop_deploy(&test, &server, &args).code(3);
        assert!(
            failed.stderr.contains("status: failure"),
            "{}",
            failed.stderr
        );
        let id = failed.stdout.trim().rsplit('/').next().unwrap().to_string();
        let deployment = server.finished(&id);
        assert_eq!(deployment["status"], "failure");
        assert_eq!(deployment["releases"][0]["result"], "failed, rolled back");
        assert!(
            deployment["reason"].as_str().unwrap().contains(reason),
            "{deployment}"
        );
        let last = deployment["events"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(last["exitCode"], 3, "{last}");
        // Back at the revision deployed before.
        test.stack(&["diff", "-l", "name=backend", "--detailed-exitcode"])
            .success();
    }
}

#[test]
fn two_teams_deploying_to_one_environment_are_served_in_turn() {
    let test = with_teams(None);
    test.stack(&["apply", "-q"]).success();
    let server = DeployServer::start(&test);
    let slow = crate::faults::slow_rollout(1);
    let (path, _) = slow.split_once('=').unwrap();
    let a = server.accepted(
        "shop",
        "development",
        "a",
        &json!({"selector": "name=backend", "set": {path: 1}}),
    );
    let b = server.accepted(
        "core",
        "development",
        "b",
        &json!({"selector": "name=worker"}),
    );
    let a = server.finished(a["correlationID"].as_str().unwrap());
    let b = server.finished(b["correlationID"].as_str().unwrap());
    assert_eq!(
        (a["status"].as_str(), b["status"].as_str()),
        (Some("success"), Some("success"))
    );
    assert!(a["finished"].as_str() <= b["started"].as_str(), "{a}\n{b}");
    let refs: Vec<String> = deployments(&server)
        .iter()
        .map(|d| d["ref"].to_string())
        .collect();
    assert_eq!(refs, ["\"b\"", "\"a\""], "newest first");
}

#[test]
fn a_server_killed_mid_deployment_marks_it_interrupted_and_the_next_one_recovers() {
    let test = with_teams(None);
    test.stack(&["apply", "-q"]).success();
    let mut server = DeployServer::start(&test);
    // The deployment reaches its rollout wait, then the server dies.
    let id = server.slow_backend_deploy();
    server.kill();
    let server = DeployServer::start(&test);
    let deployment = server.get(&format!("/api/v1/deployments/{id}"));
    assert_eq!(deployment["status"], "error", "{deployment}");
    assert!(
        deployment["reason"]
            .as_str()
            .unwrap()
            .starts_with("interrupted"),
        "{deployment}"
    );
    let answer = server.accepted(
        "shop",
        "development",
        "next",
        &json!({"selector": "name=backend"}),
    );
    let next = server.finished(answer["correlationID"].as_str().unwrap());
    assert_eq!(next["status"], "success", "{next}");
    let events = next["events"].to_string();
    assert!(events.contains("recover"), "{events}");
    test.stack(&["diff", "-l", "name=backend", "--detailed-exitcode"])
        .success();
}

/// `count` POSTs received, each answered with `status(n)`: their
/// signature headers and bodies.
fn receive(
    receiver: &std::net::TcpListener,
    count: usize,
    status: impl Fn(usize) -> u16,
) -> Vec<(String, Vec<u8>)> {
    let mut received = Vec::new();
    for (n, stream) in receiver.incoming().take(count).enumerate() {
        let mut stream = stream.unwrap();
        let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
        let (mut length, mut signature, mut line) = (0, String::new(), String::new());
        while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
            let lower = line.to_ascii_lowercase();
            if let Some(value) = lower.strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
            if lower.starts_with("x-stack-signature:") {
                signature = line.split_once(':').unwrap().1.trim().to_string();
            }
            line.clear();
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let answer = format!(
            "HTTP/1.1 {} Answered\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            status(n)
        );
        let _ = stream.write_all(answer.as_bytes());
        received.push((signature, body));
    }
    received
}

/// The statuses of callbacks received.
fn statuses(received: &[(String, Vec<u8>)]) -> Vec<String> {
    received
        .iter()
        .map(|(_, body)| {
            let body: Value = serde_json::from_slice(body).unwrap();
            body["status"].as_str().unwrap().to_string()
        })
        .collect()
}

/// A deployment of shop's releases `selector`, whose statuses go to a
/// receiver listening on loopback: the receiver, the test, the server and
/// the answer.
fn with_callback(selector: &str) -> (std::net::TcpListener, Test, DeployServer, Value) {
    let receiver = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/deploy", receiver.local_addr().unwrap());
    let test = with_teams(Some(&url));
    test.stack(&["apply", "-q"]).success();
    let server = DeployServer::start(&test);
    let answer = server.accepted(
        "shop",
        "development",
        selector,
        &json!({"selector": selector}),
    );
    (receiver, test, server, answer)
}

#[test]
fn status_callbacks_reach_the_team_signed_in_order() {
    let (receiver, _test, _server, answer) = with_callback("name=backend");
    let received = receive(&receiver, 3, |_| 204);
    for (signature, body) in &received {
        assert_eq!(
            *signature,
            stack_server::signature(b"callback-secret-0123456789", body)
        );
        let body: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(body["id"], answer["correlationID"]);
    }
    assert_eq!(statuses(&received), ["queued", "in_progress", "success"]);
}

#[test]
fn a_callback_that_fails_is_sent_again() {
    let (receiver, _test, _server, _) = with_callback("name=worker");
    // The first delivery is answered 503: the same status comes again.
    let received = receive(&receiver, 4, |n| if n == 0 { 503 } else { 204 });
    assert_eq!(
        statuses(&received),
        ["queued", "queued", "in_progress", "success"]
    );
}

#[test]
fn a_server_deploy_waits_for_a_command_line_apply_holding_the_lock() {
    let test = with_teams(None);
    test.stack(&["apply", "-q"]).success();
    let _cluster = Server::start(test.path(), &[]);
    let (mut apply, _, _) = crate::faults::start_slow_apply(&test, 2);
    let server = DeployServer::start(&test);
    let (code, answer) = server.post(
        &request(
            "core",
            "development",
            "w",
            &json!({"selector": "name=worker"}),
        ),
        Some(CORE_KEY),
        &[],
    );
    assert_eq!(code, 201, "{answer}");
    let status = apply.wait().unwrap();
    assert!(status.success());
    let ended = std::time::SystemTime::now();
    let deployment = server.finished(answer["correlationID"].as_str().unwrap());
    assert_eq!(deployment["status"], "success", "{deployment}");
    let finished: jiff::Timestamp = deployment["finished"].as_str().unwrap().parse().unwrap();
    let ended = jiff::Timestamp::try_from(ended).unwrap();
    assert!(
        finished.as_second() >= ended.as_second() - 1,
        "{finished} {ended}"
    );
}

#[test]
fn the_deploy_client_prints_the_status_url_and_exits_1_on_a_refusal() {
    let test = with_teams(None);
    let server = DeployServer::start(&test);
    let refused = shop_deploy(&test, &server, &[]).code(0);
    assert!(
        refused.stdout.contains("/api/v1/deployments/"),
        "{}",
        refused.stdout
    );
    std::fs::write(test.path().join("shop.key"), "not-the-key-0123456789").unwrap();
    let mut args = vec!["deploy", "--server", &server.url, "--team", "shop"];
    args.extend(["--key-file", "shop.key", "-e", "development"]);
    let refused = test.stack(&args).code(1);
    assert!(
        refused
            .stderr
            .contains("the server refused the deployment (403)"),
        "{}",
        refused.stderr
    );
    assert_eq!(deployments(&server).len(), 1, "the refused one was queued");
}

#[test]
fn one_server_deploys_to_the_clusters_of_two_environments() {
    let test = with_teams(None);
    test.stack(&["apply", "-q", "-e", "development"]).success();
    test.stack(&["apply", "-q", "-e", "staging"]).success();
    let server = DeployServer::start(&test);
    let mut ids = Vec::new();
    for (environment, tag) in [("development", "1.7.0"), ("staging", "1.4.3")] {
        let set = json!({"selector": "name=backend", "set": {"images.backend.tag": tag}});
        let answer = server.accepted("shop", environment, tag, &set);
        ids.push(answer["correlationID"].as_str().unwrap().to_string());
    }
    for id in &ids {
        assert_eq!(server.finished(id)["status"], "success");
    }
    drop(server);
    // Each environment's own simulated cluster runs its own version.
    for (environment, tag) in [("development", "1.7.0"), ("staging", "1.4.3")] {
        test.stack(&[
            "diff",
            "-e",
            environment,
            "-l",
            "name=backend",
            "--set",
            &format!("images.backend.tag={tag}"),
            "--detailed-exitcode",
        ])
        .success();
        let other = if tag == "1.7.0" { "1.4.3" } else { "1.7.0" };
        test.stack(&[
            "diff",
            "-e",
            environment,
            "-l",
            "name=backend",
            "--set",
            &format!("images.backend.tag={other}"),
            "--detailed-exitcode",
        ])
        .code(2);
    }
}

/// A stack of ten one-ConfigMap releases, one per team, in two simulated
/// environments, and a teams file giving each team its release.
fn ten_teams() -> Test {
    let mut stack = String::from(
        "environments:\n  one: {cluster: simulated}\n  two: {cluster: simulated}\nreleases:\n",
    );
    let mut teams = String::from("teams:\n");
    for team in 0..10 {
        stack.push_str(&format!(
            "  - {{name: app-{team}, namespace: team-{team}, chart: ./charts/config, labels: {{team: t{team}}}}}\n"
        ));
        teams.push_str(&format!(
            "  t{team}:\n    keys: [\"{SHOP_KEY}-{team}\"]\n    environments: [one, two]\n    selector: team=t{team}\n"
        ));
    }
    let test = Test::example()
        .file("stacks/platform.yaml", &stack)
        .configmap_chart("stacks/charts/config");
    let rules = test.read(".sops.yaml").replace(
        "creation_rules:\n",
        "creation_rules:\n  - path_regex: teams\\.yaml$\n    age: age1ue44m360uxt840d0d44mhl4sat8aljsu7n8802sgpq4ejhzztuvsw4kga4\n",
    );
    let test = test.file(".sops.yaml", &rules).file("teams.yaml", &teams);
    test.stack(&["secrets", "encrypt", "--in-place", "teams.yaml"])
        .success();
    test
}

#[test]
fn two_hundred_requests_from_twenty_clients_are_all_accepted_and_all_end() {
    let test = ten_teams();
    let server = DeployServer::start(&test);
    let url = server.url.clone();
    let started = std::time::Instant::now();
    let clients: Vec<_> = (0..20)
        .map(|client| {
            let url = url.clone();
            std::thread::spawn(move || {
                (0..10)
                    .map(|n| {
                        let team = (client + n) % 10;
                        let environment = if n % 2 == 0 { "one" } else { "two" };
                        let set = json!({"set": {"data.version": format!("{client}-{n}")}});
                        let body = request(
                            &format!("t{team}"),
                            environment,
                            &format!("{client}-{n}"),
                            &set,
                        );
                        let key = format!("{SHOP_KEY}-{team}");
                        let signature = stack_server::signature(key.as_bytes(), body.as_bytes());
                        let headers = [("X-Stack-Signature".to_string(), signature)];
                        let sent = std::time::Instant::now();
                        let (code, answer) = http_with(
                            &format!("{url}/api/v1/deploy"),
                            "POST",
                            "application/json",
                            &body,
                            &headers,
                        );
                        let answer: Value = serde_json::from_str(&answer).unwrap_or(Value::Null);
                        assert_eq!(code, 201, "{answer}");
                        (
                            sent.elapsed(),
                            answer["correlationID"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut accepted: Vec<(std::time::Duration, String)> = clients
        .into_iter()
        .flat_map(|client| client.join().expect("a client"))
        .collect();
    let accepting = started.elapsed();
    assert_eq!(accepted.len(), 200);
    for (_, id) in &accepted {
        assert_eq!(server.finished(id)["status"], "success", "{id}");
    }
    assert_eq!(
        server
            .get("/api/v1/deployments?per_page=500")
            .as_array()
            .unwrap()
            .len(),
        200
    );
    accepted.sort();
    let percentile = |p: usize| accepted[(accepted.len() * p / 100).min(accepted.len() - 1)].0;
    eprintln!(
        "200 deploy requests, 20 clients: accepted in {accepting:?}; accept latency p50 {:?}, p99 {:?}; all 200 ended in {:?}",
        percentile(50),
        percentile(99),
        started.elapsed()
    );
}

/// The page of a deployment as headless Chromium shows it after running
/// its JavaScript for `milliseconds` (its DOM, serialised).
fn page_in_chromium(chromium: &std::path::Path, url: &str, milliseconds: u32) -> String {
    let home = tempfile::tempdir().expect("a profile folder");
    let output = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            &format!("--user-data-dir={}", home.path().display()),
            &format!("--virtual-time-budget={milliseconds}"),
            "--dump-dom",
            url,
        ])
        .stderr(Stdio::null())
        .output()
        .expect("run chromium");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What the page shows: the log lines it was served with, those its
/// script added as they came, the status it was served with and the one
/// it shows.
struct Shown {
    served: Vec<String>,
    live: Vec<String>,
    loaded: String,
    status: String,
}

fn shown(dom: &str) -> Shown {
    let between = |text: &str, start: &str, end: &str| {
        text.split_once(start)
            .and_then(|(_, rest)| rest.split_once(end))
            .map(|(inner, _)| inner.to_string())
            .unwrap_or_default()
    };
    let log = between(dom, "<pre id=\"log\"", "</pre>");
    let lines = |opening: &str| -> Vec<String> {
        log.split(opening)
            .skip(1)
            .filter_map(|rest| rest.split_once("</div>"))
            .map(|(line, _)| line.to_string())
            .collect()
    };
    let status = between(dom, "<b id=\"status\"", "</b>");
    Shown {
        served: lines("<div>"),
        live: lines("<div class=\"live\">"),
        loaded: between(&status, "data-loaded=\"", "\""),
        status: status.rsplit('>').next().unwrap_or_default().to_string(),
    }
}

#[test]
fn the_page_shows_a_running_deployments_events_as_they_come_then_its_end_in_a_browser() {
    let Some(chromium) = crate::harness::external_tool("STACK_CHROMIUM", "chromium") else {
        return;
    };
    let test = with_teams(None);
    test.stack(&["apply", "-q"]).success();
    let server = DeployServer::start(&test);
    let id = server.slow_backend_deploy();
    let page = format!("{}/deployments/{id}", server.url);
    // Loaded while the rollout runs; the browser keeps the page until
    // its event stream ends.
    let page = shown(&page_in_chromium(&chromium, &page, 1000));
    assert_eq!(page.loaded, "in_progress");
    assert_eq!(page.status, "success", "the script did not show the end");
    assert_eq!(
        page.served.first().map(String::as_str),
        Some("status: queued")
    );
    assert!(
        page.served
            .iter()
            .any(|l| l.starts_with("[apps/backend] waiting for Deployment/backend")),
        "{:?}",
        page.served
    );
    assert!(
        !page.served.iter().any(|l| l.contains("success")),
        "{:?}",
        page.served
    );
    assert!(
        page.live
            .iter()
            .any(|l| l.starts_with("[apps/backend] deployed revision 2")),
        "{:?}",
        page.live
    );
    assert_eq!(
        page.live.last().map(String::as_str),
        Some("status: success")
    );
    let all = server.events(&id).len();
    assert_eq!(
        page.served.len() + page.live.len(),
        all,
        "a line lost or shown twice"
    );
    let index = page_in_chromium(&chromium, &format!("{}/", server.url), 200);
    assert!(
        index.contains(&id) && index.contains("acme/shop"),
        "{index}"
    );
}

#[test]
fn resources_deploy_as_a_release_of_the_team_and_repository() {
    let test = with_teams(None);
    let cluster = Server::start(test.path(), &[]);
    let server = DeployServer::start(&test);
    let config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flags"}, "data": {"beta": "on"}});
    let refusals = [
        (
            json!({"resources": [config], "selector": "name=web"}),
            400,
            "either `resources` or",
        ),
        (
            json!({"resources": [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}]}),
            400,
            "may not hold Secrets",
        ),
        (
            json!({"resources": [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}}]}),
            403,
            "ClusterRole is cluster-scoped",
        ),
        (
            json!({"resources": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "apps"}}]}),
            403,
            "its namespace is `apps`",
        ),
    ];
    for (n, (extra, status, message)) in refusals.iter().enumerate() {
        let body = request("shop", "development", &format!("refused-{n}"), extra);
        let (code, answer) = server.post(&body, Some(SHOP_KEY), &[]);
        assert_eq!(code, *status, "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(message),
            "{answer}"
        );
        assert_eq!(
            answer["field"]
                .as_str()
                .map(|f| f.starts_with("resources") || f == "selector"),
            Some(true)
        );
    }
    assert!(deployments(&server).is_empty());
    let answer = server.accepted(
        "shop",
        "development",
        "flags",
        &json!({"resources": [config]}),
    );
    let deployment = server.finished(answer["correlationID"].as_str().unwrap());
    assert_eq!(deployment["status"], "success", "{deployment}");
    assert_eq!(
        deployment["releases"],
        json!([{"id": "shop/shop-shop", "result": "deployed"}])
    );
    let live = cluster.get("/api/v1/namespaces/shop/configmaps/flags");
    assert_eq!(live["data"]["beta"], "on");
    assert_eq!(
        live["metadata"]["labels"]["stack.dev/release"],
        "shop.shop-shop"
    );
    // The same again changes nothing: the release is as its revision left it.
    let body = request(
        "shop",
        "development",
        "flags-again",
        &json!({"resources": [config]}),
    );
    let (_, answer) = server.post(&body, Some(SHOP_KEY), &[]);
    let again = server.finished(answer["correlationID"].as_str().unwrap());
    assert_eq!(
        again["releases"],
        json!([{"id": "shop/shop-shop", "result": "unchanged"}])
    );
}

/// A CA and a certificate for 127.0.0.1 signed by it, made by `openssl`
/// in `dir`: (ca.pem, cert.pem, key.pem).
fn certificates(openssl: &std::path::Path, dir: &std::path::Path) {
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    for args in [
        [
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "1",
                "-subj",
                "/CN=test-ca",
            ],
        ]
        .concat(),
        [
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "key.pem",
                "-out",
                "leaf.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
        vec![
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
        ],
    ] {
        let made = std::process::Command::new(openssl)
            .args(&args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            made.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&made.stderr)
        );
    }
}

#[test]
fn over_tls_the_client_trusts_the_ca_it_is_given_and_no_other() {
    let Some(openssl) = crate::harness::external_tool("STACK_OPENSSL", "openssl") else {
        return;
    };
    let test = with_teams(None);
    certificates(&openssl, test.path());
    let server =
        DeployServer::start_with(&test, &["--tls-cert", "cert.pem", "--tls-key", "key.pem"]);
    let url = server.url.clone();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    std::fs::write(test.path().join("shop.key"), SHOP_KEY).unwrap();
    let args = [
        "deploy",
        "--server",
        &url,
        "--team",
        "shop",
        "--key-file",
        "shop.key",
        "-e",
        "development",
        "-l",
        "name=worker",
    ];
    let untrusted = test.stack(&args).code(1);
    assert!(
        untrusted
            .stderr
            .contains("invalid peer certificate: UnknownIssuer"),
        "{}",
        untrusted.stderr
    );
    let trusted = test
        .stack(&[&args[..], &["--ca-cert", "ca.pem", "--wait"]].concat())
        .success();
    assert!(
        trusted
            .stdout
            .starts_with(&format!("{url}/api/v1/deployments/")),
        "{}",
        trusted.stdout
    );
    assert!(
        trusted.stderr.ends_with("status: success\n"),
        "{}",
        trusted.stderr
    );
}

//! The simulator must never be what limits `stack`: server-side-apply PATCH
//! throughput at concurrency 1, 8 and 32 against `stack cluster serve`, with
//! a minimal HTTP/1.1 keep-alive client, next to the transport floor measured
//! in the same run (GET /healthz, same client, same concurrency); and LIST
//! latency for 2,000 objects next to parsing the same response.
//!
//! Run: `cargo bench --bench simulator`

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

const REQUESTS: usize = 6000;

struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    host: String,
}

impl Connection {
    async fn open(address: &str) -> Self {
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        Self {
            sender,
            host: address.to_string(),
        }
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> (u16, Bytes) {
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host)
            .header("content-type", content_type)
            .body(Full::new(body))
            .expect("request");
        let response = self.sender.send_request(request).await.expect("response");
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, body)
    }
}

fn patch_body(name: usize, index: usize) -> Bytes {
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"cm-{name}","labels":{{"bench":"yes"}}}},"data":{{"index":"{index}","payload":"small"}}}}"#
    ))
}

async fn run(address: &str, concurrency: usize, patch: bool) -> f64 {
    let mut workers = Vec::new();
    let start = Instant::now();
    for worker in 0..concurrency {
        let address = address.to_string();
        workers.push(tokio::spawn(async move {
            let mut connection = Connection::open(&address).await;
            let mut index = worker;
            while index < REQUESTS {
                let name = index % 2000;
                let (status, _) = if patch {
                    let path = format!("/api/v1/namespaces/default/configmaps/cm-{name}?fieldManager=bench&force=true");
                    connection.send("PATCH", &path, "application/apply-patch+yaml", patch_body(name, index)).await
                } else {
                    connection.send("GET", "/healthz", "text/plain", Bytes::new()).await
                };
                assert!(status < 300, "status {status}");
                index += concurrency;
            }
        }));
    }
    for worker in workers {
        worker.await.expect("worker");
    }
    #[allow(clippy::cast_precision_loss)]
    let rate = REQUESTS as f64 / start.elapsed().as_secs_f64();
    rate
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(
        dir.path().join("stack.yaml"),
        "environments:\n  default:\n    cluster: simulated\n",
    )
    .expect("stack file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_stack"))
        .args(["cluster", "serve", "-q"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start stack cluster serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut address = String::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.expect("kubeconfig line");
        if let Some(server) = line.trim().strip_prefix("server: http://") {
            address = server.to_string();
        }
        if line.contains("token:") {
            break;
        }
    }
    println!("simulator at {address}; {REQUESTS} requests per run, 2,000 distinct ConfigMaps");
    for concurrency in [1, 8, 32] {
        let floor = run(&address, concurrency, false).await;
        let patches = run(&address, concurrency, true).await;
        println!(
            "concurrency {concurrency:>2}: server-side apply {patches:>8.0} req/s   floor (GET /healthz) {floor:>8.0} req/s   ratio {:.2}",
            patches / floor
        );
    }
    let mut connection = Connection::open(&address).await;
    let mut list_time = Duration::MAX;
    let mut parse_time = Duration::MAX;
    let mut items = 0;
    for _ in 0..10 {
        let start = Instant::now();
        let (_, body) = connection
            .send(
                "GET",
                "/api/v1/namespaces/default/configmaps",
                "application/json",
                Bytes::new(),
            )
            .await;
        list_time = list_time.min(start.elapsed());
        let start = Instant::now();
        let list: serde_json::Value = serde_json::from_slice(&body).expect("list JSON");
        parse_time = parse_time.min(start.elapsed());
        items = list["items"].as_array().map_or(0, Vec::len);
    }
    println!(
        "LIST of {items} objects: {:.1} ms   floor (parsing that response): {:.1} ms   ratio {:.2}",
        list_time.as_secs_f64() * 1000.0,
        parse_time.as_secs_f64() * 1000.0,
        list_time.as_secs_f64() / parse_time.as_secs_f64()
    );
    let _ = child.kill();
    let _ = child.wait();
}

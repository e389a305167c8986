//! The embedded Kubernetes API simulator (product.md §7): a
//! `tower::Service` over `http::Request` that speaks enough of the
//! Kubernetes REST API for kube-rs and real `kubectl` — discovery, OpenAPI,
//! CRUD, server-side apply with managed fields and conflicts, watch — with
//! simulated controllers that move workloads to ready (or to failure, on
//! request), fault injection, metrics and crash-safe persistence.
//!
//! Tests hand [`Simulator::client`] to code under test (no socket); the
//! binary serves the same service over HTTP on 127.0.0.1 ([`server`]).

// `ApiError` carries the Status body the client will read; errors are the
// cold path, so they are not boxed.
#![allow(clippy::result_large_err)]

mod api;
mod controllers;
mod defaults;
mod discovery;
mod managed_fields;

mod patch;
mod request;
mod resources;
mod selectors;
pub mod server;
mod status;
mod store;
mod validation;
/// Kubernetes' validation rules for `stack lint` and a run's preflight.
pub use validation::refusal;
mod watch;
mod write;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use http_body_util::combinators::BoxBody;
use rand::SeedableRng as _;
use rand::rngs::StdRng;

use crate::store::Store;

/// Response bodies: whole documents, or a stream of watch events.
pub type ResponseBody = BoxBody<Bytes, Infallible>;

/// How a simulator behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where state persists (`.stack/cluster/<environment>/`); `None` keeps it in memory.
    pub dir: Option<PathBuf>,
    /// The fraction of requests answered with a 500 or a 429 with `Retry-After`.
    pub fault_rate: f64,
    /// Added to every request.
    pub latency: Duration,
    /// Seed of the fault injector, for reproducible faults.
    pub seed: Option<u64>,
    /// Real time that one simulated second takes.
    pub second: Duration,
    /// Simulated seconds a rollout takes unless `sim.stack.dev/rollout-seconds` says otherwise.
    pub rollout_seconds: f64,
    /// Every this often, another manager touches an object (conflict injection).
    pub conflict_writer: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            dir: None,
            fault_rate: 0.0,
            latency: Duration::ZERO,
            seed: None,
            second: Duration::from_millis(20),
            rollout_seconds: 1.0,
            conflict_writer: None,
        }
    }
}

/// Requests served, by verb and resource (for `/metrics`).
#[derive(Debug, Default)]
struct Metrics {
    requests: Mutex<BTreeMap<(String, String, bool), u64>>,
    faults: Mutex<u64>,
}

pub(crate) struct Inner {
    store: Mutex<Store>,
    config: Config,
    metrics: Metrics,
    started: Instant,
    rng: Mutex<StdRng>,
}

impl Inner {
    fn store(&self) -> StoreGuard<'_> {
        StoreGuard(
            self.store
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Simulated seconds since start.
    fn now(&self) -> f64 {
        self.simulated(std::time::Instant::now())
    }

    /// Simulated seconds from start to `at`.
    fn simulated(&self, at: std::time::Instant) -> f64 {
        at.saturating_duration_since(self.started).as_secs_f64()
            / self.config.second.as_secs_f64().max(1e-6)
    }
}

/// The store, locked. When it is let go, what was written under it goes
/// to the journal in one write and then to watchers: a controller pass
/// that changes a hundred objects costs one system call, and a response
/// is sent only once its write is in the journal.
struct StoreGuard<'a>(MutexGuard<'a, Store>);

impl std::ops::Deref for StoreGuard<'_> {
    type Target = Store;

    fn deref(&self) -> &Store {
        &self.0
    }
}

impl std::ops::DerefMut for StoreGuard<'_> {
    fn deref_mut(&mut self) -> &mut Store {
        &mut self.0
    }
}

impl Drop for StoreGuard<'_> {
    fn drop(&mut self) {
        self.0.flush();
    }
}

/// A running simulator. Cheap to clone.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

impl Simulator {
    /// Load state and start the controllers. Must run inside a Tokio runtime.
    pub fn start(config: Config) -> std::io::Result<Self> {
        let store = Store::open(config.dir.as_deref())?;
        let rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let inner = Arc::new(Inner {
            store: Mutex::new(store),
            config,
            metrics: Metrics::default(),
            started: Instant::now(),
            rng: Mutex::new(rng),
        });
        controllers::bootstrap(&inner);
        controllers::spawn(Arc::clone(&inner));
        Ok(Self { inner })
    }

    /// A kube client that talks to this simulator in-process.
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.service(), "default")
    }

    pub fn service(&self) -> SimulatorService {
        SimulatorService {
            simulator: self.clone(),
        }
    }

    /// Answer one request.
    pub async fn handle(&self, request: http::Request<Bytes>) -> http::Response<ResponseBody> {
        api::handle(&self.inner, request).await
    }

    /// `/metrics` in Prometheus text format.
    pub fn metrics(&self) -> String {
        api::metrics_text(&self.inner)
    }

    /// Mutating requests served so far (dry runs excluded).
    pub fn mutating_requests(&self) -> u64 {
        let requests = self
            .inner
            .metrics
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        requests
            .iter()
            .filter(|((verb, _, dry_run), _)| api::is_mutating(verb) && !dry_run)
            .map(|(_, count)| count)
            .sum()
    }
}

/// The simulator as a `tower::Service`, for `kube::Client::new` and hyper.
#[derive(Clone)]
pub struct SimulatorService {
    simulator: Simulator,
}

impl<B> tower::Service<http::Request<B>> for SimulatorService
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: std::fmt::Display,
{
    type Response = http::Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let simulator = self.simulator.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let bytes = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => Bytes::new(),
            };
            Ok(simulator
                .handle(http::Request::from_parts(parts, bytes))
                .await)
        })
    }
}

//! `stack server`: the deploy API. CI posts a signed request; the server
//! checks who sent it, queues it per environment, and runs the same
//! plan → lock → apply → wait → test → rollback as `stack apply`, with the
//! engine's events kept and streamed. Binds to 127.0.0.1 unless told.

mod adhoc;
mod api;
pub mod client;
mod notify;
mod page;
mod request;
mod run;
pub mod sign;
mod store;
mod teams;
mod tls;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stack_core::error::{Error, Errors};
use stack_core::execute::run::Connection;
use stack_core::load::project::LoadOptions;
use stack_core::mask::Masks;

pub use sign::signature;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub listen: SocketAddr,
    /// The SOPS-encrypted teams file.
    pub teams: PathBuf,
    /// The stack (and `--age-key-file`) every request deploys from.
    pub load: LoadOptions,
    pub connection: Connection,
    /// How long a deployment waits for the environment's lock (a run of
    /// the command line holding it).
    pub lock_wait: Duration,
    /// The largest body accepted.
    pub body_limit: usize,
    /// `--tls-cert` and `--tls-key`: serve HTTPS with them.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// What every request and run shares.
pub(crate) struct State {
    options: ServerOptions,
    teams: BTreeMap<String, teams::Team>,
    /// The stack's environments.
    environments: Vec<String>,
    store: store::Store,
    /// The teams' keys and secrets: nothing the server writes shows them.
    masks: Masks,
    /// One queue per environment, run by its own worker.
    queues: Mutex<HashMap<String, tokio::sync::mpsc::UnboundedSender<String>>>,
    /// Bumped at every new event or status: what event streams wait on.
    changes: tokio::sync::watch::Sender<u64>,
    /// One status callback sender per team.
    notifiers: Mutex<HashMap<String, tokio::sync::mpsc::UnboundedSender<serde_json::Value>>>,
    /// The server's runtime (callbacks are sent from deployments' threads).
    runtime: tokio::runtime::Handle,
    /// The client of status callbacks.
    http: client::Http,
    base_url: String,
}

impl State {
    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }
}

/// The stack's environments (an implicit `default` without any).
fn environments(load: &LoadOptions) -> Result<(Vec<String>, PathBuf), Errors> {
    let files = stack_core::load::config::discover(&load.target)?;
    let stack = stack_core::load::config::load(&files).map_err(Errors::from_all)?;
    let mut names: Vec<String> = stack.environments.iter().map(|e| e.name.clone()).collect();
    if names.is_empty() {
        names.push("default".into());
    }
    Ok((names, stack.state_dir))
}

/// Serve until the process ends. `ready` is told the URL listened on.
pub async fn serve(options: ServerOptions, ready: impl FnOnce(&str)) -> Result<(), Errors> {
    let masks = Masks::new(false);
    let teams = teams::load(&options.teams, options.load.age_key_file.as_deref(), &masks)?;
    let (environments, state_dir) = environments(&options.load)?;
    let (store, queued) = store::Store::open(&state_dir.join(".stack").join("server"))
        .map_err(|e| failed("cannot open the server's database", &e))?;
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|e| failed(&format!("cannot listen on {}", options.listen), &e))?;
    let address = listener
        .local_addr()
        .map_err(|e| failed("cannot read the address listened on", &e))?;
    let acceptor = match &options.tls {
        Some((cert, key)) => Some(tls::acceptor(cert, key).map_err(|e| failed("TLS", &e))?),
        None => None,
    };
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    let state = Arc::new(State {
        base_url: format!("{scheme}://{address}"),
        options,
        teams,
        environments,
        store,
        masks,
        queues: Mutex::new(HashMap::new()),
        changes: tokio::sync::watch::channel(0).0,
        notifiers: Mutex::new(HashMap::new()),
        runtime: tokio::runtime::Handle::current(),
        http: client::Http::new(None).map_err(|e| failed("the callback client", &e))?,
    });
    for (id, environment) in queued {
        run::enqueue(&state, &environment, id);
    }
    let router = api::router(Arc::clone(&state)).merge(page::router(Arc::clone(&state)));
    ready(&format!("{scheme}://{address}"));
    let served = match acceptor {
        Some(acceptor) => {
            let listener = tls::TlsListener {
                tcp: listener,
                acceptor,
            };
            axum::serve(listener, router).await
        }
        None => axum::serve(listener, router).await,
    };
    served.map_err(|e| failed("the server stopped", &e))?;
    Ok(())
}

fn failed(what: &str, error: &dyn std::fmt::Display) -> Errors {
    Error::Failed {
        message: format!("{what}: {error}"),
        hint: None,
    }
    .into()
}

//! The one place that talks to Kubernetes, through `kube::Client`: a real
//! cluster from the user's kubeconfig and context (kube's own loading, exec
//! plugins and in-cluster config included), or the embedded simulated
//! cluster — in this process when it holds the cluster directory, over HTTP
//! when another process serves it. Everything above this seam runs the same
//! code for both.

pub mod apis;
pub mod apply;
pub mod contact;
pub mod crash;
pub mod live;
pub mod resources;
pub(crate) mod retry;
pub mod traffic;

use std::path::{Path, PathBuf};

use stack_simulator::server::{self, Opened, Owner};
use stack_simulator::{self as simulator, Simulator};

use crate::load::config::{ClusterTarget, Environment, SimulatedOptions};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "cannot open the simulated cluster in {}: {source}",
        crate::diagnostic::display_path(dir)
    )]
    Simulator {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot load the kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("cannot connect to the cluster: {0}")]
    Client(String),
    /// The first request to a cluster failed; why, in the user's terms.
    #[error("{cluster} at {server}: {problem}")]
    FirstContact {
        cluster: String,
        server: String,
        problem: Unanswered,
    },
    #[error("environment `{environment}` is not a simulated cluster")]
    NotSimulated { environment: String },
    #[error(
        "the simulated cluster of `{environment}` is already served by another process at http://{address}"
    )]
    AlreadyServed {
        environment: String,
        address: std::net::SocketAddr,
    },
}

impl ClusterError {
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::NotSimulated { .. } => {
                Some("`stack cluster serve` needs `cluster: simulated` in the environment".into())
            }
            Self::AlreadyServed { .. } => Some(
                "stop that `stack cluster serve`, or point kubectl at the address above".into(),
            ),
            Self::Kubeconfig(_) => {
                Some("check --kubeconfig / KUBECONFIG and the environment's `kubeContext`".into())
            }
            Self::FirstContact {
                cluster, problem, ..
            } => Some(problem.hint(cluster)),
            _ => None,
        }
    }
}

/// Why a cluster did not answer the first request.
#[derive(Debug, thiserror::Error)]
pub enum Unanswered {
    #[error("the credentials were refused (401 Unauthorized)")]
    Unauthorized,
    #[error("the server's certificate is not trusted: {0}")]
    Certificate(String),
    #[error("nothing answers: {0}")]
    Unreachable(String),
    #[error("discovery failed: {0}")]
    Other(String),
}

impl Unanswered {
    fn of(error: &kube::Error) -> Self {
        let innermost = retry::innermost(error);
        match error {
            kube::Error::Api(status) if status.code == 401 => Self::Unauthorized,
            _ if retry::is_certificate(error) => Self::Certificate(innermost),
            kube::Error::HyperError(_) | kube::Error::Service(_) => Self::Unreachable(innermost),
            _ => Self::Other(error.to_string()),
        }
    }

    fn hint(&self, cluster: &str) -> String {
        match self {
            Self::Unauthorized => format!(
                "check the user of {cluster} in the kubeconfig: its token, client certificate or exec plugin may be wrong or expired"
            ),
            Self::Certificate(_) => format!(
                "check `certificate-authority` / `certificate-authority-data` of {cluster}'s cluster in the kubeconfig: it must be the CA that signed the server's certificate"
            ),
            Self::Unreachable(_) => format!(
                "is the cluster up, and is the `server` of {cluster}'s cluster in the kubeconfig right? Nothing was changed"
            ),
            Self::Other(_) => "check that the cluster is reachable; nothing was changed".into(),
        }
    }
}

/// A connection to an environment's cluster.
pub struct Cluster {
    pub client: kube::Client,
    /// How to name it to the user: a context, or the simulated cluster's address.
    pub name: String,
    /// The API server's address.
    pub server: String,
    /// The simulator, when this process runs it.
    pub simulator: Option<Simulator>,
    owner: Option<Owner>,
}

/// Where an environment's simulated cluster keeps its state.
pub(crate) fn simulator_dir(state_dir: &Path, environment: &str) -> PathBuf {
    state_dir.join(".stack").join("cluster").join(environment)
}

/// The simulator configuration of an environment.
pub fn simulator_config(
    state_dir: &Path,
    environment: &str,
    options: &SimulatedOptions,
) -> simulator::Config {
    let mut config = simulator::Config {
        dir: Some(simulator_dir(state_dir, environment)),
        ..simulator::Config::default()
    };
    if let Some(rate) = options.fault_rate {
        config.fault_rate = rate;
    }
    if let Some(latency) = options.latency_ms {
        config.latency = std::time::Duration::from_millis(latency);
    }
    config.seed = options.seed;
    config
}

impl Cluster {
    /// Connect to the cluster an environment names. `kubeconfig` and
    /// `context` (the command line) override what the environment says.
    pub async fn connect(
        environment: &Environment,
        state_dir: &Path,
        kubeconfig: Option<&Path>,
        context: Option<&str>,
    ) -> Result<Self, ClusterError> {
        match (&environment.cluster, context) {
            (ClusterTarget::Simulated(options), None) => {
                let config = simulator_config(state_dir, &environment.name, options);
                Self::simulated(config).await
            }
            (ClusterTarget::KubeContext(named), None) => {
                Self::kubeconfig(kubeconfig, Some(named)).await
            }
            (_, Some(context)) => Self::kubeconfig(kubeconfig, Some(context)).await,
            (ClusterTarget::CurrentContext, None) => Self::kubeconfig(kubeconfig, None).await,
        }
    }

    /// The simulated cluster of a directory: ours, or another process's.
    pub async fn simulated(config: simulator::Config) -> Result<Self, ClusterError> {
        let dir = config.dir.clone().unwrap_or_default();
        let opened = server::open(config, 0)
            .await
            .map_err(|source| ClusterError::Simulator {
                dir: dir.clone(),
                source,
            })?;
        match opened {
            Opened::Owner(owner) => Ok(Self {
                client: owner.simulator.client(),
                name: format!(
                    "simulated cluster {}",
                    crate::diagnostic::display_path(&dir)
                ),
                server: "this process".into(),
                simulator: Some(owner.simulator.clone()),
                owner: Some(owner),
            }),
            Opened::Remote(address) => Ok(Self {
                client: http_client(address)?,
                name: "simulated cluster".into(),
                server: format!("http://{address}"),
                simulator: None,
                owner: None,
            }),
        }
    }

    async fn kubeconfig(path: Option<&Path>, context: Option<&str>) -> Result<Self, ClusterError> {
        let options = kube::config::KubeConfigOptions {
            context: context.map(str::to_string),
            ..Default::default()
        };
        let config = match path {
            Some(path) => {
                let kubeconfig = kube::config::Kubeconfig::read_from(path)
                    .map_err(|e| ClusterError::Kubeconfig(e.to_string()))?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &options).await
            }
            None if context.is_none() => return Self::inferred().await,
            None => kube::Config::from_kubeconfig(&options).await,
        }
        .map_err(|e| ClusterError::Kubeconfig(e.to_string()))?;
        let name = context.map_or_else(
            || "the current context".to_string(),
            |c| format!("context `{c}`"),
        );
        Self::from_config(config, name)
    }

    async fn inferred() -> Result<Self, ClusterError> {
        let config = kube::Config::infer()
            .await
            .map_err(|e| ClusterError::Kubeconfig(e.to_string()))?;
        Self::from_config(config, "the current context".into())
    }

    fn from_config(config: kube::Config, name: String) -> Result<Self, ClusterError> {
        let server = config.cluster_url.to_string();
        let client =
            kube::Client::try_from(config).map_err(|e| ClusterError::Client(e.to_string()))?;
        Ok(Self {
            client,
            name,
            server: server.trim_end_matches('/').to_string(),
            simulator: None,
            owner: None,
        })
    }

    /// The first requests of a run: what the cluster serves. A cluster
    /// that does not answer, refuses the credentials or presents a
    /// certificate the kubeconfig does not trust is named with what to check,
    /// after a short retry: nothing has been written yet.
    pub async fn first_contact(
        &self,
        client: &kube::Client,
    ) -> Result<resources::Resources, ClusterError> {
        resources::Resources::discover(client, retry::FIRST_CONTACT)
            .await
            .map_err(|error| ClusterError::FirstContact {
                cluster: self.name.clone(),
                server: self.server.clone(),
                problem: Unanswered::of(&error),
            })
    }

    /// Let other processes finish with our simulator, then release it.
    pub async fn close(self) {
        if let Some(owner) = self.owner {
            owner.release().await;
        }
    }
}

fn http_client(address: std::net::SocketAddr) -> Result<kube::Client, ClusterError> {
    let url = format!("http://{address}")
        .parse()
        .map_err(|e: http::uri::InvalidUri| ClusterError::Client(e.to_string()))?;
    let mut config = kube::Config::new(url);
    config.default_namespace = "default".into();
    config.read_timeout = Some(std::time::Duration::from_secs(295));
    kube::Client::try_from(config).map_err(|e| ClusterError::Client(e.to_string()))
}

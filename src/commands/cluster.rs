//! `stack cluster serve`: the environment's simulated cluster over HTTP on
//! 127.0.0.1, with a kubeconfig for kubectl, until Ctrl-C or SIGTERM.
//! `stack cluster traffic`: where requests would go, by the live routing
//! objects (see `stack_core::cluster::traffic`).

use crate::cli::{OutputFormat, ServeArgs, TrafficArgs};
use crate::output;
use crate::settings::Settings;
use stack_core::cluster::{ClusterError, simulator_config};
use stack_core::error::{Error, Errors};
use stack_core::load::config::ClusterTarget;
use stack_simulator::server::{self, Opened};

pub fn serve(settings: &Settings, args: &ServeArgs) -> Result<u8, Errors> {
    let (stack, environment) = stack_core::load::project::load_environment(&settings.load)?;
    let name = environment.name.clone();
    let ClusterTarget::Simulated(options) = &environment.cluster else {
        return Err(ClusterError::NotSimulated { environment: name }.into());
    };
    let mut config = simulator_config(&stack.state_dir, &name, options);
    if let Some(rate) = args.fault_rate {
        config.fault_rate = rate.clamp(0.0, 1.0);
    }
    if let Some(latency) = args.latency_ms {
        config.latency = std::time::Duration::from_millis(latency);
    }
    if args.seed.is_some() {
        config.seed = args.seed;
    }
    if let Some(seconds) = args.rollout_seconds {
        config.rollout_seconds = seconds.max(0.0);
    }
    config.conflict_writer = args
        .conflict_writer_ms
        .map(std::time::Duration::from_millis);
    let dir = config.dir.clone().unwrap_or_default();
    super::runtime()?.block_on(async {
        let opened = server::open(config, args.port)
            .await
            .map_err(|source| ClusterError::Simulator { dir, source })?;
        let owner = match opened {
            Opened::Owner(owner) => owner,
            Opened::Remote(address) => {
                return Err(Errors::from(ClusterError::AlreadyServed {
                    environment: name.clone(),
                    address,
                }));
            }
        };
        let kubeconfig = server::kubeconfig(owner.address, &format!("stack-{name}"));
        if let Some(path) = &args.write_kubeconfig {
            fs_err::write(path, &kubeconfig).map_err(|source| Error::Write {
                path: path.clone(),
                source,
            })?;
        }
        output::stdout(&kubeconfig);
        if !settings.quiet {
            eprintln!(
                "serving the simulated cluster of `{name}` on http://{} (Ctrl-C to stop)",
                owner.address
            );
        }
        wait_for_signal().await;
        owner.release().await;
        Ok(0)
    })
}

async fn wait_for_signal() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = async {
            match terminate.as_mut() {
                Some(signal) => { signal.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

pub fn traffic(
    project: &stack_core::load::project::Project,
    settings: &Settings,
    args: &TrafficArgs,
) -> Result<u8, Errors> {
    use stack_core::cluster::traffic::{Requests, route};
    let header = match &args.header {
        None => None,
        Some(text) => Some(text.split_once('=').ok_or_else(|| {
            Errors::from(Error::Failed {
                message: format!("--header `{text}` is not NAME=VALUE"),
                hint: Some("for example --header X-Canary=always".into()),
            })
        })?),
    };
    let [ingresses, services, pods] =
        super::remote::with_session(project, settings, |session| async move {
            let resources = session.resources.read().await.clone();
            Ok(
                stack_core::cluster::traffic::routing_objects(&session.client, &resources)
                    .await
                    .map_err(stack_core::execute::EngineError::api(
                        "cannot read Ingresses, Services and Pods",
                    ))?,
            )
        })?;
    let routed = match (&args.host, &args.service) {
        (_, Some(service)) => {
            stack_core::cluster::traffic::to_service(service, args.requests, &services, &pods)
        }
        (Some(host), None) => {
            let requests = Requests {
                host,
                path: &args.path,
                count: args.requests,
                header,
            };
            route(&requests, &ingresses, &services, &pods).ok_or_else(|| {
                Errors::from(Error::Failed {
                    message: format!("no Ingress routes {host}{}", args.path),
                    hint: Some("check the host and path against `kubectl get ingress -A`".into()),
                })
            })?
        }
        (None, None) => Vec::new(),
    };
    match settings.output {
        OutputFormat::Json | OutputFormat::Yaml => {
            let value = serde_json::to_value(&routed).unwrap_or_default();
            output::stdout(&if settings.output == OutputFormat::Json {
                format!("{value:#}\n")
            } else {
                stack_core::yaml::to_string(&value)
            });
        }
        OutputFormat::Text => {
            let rows: Vec<Vec<String>> = routed
                .iter()
                .map(|r| {
                    vec![
                        r.service.clone(),
                        r.workload.clone(),
                        r.requests.to_string(),
                        format!("{:.1}%", percent(r.requests, args.requests)),
                        r.path.clone(),
                        r.auth.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            output::stdout(&output::table(
                &[
                    "SERVICE",
                    "WORKLOAD",
                    "REQUESTS",
                    "SHARE",
                    "PATH",
                    "AUTH FIRST",
                ],
                &rows,
            ));
        }
    }
    Ok(0)
}

#[allow(clippy::cast_precision_loss)]
fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

//! `stack cluster serve`: the environment's simulated cluster over HTTP on
//! 127.0.0.1, with a kubeconfig for kubectl, until Ctrl-C or SIGTERM.

use crate::cli::ServeArgs;
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

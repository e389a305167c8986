//! Serving the simulator over HTTP on 127.0.0.1, and the rule that one
//! process serves a cluster directory at a time: the process that takes the
//! directory's lock loads the state and serves it (on an ephemeral port, or
//! the one `stack cluster serve --port` names), writing its address into the
//! directory; every other process connects to that address.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::{Config, Simulator};

/// What opening a cluster directory gave us.
pub enum Opened {
    /// We hold the directory: the simulator runs in this process.
    Owner(Owner),
    /// Another process serves it at this address.
    Remote(SocketAddr),
}

/// The lock on a cluster directory and the simulator it serves.
pub struct Owner {
    pub simulator: Simulator,
    pub address: SocketAddr,
    dir: PathBuf,
    _lock: std::fs::File,
    connections: Arc<AtomicUsize>,
}

impl Owner {
    /// Wait (bounded) for other processes still talking to us, then give
    /// the directory up.
    pub async fn release(self) {
        for _ in 0..300 {
            if self.connections.load(Ordering::SeqCst) == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = fs_err::remove_file(self.dir.join("address"));
    }
}

/// Take the directory, or find who has it. `port` 0 picks a free port.
pub async fn open(config: Config, port: u16) -> std::io::Result<Opened> {
    let dir = config.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    fs_err::create_dir_all(&dir)?;
    for _ in 0..100 {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))?;
        match lock.try_lock() {
            Ok(()) => return start_owner(config, port, &dir, lock).await,
            Err(std::fs::TryLockError::WouldBlock) => {
                if let Some(address) = read_address(&dir) {
                    return Ok(Opened::Remote(address));
                }
                // The owner is starting up and has not written its address yet.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(std::fs::TryLockError::Error(error)) => return Err(error),
        }
    }
    Err(std::io::Error::other(format!(
        "{} is locked by another process that does not serve it",
        dir.display()
    )))
}

fn read_address(dir: &Path) -> Option<SocketAddr> {
    std::fs::read_to_string(dir.join("address"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

async fn start_owner(
    config: Config,
    port: u16,
    dir: &Path,
    lock: std::fs::File,
) -> std::io::Result<Opened> {
    let simulator = Simulator::start(config)?;
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let address = listener.local_addr()?;
    let temporary = dir.join("address.tmp");
    fs_err::write(&temporary, address.to_string())?;
    fs_err::rename(&temporary, dir.join("address"))?;
    let connections = Arc::new(AtomicUsize::new(0));
    tokio::spawn(serve(simulator.clone(), listener, Arc::clone(&connections)));
    Ok(Opened::Owner(Owner {
        simulator,
        address,
        dir: dir.to_path_buf(),
        _lock: lock,
        connections,
    }))
}

/// Accept HTTP/1.1 connections until the process ends.
pub async fn serve(simulator: Simulator, listener: TcpListener, connections: Arc<AtomicUsize>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let service = TowerToHyperService::new(simulator.service());
        let connections = Arc::clone(&connections);
        connections.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
            connections.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// A kubeconfig that points kubectl (or anything else) at an address.
pub fn kubeconfig(address: SocketAddr, name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: http://{address}\ncontexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: {name}\n    namespace: default\ncurrent-context: {name}\nusers:\n- name: {name}\n  user:\n    token: simulated\n"
    )
}

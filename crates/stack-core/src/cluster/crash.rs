//! A fault-injection hook for crash-recovery tests and rehearsals:
//! `STACK_FAULT_KILL_AFTER_WRITES=N` makes this process kill itself with
//! SIGKILL just before its (N+1)-th write request (anything but GET, LIST,
//! WATCH and dry runs) — a `kill -9` at an exact, repeatable point of a run.
//! Off unless the variable is set.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) const VARIABLE: &str = "STACK_FAULT_KILL_AFTER_WRITES";

/// The client, wrapped when the hook is on.
pub fn wrap(client: kube::Client) -> kube::Client {
    let Some(limit) = std::env::var(VARIABLE)
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
    else {
        return client;
    };
    let writes = Arc::new(AtomicU64::new(0));
    let namespace = client.default_namespace().to_string();
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let (client, writes) = (client.clone(), Arc::clone(&writes));
        async move {
            let dry_run = request.uri().query().is_some_and(|q| q.contains("dryRun="));
            if request.method() != http::Method::GET
                && !dry_run
                && writes.fetch_add(1, Ordering::SeqCst) >= limit
            {
                kill_self();
            }
            client.send(request).await
        }
    });
    kube::Client::new(service, namespace)
}

fn kill_self() -> ! {
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status();
    std::process::abort()
}

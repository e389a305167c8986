//! Ctrl-C and SIGTERM during a run: the first stops new releases from
//! starting and cuts the waits of the ones in flight short, leaving them
//! pending (a rollback under way goes on), and the lock is released; a
//! second one ends the process at once. The next run recovers what was
//! left pending.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>, Arc<Notify>);

impl Interrupt {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    pub fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
        self.1.notify_waiters();
    }

    /// Resolves once the run is interrupted.
    pub async fn wait(&self) {
        loop {
            let notified = self.1.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }

    /// Listen for Ctrl-C and SIGTERM for as long as the runtime lives.
    pub fn listen(&self) {
        let flag = self.clone();
        tokio::spawn(async move {
            let mut count = 0;
            while wait_for_signal().await {
                count += 1;
                if count > 1 {
                    crate::execute::report::note(
                        "interrupted again: stopping now; the next `stack apply` recovers what was in flight",
                        false,
                    );
                    std::process::exit(130);
                }
                crate::execute::report::note(
                    "interrupted: starting no more releases, and leaving the ones in flight pending for the next `stack apply` to recover (Ctrl-C again to stop at once)",
                    false,
                );
                flag.set();
            }
        });
    }
}

/// The next Ctrl-C or SIGTERM; false when signals cannot be received.
async fn wait_for_signal() -> bool {
    #[cfg(unix)]
    {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return tokio::signal::ctrl_c().await.is_ok();
        };
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.is_ok(),
            received = term.recv() => received.is_some(),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.is_ok()
    }
}

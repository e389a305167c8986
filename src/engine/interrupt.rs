//! Ctrl-C and SIGTERM during a run: the first stops new releases from
//! starting while the ones in flight finish or roll back and the lock is
//! released; a second one ends the process at once (the next run recovers
//! what it left pending).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    pub fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Listen for Ctrl-C and SIGTERM for as long as the runtime lives.
    pub fn listen(&self) {
        let flag = self.clone();
        tokio::spawn(async move {
            let mut count = 0;
            while wait_for_signal().await {
                count += 1;
                if count > 1 {
                    crate::output::note(
                        "interrupted again: stopping now; the next `stack apply` recovers what was in flight",
                        false,
                    );
                    std::process::exit(130);
                }
                crate::output::note(
                    "interrupted: starting no more releases; letting the ones in flight finish or roll back (Ctrl-C again to stop at once)",
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

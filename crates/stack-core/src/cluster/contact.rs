//! Whether the cluster still answers. Every response counts as contact,
//! whatever its status; a request that got none (refused, reset, timed out)
//! does not. A run that has heard nothing for `LOST_AFTER` stops waiting,
//! does not try to roll back what it cannot reach, and leaves what was in
//! flight pending for the next `stack apply` to recover.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// No answer to any request for this long: the cluster is lost. Shorter
/// than a request's retries ([`super::retry::PATIENCE`]), so a request
/// still retrying when it passes sees the loss as the cause.
pub(crate) const LOST_AFTER: Duration = Duration::from_secs(20);

/// The cluster stopped answering.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the cluster at {server} has not answered for {seconds} s ({error})")]
pub struct Lost {
    pub server: String,
    pub seconds: u64,
    pub error: String,
}

/// Shared by every request of a run.
#[derive(Clone)]
pub struct Contact {
    server: Arc<str>,
    /// Since when no request got an answer, and the last error.
    silent: Arc<Mutex<Option<(Instant, String)>>>,
}

impl Contact {
    pub fn new(server: &str) -> Self {
        Self {
            server: server.into(),
            silent: Arc::default(),
        }
    }

    /// `client`, with every request's answer (or its absence) noted here.
    pub fn wrap(&self, client: kube::Client) -> kube::Client {
        let namespace = client.default_namespace().to_string();
        let contact = self.clone();
        let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
            let (client, contact) = (client.clone(), contact.clone());
            async move {
                let response = client.send(request).await;
                match &response {
                    Ok(_) | Err(kube::Error::Api(_)) => contact.answered(),
                    Err(error) => contact.unanswered(error),
                }
                response
            }
        });
        kube::Client::new(service, namespace)
    }

    fn answered(&self) {
        *self.silent.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn unanswered(&self, error: &kube::Error) {
        let reason = super::retry::innermost(error);
        let mut silent = self.silent.lock().unwrap_or_else(PoisonError::into_inner);
        let since = silent
            .as_ref()
            .map_or_else(Instant::now, |(since, _)| *since);
        *silent = Some((since, reason));
    }

    /// The loss, once nothing has answered for `LOST_AFTER`.
    pub fn lost(&self) -> Option<Lost> {
        let silent = self.silent.lock().unwrap_or_else(PoisonError::into_inner);
        let (since, error) = silent.as_ref()?;
        (since.elapsed() >= LOST_AFTER).then(|| Lost {
            server: self.server.to_string(),
            seconds: since.elapsed().as_secs(),
            error: error.clone(),
        })
    }

    /// Resolves when the cluster is lost (checked every second).
    pub(crate) async fn until_lost(&self) -> Lost {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if let Some(lost) = self.lost() {
                return lost;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> kube::Error {
        kube::Error::Service(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )))
    }

    #[tokio::test(start_paused = true)]
    async fn silence_is_a_loss_only_after_its_time_and_any_answer_ends_it() {
        let contact = Contact::new("https://127.0.0.1:6443");
        contact.unanswered(&refused());
        tokio::time::advance(Duration::from_secs(LOST_AFTER.as_secs() - 1)).await;
        contact.unanswered(&refused());
        assert!(contact.lost().is_none(), "counted from the first silence");
        tokio::time::advance(Duration::from_secs(1)).await;
        let lost = contact.lost().expect("lost");
        assert_eq!(lost.seconds, LOST_AFTER.as_secs());
        assert!(
            lost.to_string()
                .starts_with("the cluster at https://127.0.0.1:6443 has not answered for 20 s"),
            "{lost}"
        );
        contact.answered();
        assert!(contact.lost().is_none());
        contact.unanswered(&refused());
        assert!(contact.lost().is_none(), "a new silence starts from zero");
    }
}

//! Idempotent requests are retried with backoff on 429, 5xx and connection
//! errors, honouring `Retry-After` (as `details.retryAfterSeconds`), for a
//! bounded time: long enough within a run to ride out an API server or etcd
//! restart, short at the first contact, where a server that does not answer
//! is far more often a wrong kubeconfig or a cluster that is down.

use std::future::Future;
use std::time::Duration;

/// How long a request of a run keeps being retried.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);
/// How long the first request to a cluster is retried.
pub(crate) const FIRST_CONTACT: Duration = Duration::from_secs(2);
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const LONGEST_BACKOFF: Duration = Duration::from_secs(2);

/// Whether an error is worth another try, and after how long.
fn retry_after(error: &kube::Error, backoff: Duration) -> Option<Duration> {
    match error {
        kube::Error::Api(status) => match status.code {
            429 => Some(
                status
                    .details
                    .as_ref()
                    .map(|d| d.retry_after_seconds)
                    .filter(|s| *s > 0)
                    .map_or(backoff, |s| Duration::from_secs(u64::from(s.min(10)))),
            ),
            500 | 502 | 503 | 504 => Some(backoff),
            _ => None,
        },
        // A certificate the kubeconfig does not trust stays untrusted.
        kube::Error::HyperError(_) | kube::Error::Service(_) if !is_certificate(error) => {
            Some(backoff)
        }
        _ => None,
    }
}

/// Whether the TLS handshake refused the server's certificate.
pub(crate) fn is_certificate(error: &kube::Error) -> bool {
    causes(error).any(|cause| cause.to_string().contains("certificate"))
}

/// The innermost cause of an error, in its words (`Connection refused`,
/// `invalid peer certificate: UnknownIssuer`).
pub(crate) fn innermost(error: &kube::Error) -> String {
    causes(error)
        .last()
        .map_or_else(|| error.to_string(), ToString::to_string)
}

/// The error and each of its sources, outermost first.
pub fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |cause| cause.source())
}

/// Run `call` until it succeeds, fails for good, or has been retried for
/// [`PATIENCE`].
pub(crate) async fn retry<T, F, Fut>(call: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    retry_for(PATIENCE, call).await
}

/// Run `call` until it succeeds, fails for good, or the next try would
/// start more than `patience` after the first.
pub(crate) async fn retry_for<T, F, Fut>(patience: Duration, mut call: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let start = tokio::time::Instant::now();
    let mut backoff = FIRST_BACKOFF;
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(error) => match retry_after(&error, backoff) {
                Some(delay) if start.elapsed() + delay <= patience => {
                    backoff = (backoff * 2).min(LONGEST_BACKOFF);
                    tokio::time::sleep(delay).await;
                }
                _ => return Err(error),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unavailable() -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure("the server is restarting", "ServiceUnavailable")
                .with_code(503)
                .boxed(),
        )
    }

    /// Retries stop once the budget is spent: under paused time the count
    /// of tries is exact (50 ms doubling to 2 s).
    #[tokio::test(start_paused = true)]
    async fn retries_last_as_long_as_the_budget_and_no_longer() {
        let mut tries = 0;
        let result: Result<(), _> = retry_for(FIRST_CONTACT, || {
            tries += 1;
            async { Err(unavailable()) }
        })
        .await;
        assert!(result.is_err());
        // 50 + 100 + 200 + 400 + 800 = 1.55 s; the next wait (1.6 s) would end past 2 s.
        assert_eq!(tries, 6);
        let mut tries = 0;
        let start = tokio::time::Instant::now();
        let _: Result<(), _> = retry(|| {
            tries += 1;
            async { Err(unavailable()) }
        })
        .await;
        assert!(start.elapsed() <= PATIENCE, "{:?}", start.elapsed());
        assert!(start.elapsed() + LONGEST_BACKOFF >= PATIENCE);
        assert_eq!(tries, 20);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_is_not_retried() {
        let mut tries = 0;
        let result: Result<(), _> = retry(|| {
            tries += 1;
            async {
                Err(kube::Error::Api(
                    kube::core::Status::failure("Unauthorized", "Unauthorized")
                        .with_code(401)
                        .boxed(),
                ))
            }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(tries, 1);
    }
}

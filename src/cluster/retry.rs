//! Idempotent requests are retried with backoff on 429, 5xx and connection
//! errors, honouring `Retry-After` (as `details.retryAfterSeconds`), a
//! bounded number of times.

use std::future::Future;
use std::time::Duration;

const ATTEMPTS: u32 = 8;

/// Whether an error is worth another try, and after how long.
fn retry_after(error: &kube::Error, attempt: u32) -> Option<Duration> {
    let backoff = Duration::from_millis(50 * 2_u64.pow(attempt.min(5)));
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
        kube::Error::HyperError(_) | kube::Error::Service(_) => Some(backoff),
        _ => None,
    }
}

/// Run `call` until it succeeds, fails for good, or runs out of attempts.
pub async fn retry<T, F, Fut>(mut call: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut attempt = 0;
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(error) => match retry_after(&error, attempt) {
                Some(delay) if attempt + 1 < ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(delay).await;
                }
                _ => return Err(error),
            },
        }
    }
}

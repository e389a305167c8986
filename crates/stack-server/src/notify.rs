//! Status callbacks: every status change of a team's deployment is
//! POSTed to the team's `notify.url`, signed with its `notify.secret` as
//! requests are (`X-Stack-Signature`), in order, retried with backoff
//! (0.5 s doubling, 6 tries), on a task of the team's own — never in the
//! way of the deployment.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::State;

const TRIES: u32 = 6;

/// Send `status` (the body) to the team's callback, if it has one.
pub(crate) fn status(state: &Arc<State>, team: &str, body: Value) {
    let Some(notify) = state.teams.get(team).and_then(|t| t.notify.clone()) else {
        return;
    };
    let mut senders = state
        .notifiers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let sender = senders.entry(team.to_string()).or_insert_with(|| {
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<Value>();
        let masks = state.masks.clone();
        let team = team.to_string();
        let http = state.http.clone();
        state.runtime.spawn(async move {
            while let Some(body) = receiver.recv().await {
                let body = masks.text(&body.to_string()).into_bytes();
                let signature = crate::sign::signature(&notify.secret, &body);
                let mut delay = Duration::from_millis(500);
                for attempt in 1..=TRIES {
                    let sent = http
                        .post(
                            &notify.url,
                            &[("x-stack-signature", &signature)],
                            body.clone(),
                        )
                        .await;
                    match sent {
                        Ok((code, _)) if (200..300).contains(&code) => break,
                        _ if attempt == TRIES => {
                            eprintln!(
                                "the status callback of team {team} failed {TRIES} times; given up"
                            );
                        }
                        _ => {
                            tokio::time::sleep(delay).await;
                            delay *= 2;
                        }
                    }
                }
            }
        });
        sender
    });
    let _ = sender.send(body);
}

//! How a deploy ended, in one word per release and one verdict for the
//! run: the exit code (0, 1, 3 rolled back, 4 the rollback failed) or the
//! error that says what failed and what to do — for the command line's
//! exit and summary and for the deploy server's statuses.

use crate::error::{EXIT_ERROR, EXIT_ROLLBACK_FAILED, EXIT_ROLLED_BACK, Error};
use crate::execute::{Finished, Outcome, Rollback};

/// The exit code: 0, or an error whose code says whether what failed was
/// rolled back (3), could not be (4), or was left in place (1).
pub fn verdict(finished: &[Finished], interrupted: bool) -> Result<u8, Error> {
    let mut reasons = Vec::new();
    let mut code = 0;
    let mut left_pending = false;
    for done in finished {
        let (reason, worst) = match &done.outcome {
            Outcome::Failed { error, rollback } => (format!("{}: {error}", done.id), rollback),
            Outcome::Undone {
                rollback: rollback @ Rollback::Failed { .. },
            } => (
                format!("{}: undoing its deployment failed", done.id),
                rollback,
            ),
            _ => continue,
        };
        let (release_code, note) = match worst {
            Rollback::Restored {
                revision: Some(number),
            } => (EXIT_ROLLED_BACK, format!("rolled back (revision {number})")),
            Rollback::Restored { revision: None } => {
                (EXIT_ROLLED_BACK, "removed (first install)".into())
            }
            Rollback::NothingChanged => (EXIT_ROLLED_BACK, "nothing was changed".into()),
            Rollback::Left => (EXIT_ERROR, "left in place".into()),
            Rollback::Failed { error } => {
                (EXIT_ROLLBACK_FAILED, format!("ROLLBACK FAILED: {error}"))
            }
            Rollback::NotAttempted => {
                left_pending = true;
                (
                    EXIT_ERROR,
                    "left pending (what it applied stays; no rollback was tried)".into(),
                )
            }
        };
        code = worst_code(code, release_code);
        reasons.push(format!("{reason}\n    => {note}"));
    }
    let skipped = finished.iter().any(
        |f| matches!(&f.outcome, Outcome::Skipped { because } if because.contains("interrupted")),
    );
    if code == 0 {
        if interrupted && skipped {
            return Err(Error::Failed {
                message: "interrupted: releases that had not started were skipped".into(),
                hint: Some("run `stack apply` again to finish".into()),
            });
        }
        return Ok(0);
    }
    let hint = match code {
        EXIT_ROLLED_BACK => {
            "the failed releases are back at their previous revisions and their dependents were not started; fix the cause and run `stack apply` again (`stack history RELEASE` shows the failed revision)"
        }
        EXIT_ROLLBACK_FAILED => {
            "act now: the releases marked ROLLBACK FAILED are between revisions; `stack status` shows where each stands, `stack rollback RELEASE REVISION` restores one by hand, and the next `stack apply` retries"
        }
        _ if left_pending && interrupted => {
            "run `stack apply` to finish: it recovers the releases left pending (`stack status` shows them)"
        }
        _ if left_pending => {
            "once the cluster answers again, run `stack apply`: it recovers the releases left pending (`stack status` shows them)"
        }
        _ => {
            "the failure is left in place for debugging; `stack rollback RELEASE` restores the previous revision"
        }
    };
    Err(Error::Deploy {
        message: format!(
            "{} release(s) failed:\n  {}",
            reasons.len(),
            reasons.join("\n  ")
        ),
        hint: hint.into(),
        code,
    })
}

/// 4 over 1 over 3: a failed rollback matters most, then a failure left in place.
fn worst_code(a: u8, b: u8) -> u8 {
    let rank = |c: u8| match c {
        EXIT_ROLLBACK_FAILED => 3,
        EXIT_ERROR => 2,
        EXIT_ROLLED_BACK => 1,
        _ => 0,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// A release's result in a word or three, and its revision.
pub fn describe(outcome: &Outcome) -> (&'static str, Option<u32>) {
    match outcome {
        Outcome::Unchanged => ("unchanged", None),
        Outcome::Deployed { revision } => ("deployed", Some(*revision)),
        Outcome::Removed => ("removed", None),
        Outcome::Failed { rollback, .. } => match rollback {
            Rollback::Restored { revision } => ("failed, rolled back", *revision),
            Rollback::NothingChanged => ("failed, nothing changed", None),
            Rollback::Left => ("failed", None),
            Rollback::Failed { .. } => ("failed, ROLLBACK FAILED", None),
            Rollback::NotAttempted => ("left pending", None),
        },
        Outcome::Skipped { .. } => ("skipped", None),
        Outcome::Undone { rollback } => match rollback {
            Rollback::Failed { .. } => ("undo FAILED", None),
            Rollback::Restored { revision } => ("undone", *revision),
            _ => ("undone", None),
        },
    }
}

//! The verification gate: a release may be promoted from an environment
//! only when its newest revision there is deployed, was rendered from
//! exactly the values being promoted, is ready, and (when it has tests)
//! passed them. Pure: the caller reads the revisions and live objects.

use std::fmt;

use serde_json::Value;

use stack_kube::revision::{Revision, State};

/// What the gate knows of one release.
pub struct Candidate<'a> {
    /// Digest of the release's values as rendered now for the environment.
    pub digest: &'a str,
    /// Its objects and tests as rendered now.
    pub objects: &'a [Value],
    pub tests: &'a [Value],
    /// Whether the release has tests that apply runs.
    pub has_tests: bool,
    /// Its revisions in the environment's cluster, oldest first.
    pub revisions: &'a [std::sync::Arc<Revision>],
}

/// Why a release is not verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotDeployed,
    NotDeployedState { revision: u32, state: State },
    OtherValues { revision: u32 },
    OtherObjects { revision: u32 },
    NotReady { revision: u32, objects: Vec<String> },
    TestsNotRun { revision: u32 },
    TestsFailed { revision: u32 },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::NotDeployed => write!(f, "it has never been deployed there"),
            Self::NotDeployedState { revision, state } => write!(
                f,
                "its newest revision {revision} is {}, not deployed",
                state.as_str()
            ),
            Self::OtherValues { revision } => write!(
                f,
                "its deployed revision {revision} was rendered from other values than the ones being promoted (apply first)"
            ),
            Self::OtherObjects { revision } => write!(
                f,
                "its deployed revision {revision} holds other objects than the chart renders now (apply first)"
            ),
            Self::NotReady { revision, objects } => write!(
                f,
                "revision {revision} is not ready: {}",
                objects.join(", ")
            ),
            Self::TestsNotRun { revision } => {
                write!(f, "revision {revision} has tests, and they have not run")
            }
            Self::TestsFailed { revision } => write!(f, "revision {revision} failed its tests"),
        }
    }
}

impl Refusal {
    /// The command that clears this refusal in `environment`, once its
    /// cause is fixed.
    pub fn remedy(&self, environment: &str) -> String {
        match self {
            Self::TestsNotRun { .. } | Self::TestsFailed { .. } => {
                format!("`stack test -e {environment}` runs the tests of what is deployed")
            }
            Self::NotReady { .. } => {
                format!("`stack status -e {environment}` shows when it is ready")
            }
            _ => format!("`stack apply -e {environment}` deploys it"),
        }
    }
}

/// The revision that verifies the release, or why there is none. `ready`
/// tells whether a revision's object is ready in the cluster (objects that
/// are gone are not).
pub fn verify<'a>(
    candidate: &Candidate<'a>,
    ready: impl Fn(&Value) -> bool,
) -> Result<&'a Revision, Refusal> {
    let newest = candidate.revisions.last().ok_or(Refusal::NotDeployed)?;
    let revision = newest.number;
    // What the release renders now, not the digest of all values that
    // reach it: a revision is only written when its render changes.
    let objects = newest.objects.parse();
    let current = objects == candidate.objects && newest.tests.parse() == candidate.tests;
    if newest.state != State::Deployed || !current {
        return Err(explain(candidate, newest));
    }
    let unready: Vec<String> = objects
        .iter()
        .filter(|object| !ready(object))
        .map(|object| {
            format!(
                "{}/{}",
                object["kind"].as_str().unwrap_or_default(),
                object["metadata"]["name"].as_str().unwrap_or_default()
            )
        })
        .collect();
    if !unready.is_empty() {
        return Err(Refusal::NotReady {
            revision,
            objects: unready,
        });
    }
    if candidate.has_tests {
        match newest.tests_passed {
            Some(true) => {}
            Some(false) => return Err(Refusal::TestsFailed { revision }),
            None => return Err(Refusal::TestsNotRun { revision }),
        }
    }
    Ok(newest)
}

/// Why the newest revision is not the one to promote. An attempt with these
/// values whose tests failed (and was rolled back since) says the most.
fn explain(candidate: &Candidate, newest: &Revision) -> Refusal {
    let attempt = candidate
        .revisions
        .iter()
        .rev()
        .find(|r| r.values_digest == candidate.digest);
    let revision = newest.number;
    match attempt {
        Some(failed) if failed.tests_passed == Some(false) => Refusal::TestsFailed {
            revision: failed.number,
        },
        _ if newest.state != State::Deployed => Refusal::NotDeployedState {
            revision,
            state: newest.state,
        },
        _ if newest.values_digest != candidate.digest => Refusal::OtherValues { revision },
        _ => Refusal::OtherObjects { revision },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use stack_kube::revision::Stored;

    fn revision(number: u32, state: State, digest: &str, tests: Option<bool>) -> Revision {
        Revision {
            release: "apps/web".into(),
            stack: "shop".into(),
            number,
            state,
            chart: "web".into(),
            values_digest: digest.into(),
            commit: None,
            started: "2026-12-01T00:00:00Z".into(),
            finished: None,
            objects: Stored::new(&[web(digest)]),
            tests: Stored::default(),
            hooks: Stored::default(),
            rollout: None,
            tests_passed: tests,
            adopted: Vec::new(),
            message: None,
        }
    }

    /// The release's Deployment as values with digest `digest` render it.
    fn web(digest: &str) -> Value {
        json!({"kind": "Deployment", "metadata": {"name": "web", "annotations": {"values": digest}}})
    }

    fn check(revisions: &[Revision], has_tests: bool, ready: bool) -> Result<u32, Refusal> {
        let objects = [web("abc")];
        let revisions: Vec<std::sync::Arc<Revision>> =
            revisions.iter().cloned().map(std::sync::Arc::new).collect();
        let candidate = Candidate {
            digest: "abc",
            objects: &objects,
            tests: &[],
            has_tests,
            revisions: &revisions,
        };
        verify(&candidate, |_| ready).map(|r| r.number)
    }

    #[test]
    fn a_deployed_ready_revision_of_these_values_passes() {
        let revisions = [
            revision(1, State::Superseded, "old", None),
            revision(2, State::Deployed, "abc", Some(true)),
        ];
        assert_eq!(check(&revisions, true, true), Ok(2));
        let untested = [revision(1, State::Deployed, "abc", None)];
        assert_eq!(check(&untested, false, true), Ok(1));
        // Values elsewhere in the environment moved, its render did not:
        // no new revision was written, and the deployed one still verifies.
        let mut unchanged = revision(1, State::Deployed, "before", Some(true));
        unchanged.objects = Stored::new(&[web("abc")]);
        assert_eq!(check(&[unchanged], true, true), Ok(1));
    }

    #[test]
    fn each_reason_is_named() {
        assert_eq!(check(&[], false, true), Err(Refusal::NotDeployed));
        let failed = [
            revision(1, State::Deployed, "abc", None),
            revision(2, State::Failed, "abc", None),
        ];
        assert_eq!(
            check(&failed, false, true),
            Err(Refusal::NotDeployedState {
                revision: 2,
                state: State::Failed
            })
        );
        let rolled_back = [revision(3, State::Deployed, "other", Some(true))];
        assert_eq!(
            check(&rolled_back, true, true),
            Err(Refusal::OtherValues { revision: 3 })
        );
        let deployed = [revision(1, State::Deployed, "abc", Some(false))];
        assert_eq!(
            check(&deployed, false, false),
            Err(Refusal::NotReady {
                revision: 1,
                objects: vec!["Deployment/web".into()]
            })
        );
        let mut changed = revision(1, State::Deployed, "abc", Some(true));
        changed.objects = Stored::default();
        assert_eq!(
            check(&[changed], true, true),
            Err(Refusal::OtherObjects { revision: 1 })
        );
    }

    #[test]
    fn tests_must_have_passed_even_when_rolled_back_since() {
        let deployed = [revision(1, State::Deployed, "abc", Some(false))];
        assert_eq!(
            check(&deployed, true, true),
            Err(Refusal::TestsFailed { revision: 1 })
        );
        let rolled_back_after_tests = [
            revision(1, State::Superseded, "old", Some(true)),
            revision(2, State::Failed, "abc", Some(false)),
            revision(3, State::Deployed, "old", Some(true)),
        ];
        assert_eq!(
            check(&rolled_back_after_tests, true, true),
            Err(Refusal::TestsFailed { revision: 2 })
        );
        assert_eq!(
            check(&rolled_back_after_tests[..2], true, true),
            Err(Refusal::TestsFailed { revision: 2 })
        );
        let untested = [revision(1, State::Deployed, "abc", None)];
        assert_eq!(
            check(&untested, true, true),
            Err(Refusal::TestsNotRun { revision: 1 })
        );
    }
}

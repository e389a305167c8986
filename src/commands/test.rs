//! `stack test`: run the selected releases' tests against what is deployed
//! — the test objects of each release's deployed revision — and record the
//! result on that revision.

use crate::settings::Settings;
use stack_core::cluster::live;
use stack_core::error::{Error, Errors};
use stack_core::execute::event::Event;
use stack_core::execute::{EngineError, Session, history, test_jobs};
use stack_core::load::project::Project;
use stack_kube::object::Object;

pub fn run(project: &Project, settings: &Settings) -> Result<u8, Errors> {
    super::remote::with_session(project, settings, |session| async move {
        let work = run_tests(&session, project);
        super::remote::locked(&session, project, "stack test", work).await
    })
}

async fn run_tests(session: &Session, project: &Project) -> Result<u8, Errors> {
    let (revisions, _) = live::history(&session.client)
        .await
        .map_err(EngineError::api("cannot read release history"))?;
    let mut failures = Vec::new();
    for &index in &project.selection.releases {
        let release = &project.releases[index];
        let deployed = revisions
            .get(&release.id)
            .and_then(|h| stack_core::plan::last_deployed(h));
        let Some(mut deployed) = deployed.map(|d| stack_kube::revision::Revision::clone(d)) else {
            session.reporter.event(&release.id, &Event::NotDeployed);
            continue;
        };
        let tests = deployed.tests.parse();
        if tests.is_empty() {
            session.reporter.event(&release.id, &Event::NoTests);
            continue;
        }
        let tests: Vec<Object> = tests
            .iter()
            .map(|body| Object::from_body(body, "revision"))
            .collect();
        let result = test_jobs::run(session, &release.id, &tests, release.options.timeout).await;
        deployed.tests_passed = Some(result.is_ok());
        history::write(session, &deployed)
            .await
            .map_err(Error::Release)?;
        if let Err(error) = result {
            failures.push(format!("{}: {error}", release.id));
        }
    }
    if failures.is_empty() {
        return Ok(0);
    }
    Err(Errors::from(Error::Failed {
        message: format!(
            "{} release(s) failed their tests:\n  {}",
            failures.len(),
            failures.join("\n  ")
        ),
        hint: Some(
            "the releases are unchanged; fix the cause, deploy, and run `stack test` again".into(),
        ),
    }))
}

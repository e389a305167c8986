//! What the commands that talk to a cluster share: connecting to the
//! environment's cluster and opening a session.

use std::future::Future;

use crate::settings::Settings;
use stack_core::error::Errors;
use stack_core::execute::run::Connection;
use stack_core::execute::{Reporter, Session};
use stack_core::load::project::Project;

/// Connect, run `work` with a session, close the connection.
pub fn with_session<T, F, Fut>(project: &Project, settings: &Settings, work: F) -> Result<T, Errors>
where
    F: FnOnce(std::sync::Arc<Session>) -> Fut,
    Fut: Future<Output = Result<T, Errors>>,
{
    let reporter = if settings.output == crate::cli::OutputFormat::Json {
        Reporter::json(settings.quiet, settings.verbose, &settings.masks)
    } else {
        Reporter::for_terminal(settings.quiet, settings.verbose, &settings.masks)
    };
    let connection = Connection {
        kubeconfig: settings.kubeconfig.clone(),
        kube_context: settings.kube_context.clone(),
    };
    super::runtime()?.block_on(stack_core::execute::run::with_session(
        project,
        &connection,
        reporter,
        settings.execution.clone(),
        work,
    ))
}

/// Run `work` holding the stack's lock for this environment (see
/// `engine::lock`).
pub fn locked<'a, T: 'a>(
    session: &'a Session,
    project: &'a Project,
    command: &'a str,
    work: impl Future<Output = Result<T, Errors>> + 'a,
) -> impl Future<Output = Result<T, Errors>> + 'a {
    let environment = &project.environment.environment.name;
    stack_core::execute::lock::holding(session, environment, command, Box::pin(work))
}

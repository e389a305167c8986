//! What the commands that talk to a cluster share: connecting to the
//! environment's cluster and opening a session.

use std::future::Future;

use crate::settings::Settings;
use stack_core::cluster::Cluster;
use stack_core::error::Errors;
use stack_core::execute::{Reporter, Session};
use stack_core::load::project::Project;

/// Connect, run `work` with a session, close the connection.
pub fn with_session<T, F, Fut>(project: &Project, settings: &Settings, work: F) -> Result<T, Errors>
where
    F: FnOnce(std::sync::Arc<Session>) -> Fut,
    Fut: Future<Output = Result<T, Errors>>,
{
    super::runtime()?.block_on(async {
        let cluster = Cluster::connect(
            &project.environment.environment,
            &project.stack.state_dir,
            settings.kubeconfig.as_deref(),
            settings.kube_context.as_deref(),
        )
        .await?;
        let contact = stack_core::cluster::contact::Contact::new(&cluster.server);
        let client = stack_core::cluster::crash::wrap(contact.wrap(cluster.client.clone()));
        let result = match cluster.first_contact(&client).await {
            Ok(resources) => {
                let mut session = Session::new(
                    client,
                    contact,
                    resources,
                    if settings.output == crate::cli::OutputFormat::Json {
                        Reporter::json(settings.quiet, settings.verbose, &settings.masks)
                    } else {
                        Reporter::for_terminal(settings.quiet, settings.verbose, &settings.masks)
                    },
                    owner(project),
                    git_commit(project),
                    settings.execution.clone(),
                );
                session.group.clone_from(&project.environment.group);
                work(std::sync::Arc::new(session)).await
            }
            Err(error) => Err(Errors::from(error)),
        };
        cluster.close().await;
        result
    })
}

/// The name revisions record to tell this stack's releases from others':
/// the folder holding the stack files (its parent, for a `stacks/` folder),
/// as a DNS label — it is a label value and part of the lock's name.
pub fn stack_name(project: &Project) -> String {
    let dir = std::fs::canonicalize(&project.stack.state_dir)
        .unwrap_or_else(|_| project.stack.state_dir.clone());
    let named = if dir.file_name().is_some_and(|n| n == "stacks") {
        dir.parent().unwrap_or(&dir).to_path_buf()
    } else {
        dir
    };
    named.file_name().map_or_else(
        || "stack".into(),
        |n| stack_kube::object::dns_label(&n.to_string_lossy()),
    )
}

/// Who a run's revisions say deployed them: the stack, or for a
/// deployment group the stack and the group — so that neither prunes,
/// recovers or locks the other's releases.
pub fn owner(project: &Project) -> String {
    let stack = stack_name(project);
    match &project.environment.group {
        Some(group) => group.owner(&stack),
        None => stack,
    }
}

/// The stack's git commit, when it is in a git repository.
fn git_commit(project: &Project) -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(&project.stack.state_dir)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
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

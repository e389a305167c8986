//! A run against the project's cluster, as the command line and the
//! deploy server make it: connect and open a session, render the
//! selection for that cluster, and apply it.

use std::future::Future;
use std::sync::Arc;

use crate::cluster::Cluster;
use crate::error::Errors;
use crate::execute::{ExecutionOptions, Finished, Reporter, Session, groups};
use crate::load::project::Project;
use crate::load::render::{Capabilities, RenderedRelease};
use crate::plan::file::PlanFile;

/// Rendered releases by index, and the indices of releases to remove.
pub type Selected = (Vec<(usize, RenderedRelease)>, Vec<usize>);

/// Where the cluster is, when the command line says more than the
/// environment.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    pub kubeconfig: Option<std::path::PathBuf>,
    pub kube_context: Option<String>,
}

/// Connect to the project's cluster, run `work` with a session on it, and
/// close the connection.
pub async fn with_session<T, F, Fut>(
    project: &Project,
    connection: &Connection,
    reporter: Reporter,
    options: ExecutionOptions,
    work: F,
) -> Result<T, Errors>
where
    F: FnOnce(Arc<Session>) -> Fut,
    Fut: Future<Output = Result<T, Errors>>,
{
    let cluster = Cluster::connect(
        &project.environment.environment,
        &project.stack.state_dir,
        connection.kubeconfig.as_deref(),
        connection.kube_context.as_deref(),
    )
    .await?;
    let contact = crate::cluster::contact::Contact::new(&cluster.server);
    let client = crate::cluster::crash::wrap(contact.wrap(cluster.client.clone()));
    let result = match cluster.first_contact(&client).await {
        Ok(resources) => {
            let mut session = Session::new(
                client,
                contact,
                resources,
                reporter,
                project.owner(),
                project.git_commit(),
                options,
            );
            session.group.clone_from(&project.environment.group);
            work(Arc::new(session)).await
        }
        Err(error) => Err(Errors::from(error)),
    };
    cluster.close().await;
    result
}

/// Render the installed selected releases (Helm charts for `capabilities`
/// when given, else helm's defaults); list the uninstalled ones.
pub fn render_selection(
    project: &Project,
    capabilities: Option<&Capabilities>,
) -> Result<Selected, Errors> {
    let installed = project.installed_selection();
    let rendered = project.render_for(&installed, capabilities)?;
    let removals = project
        .selection
        .releases
        .iter()
        .copied()
        .filter(|&i| !project.releases[i].installed)
        .collect();
    Ok((installed.into_iter().zip(rendered).collect(), removals))
}

/// The selection rendered for the cluster a run talks to: at once when it
/// holds no Helm chart (a template error needs no cluster to be shown),
/// else once the session knows the cluster's version and APIs.
pub struct ForCluster(Option<Selected>);

impl ForCluster {
    /// A selection rendered already.
    pub fn rendered(selected: Selected) -> Self {
        Self(Some(selected))
    }

    pub fn prepare(project: &Project) -> Result<Self, Errors> {
        if project.renders_helm(&project.installed_selection()) {
            Ok(Self(None))
        } else {
            render_selection(project, None).map(|selected| Self(Some(selected)))
        }
    }

    pub async fn on(self, project: &Project, session: &Session) -> Result<Selected, Errors> {
        match self.0 {
            Some(selected) => Ok(selected),
            None => {
                let capabilities = session.capabilities().await?;
                render_selection(project, Some(&capabilities))
            }
        }
    }
}

/// `stack apply`: a deployment group's name checked, the selection
/// rendered (and checked against a `reviewed` plan), the group's record
/// written (`ttl`: `--ttl`), and the selection deployed; how each
/// release ended.
pub async fn apply(
    session: &Arc<Session>,
    project: &Project,
    rendering: ForCluster,
    ttl: Option<std::time::Duration>,
    reviewed: Option<&PlanFile>,
) -> Result<Vec<Finished>, Errors> {
    let stack = project.stack_name();
    let existing = groups::check_name(&session.client, &stack, project).await?;
    let (rendered, removals) = rendering.on(project, session).await?;
    if let Some(reviewed) = reviewed {
        let problems = reviewed.check_render(project, &rendered);
        crate::execute::deploy::stale(reviewed, problems)?;
    }
    groups::record(session, &stack, project, existing, ttl).await?;
    let environment = project.environment_name();
    let finished = crate::execute::deploy::deploy(
        session,
        project,
        environment,
        rendered,
        &removals,
        reviewed,
    )
    .await?;
    Ok(finished)
}

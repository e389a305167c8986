//! Kubernetes' own rules, checked without a cluster: names (DNS subdomains
//! and labels), label keys and values, annotation keys, config keys and the
//! fields of the built-in kinds that the API server validates (replicas,
//! images, Service ports, Ingress hosts and paths, selectors). `stack lint`
//! checks every rendered object; a run checks the objects it would create in
//! namespaces that do not exist yet, which no server can dry-run. The rules
//! are the simulator's, held to a real kube-apiserver by the conformance
//! test, and worded as it words them.

use serde_json::json;

use crate::load::project::Project;
use crate::load::render::RenderedRelease;
use stack_kube::object::Object;

/// One line per object Kubernetes would refuse among the `rendered`
/// releases' objects that `check` selects, and per release namespace that is
/// not a valid name: what, of which release, from which template, and the
/// API server's message.
pub fn refusals(
    project: &Project,
    rendered: &[(usize, RenderedRelease)],
    check: impl Fn(&Object) -> bool,
) -> Vec<String> {
    let mut lines = Vec::new();
    for (index, release) in rendered {
        let id = &project.releases[*index].id;
        let namespace = &project.releases[*index].namespace;
        let namespace_object =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
        if let Some(message) = stack_simulator::refusal(&namespace_object) {
            lines.push(format!("the namespace of {id}: {message}"));
        }
        for object in release.objects.iter().chain(&release.tests) {
            if !check(object) {
                continue;
            }
            if let Some(message) = stack_simulator::refusal(&object.body) {
                lines.push(format!(
                    "{}/{} of {id}, from {}: {message}",
                    object.kind, object.name, object.template
                ));
            }
        }
    }
    lines.sort();
    lines.dedup();
    lines
}

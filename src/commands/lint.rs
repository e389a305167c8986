//! `stack lint`: everything that can be checked without a cluster — stack
//! files, graph, values, templates, schemas, objects — for every selected
//! release. Loading already reported its problems; this renders.

use crate::error::Errors;
use crate::output;
use crate::project::Project;
use crate::settings::Settings;

pub fn run(project: &Project, settings: &Settings) -> Result<u8, Errors> {
    let selected = project.installed_selection();
    let rendered = project.render(&selected)?;
    let objects: usize = rendered
        .iter()
        .map(|r| r.objects.len() + r.tests.len())
        .sum();
    if !settings.quiet {
        output::stdout(&format!(
            "lint: {} releases, {objects} objects, environment `{}`: no problems\n",
            rendered.len(),
            project.environment_name()
        ));
    }
    Ok(0)
}

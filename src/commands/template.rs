//! `stack template`: rendered manifests to stdout (one YAML stream) or to a
//! directory (one folder per release, one file per object). Secret data is
//! masked unless `--show-secrets`.

use std::path::Path;

use crate::output;
use crate::settings::Settings;
use stack_core::error::{Error, Errors};
use stack_core::load::project::Project;
use stack_core::load::render::Capabilities;
use stack_core::mask::Masker;
use stack_kube::object::Object;

pub fn run(
    project: &Project,
    settings: &Settings,
    output_dir: Option<&Path>,
    skip_tests: bool,
    capabilities: Option<&Capabilities>,
) -> Result<u8, Errors> {
    let rendered = project.render_for(&project.installed_selection(), capabilities)?;
    let masker = settings.masks.masker();
    let objects: Vec<(&str, &Object, Part)> = rendered
        .iter()
        .flat_map(|release| {
            let id = release.id.as_str();
            let tests = release.tests.iter().filter(|_| !skip_tests);
            let hooks = release.hooks.iter().map(|hook| &hook.object);
            release
                .objects
                .iter()
                .map(move |object| (id, object, Part::Object))
                .chain(hooks.map(move |object| (id, object, Part::Hook)))
                .chain(tests.map(move |object| (id, object, Part::Test)))
        })
        .collect();
    if settings.output == crate::cli::OutputFormat::Json && output_dir.is_none() {
        output::stdout(&format!("{:#}\n", as_list(&objects, &masker)));
        return Ok(0);
    }
    let documents = stack_core::parallel::map(&objects, |(release, object, part)| {
        let mut body = object.body.clone();
        masker.mask_object(&mut body);
        let test_marker = match part {
            Part::Object => "",
            Part::Test => " (test)",
            Part::Hook => " (hook)",
        };
        format!(
            "---\n# Source: {release} {}{test_marker}\n{}",
            object.template,
            stack_core::yaml::to_string(&body)
        )
    });
    match output_dir {
        None => output::stdout(&documents.concat()),
        Some(dir) => write_dir(dir, &objects, &documents)?,
    }
    Ok(0)
}

/// What part of a release an object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Object,
    /// A test (`templates/tests/`, `helm.sh/hook: test`).
    Test,
    /// A Helm hook other than a test.
    Hook,
}

/// `-o json`: the objects as one `v1` `List`, as `kubectl get -o json`
/// prints several.
fn as_list(objects: &[(&str, &Object, Part)], masker: &Masker) -> serde_json::Value {
    let items: Vec<serde_json::Value> = objects
        .iter()
        .map(|(_, object, _)| {
            let mut body = object.body.clone();
            masker.mask_object(&mut body);
            body
        })
        .collect();
    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items})
}

fn write_dir(
    dir: &Path,
    objects: &[(&str, &Object, Part)],
    documents: &[String],
) -> Result<(), Errors> {
    for ((release, object, part), document) in objects.iter().zip(documents) {
        let mut folder = dir.join(release.replace('/', "."));
        match part {
            Part::Object => {}
            Part::Test => folder.push("tests"),
            Part::Hook => folder.push("hooks"),
        }
        let file = match &object.namespace {
            Some(namespace) if !release.starts_with(&format!("{namespace}/")) => {
                format!(
                    "{}.{namespace}.{}.yaml",
                    object.kind.to_lowercase(),
                    object.name
                )
            }
            _ => format!("{}.{}.yaml", object.kind.to_lowercase(), object.name),
        };
        let path = folder.join(file);
        let write = fs_err::create_dir_all(&folder).and_then(|()| fs_err::write(&path, document));
        write.map_err(|source| Error::Write { path, source })?;
    }
    Ok(())
}

//! `stack import helmfile FILE`: write the stack that does what a
//! helmfile.yaml does, and list what did not convert. `stack import
//! compose FILE`: the stack of builtin:app releases that runs a Compose
//! project, its sensitive values encrypted before they reach the disk.
//! Nothing is written when the input cannot be read, when a file it would
//! write exists, or (compose) when no creation rule encrypts its secrets.

use std::path::Path;

use crate::output;
use crate::settings::Settings;
use stack_core::error::{Error, Errors};
use stack_core::load::config::ConfigError;

pub fn helmfile(settings: &Settings, file: &Path, output_dir: Option<&Path>) -> Result<u8, Errors> {
    let base = file.parent().unwrap_or(Path::new("."));
    let target = output_dir.unwrap_or(base);
    let absolute = |path: &Path| std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let imported =
        stack_core::import::helmfile(&absolute(file), &absolute(target)).map_err(Error::from)?;
    refuse_existing(file, target, imported.files.iter().map(|(path, _)| path))?;
    write_all(target, &imported.files)?;
    report(&imported.report);
    output::note(
        &format!("wrote {}", target.join("stack.yaml").display()),
        settings.quiet,
    );
    Ok(0)
}

/// Refused, naming them, when files the import would write exist.
fn refuse_existing<'a>(
    file: &Path,
    target: &Path,
    paths: impl Iterator<Item = &'a std::path::PathBuf>,
) -> Result<(), Errors> {
    let existing: Vec<String> = paths
        .map(|path| target.join(path))
        .filter(|path| path.exists())
        .map(|path| path.display().to_string())
        .collect();
    if existing.is_empty() {
        return Ok(());
    }
    Err(Error::from(ConfigError::Invalid {
        message: format!(
            "{} already exists; nothing was written",
            existing.join(", ")
        ),
        span: stack_core::diagnostic::Span::file_start(&stack_core::diagnostic::SourceFile::new(
            file, "",
        )),
        hint: Some("choose an empty folder with --output DIR".into()),
    })
    .into())
}

/// Write files (relative to `target`), making their folders.
fn write_all(target: &Path, files: &[(std::path::PathBuf, String)]) -> Result<(), Errors> {
    for (path, text) in files {
        let path = target.join(path);
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent).map_err(|e| Error::from(io(&path, e)))?;
        }
        fs_err::write(&path, text).map_err(|e| Error::from(io(&path, e)))?;
    }
    Ok(())
}

/// The report of an import: a row per part.
fn report(rows: &[stack_core::import::Converted]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            vec![
                row.part.clone(),
                if row.converted { "yes" } else { "no" }.to_string(),
                row.note.clone(),
            ]
        })
        .collect();
    output::stdout(&output::table(&["PART", "CONVERTED", "NOTE"], &rows));
}

pub fn compose(
    settings: &Settings,
    file: &Path,
    env_file: Option<&Path>,
    options: &stack_core::import::compose::ComposeOptions,
    output_dir: Option<&Path>,
) -> Result<u8, Errors> {
    use stack_core::import::compose;
    let base = file.parent().unwrap_or(Path::new("."));
    let target = output_dir.unwrap_or(base);
    let default_env = base.join(".env");
    let env_file = env_file.or_else(|| default_env.exists().then_some(default_env.as_path()));
    let mut variables = match env_file {
        Some(path) => compose::read_env_file(path).map_err(Error::from)?,
        None => std::collections::BTreeMap::new(),
    };
    variables.extend(std::env::vars());
    let imported = compose::compose(file, &variables, options).map_err(Error::from)?;
    let secrets_path = imported.secrets.as_ref().map(|(path, _)| path.clone());
    refuse_existing(
        file,
        target,
        imported
            .files
            .iter()
            .map(|(path, _)| path)
            .chain(secrets_path.iter()),
    )?;
    // Encrypted in memory before anything is written: without a creation
    // rule for it, nothing is.
    let encrypted = match &imported.secrets {
        Some((path, tree)) => {
            let full = target.join(path);
            let creation = stack_core::secrets::creation::creation_for(&full)
                .map_err(super::secrets::secrets_error)?;
            let plaintext = zeroize::Zeroizing::new(stack_core::yaml::to_string(tree));
            let documents =
                stack_core::secrets::parse(&full, &plaintext).map_err(|reason| Error::Failed {
                    message: reason,
                    hint: None,
                })?;
            let name = full.display().to_string();
            let sealed = stack_core::secrets::encrypt::encrypt(&name, &documents, &creation)
                .map_err(super::secrets::secrets_error)?;
            let text = super::secrets::render(&full, &sealed);
            Some((full, text))
        }
        None => None,
    };
    write_all(target, &imported.files)?;
    if let Some((path, text)) = &encrypted {
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent).map_err(|e| Error::from(io(path, e)))?;
        }
        super::secrets::write_private(path, text.as_bytes())?;
    }
    report(&imported.report);
    output::note(
        &format!("wrote {}", target.join("stack.yaml").display()),
        settings.quiet,
    );
    Ok(0)
}

fn io(path: &Path, source: std::io::Error) -> ConfigError {
    ConfigError::Read {
        path: path.to_path_buf(),
        source,
        span: None,
    }
}

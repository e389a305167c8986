//! `stack import helmfile FILE`: write the stack that does what a
//! helmfile.yaml does, and list what did not convert. Nothing is written
//! when the helmfile cannot be read, or when a file it would write exists.

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
    let existing: Vec<String> = imported
        .files
        .iter()
        .map(|(path, _)| target.join(path))
        .filter(|path| path.exists())
        .map(|path| path.display().to_string())
        .collect();
    if !existing.is_empty() {
        return Err(Error::from(ConfigError::Invalid {
            message: format!(
                "{} already exists; nothing was written",
                existing.join(", ")
            ),
            span: stack_core::diagnostic::Span::file_start(
                &stack_core::diagnostic::SourceFile::new(file, ""),
            ),
            hint: Some("choose an empty folder with --output DIR".into()),
        })
        .into());
    }
    for (path, text) in &imported.files {
        let path = target.join(path);
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent).map_err(|e| Error::from(io(&path, e)))?;
        }
        fs_err::write(&path, text).map_err(|e| Error::from(io(&path, e)))?;
    }
    let rows: Vec<Vec<String>> = imported
        .report
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

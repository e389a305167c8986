//! Which files make up the stack (product.md §1): `-f FILE` alone; for a
//! directory, `stack.yaml`, else every `stacks/*.yaml`, else every `*.yaml`.

use std::path::{Path, PathBuf};

use crate::load::config::ConfigError;

/// The stack files to load, sorted, and the directory that holds `.stack/`.
#[derive(Debug, Clone)]
pub struct StackFiles {
    pub files: Vec<PathBuf>,
    pub state_dir: PathBuf,
}

pub fn discover(target: &Path) -> Result<StackFiles, ConfigError> {
    if target.is_file() {
        let dir = target.parent().unwrap_or(Path::new(".")).to_path_buf();
        return Ok(StackFiles {
            files: vec![target.to_path_buf()],
            state_dir: dir,
        });
    }
    if !target.is_dir() {
        return Err(ConfigError::Read {
            path: target.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
            span: None,
        });
    }
    let single = target.join("stack.yaml");
    if single.is_file() {
        return Ok(StackFiles {
            files: vec![single],
            state_dir: target.to_path_buf(),
        });
    }
    let stacks = target.join("stacks");
    for dir in [stacks.as_path(), target] {
        let files = yaml_files(dir)?;
        if !files.is_empty() {
            return Ok(StackFiles {
                files,
                state_dir: dir.to_path_buf(),
            });
        }
    }
    Err(ConfigError::NoStackFiles {
        dir: target.to_path_buf(),
    })
}

fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let read_error = |source| ConfigError::Read {
        path: dir.to_path_buf(),
        source,
        span: None,
    };
    let mut files = Vec::new();
    for entry in fs_err::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        let is_yaml = path
            .extension()
            .is_some_and(|extension| extension == "yaml" || extension == "yml");
        if is_yaml && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

//! The stack as it was at a git ref, for `stack diff --against REF`: the
//! commit's tree unpacked (`git archive`) into a private temporary folder
//! — the repository itself is only read.

use std::path::{Path, PathBuf};

use crate::error::Error;

/// A stack target as it was at a ref; the folder goes when it is dropped.
pub struct Snapshot {
    _dir: tempfile::TempDir,
    /// The stack target inside it (the same path as in the working tree).
    pub target: PathBuf,
    /// The commit the ref names.
    pub commit: String,
}

fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
    let output = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
    }
}

fn refuse(message: String, hint: &str) -> Error {
    Error::Failed {
        message,
        hint: Some(hint.into()),
    }
}

/// The stack `target` (a file or folder in a git working tree) as it was
/// at `reference`.
pub fn at(target: &Path, reference: &str) -> Result<Snapshot, Error> {
    let absolute = std::fs::canonicalize(target).unwrap_or_else(|_| target.to_path_buf());
    let dir = if absolute.is_dir() {
        absolute.clone()
    } else {
        absolute
            .parent()
            .map_or_else(|| absolute.clone(), Path::to_path_buf)
    };
    let top = git(&dir, &["rev-parse", "--show-toplevel"]).map_err(|_| {
        refuse(
            format!(
                "{} is not in a git repository",
                crate::diagnostic::display_path(&dir)
            ),
            "`--against` compares with a commit of the stack's repository; run it in one",
        )
    })?;
    let top = PathBuf::from(String::from_utf8_lossy(&top).trim());
    let commit = git(
        &top,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{reference}^{{commit}}"),
        ],
    )
    .map_err(|_| {
        refuse(
            format!(
                "`{reference}` names no commit of the repository at {}",
                top.display()
            ),
            "give a branch, tag or commit: `--against origin/main`, `--against HEAD~1`",
        )
    })?;
    let commit = String::from_utf8_lossy(&commit).trim().to_string();
    let archive = git(&top, &["archive", "--format=tar", &commit]).map_err(|e| {
        refuse(
            format!("cannot read commit {commit}: {e}"),
            "check the repository",
        )
    })?;
    let folder = tempfile::tempdir().map_err(|e| {
        refuse(
            format!("cannot make a temporary folder: {e}"),
            "check TMPDIR",
        )
    })?;
    tar::Archive::new(archive.as_slice())
        .unpack(folder.path())
        .map_err(|e| {
            refuse(
                format!("cannot unpack commit {commit}: {e}"),
                "check TMPDIR",
            )
        })?;
    let relative = absolute.strip_prefix(&top).unwrap_or(Path::new(""));
    Ok(Snapshot {
        target: folder.path().join(relative),
        _dir: folder,
        commit,
    })
}

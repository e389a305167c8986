//! Charts from repositories and registries, pulled once by `helm pull` into
//! `.stack/charts/` (one folder per chart URL and version: the archive, its
//! SHA-256 digest, the unpacked chart) and verified by that digest every
//! time they are used. `stack charts update` pulls them again.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::RenderError;
use super::helm::finish;

/// How long one `helm pull` may take.
const PULL_TIMEOUT: Duration = Duration::from_secs(300);

/// The pulled chart's folder (pulled now if it is not cached), checked
/// against the digest recorded when it was pulled.
pub fn cached(
    url: &str,
    version: &str,
    helm: &Path,
    charts_dir: &Path,
) -> Result<PathBuf, RenderError> {
    let folder = cache_folder(charts_dir, url, version);
    if !folder.join("chart.tgz.sha256").is_file() {
        pull(url, version, helm, &folder)?;
    }
    verify(url, version, &folder)?;
    unpacked(&folder).ok_or_else(|| RenderError::ChartCache {
        chart: format!("{url} {version}"),
        problem: "holds no unpacked chart".into(),
    })
}

/// Pull a chart again, replacing its cached copy (only once the new one
/// is complete): the new archive's digest.
pub fn refresh(
    url: &str,
    version: &str,
    helm: &Path,
    charts_dir: &Path,
) -> Result<String, RenderError> {
    let folder = cache_folder(charts_dir, url, version);
    pull(url, version, helm, &folder)?;
    verify(url, version, &folder)?;
    Ok(fs_err::read_to_string(folder.join("chart.tgz.sha256"))
        .unwrap_or_default()
        .trim()
        .to_string())
}

/// Where a chart URL at a version is kept.
pub fn cache_folder(charts_dir: &Path, url: &str, version: &str) -> PathBuf {
    let safe = |text: &str| -> String {
        text.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    charts_dir.join(safe(url)).join(safe(version))
}

/// `helm pull` into a fresh folder beside `folder`, unpack, record the
/// digest, then move it into place: an interrupted pull leaves no cache.
fn pull(url: &str, version: &str, helm: &Path, folder: &Path) -> Result<(), RenderError> {
    let chart = format!("{url} {version}");
    let failed = |message: String| RenderError::Pull {
        chart: chart.clone(),
        message,
    };
    let parent = folder.parent().unwrap_or(folder);
    fs_err::create_dir_all(parent).map_err(|error| failed(error.to_string()))?;
    let staging = tempfile::Builder::new()
        .prefix(".pull-")
        .tempdir_in(parent)
        .map_err(|error| failed(error.to_string()))?;
    let mut command = Command::new(helm);
    command.arg("pull");
    match url.strip_prefix("oci://") {
        Some(_) => command.arg(url),
        None => {
            let (repository, name) = url.rsplit_once('/').unwrap_or((url, url));
            command.args([name, "--repo", repository])
        }
    };
    command
        .args(["--version", version, "--destination"])
        .arg(staging.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command
        .spawn()
        .map_err(|error| failed(format!("cannot run {}: {error}", helm.display())))?;
    let (ok, _, stderr) = finish(child, PULL_TIMEOUT).map_err(&failed)?;
    if !ok {
        return Err(failed(super::helm::helm_message(&stderr)));
    }
    let archive = only_archive(staging.path())
        .ok_or_else(|| failed("helm pull wrote no chart archive".into()))?;
    let bytes = fs_err::read(&archive).map_err(|error| failed(error.to_string()))?;
    let target = staging.path().join("chart.tgz");
    fs_err::rename(&archive, &target).map_err(|error| failed(error.to_string()))?;
    unpack(&bytes, &staging.path().join("chart"))
        .map_err(|error| failed(format!("cannot unpack it: {error}")))?;
    fs_err::write(staging.path().join("chart.tgz.sha256"), digest(&bytes))
        .map_err(|error| failed(error.to_string()))?;
    let _ = fs_err::remove_dir_all(folder);
    fs_err::rename(staging.keep(), folder).map_err(|error| failed(error.to_string()))?;
    Ok(())
}

/// The one `.tgz` helm wrote.
fn only_archive(dir: &Path) -> Option<PathBuf> {
    fs_err::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|ext| ext == "tgz"))
}

fn unpack(bytes: &[u8], into: &Path) -> std::io::Result<()> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    archive.set_preserve_permissions(false);
    archive.unpack(into)
}

fn digest(bytes: &[u8]) -> String {
    stack_kube::hex::lower(&Sha256::digest(bytes))
}

/// The archive still has the digest recorded when it was pulled.
fn verify(url: &str, version: &str, folder: &Path) -> Result<(), RenderError> {
    let chart = format!("{url} {version}");
    let recorded = fs_err::read_to_string(folder.join("chart.tgz.sha256")).unwrap_or_default();
    let actual = fs_err::read(folder.join("chart.tgz"))
        .map(|bytes| digest(&bytes))
        .unwrap_or_default();
    if recorded.trim() == actual && !actual.is_empty() {
        Ok(())
    } else {
        Err(RenderError::ChartCache {
            chart,
            problem: format!(
                "does not match the digest recorded when it was pulled ({})",
                folder.display()
            ),
        })
    }
}

/// The chart folder inside the unpacked archive (`chart/NAME/`).
fn unpacked(folder: &Path) -> Option<PathBuf> {
    fs_err::read_dir(folder.join("chart"))
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.join("Chart.yaml").is_file())
}

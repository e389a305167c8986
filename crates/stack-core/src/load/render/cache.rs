//! The render cache of Helm charts: `helm template`'s output kept in
//! `.stack/render-cache/`, keyed by the chart's digest (every file of its
//! folder), the release's name, namespace and values, and the helm binary
//! (its path, size and modification time), so a second `stack diff` of an
//! unchanged stack runs no helm at all. Secrets are not written to disk:
//! the key holds the values with decrypted secrets masked, and the digest
//! of the encrypted files they came from (a rotated secret changes it); an
//! output that holds a secret, or a `Secret`, is never kept.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Bumped when what is kept, or how it is keyed, changes.
const FORMAT: &str = "stack-render-cache-1";

#[derive(Debug, Clone)]
pub struct RenderCache {
    dir: PathBuf,
    /// What identifies the helm that renders: a new helm misses the cache.
    helm: String,
}

impl RenderCache {
    pub fn new(dir: PathBuf, helm: &Path) -> Self {
        Self {
            dir,
            helm: helm_identity(helm),
        }
    }

    /// The key of one render.
    pub fn key(&self, chart: &str, release: (&str, &str), secrets: &str, values: &Value) -> String {
        let mut hasher = Sha256::new();
        for part in [FORMAT, &self.helm, chart, release.0, release.1, secrets] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        hasher.update(values.to_string().as_bytes());
        stack_kube::hex::lower(&hasher.finalize())
    }

    pub fn get(&self, key: &str) -> Option<String> {
        fs_err::read_to_string(self.dir.join(key)).ok()
    }

    /// Keep `output` under `key`, readable by its owner only; a cache that
    /// cannot be written is no error (the next run renders again).
    pub fn put(&self, key: &str, output: &str) {
        if output.lines().any(|line| line.trim_end() == "kind: Secret") {
            return;
        }
        let Ok(()) = fs_err::create_dir_all(&self.dir) else {
            return;
        };
        let Ok(file) = tempfile::NamedTempFile::new_in(&self.dir) else {
            return;
        };
        if fs_err::write(file.path(), output).is_ok() {
            let _ = file.persist(self.dir.join(key));
        }
    }
}

/// The helm binary's path (found on `PATH` when bare), size and
/// modification time.
fn helm_identity(helm: &Path) -> String {
    let found = if helm.components().count() > 1 {
        Some(helm.to_path_buf())
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(helm))
                .find(|path| path.is_file())
        })
    };
    let Some(path) = found else {
        return helm.display().to_string();
    };
    let metadata = std::fs::metadata(&path).ok();
    let modified = metadata
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_nanos());
    format!(
        "{}:{}:{modified}",
        path.display(),
        metadata.map_or(0, |m| m.len())
    )
}

/// The digest of a chart folder: every file's path (relative to it) and
/// bytes, in path order.
pub fn folder_digest(dir: &Path) -> String {
    let mut files = Vec::new();
    collect(dir, dir, &mut files);
    files.sort();
    let mut hasher = Sha256::new();
    for (relative, path) in files {
        hasher.update(relative.as_bytes());
        hasher.update([0]);
        hasher.update(fs_err::read(&path).unwrap_or_default());
        hasher.update([0]);
    }
    stack_kube::hex::lower(&hasher.finalize())
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = fs_err::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if let Ok(relative) = path.strip_prefix(root) {
            files.push((relative.to_string_lossy().replace('\\', "/"), path));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_of_the_key_matters() {
        let cache = RenderCache::new(PathBuf::from("/nonexistent"), Path::new("/bin/sh"));
        let values = serde_json::json!({"a": 1});
        let key = cache.key("chart", ("web", "shop"), "s", &values);
        assert_eq!(key, cache.key("chart", ("web", "shop"), "s", &values));
        for other in [
            cache.key("chart2", ("web", "shop"), "s", &values),
            cache.key("chart", ("api", "shop"), "s", &values),
            cache.key("chart", ("web", "apps"), "s", &values),
            cache.key("chart", ("web", "shop"), "rotated", &values),
            cache.key("chart", ("web", "shop"), "s", &serde_json::json!({"a": 2})),
            RenderCache::new(PathBuf::from("/nonexistent"), Path::new("/bin/ls")).key(
                "chart",
                ("web", "shop"),
                "s",
                &values,
            ),
        ] {
            assert_ne!(key, other);
        }
    }

    #[test]
    fn a_secret_is_never_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cache = RenderCache::new(dir.path().to_path_buf(), Path::new("/bin/sh"));
        cache.put("a", "---\nkind: Secret\ndata: {}\n");
        cache.put("b", "---\nkind: ConfigMap\n");
        assert_eq!(cache.get("a"), None);
        assert_eq!(cache.get("b").as_deref(), Some("---\nkind: ConfigMap\n"));
    }
}

//! The promotion log: one JSON line per promotion, appended to
//! `promotions.jsonl` beside the target environment's values file. Each
//! entry is the provenance of what was written — source environment, the
//! source releases' verified revisions, a digest of the promoted values,
//! the time — and the values themselves, so that a later promotion can tell
//! a hand edit of the file from its own writing.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::promote::PromoteError;
use crate::promote::paths::{self, KeyPath};

pub(crate) const FILE_NAME: &str = "promotions.jsonl";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub time: String,
    pub from: String,
    pub to: String,
    /// The values file written, relative to the log's folder.
    pub file: String,
    /// Digest of the promoted values.
    pub digest: String,
    pub releases: Vec<Provenance>,
    /// Every promoted leaf, as written into the file.
    pub values: Vec<Written>,
    /// Gate refusals and hand edits that `--force` overrode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forced: Vec<String>,
}

/// A source release: its newest revision there, and whether the gate
/// verified it (`false` only under `--force`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    pub id: String,
    /// `None` when it has no revision in the source's cluster.
    pub revision: Option<u32>,
    pub values_digest: String,
    pub verified: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Written {
    pub path: KeyPath,
    pub value: Value,
}

/// A promoted value that is no longer what the last promotion wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct HandEdit {
    pub path: KeyPath,
    pub written: Value,
    pub now: Option<Value>,
}

/// The log beside a values file.
pub fn path_for(values_file: &Path) -> PathBuf {
    values_file
        .parent()
        .unwrap_or(Path::new("."))
        .join(FILE_NAME)
}

/// Every entry of the log; no log is an empty one.
pub fn read(log: &Path) -> Result<Vec<Entry>, crate::error::Error> {
    let text = match fs_err::read_to_string(log) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(crate::load::config::ConfigError::Read {
                path: log.to_path_buf(),
                source,
                span: None,
            }
            .into());
        }
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line).map_err(|error| {
                PromoteError::LogLine {
                    path: log.to_path_buf(),
                    line: index + 1,
                    reason: error.to_string(),
                }
                .into()
            })
        })
        .collect()
}

/// Append one entry (one `write` call, so a crash leaves whole lines).
pub fn append(log: &Path, entry: &Entry) -> Result<(), crate::error::Error> {
    let mut line = serde_json::to_string(entry).unwrap_or_default();
    line.push('\n');
    let write_error = |source| crate::error::Error::Write {
        path: log.to_path_buf(),
        source,
    };
    let mut file = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(write_error)?;
    file.write_all(line.as_bytes()).map_err(write_error)
}

/// The newest entry that wrote into `file` for environment `to`.
pub fn last<'a>(entries: &'a [Entry], to: &str, file: &str) -> Option<&'a Entry> {
    entries
        .iter()
        .rev()
        .find(|entry| entry.to == to && entry.file == file)
}

/// Values the entry wrote that the file (its own values, `file_values`) no
/// longer holds.
pub fn hand_edits(entry: &Entry, file_values: &Value) -> Vec<HandEdit> {
    entry
        .values
        .iter()
        .filter_map(|written| {
            let now = paths::get(file_values, &written.path);
            (now != Some(&written.value)).then(|| HandEdit {
                path: written.path.clone(),
                written: written.value.clone(),
                now: now.cloned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_changed_or_removed_value_is_a_hand_edit() {
        let entry = Entry {
            time: "t".into(),
            from: "development".into(),
            to: "staging".into(),
            file: "staging.yaml".into(),
            digest: "d".into(),
            releases: Vec::new(),
            values: vec![
                Written {
                    path: vec!["images".into(), "tag".into()],
                    value: json!("1.5.0"),
                },
                Written {
                    path: vec!["images".into(), "gone".into()],
                    value: json!(1),
                },
            ],
            forced: Vec::new(),
        };
        let edits = hand_edits(&entry, &json!({"images": {"tag": "1.5.1"}}));
        assert_eq!(
            edits,
            vec![
                HandEdit {
                    path: vec!["images".into(), "tag".into()],
                    written: json!("1.5.0"),
                    now: Some(json!("1.5.1"))
                },
                HandEdit {
                    path: vec!["images".into(), "gone".into()],
                    written: json!(1),
                    now: None
                },
            ]
        );
        assert!(hand_edits(&entry, &json!({"images": {"tag": "1.5.0", "gone": 1}})).is_empty());
        let line = serde_json::to_string(&entry).unwrap();
        assert_eq!(serde_json::from_str::<Entry>(&line).unwrap(), entry);
    }
}

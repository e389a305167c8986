//! The teams file: per team its keys (one or two, for rotation), the
//! environments it may deploy to, the selector its requests are confined
//! to and where its statuses are sent. A SOPS-encrypted file, decrypted
//! with the usual keys; every value of it is registered as a secret.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use stack_core::error::Error;
use stack_core::load::graph::Selector;
use stack_core::mask::Masks;

/// The shortest key accepted.
const MIN_KEY: usize = 16;

/// A team's status callback.
#[derive(Debug, Clone)]
pub struct Notify {
    pub url: String,
    pub secret: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct Team {
    pub name: String,
    pub keys: Vec<Vec<u8>>,
    pub environments: Vec<String>,
    /// Every request of the team deploys only what this matches.
    pub selector: Option<(String, Selector)>,
    pub notify: Option<Notify>,
}

fn invalid(path: &Path, team: &str, message: &str) -> Error {
    Error::Failed {
        message: format!("{}: team `{team}`: {message}", path.display()),
        hint: Some("each team has `keys` (one or two, 16 characters or more), `environments`, and optionally `selector` and `notify: {url, secret}`".into()),
    }
}

/// Decrypt and read the teams file, registering its keys and callback
/// secrets in `masks` (its team names, environments and selectors are
/// not secret).
pub fn load(
    path: &Path,
    age_key_file: Option<&Path>,
    masks: &Masks,
) -> Result<BTreeMap<String, Team>, Error> {
    let identities = stack_core::secrets::identities::load(age_key_file)
        .map_err(|error| Error::Secrets { error, span: None })?;
    let decrypted = stack_core::secrets::decrypt_file(path, &identities)
        .map_err(|error| Error::Secrets { error, span: None })?;
    let document = decrypted
        .documents
        .first()
        .map(stack_core::secrets::tree::Tree::to_value)
        .unwrap_or_default();
    let Some(Value::Object(teams)) = document.get("teams") else {
        return Err(invalid(path, "-", "the file has no `teams:` map"));
    };
    let teams: BTreeMap<String, Team> = teams
        .iter()
        .map(|(name, body)| Ok((name.clone(), team(path, name, body)?)))
        .collect::<Result<_, Error>>()?;
    for team in teams.values() {
        let secrets = team
            .keys
            .iter()
            .chain(team.notify.iter().map(|n| &n.secret));
        for secret in secrets {
            masks.register(&String::from_utf8_lossy(secret));
        }
    }
    Ok(teams)
}

fn team(path: &Path, name: &str, body: &Value) -> Result<Team, Error> {
    let strings = |key: &str| -> Vec<String> {
        body[key]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let keys = strings("keys");
    if keys.is_empty() || keys.len() > 2 || keys.iter().any(|k| k.len() < MIN_KEY) {
        return Err(invalid(
            path,
            name,
            "`keys` must be one or two keys of 16 characters or more",
        ));
    }
    let environments = strings("environments");
    if environments.is_empty() {
        return Err(invalid(path, name, "`environments` names none"));
    }
    let selector = match body["selector"].as_str() {
        Some(text) => Some((
            text.to_string(),
            Selector::parse(text).map_err(|e| invalid(path, name, &e.to_string()))?,
        )),
        None => None,
    };
    let notify = match (&body["notify"]["url"], &body["notify"]["secret"]) {
        (Value::Null, _) => None,
        (Value::String(url), Value::String(secret)) => Some(Notify {
            url: url.clone(),
            secret: secret.as_bytes().to_vec(),
        }),
        _ => return Err(invalid(path, name, "`notify` needs a `url` and a `secret`")),
    };
    Ok(Team {
        name: name.to_string(),
        keys: keys.into_iter().map(String::into_bytes).collect(),
        environments,
        selector,
        notify,
    })
}

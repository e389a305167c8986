//! The server's state: deployments, their events and results, the answers
//! kept for `Idempotency-Key`s, and the signed bodies seen lately — in
//! one SQLite database (`server.db` in the state folder), so a restart
//! keeps the history.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension as _, params};
use serde_json::{Value, json};

/// GitHub's deployment-status words.
pub const QUEUED: &str = "queued";
pub const IN_PROGRESS: &str = "in_progress";
pub const SUCCESS: &str = "success";
pub const FAILURE: &str = "failure";
pub const ERROR: &str = "error";

/// Whether a status is final.
pub fn is_final(status: &str) -> bool {
    matches!(status, SUCCESS | FAILURE | ERROR)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS deployments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    team TEXT NOT NULL,
    environment TEXT NOT NULL,
    repository TEXT NOT NULL,
    ref TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    created TEXT NOT NULL,
    started TEXT,
    finished TEXT,
    request TEXT NOT NULL,
    releases TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS events (
    deployment TEXT NOT NULL,
    seq INTEGER NOT NULL,
    time TEXT NOT NULL,
    release TEXT NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (deployment, seq)
);
CREATE TABLE IF NOT EXISTS answers (team TEXT, key TEXT, answer TEXT NOT NULL, PRIMARY KEY (team, key));
CREATE TABLE IF NOT EXISTS bodies (digest TEXT PRIMARY KEY, seen INTEGER NOT NULL);
";

/// A new deployment, as it is queued.
pub struct NewDeployment<'a> {
    pub id: &'a str,
    pub team: &'a str,
    pub environment: &'a str,
    pub repository: &'a str,
    pub git_ref: &'a str,
    /// What it deploys (selector, set, resources), for the record.
    pub request: &'a Value,
}

pub struct Store {
    db: Mutex<Connection>,
}

type Result<T> = std::result::Result<T, rusqlite::Error>;

impl Store {
    /// Open (or create) the database in `dir`. Deployments a killed server
    /// left in progress are marked `error` (interrupted); the ids of those
    /// still queued are returned, oldest first, to be run.
    pub fn open(dir: &Path) -> Result<(Self, Vec<(String, String)>)> {
        let _ = std::fs::create_dir_all(dir);
        let db = Connection::open(dir.join("server.db"))?;
        db.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
        db.execute_batch(SCHEMA)?;
        db.execute(
            "UPDATE deployments SET status = ?1, reason = 'interrupted: the server stopped during the deployment', finished = ?2 WHERE status = ?3",
            params![ERROR, stack_kube::clock::now(), IN_PROGRESS],
        )?;
        let queued = {
            let mut statement = db.prepare(
                "SELECT id, environment FROM deployments WHERE status = ?1 ORDER BY seq",
            )?;
            statement
                .query_map(params![QUEUED], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<Vec<(String, String)>>>()?
        };
        Ok((Self { db: Mutex::new(db) }, queued))
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn insert(&self, new: &NewDeployment) -> Result<()> {
        self.db().execute(
            "INSERT INTO deployments (id, team, environment, repository, ref, status, created, request) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![new.id, new.team, new.environment, new.repository, new.git_ref, QUEUED, stack_kube::clock::now(), new.request.to_string()],
        )?;
        Ok(())
    }

    /// Set a deployment's status (and its reason and releases, when the
    /// run ends); its start and end times follow.
    pub fn set_status(
        &self,
        id: &str,
        status: &str,
        reason: Option<&str>,
        releases: Option<&Value>,
    ) -> Result<()> {
        let now = stack_kube::clock::now();
        let db = self.db();
        if status == IN_PROGRESS {
            db.execute(
                "UPDATE deployments SET status = ?1, started = ?2 WHERE id = ?3",
                params![status, now, id],
            )?;
        } else if !is_final(status) {
            db.execute(
                "UPDATE deployments SET status = ?1 WHERE id = ?2",
                params![status, id],
            )?;
        } else {
            db.execute(
                "UPDATE deployments SET status = ?1, reason = ?2, finished = ?3, releases = COALESCE(?4, releases) WHERE id = ?5",
                params![status, reason, now, releases.map(Value::to_string), id],
            )?;
        }
        Ok(())
    }

    /// Add an event; its number in the deployment.
    pub fn add_event(&self, id: &str, release: &str, event: &Value) -> Result<i64> {
        let db = self.db();
        let seq: i64 = db.query_row(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE deployment = ?1",
            params![id],
            |row| row.get(0),
        )?;
        db.execute(
            "INSERT INTO events (deployment, seq, time, release, event) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, seq, stack_kube::clock::now(), release, event.to_string()],
        )?;
        Ok(seq)
    }

    /// The events of a deployment after number `after`.
    pub fn events(&self, id: &str, after: i64) -> Result<Vec<Value>> {
        let db = self.db();
        let mut statement = db.prepare(
            "SELECT seq, time, release, event FROM events WHERE deployment = ?1 AND seq > ?2 ORDER BY seq",
        )?;
        statement
            .query_map(params![id, after], |row| {
                let event: String = row.get(3)?;
                let mut value: Value = serde_json::from_str(&event).unwrap_or_default();
                value["seq"] = row.get::<_, i64>(0)?.into();
                value["time"] = row.get::<_, String>(1)?.into();
                value["release"] = row.get::<_, String>(2)?.into();
                Ok(value)
            })?
            .collect()
    }

    /// A deployment as the API shows it (without events).
    pub fn get(&self, id: &str) -> Result<Option<Value>> {
        self.db()
            .query_row(
                &format!("SELECT {COLUMNS} FROM deployments WHERE id = ?1"),
                params![id],
                row_json,
            )
            .optional()
    }

    /// Recent deployments, newest first, `per_page` from page `page` (1…),
    /// of a team and an environment when given.
    pub fn list(
        &self,
        team: Option<&str>,
        environment: Option<&str>,
        page: u32,
        per_page: u32,
    ) -> Result<Vec<Value>> {
        let db = self.db();
        let mut statement = db.prepare(&format!(
            "SELECT {COLUMNS} FROM deployments WHERE (?1 IS NULL OR team = ?1) AND (?2 IS NULL OR environment = ?2) ORDER BY seq DESC LIMIT ?3 OFFSET ?4"
        ))?;
        let offset = page.saturating_sub(1) * per_page;
        statement
            .query_map(params![team, environment, per_page, offset], row_json)?
            .collect()
    }

    /// The answer first given for a team's `Idempotency-Key`.
    pub fn answer(&self, team: &str, key: &str) -> Result<Option<String>> {
        self.db()
            .query_row(
                "SELECT answer FROM answers WHERE team = ?1 AND key = ?2",
                params![team, key],
                |row| row.get(0),
            )
            .optional()
    }

    pub fn keep_answer(&self, team: &str, key: &str, answer: &str) -> Result<()> {
        self.db().execute(
            "INSERT OR IGNORE INTO answers (team, key, answer) VALUES (?1, ?2, ?3)",
            params![team, key, answer],
        )?;
        Ok(())
    }

    /// Remember a signed body's digest; `false` when it was seen within
    /// the window already (a replay). Older digests are forgotten.
    pub fn first_sight(&self, digest: &str, now: i64, window: i64) -> Result<bool> {
        let db = self.db();
        db.execute("DELETE FROM bodies WHERE seen < ?1", params![now - window])?;
        let inserted = db.execute(
            "INSERT OR IGNORE INTO bodies (digest, seen) VALUES (?1, ?2)",
            params![digest, now],
        )?;
        Ok(inserted == 1)
    }
}

const COLUMNS: &str = "id, team, environment, repository, ref, status, reason, created, started, finished, request, releases";

fn row_json(row: &rusqlite::Row) -> Result<Value> {
    let text = |i: usize| row.get::<_, Option<String>>(i);
    let json_of = |text: Option<String>| {
        text.and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .unwrap_or(Value::Null)
    };
    Ok(json!({
        "id": text(0)?,
        "team": text(1)?,
        "environment": text(2)?,
        "repository": text(3)?,
        "ref": text(4)?,
        "status": text(5)?,
        "reason": text(6)?,
        "created": text(7)?,
        "started": text(8)?,
        "finished": text(9)?,
        "request": json_of(text(10)?),
        "releases": json_of(text(11)?),
    }))
}

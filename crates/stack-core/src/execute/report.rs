//! Progress for people, on stderr. On a terminal (and not in CI): a live
//! view, one line per release — waiting, applying, `waiting for
//! Deployment/web: 1/3 ready`, done — under a progress bar of the run, with
//! failures, rollbacks and warnings printed in full above it. Elsewhere:
//! one plain, non-interleaved line per event, prefixed with the release
//! (`[apps/backend] waiting for Deployment/backend: 1/3 ready`). `-q` keeps
//! only errors, `-v` adds per-object lines. Everything passes the masker.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::execute::event::Event;
use crate::mask::Masks;

#[derive(Debug, Clone, Default)]
pub struct Reporter {
    pub quiet: bool,
    pub verbose: bool,
    live: Option<Arc<Live>>,
    /// `-o json`: each event is one JSON object on a line of stderr.
    json: bool,
    /// A server's run: each event goes here, as JSON, instead of stderr.
    sink: Option<Sink>,
    /// Every line passes these masks.
    masks: Masks,
}

/// Where a server's run sends its events: the release and the event as
/// JSON (`{"event": …, …}`), masked.
#[derive(Clone)]
pub struct Sink(Arc<SinkFn>);

/// What a sink calls with each event.
type SinkFn = dyn Fn(&str, serde_json::Value) + Send + Sync;

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sink")
    }
}

#[derive(Debug)]
struct Live {
    multi: MultiProgress,
    run: ProgressBar,
    releases: Mutex<HashMap<String, ProgressBar>>,
}

impl Reporter {
    /// Plain lines.
    pub fn plain(quiet: bool, verbose: bool, masks: &Masks) -> Self {
        Self {
            quiet,
            verbose,
            live: None,
            json: false,
            sink: None,
            masks: masks.clone(),
        }
    }

    /// Events to `sink` (masked, as `-o json` writes them), nothing on
    /// stderr: a run inside a server.
    pub fn to_sink(
        masks: &Masks,
        sink: impl Fn(&str, serde_json::Value) + Send + Sync + 'static,
    ) -> Self {
        Self {
            sink: Some(Sink(Arc::new(sink))),
            ..Self::plain(false, false, masks)
        }
    }

    /// JSON lines, for programs: `{"release": …, "event": …, …}` per event
    /// (the fields of [`Event`], in snake case).
    pub fn json(quiet: bool, verbose: bool, masks: &Masks) -> Self {
        Self {
            json: true,
            ..Self::plain(quiet, verbose, masks)
        }
    }

    /// The masks every line passes.
    pub fn masks(&self) -> &Masks {
        &self.masks
    }

    /// The live view when stderr is a terminal outside CI, else plain lines.
    pub fn for_terminal(quiet: bool, verbose: bool, masks: &Masks) -> Self {
        use std::io::IsTerminal as _;
        let terminal = std::io::stderr().is_terminal()
            && std::env::var_os("CI").is_none()
            && std::env::var("TERM").map_or(true, |t| t != "dumb");
        if quiet || !terminal {
            return Self::plain(quiet, verbose, masks);
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let run = ProgressBar::hidden();
        Self {
            quiet,
            verbose,
            live: Some(Arc::new(Live {
                multi,
                run,
                releases: Mutex::new(HashMap::new()),
            })),
            json: false,
            sink: None,
            masks: masks.clone(),
        }
    }

    /// A run of these releases starts: each gets its line, waiting.
    pub fn start(&self, releases: &[String]) {
        let Some(live) = &self.live else {
            return;
        };
        live.multi.add(live.run.clone());
        live.run.set_length(releases.len() as u64);
        live.run.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} releases  {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        for id in releases {
            let bar = live
                .multi
                .insert_before(&live.run, ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix:<28} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(id.clone());
            bar.set_message("waiting");
            bar.enable_steady_tick(Duration::from_millis(120));
            live.releases
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(id.clone(), bar);
        }
    }

    /// An event of a release: a line (a status on the live view, kept
    /// above it when the event is `Event::lasting`); per-object events
    /// only with `-v`.
    pub fn event(&self, release: &str, event: &Event) {
        if self.quiet || (event.detail() && !self.verbose) {
            return;
        }
        if self.json || self.sink.is_some() {
            let mut line = serde_json::Map::new();
            line.insert("release".into(), release.into());
            if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(event) {
                line.extend(fields);
            }
            if self.sink.is_some() {
                line.insert("message".into(), event.to_string().into());
            }
            let line = self
                .masks
                .text(&serde_json::Value::Object(line).to_string());
            match &self.sink {
                Some(Sink(sink)) => sink(release, serde_json::from_str(&line).unwrap_or_default()),
                None => {
                    let _ = writeln!(std::io::stderr().lock(), "{line}");
                }
            }
            return;
        }
        let message = self.masks.text(&event.to_string());
        let Some(live) = &self.live else {
            let _ = writeln!(anstream::stderr().lock(), "[{release}] {message}");
            return;
        };
        let first = message.lines().next().unwrap_or_default();
        if let Some(bar) = live
            .releases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(release)
        {
            bar.set_message(first.to_string());
        }
        if event.lasting() || !live.has(release) {
            live.multi.suspend(|| {
                let _ = writeln!(anstream::stderr().lock(), "[{release}] {message}");
            });
        }
    }

    /// A release is done: its line keeps how it ended.
    pub fn finish(&self, release: &str, how: &str) {
        let Some(live) = &self.live else {
            return;
        };
        if let Some(bar) = live
            .releases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(release)
        {
            bar.finish_with_message(self.masks.text(how));
        }
        live.run.inc(1);
    }

    /// The run is over: the view is cleared, the summary table follows.
    pub fn close(&self) {
        if let Some(live) = &self.live {
            for bar in live
                .releases
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .values()
            {
                bar.finish_and_clear();
            }
            live.run.finish_and_clear();
            let _ = live.multi.clear();
        }
    }
}

impl Live {
    fn has(&self, release: &str) -> bool {
        self.releases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(release)
    }
}

/// A note on stderr (suppressed by `-q`).
pub fn note(message: &str, quiet: bool) {
    if !quiet {
        let _ = writeln!(anstream::stderr().lock(), "note: {message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_and_rollbacks_stay_on_screen_progress_does_not() {
        let failed = Event::Failed {
            error: "Deployment/web failed: ProgressDeadlineExceeded".into(),
        };
        assert!(failed.lasting());
        assert!(
            Event::RollingBack {
                target: 1,
                revision: 3
            }
            .lasting()
        );
        assert!(
            Event::Skipped {
                because: "its need apps/db did not succeed".into()
            }
            .lasting()
        );
        // A status that mentions a failure is still only a status.
        let waiting = Event::WaitingFor {
            object: "Job/migrate".into(),
            status: "1 failed, retrying".into(),
        };
        assert!(!waiting.lasting());
        let applying = Event::Applying {
            revision: 2,
            creates: 0,
            updates: 1,
            deletes: 0,
        };
        assert!(!applying.lasting());
        assert_eq!(
            applying.to_string(),
            "applying revision 2: 0 to create, 1 to change, 0 to delete"
        );
    }

    #[test]
    fn plain_reporters_have_no_live_view() {
        let reporter = Reporter::plain(false, false, &Masks::default());
        reporter.start(&["apps/web".into()]);
        reporter.finish("apps/web", "deployed");
        assert!(reporter.live.is_none());
    }
}

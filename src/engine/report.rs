//! Progress for people: one plain, non-interleaved line per event, prefixed
//! with the release (`[apps/backend] waiting for Deployment/backend: 1/3
//! ready`), on stderr; `-q` keeps only errors, `-v` adds per-object lines.

use std::io::Write as _;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Reporter {
    pub quiet: bool,
    pub verbose: bool,
}

impl Reporter {
    pub fn line(&self, release: &str, message: &str) {
        if !self.quiet {
            let _ = writeln!(
                anstream::stderr().lock(),
                "[{release}] {}",
                crate::mask::mask_output(message)
            );
        }
    }

    pub fn detail(&self, release: &str, message: &str) {
        if self.verbose && !self.quiet {
            self.line(release, message);
        }
    }
}

/// `1.2s`, or `35ms` under a second.
pub fn seconds(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

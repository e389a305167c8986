//! Writing to the terminal: data to stdout, progress and problems to stderr,
//! colour only where it is wanted (`--no-color`, `NO_COLOR`, not a TTY).

use std::io::Write;

use stack_core::diagnostic::Diagnostic;
use stack_core::error::Errors;
use stack_core::mask::Masks;

/// The run's masks (one run per process): everything printed passes them.
static MASKS: std::sync::OnceLock<Masks> = std::sync::OnceLock::new();

/// Print through `masks` from now on; set once, in `main`.
pub fn use_masks(masks: &Masks) {
    let _ = MASKS.set(masks.clone());
}

fn masks() -> &'static Masks {
    MASKS.get_or_init(Masks::default)
}

/// Print problems to stderr.
pub fn print_diagnostics<'a>(diagnostics: impl IntoIterator<Item = &'a Diagnostic>, color: bool) {
    let mut stderr = anstream::stderr().lock();
    for (index, diagnostic) in diagnostics.into_iter().enumerate() {
        if index > 0 {
            let _ = writeln!(stderr);
        }
        let _ = write!(stderr, "{}", masks().text(&diagnostic.render(color)));
    }
}

pub fn print_errors(errors: &Errors, color: bool) {
    let diagnostics: Vec<Diagnostic> = errors
        .0
        .iter()
        .map(stack_core::error::Error::diagnostic)
        .collect();
    print_diagnostics(&diagnostics, color);
    if errors.0.len() > 1 {
        let mut stderr = anstream::stderr().lock();
        let _ = writeln!(stderr, "\n{} errors", errors.0.len());
    }
}

pub use stack_core::execute::report::note;

/// Left-aligned columns separated by two spaces, no trailing blanks.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            if column > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if column + 1 < row.len() {
                let pad = widths[column].saturating_sub(cell.chars().count());
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Write to stdout; a closed pipe (`stack template | head`) is not an error.
pub fn stdout(text: &str) {
    let mut out = anstream::stdout().lock();
    let _ = out.write_all(masks().text(text).as_bytes());
    let _ = out.flush();
}

/// A line of progress on stderr (masked), unless `-q`.
pub fn progress(line: &str, quiet: bool) {
    if quiet {
        return;
    }
    let mut err = anstream::stderr().lock();
    let _ = writeln!(err, "{}", masks().text(line));
}

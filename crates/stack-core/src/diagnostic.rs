//! Source positions and how a problem is shown to the user.
//!
//! Every error that can point at a file carries a [`Span`]; rendering turns it
//! into `--> file:line:col`, the source line and carets, then a `hint:` line.
//! Meaning never depends on colour.

use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

/// A file read from disk, kept whole so diagnostics can quote it.
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            path: path.into(),
            text: text.into(),
        })
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(crate) fn line_column(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    /// Byte offset of a 1-based line and column (in characters).
    pub(crate) fn offset_of(&self, line: usize, column: usize) -> usize {
        let line_start = self
            .text
            .split_inclusive('\n')
            .take(line.saturating_sub(1))
            .map(str::len)
            .sum::<usize>();
        let rest = &self.text[line_start.min(self.text.len())..];
        let within = rest
            .char_indices()
            .nth(column.saturating_sub(1))
            .map_or(rest.len(), |(i, _)| i);
        line_start + within
    }
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while index > 0 && !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

/// A range of bytes in a source file.
#[derive(Debug, Clone)]
pub struct Span {
    pub source: Arc<SourceFile>,
    pub range: Range<usize>,
}

impl Span {
    pub fn new(source: &Arc<SourceFile>, range: Range<usize>) -> Self {
        Self {
            source: Arc::clone(source),
            range,
        }
    }

    /// The whole first line of a file: for problems with a file as a whole.
    pub fn file_start(source: &Arc<SourceFile>) -> Self {
        Self::new(source, 0..0)
    }

    pub fn path(&self) -> &Path {
        &self.source.path
    }

    /// `path:line:col`, the form editors and terminals turn into links.
    pub fn location(&self) -> String {
        let (line, column) = self.source.line_column(self.range.start);
        format!("{}:{line}:{column}", display_path(&self.source.path))
    }

    pub fn text(&self) -> &str {
        self.source.text.get(self.range.clone()).unwrap_or("")
    }
}

/// A path as the user should read it: relative to the working directory when
/// it lies below it.
pub fn display_path(path: &Path) -> String {
    let relative = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf));
    let path = relative.as_deref().unwrap_or(path);
    let cleaned: PathBuf = path
        .components()
        .filter(|component| !matches!(component, std::path::Component::CurDir))
        .collect();
    if cleaned.as_os_str().is_empty() {
        ".".into()
    } else {
        cleaned.display().to_string()
    }
}

/// The innermost cause of an I/O error, without the path `fs-err` adds
/// (our own messages name the path).
pub(crate) fn io_reason(error: &std::io::Error) -> String {
    let mut current: &dyn std::error::Error = error;
    while let Some(inner) = current.source() {
        current = inner;
    }
    current.to_string()
}

/// A problem ready to be shown: what, where, what to do.
#[derive(Debug, Clone, Default)]
pub struct Diagnostic {
    pub message: String,
    pub span: Option<Span>,
    pub label: Option<String>,
    pub notes: Vec<String>,
    pub hint: Option<String>,
    pub warning: bool,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ..Self::default()
        }
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            warning: true,
            ..Self::default()
        }
    }

    #[must_use]
    pub(crate) fn with_span(mut self, span: Option<Span>) -> Self {
        self.span = span;
        self
    }

    #[must_use]
    pub(crate) fn with_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    /// Render for a terminal (`color`) or for a log/pipe.
    pub fn render(&self, color: bool) -> String {
        let renderer = if color {
            Renderer::styled()
        } else {
            Renderer::plain()
        };
        let level = if self.warning {
            Level::WARNING
        } else {
            Level::ERROR
        };
        let mut group = Group::with_title(level.primary_title(self.message.as_str()));
        let excerpt = self.span.as_ref().map(excerpt);
        if let (Some(span), Some((text, first_line, range))) = (&self.span, &excerpt) {
            let path = display_path(span.path());
            let mut annotation = AnnotationKind::Primary.span(range.clone());
            if let Some(label) = &self.label {
                annotation = annotation.label(label.as_str());
            }
            group = group.element(
                Snippet::source(text.as_str())
                    .line_start(*first_line)
                    .path(path)
                    .annotation(annotation),
            );
        }
        for note in &self.notes {
            group = group.element(Level::NOTE.message(note.as_str()));
        }
        let mut out = renderer.render(&[group]);
        if !out.ends_with('\n') {
            out.push('\n');
        }
        if let Some(hint) = &self.hint {
            if self.span.is_some() {
                out.push('\n');
            }
            let _ = writeln!(out, "hint: {hint}");
        }
        out
    }
}

/// The lines of a span's file that the span covers, the line number of the
/// first, and the span's range relative to them.
fn excerpt(span: &Span) -> (String, usize, Range<usize>) {
    let text = &span.source.text;
    let start = floor_char_boundary(text, span.range.start.min(text.len()));
    let end = floor_char_boundary(text, span.range.end.clamp(start, text.len()));
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[end..].find('\n').map_or(text.len(), |i| end + i);
    let (first_line, _) = span.source.line_column(line_start);
    let mut snippet = String::new();
    let _ = write!(snippet, "{}", &text[line_start..line_end]);
    (snippet, first_line, start - line_start..end - line_start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters() {
        let file = SourceFile::new("x.yaml", "a: 1\nbé: 2\n");
        assert_eq!(file.line_column(0), (1, 1));
        assert_eq!(file.line_column(8), (2, 3));
        assert_eq!(file.offset_of(2, 3), 8);
    }

    #[test]
    fn renders_location_carets_and_hint() {
        let file = SourceFile::new("x.yaml", "a: 1\nrelases: []\n");
        let rendered = Diagnostic::error("unknown key `relases`")
            .with_span(Some(Span::new(&file, 5..12)))
            .with_hint(Some("did you mean `releases`?".into()))
            .render(false);
        assert_eq!(
            rendered,
            "error: unknown key `relases`\n --> x.yaml:2:1\n  |\n2 | relases: []\n  | ^^^^^^^\n\nhint: did you mean `releases`?\n"
        );
    }
}

//! `stack diff -o markdown`: the plan as a pull-request comment — a
//! headline, the summary table, and per release a collapsible section
//! with its unified diff in a `diff` block; secrets masked as everywhere;
//! under `--max-bytes` by cutting the longest diffs, saying so.

use std::fmt::Write as _;

use stack_core::execute::Planned;
use stack_core::mask::Masker;
use stack_core::plan::diff::text::Style;

/// A release's section: its summary line and its diff.
struct Section {
    summary: String,
    diff: String,
}

/// The comment, at most `max_bytes` long (for any sane limit).
pub fn comment(
    planned: &Planned,
    environment: &str,
    masker: &Masker,
    context: usize,
    max_bytes: usize,
) -> String {
    let style = Style {
        color: false,
        context,
    };
    let changing: Vec<_> = planned
        .plan
        .releases
        .iter()
        .filter(|r| !r.changes.is_empty())
        .collect();
    let (mut creates, mut updates, mut deletes) = (0, 0, 0);
    let mut table = String::from("| release | create | change | delete |\n|---|---:|---:|---:|\n");
    let mut sections = Vec::new();
    for release in &changing {
        let (create, update, delete) = release.counts();
        (creates, updates, deletes) = (creates + create, updates + update, deletes + delete);
        let _ = writeln!(
            table,
            "| `{}` | {create} | {update} | {delete} |",
            release.id
        );
        sections.push(Section {
            summary: format!(
                "<code>{}</code>: {create} to create, {update} to change, {delete} to delete",
                release.id
            ),
            diff: super::diff::changes(release, masker, style, ("", ""), None),
        });
    }
    let drift = changing
        .iter()
        .any(|r| r.changes.iter().any(|c| !c.drift.is_empty()));
    let mut head = if changing.is_empty() {
        format!("### `stack diff` — {environment}: no changes\n")
    } else {
        format!(
            "### `stack diff` — {environment}: {} release{} changing ({creates} to create, {updates} to change, {deletes} to delete){}\n\n{table}",
            changing.len(),
            if changing.len() == 1 { "" } else { "s" },
            if drift {
                "; drift found (changed by hand, restored by apply)"
            } else {
                ""
            },
        )
    };
    if !planned.orphans.is_empty() {
        let _ = writeln!(
            head,
            "\nNot in the stack any more (deleted by `stack apply --prune-releases`): {}",
            planned.orphans.join(", ")
        );
    }
    let overhead = head.len() + sections.len() * 80 + 200;
    let cut = fit(&mut sections, max_bytes.saturating_sub(overhead));
    let mut out = head;
    for section in &sections {
        let _ = write!(
            out,
            "\n<details><summary>{}</summary>\n\n```diff\n{}```\n\n</details>\n",
            section.summary, section.diff
        );
    }
    if cut > 0 {
        let _ = write!(
            out,
            "\n_The longest diffs were shortened ({cut} lines cut) to keep this comment under {max_bytes} bytes; `stack diff` shows them whole._\n"
        );
    }
    out
}

/// Shorten the longest diffs until all of them fit in `budget` bytes,
/// each cut at a line and ending with a line that says so; the lines cut.
fn fit(sections: &mut [Section], budget: usize) -> usize {
    let total: usize = sections.iter().map(|s| s.diff.len()).sum();
    if total <= budget {
        return 0;
    }
    // Each diff may keep up to `share`: the same for every long one, what
    // the short ones leave.
    let mut lengths: Vec<usize> = sections.iter().map(|s| s.diff.len()).collect();
    lengths.sort_unstable();
    let (mut left, mut share) = (budget, 0);
    for (index, length) in lengths.iter().enumerate() {
        let fair = left / (lengths.len() - index);
        if *length > fair {
            share = fair;
            break;
        }
        left -= length;
    }
    let mut cut = 0;
    for section in sections.iter_mut().filter(|s| s.diff.len() > share) {
        let mut kept = String::new();
        let mut lines = section.diff.lines();
        for line in lines.by_ref() {
            if kept.len() + line.len() + 1 > share.saturating_sub(60) {
                cut += 1;
                break;
            }
            kept.push_str(line);
            kept.push('\n');
        }
        let rest = lines.count();
        cut += rest;
        let _ = writeln!(kept, "… {} more lines cut", rest + 1);
        section.diff = kept;
    }
    cut
}

//! `stack graph`: the selection's dependency graph as batches, DOT, Mermaid
//! or JSON.

use std::fmt::Write as _;

use serde_json::json;

use crate::cli::GraphFormat;
use crate::output;
use stack_core::error::Errors;
use stack_core::load::project::Project;

pub fn run(project: &Project, format: GraphFormat) -> Result<u8, Errors> {
    let selection = &project.selection;
    let id = |index: usize| project.releases[index].id.as_str();
    let edges = project.graph.edges_within(&selection.releases);
    let mut out = String::new();
    match format {
        GraphFormat::Text => {
            for (number, batch) in selection.batches.iter().enumerate() {
                let _ = writeln!(out, "batch {number}:");
                for &index in batch {
                    let release = &project.releases[index];
                    let needs: Vec<&str> = project.graph.needs[index]
                        .iter()
                        .filter(|need| selection.releases.contains(need))
                        .map(|&need| id(need))
                        .collect();
                    let _ = write!(out, "  {}", release.id);
                    if !needs.is_empty() {
                        let _ = write!(out, "  <- {}", needs.join(", "));
                    }
                    if !release.installed {
                        out.push_str("  (not installed)");
                    }
                    out.push('\n');
                }
            }
        }
        GraphFormat::Dot => {
            out.push_str("digraph stack {\n  rankdir=LR;\n");
            for &index in &selection.releases {
                let _ = writeln!(out, "  \"{}\";", id(index));
            }
            for (from, to) in &edges {
                let _ = writeln!(out, "  \"{}\" -> \"{}\";", id(*from), id(*to));
            }
            out.push_str("}\n");
        }
        GraphFormat::Mermaid => {
            out.push_str("graph LR\n");
            for &index in &selection.releases {
                let _ = writeln!(out, "  n{index}[\"{}\"]", id(index));
            }
            for (from, to) in &edges {
                let _ = writeln!(out, "  n{from} --> n{to}");
            }
        }
        GraphFormat::Json => {
            let document = json!({
                "nodes": selection.releases.iter().map(|&i| id(i)).collect::<Vec<_>>(),
                "edges": edges.iter().map(|(from, to)| json!({"from": id(*from), "to": id(*to)})).collect::<Vec<_>>(),
                "batches": selection.batches.iter().map(|batch| batch.iter().map(|&i| id(i)).collect::<Vec<_>>()).collect::<Vec<_>>(),
            });
            let _ = writeln!(out, "{document:#}");
        }
    }
    output::stdout(&out);
    Ok(0)
}

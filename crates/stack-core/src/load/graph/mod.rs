//! The dependency graph of releases (petgraph): `needs` resolved to
//! releases, cycles reported as a path, selection and batches (product.md §4).

pub mod selector;

use std::collections::BTreeSet;

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};

pub use selector::{Selector, SelectorError};

use crate::diagnostic::{Diagnostic, Span};
use crate::load::release::{Place, Release};

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("release `{release}` needs `{need}`, which is not a release of this stack")]
    UnknownNeed {
        release: String,
        need: String,
        span: Span,
        suggestion: Option<String>,
    },
    #[error("dependency cycle: {}", cycle.join(" -> "))]
    Cycle { cycle: Vec<String>, span: Span },
    #[error(transparent)]
    Selector(#[from] SelectorError),
    #[error("no release matches the selector {}", selectors.join(" OR "))]
    NoMatch { selectors: Vec<String> },
}

impl GraphError {
    pub fn span(&self) -> Option<&Span> {
        match self {
            Self::UnknownNeed { span, .. } | Self::Cycle { span, .. } => Some(span),
            Self::Selector(_) | Self::NoMatch { .. } => None,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            Self::UnknownNeed { suggestion, .. } => Some(match suggestion {
                Some(id) => format!("did you mean `{id}`?"),
                None => "a need is `[namespace/]name`; a bare name means the release's own namespace".into(),
            }),
            Self::Cycle { .. } => Some("remove one of these `needs` to break the cycle".into()),
            Self::Selector(_) => Some("a term is `key=value` or `key!=value`; join terms with `,` (AND), repeat -l for OR".into()),
            Self::NoMatch { .. } => Some("check with `stack list`, or pass --allow-no-matching-release".into()),
        }
    }
}

/// Releases as nodes, an edge from each need to the release that needs it.
#[derive(Debug)]
pub struct Graph {
    edges: DiGraph<usize, ()>,
    /// `needs[i]`: the releases that release `i` needs, deduplicated.
    pub needs: Vec<Vec<usize>>,
    /// Releases in an order where needs come first (stable in file order).
    pub order: Vec<usize>,
}

/// How `needs` of selected releases that are not selected themselves are
/// treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NeedsMode {
    /// Not run; named in one line of output.
    #[default]
    Skip,
    /// `--include-needs`: the direct needs are added.
    Direct,
    /// `--include-transitive-needs`: all needs, recursively.
    Transitive,
}

/// The selected releases, in graph order, and their batches.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub releases: Vec<usize>,
    /// `batches[k]`: releases whose longest chain of selected needs is `k`.
    pub batches: Vec<Vec<usize>>,
    /// Needs of selected releases that will not run.
    pub skipped_needs: Vec<usize>,
}

impl Graph {
    /// Build the graph; every unknown need and every cycle is reported.
    pub fn build(releases: &[Release]) -> Result<(Self, Vec<Diagnostic>), Vec<GraphError>> {
        let mut graph = DiGraph::new();
        let nodes: Vec<NodeIndex> = (0..releases.len()).map(|i| graph.add_node(i)).collect();
        let mut needs = vec![Vec::new(); releases.len()];
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let mut by_id: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (index, release) in releases.iter().enumerate() {
            by_id.entry(release.id.as_str()).or_insert(index);
        }
        for (index, release) in releases.iter().enumerate() {
            for need in &release.needs {
                let Some(&target) = by_id.get(need.id.as_str()) else {
                    errors.push(GraphError::UnknownNeed {
                        release: release.id.clone(),
                        need: need.id.clone(),
                        span: need.span.clone(),
                        // Never the release itself: it cannot need itself.
                        suggestion: crate::suggest::nearest(
                            &need.id,
                            releases
                                .iter()
                                .map(|r| r.id.as_str())
                                .filter(|id| *id != release.id),
                        )
                        .map(str::to_string),
                    });
                    continue;
                };
                if !releases[target].installed && release.installed {
                    warnings.push(
                        Diagnostic::warning(format!(
                            "release `{}` needs `{}`, which is not installed",
                            release.id, need.id
                        ))
                        .with_span(Some(need.span.clone())),
                    );
                }
                if !needs[index].contains(&target) {
                    needs[index].push(target);
                    graph.add_edge(nodes[target], nodes[index], ());
                }
            }
        }
        errors.extend(cycles(&graph, &needs, releases));
        if !errors.is_empty() {
            return Err(errors);
        }
        let order = stable_order(&needs);
        Ok((
            Self {
                edges: graph,
                needs,
                order,
            },
            warnings,
        ))
    }

    /// Select releases (OR of selectors; none = all) and add needs per `mode`.
    pub fn select(
        &self,
        releases: &[Release],
        selectors: &[Selector],
        mode: NeedsMode,
    ) -> Selection {
        let mut selected: BTreeSet<usize> = releases
            .iter()
            .enumerate()
            .filter(|(_, release)| selector::any_matches(selectors, &release.selector_labels()))
            .map(|(index, _)| index)
            .collect();
        match mode {
            NeedsMode::Skip => {}
            NeedsMode::Direct => {
                let direct: Vec<usize> = selected
                    .iter()
                    .flat_map(|&index| self.needs[index].iter().copied())
                    .collect();
                selected.extend(direct);
            }
            NeedsMode::Transitive => {
                let mut pending: Vec<usize> = selected.iter().copied().collect();
                while let Some(index) = pending.pop() {
                    for &need in &self.needs[index] {
                        if selected.insert(need) {
                            pending.push(need);
                        }
                    }
                }
            }
        }
        // A group deploys no shared release: the environment's own meets
        // the needs on it.
        let shared = |index: &usize| releases[*index].place == Place::Shared;
        selected.retain(|index| !shared(index));
        let skipped_needs: BTreeSet<usize> = selected
            .iter()
            .flat_map(|&index| self.needs[index].iter().copied())
            .filter(|need| !selected.contains(need) && !shared(need))
            .collect();
        let mut batch_of = vec![0usize; releases.len()];
        for &index in &self.order {
            if selected.contains(&index) {
                batch_of[index] = self.needs[index]
                    .iter()
                    .filter(|need| selected.contains(need))
                    .map(|&need| batch_of[need] + 1)
                    .max()
                    .unwrap_or(0);
            }
        }
        let mut batches: Vec<Vec<usize>> = Vec::new();
        for &index in &self.order {
            if selected.contains(&index) {
                let batch = batch_of[index];
                if batches.len() <= batch {
                    batches.resize(batch + 1, Vec::new());
                }
                batches[batch].push(index);
            }
        }
        for batch in &mut batches {
            batch.sort_unstable();
        }
        Selection {
            releases: batches.iter().flatten().copied().collect(),
            batches,
            skipped_needs: skipped_needs.into_iter().collect(),
        }
    }

    /// Each release's place in [`Graph::order`], by release index.
    pub(crate) fn positions(&self) -> std::collections::HashMap<usize, usize> {
        self.order
            .iter()
            .enumerate()
            .map(|(position, &index)| (index, position))
            .collect()
    }

    /// Edges `(need, dependent)` among `members`.
    pub fn edges_within(&self, members: &[usize]) -> Vec<(usize, usize)> {
        let members: std::collections::HashSet<usize> = members.iter().copied().collect();
        self.edges
            .edge_indices()
            .filter_map(|edge| self.edges.edge_endpoints(edge))
            .map(|(from, to)| (self.edges[from], self.edges[to]))
            .filter(|(from, to)| members.contains(from) && members.contains(to))
            .collect()
    }
}

/// Needs first; among releases that are ready at the same time, file order.
fn stable_order(needs: &[Vec<usize>]) -> Vec<usize> {
    let mut placed = vec![false; needs.len()];
    let mut order = Vec::with_capacity(needs.len());
    while order.len() < needs.len() {
        let before = order.len();
        for index in 0..needs.len() {
            if !placed[index] && needs[index].iter().all(|&need| placed[need]) {
                placed[index] = true;
                order.push(index);
            }
        }
        if order.len() == before {
            break; // a cycle; reported by `cycles`
        }
    }
    order
}

/// One error per strongly connected component that forms a cycle, with a
/// concrete path through it.
fn cycles(
    graph: &DiGraph<usize, ()>,
    needs: &[Vec<usize>],
    releases: &[Release],
) -> Vec<GraphError> {
    if toposort(graph, None).is_ok() {
        return Vec::new();
    }
    let mut errors = Vec::new();
    for component in tarjan_scc(graph) {
        let members: Vec<usize> = component.iter().map(|&node| graph[node]).collect();
        let is_cycle = members.len() > 1 || needs[members[0]].contains(&members[0]);
        if !is_cycle {
            continue;
        }
        let start = *members.iter().min().unwrap_or(&members[0]);
        let path = cycle_path(start, needs, &members);
        let mut cycle: Vec<String> = path.iter().map(|&i| releases[i].id.clone()).collect();
        cycle.push(releases[start].id.clone());
        let span = releases[start]
            .needs
            .iter()
            .find(|need| {
                path.get(1)
                    .is_some_and(|&next| releases[next].id == need.id)
                    || need.id == releases[start].id
            })
            .map_or_else(|| releases[start].span.clone(), |need| need.span.clone());
        errors.push(GraphError::Cycle { cycle, span });
    }
    errors
}

/// A path `start -> … -> start` following `needs` inside `members`.
fn cycle_path(start: usize, needs: &[Vec<usize>], members: &[usize]) -> Vec<usize> {
    let mut path = vec![start];
    let mut visited = vec![start];
    while let Some(&current) = path.last() {
        if needs[current].contains(&start) && (current != start || path.len() == 1) {
            return path;
        }
        let next = needs[current]
            .iter()
            .copied()
            .find(|n| members.contains(n) && !visited.contains(n));
        match next {
            Some(next) => {
                visited.push(next);
                path.push(next);
            }
            None => {
                path.pop();
            }
        }
    }
    vec![start]
}

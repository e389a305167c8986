//! The releases of a run in dependency order: which may start now, and
//! which become ready as others finish. A finished release counts down the
//! unmet needs of those waiting for it; nothing scans the graph per
//! release. `apply` runs the graph forwards, `destroy` backwards (a release
//! goes once everything that needs it is gone).

use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Default)]
pub struct Countdown {
    /// Members by their place in the run's order: ready ones start in it.
    rank: HashMap<usize, usize>,
    /// How many members each member still waits for.
    unmet: HashMap<usize, usize>,
    /// The members waiting for each member.
    waiting: HashMap<usize, Vec<usize>>,
    ready: BTreeSet<(usize, usize)>,
    started: BTreeSet<usize>,
}

impl Countdown {
    /// `order`: the members, in the order ready ones start;
    /// `waits_for(member)`: what it waits for (non-members are ignored).
    pub fn new<I>(order: &[usize], waits_for: impl Fn(usize) -> I) -> Self
    where
        I: IntoIterator<Item = usize>,
    {
        let rank: HashMap<usize, usize> = order.iter().enumerate().map(|(r, &i)| (i, r)).collect();
        let mut countdown = Self {
            rank,
            ..Self::default()
        };
        for &member in order {
            for awaited in waits_for(member) {
                if countdown.rank.contains_key(&awaited) && awaited != member {
                    *countdown.unmet.entry(member).or_default() += 1;
                    countdown.waiting.entry(awaited).or_default().push(member);
                }
            }
        }
        countdown.ready = order
            .iter()
            .filter(|member| !countdown.unmet.contains_key(member))
            .map(|&member| (countdown.rank[&member], member))
            .collect();
        countdown
    }

    /// The next member that may start, now marked started.
    pub fn start(&mut self) -> Option<usize> {
        let (_, member) = self.ready.pop_first()?;
        self.started.insert(member);
        Some(member)
    }

    /// `member` succeeded: those waiting only for it become ready.
    pub fn done(&mut self, member: usize) {
        for &waiting in self.waiting.get(&member).into_iter().flatten() {
            let count = self.unmet.entry(waiting).or_default();
            *count = count.saturating_sub(1);
            if *count == 0 && !self.started.contains(&waiting) {
                self.ready.insert((self.rank[&waiting], waiting));
            }
        }
    }

    /// `member` failed: every member waiting for it, directly or through
    /// others, that has not started — each with the member it waited for —
    /// in order; none of them will start.
    pub(crate) fn blocked_by(&mut self, member: usize) -> Vec<(usize, usize)> {
        let mut blocked = Vec::new();
        let mut failed = vec![member];
        while let Some(awaited) = failed.pop() {
            let mut waiting: Vec<usize> = self
                .waiting
                .get(&awaited)
                .into_iter()
                .flatten()
                .copied()
                .filter(|w| !self.started.contains(w))
                .collect();
            waiting.sort_by_key(|w| self.rank[w]);
            for member in waiting {
                self.started.insert(member);
                blocked.push((member, awaited));
                failed.push(member);
            }
        }
        blocked
    }

    /// Every member not started yet, in order; none of them will start.
    pub fn remaining(&mut self) -> Vec<usize> {
        self.ready.clear();
        let mut left: Vec<usize> = self
            .rank
            .keys()
            .copied()
            .filter(|m| !self.started.contains(m))
            .collect();
        left.sort_by_key(|m| self.rank[m]);
        self.started.extend(left.iter().copied());
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 0 ← 1 ← 2, and 3 on its own; 1 also waits for 3.
    fn chain() -> Countdown {
        let needs: HashMap<usize, Vec<usize>> = [(1, vec![0, 3]), (2, vec![1])].into();
        Countdown::new(&[0, 1, 2, 3], |m| {
            needs.get(&m).cloned().unwrap_or_default()
        })
    }

    #[test]
    fn a_member_starts_once_everything_it_waits_for_is_done() {
        let mut countdown = chain();
        assert_eq!(
            (countdown.start(), countdown.start(), countdown.start()),
            (Some(0), Some(3), None)
        );
        countdown.done(0);
        assert_eq!(countdown.start(), None);
        countdown.done(3);
        assert_eq!(countdown.start(), Some(1));
        countdown.done(1);
        assert_eq!((countdown.start(), countdown.start()), (Some(2), None));
    }

    #[test]
    fn a_failure_blocks_everything_waiting_for_it_and_names_what_each_waited_for() {
        let mut countdown = chain();
        assert_eq!(countdown.start(), Some(0));
        assert_eq!(countdown.blocked_by(0), [(1, 0), (2, 1)]);
        assert_eq!(countdown.start(), Some(3));
        countdown.done(3);
        assert_eq!(countdown.start(), None);
        assert!(countdown.remaining().is_empty());
    }

    #[test]
    fn remaining_lists_what_has_not_started_in_order() {
        let mut countdown = chain();
        assert_eq!(countdown.start(), Some(0));
        assert_eq!(countdown.remaining(), [1, 2, 3]);
        assert_eq!(countdown.start(), None);
    }
}

//! A generic directed acyclic graph over node indices: cycle reports, topological
//! order, and the ready-queue that apply walks with bounded concurrency.
//!
//! Edges point from a node to the nodes it depends on. Must not import other crate modules.

use std::collections::{BTreeSet, VecDeque};

/// A dependency graph over nodes `0..len`.
#[derive(Debug, Clone, Default)]
pub struct Dag {
    deps: Vec<BTreeSet<usize>>,
    rdeps: Vec<BTreeSet<usize>>,
}

impl Dag {
    /// An empty graph with `n` nodes.
    pub fn new(n: usize) -> Self {
        Dag {
            deps: vec![BTreeSet::new(); n],
            rdeps: vec![BTreeSet::new(); n],
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.deps.len()
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.deps.is_empty()
    }

    /// Records that `node` depends on `dependency`.
    pub fn add_edge(&mut self, node: usize, dependency: usize) {
        self.deps[node].insert(dependency);
        self.rdeps[dependency].insert(node);
    }

    /// Nodes that `node` depends on.
    pub fn dependencies(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        self.deps[node].iter().copied()
    }

    /// Nodes that depend on `node`.
    pub fn dependents(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        self.rdeps[node].iter().copied()
    }

    /// The same graph with every edge reversed (the order for destroy).
    pub fn reversed(&self) -> Dag {
        Dag {
            deps: self.rdeps.clone(),
            rdeps: self.deps.clone(),
        }
    }

    /// A topological order (dependencies first, ties by index), or one cycle as a node path
    /// whose last element depends on the first.
    pub fn topo_order(&self) -> Result<Vec<usize>, Vec<usize>> {
        let mut q = ReadyQueue::new(self);
        let mut order = Vec::with_capacity(self.len());
        while let Some(n) = q.pop() {
            order.push(n);
            q.finish(n);
        }
        if order.len() == self.len() {
            Ok(order)
        } else {
            Err(self.find_cycle().unwrap_or_default())
        }
    }

    /// One cycle, if the graph has any.
    pub fn find_cycle(&self) -> Option<Vec<usize>> {
        // 0 = unvisited, 1 = on stack, 2 = done
        let mut color = vec![0u8; self.len()];
        for start in 0..self.len() {
            if color[start] != 0 {
                continue;
            }
            let mut stack: Vec<(usize, Vec<usize>)> =
                vec![(start, self.deps[start].iter().copied().collect())];
            color[start] = 1;
            while let Some((node, children)) = stack.last_mut() {
                let node = *node;
                match children.pop() {
                    Some(c) if color[c] == 1 => {
                        let pos = stack.iter().position(|(n, _)| *n == c).unwrap_or(0);
                        return Some(stack[pos..].iter().map(|(n, _)| *n).collect());
                    }
                    Some(c) if color[c] == 0 => {
                        color[c] = 1;
                        stack.push((c, self.deps[c].iter().copied().collect()));
                    }
                    Some(_) => {}
                    None => {
                        color[node] = 2;
                        stack.pop();
                    }
                }
            }
        }
        None
    }
}

/// Hands out nodes whose dependencies have all finished; dependents of a failed node are
/// skipped.
#[derive(Debug)]
pub struct ReadyQueue<'a> {
    dag: &'a Dag,
    waiting_on: Vec<usize>,
    ready: VecDeque<usize>,
    skipped: Vec<bool>,
}

impl<'a> ReadyQueue<'a> {
    /// A queue over every node of `dag`.
    pub fn new(dag: &'a Dag) -> Self {
        let waiting_on: Vec<usize> = dag.deps.iter().map(|d| d.len()).collect();
        let ready = (0..dag.len()).filter(|&i| waiting_on[i] == 0).collect();
        ReadyQueue {
            dag,
            waiting_on,
            ready,
            skipped: vec![false; dag.len()],
        }
    }

    /// The next ready node.
    pub fn pop(&mut self) -> Option<usize> {
        self.ready.pop_front()
    }

    /// Marks `node` done and queues the dependents that became ready.
    pub fn finish(&mut self, node: usize) {
        for d in self.dag.dependents(node) {
            self.waiting_on[d] -= 1;
            if self.waiting_on[d] == 0 && !self.skipped[d] {
                self.ready.push_back(d);
            }
        }
    }

    /// Marks `node` failed; returns every transitive dependent, which will never be ready.
    pub fn fail(&mut self, node: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack: Vec<usize> = self.dag.dependents(node).collect();
        while let Some(n) = stack.pop() {
            if !self.skipped[n] {
                self.skipped[n] = true;
                out.push(n);
                stack.extend(self.dag.dependents(n));
            }
        }
        self.ready.retain(|n| !self.skipped[*n]);
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topo_puts_dependencies_first() {
        let mut g = Dag::new(4);
        g.add_edge(0, 1);
        g.add_edge(1, 2);
        g.add_edge(3, 2);
        let order = g.topo_order().unwrap();
        let pos = |n| order.iter().position(|&x| x == n).unwrap();
        assert!(pos(2) < pos(1) && pos(1) < pos(0) && pos(2) < pos(3));
        let rev = g.reversed().topo_order().unwrap();
        assert_eq!(rev[0], 0, "destroy starts at the node nobody depends on");
    }

    #[test]
    fn cycle_is_reported() {
        let mut g = Dag::new(3);
        g.add_edge(0, 1);
        g.add_edge(1, 2);
        g.add_edge(2, 0);
        let mut c = g.topo_order().unwrap_err();
        c.sort();
        assert_eq!(c, vec![0, 1, 2]);
    }

    #[test]
    fn failure_skips_only_dependents() {
        let mut g = Dag::new(4);
        g.add_edge(1, 0);
        g.add_edge(2, 1);
        let mut q = ReadyQueue::new(&g);
        assert_eq!(q.pop(), Some(0));
        assert_eq!(q.pop(), Some(3));
        assert_eq!(q.fail(0), vec![1, 2]);
        assert_eq!(q.pop(), None);
    }
}

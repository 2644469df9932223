//! The task graph of one DAG version: tasks indexed by position, upstream/downstream
//! adjacency, a stable topological order and cycle finding. Built once per version and
//! shared by validation, reconcile and the API.

use std::collections::{BTreeSet, HashMap, VecDeque};

use leoflow_ports::dag::{DagSpec, TaskSpec};

/// Index of a task in `DagSpec::tasks`.
pub type TaskIdx = usize;

/// Adjacency of a DAG's tasks. Unknown upstream ids are left out (validation reports them).
#[derive(Debug, Clone)]
pub struct TaskGraph {
    index: HashMap<String, TaskIdx>,
    upstream: Vec<Vec<TaskIdx>>,
    downstream: Vec<Vec<TaskIdx>>,
}

impl TaskGraph {
    pub fn new(spec: &DagSpec) -> TaskGraph {
        let mut index = HashMap::with_capacity(spec.tasks.len());
        for (i, t) in spec.tasks.iter().enumerate() {
            index.entry(t.task_id.clone()).or_insert(i);
        }
        let mut upstream = vec![Vec::new(); spec.tasks.len()];
        let mut downstream = vec![Vec::new(); spec.tasks.len()];
        for (i, t) in spec.tasks.iter().enumerate() {
            let mut seen = BTreeSet::new();
            for up in &t.depends_on {
                if let Some(&u) = index.get(up) {
                    if seen.insert(u) {
                        upstream[i].push(u);
                        downstream[u].push(i);
                    }
                }
            }
        }
        TaskGraph {
            index,
            upstream,
            downstream,
        }
    }

    pub fn len(&self) -> usize {
        self.upstream.len()
    }

    pub fn is_empty(&self) -> bool {
        self.upstream.is_empty()
    }

    pub fn idx(&self, task_id: &str) -> Option<TaskIdx> {
        self.index.get(task_id).copied()
    }

    pub fn upstream(&self, i: TaskIdx) -> &[TaskIdx] {
        &self.upstream[i]
    }

    pub fn downstream(&self, i: TaskIdx) -> &[TaskIdx] {
        &self.downstream[i]
    }

    /// Every task reachable downstream of `i` (not `i` itself), in breadth-first order.
    pub fn descendants(&self, i: TaskIdx) -> Vec<TaskIdx> {
        self.reach(i, &self.downstream)
    }

    /// Every task reachable upstream of `i` (not `i` itself), in breadth-first order.
    pub fn ancestors(&self, i: TaskIdx) -> Vec<TaskIdx> {
        self.reach(i, &self.upstream)
    }

    fn reach(&self, start: TaskIdx, edges: &[Vec<TaskIdx>]) -> Vec<TaskIdx> {
        let mut seen = vec![false; self.len()];
        seen[start] = true;
        let mut queue = VecDeque::from([start]);
        let mut out = Vec::new();
        while let Some(n) = queue.pop_front() {
            for &m in &edges[n] {
                if !seen[m] {
                    seen[m] = true;
                    out.push(m);
                    queue.push_back(m);
                }
            }
        }
        out
    }

    /// Kahn's algorithm, always taking the ready task that comes first in `tasks`, so the
    /// order is stable. `Err` holds one cycle (as task indexes, first repeated at the end).
    pub fn topological_order(&self) -> Result<Vec<TaskIdx>, Vec<TaskIdx>> {
        let mut indegree: Vec<usize> = self.upstream.iter().map(Vec::len).collect();
        let mut ready: BTreeSet<TaskIdx> = (0..self.len()).filter(|&i| indegree[i] == 0).collect();
        let mut order = Vec::with_capacity(self.len());
        while let Some(n) = ready.pop_first() {
            order.push(n);
            for &m in &self.downstream[n] {
                indegree[m] -= 1;
                if indegree[m] == 0 {
                    ready.insert(m);
                }
            }
        }
        if order.len() == self.len() {
            Ok(order)
        } else {
            Err(self.find_cycle(&indegree))
        }
    }

    /// A cycle among the tasks Kahn's algorithm could not order (indegree still > 0).
    fn find_cycle(&self, indegree: &[usize]) -> Vec<TaskIdx> {
        let stuck = |i: TaskIdx| indegree[i] > 0;
        let Some(start) = (0..self.len()).find(|&i| stuck(i)) else {
            return Vec::new();
        };
        // Every stuck task has a stuck upstream, so walking upstream must revisit a task.
        let mut pos = vec![usize::MAX; self.len()];
        let mut path = Vec::new();
        let mut n = start;
        while pos[n] == usize::MAX {
            pos[n] = path.len();
            path.push(n);
            n = self.upstream[n]
                .iter()
                .copied()
                .find(|&u| stuck(u))
                .unwrap_or(n);
        }
        let mut cycle: Vec<TaskIdx> = path[pos[n]..].to_vec();
        cycle.reverse();
        cycle.push(cycle[0]);
        cycle
    }
}

/// Task ids of `idxs`, for messages.
pub fn names<'a>(spec: &'a DagSpec, idxs: &[TaskIdx]) -> Vec<&'a str> {
    idxs.iter()
        .map(|&i| spec.tasks[i].task_id.as_str())
        .collect()
}

/// The task at `i`.
pub fn task(spec: &DagSpec, i: TaskIdx) -> &TaskSpec {
    &spec.tasks[i]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::dag;

    #[test]
    fn topological_order_is_stable_and_respects_edges() {
        let spec = dag(&[("c", &["a", "b"]), ("a", &[]), ("b", &["a"])]);
        let g = TaskGraph::new(&spec);
        let order = g.topological_order().unwrap();
        assert_eq!(names(&spec, &order), ["a", "b", "c"]);
    }

    #[test]
    fn a_cycle_is_reported_as_a_closed_path() {
        let spec = dag(&[("a", &["c"]), ("b", &["a"]), ("c", &["b"]), ("d", &[])]);
        let cycle = TaskGraph::new(&spec).topological_order().unwrap_err();
        let names = names(&spec, &cycle);
        assert_eq!(names.first(), names.last());
        assert_eq!(names.len(), 4, "{names:?}");
        for w in names.windows(2) {
            let down = spec.task(w[1]).unwrap();
            assert!(down.depends_on.iter().any(|u| u == w[0]), "{names:?}");
        }
    }

    #[test]
    fn descendants_and_ancestors_follow_edges() {
        let spec = dag(&[("a", &[]), ("b", &["a"]), ("c", &["b"]), ("d", &[])]);
        let g = TaskGraph::new(&spec);
        assert_eq!(names(&spec, &g.descendants(0)), ["b", "c"]);
        assert_eq!(names(&spec, &g.ancestors(2)), ["b", "a"]);
        assert!(g.descendants(3).is_empty());
    }
}

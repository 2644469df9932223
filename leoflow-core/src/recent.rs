//! A bounded memory of the attempts this engine recorded as ended. The executor reports
//! an attempt's process exit after the agent reported its outcome; an attempt remembered
//! here is certainly no longer current (try numbers only grow), so that late event needs no
//! datastore read to be recognised.

use std::collections::{HashSet, VecDeque};

use leoflow_ports::run::AttemptId;

/// Attempts remembered at most; the oldest is forgotten first. An attempt forgotten is
/// only checked against the datastore, as without this memory.
const CAPACITY: usize = 4096;

#[derive(Default)]
pub(crate) struct RecentlyEnded {
    set: HashSet<AttemptId>,
    order: VecDeque<AttemptId>,
}

impl RecentlyEnded {
    pub fn insert(&mut self, attempt: AttemptId) {
        if !self.set.insert(attempt.clone()) {
            return;
        }
        self.order.push_back(attempt);
        if self.order.len() > CAPACITY {
            if let Some(oldest) = self.order.pop_front() {
                self.set.remove(&oldest);
            }
        }
    }

    pub fn contains(&self, attempt: &AttemptId) -> bool {
        self.set.contains(attempt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leoflow_ports::run::TaskKey;

    fn attempt(n: u32) -> AttemptId {
        AttemptId {
            task: TaskKey {
                dag_id: "d".into(),
                run_id: "r".into(),
                task_id: format!("t{n}"),
                map_index: -1,
            },
            try_number: 1,
        }
    }

    #[test]
    fn remembers_up_to_its_capacity_and_forgets_the_oldest_first() {
        let mut recent = RecentlyEnded::default();
        let total = u32::try_from(CAPACITY).unwrap() + 1;
        for n in 0..total {
            recent.insert(attempt(n));
        }
        recent.insert(attempt(total - 1));
        assert!(!recent.contains(&attempt(0)));
        assert!(recent.contains(&attempt(1)));
        assert!(recent.contains(&attempt(total - 1)));
        assert_eq!(recent.order.len(), CAPACITY);
        assert_eq!(recent.set.len(), CAPACITY);
    }
}

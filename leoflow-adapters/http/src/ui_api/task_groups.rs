//! The task-group tree of a DAG version, which the grid and the graph both draw: tasks in
//! topological order, each inside the nested groups its `task_group` (`outer.inner`)
//! names, a group placed where its first task falls.

use leoflow_ports::dag::{DagSpec, TaskSpec};

/// A task or a group in the tree.
#[derive(Debug, PartialEq, Eq)]
pub struct Node {
    /// The task id, or the group's full id.
    pub id: String,
    /// What the UI shows: the id without its group prefix.
    pub label: String,
    /// The task's index in the spec; `None` for a group.
    pub task: Option<usize>,
    pub children: Vec<Node>,
}

impl Node {
    /// The indices of the tasks in this subtree.
    pub fn tasks(&self) -> Vec<usize> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect(&self, out: &mut Vec<usize>) {
        out.extend(self.task);
        for c in &self.children {
            c.collect(out);
        }
    }
}

fn label(id: &str, group: Option<&str>) -> String {
    group
        .and_then(|g| id.strip_prefix(g))
        .and_then(|rest| rest.strip_prefix('.'))
        .filter(|rest| !rest.is_empty())
        .unwrap_or(id)
        .to_string()
}

/// The tree of the tasks `order` lists (indices into `spec.tasks`, topologically sorted).
pub fn tree(spec: &DagSpec, order: &[usize]) -> Vec<Node> {
    let mut roots: Vec<Node> = Vec::new();
    for &i in order {
        let task: &TaskSpec = &spec.tasks[i];
        let mut level = &mut roots;
        let mut parent: Option<String> = None;
        if let Some(group) = task.task_group.as_deref().filter(|g| !g.is_empty()) {
            let mut path = String::new();
            for part in group.split('.') {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(part);
                let found = level.iter().position(|n| n.task.is_none() && n.id == path);
                let pos = found.unwrap_or_else(|| {
                    level.push(Node {
                        id: path.clone(),
                        label: label(&path, parent.as_deref()),
                        task: None,
                        children: Vec::new(),
                    });
                    level.len() - 1
                });
                level = &mut level[pos].children;
                parent = Some(path.clone());
            }
        }
        level.push(Node {
            id: task.task_id.clone(),
            label: label(&task.task_id, parent.as_deref()),
            task: Some(i),
            children: Vec::new(),
        });
    }
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(tasks: &[(&str, Option<&str>)]) -> DagSpec {
        let tasks: Vec<serde_json::Value> = tasks
            .iter()
            .map(|(id, g)| serde_json::json!({"task_id": id, "type": "empty", "task_group": g}))
            .collect();
        DagSpec::from_json(
            serde_json::json!({"schema_version": "1.0", "dag_id": "d", "dag_version": "v1",
                "image": "", "tasks": tasks})
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    }

    fn show(nodes: &[Node]) -> String {
        nodes
            .iter()
            .map(|n| {
                if n.task.is_some() {
                    n.label.clone()
                } else {
                    format!("{}[{}]", n.label, show(&n.children))
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn tasks_nest_in_their_groups_in_order() {
        let s = spec(&[
            ("start", None),
            ("etl.extract", Some("etl")),
            ("etl.clean.a", Some("etl.clean")),
            ("etl.load", Some("etl")),
            ("end", None),
        ]);
        let t = tree(&s, &[0, 1, 2, 3, 4]);
        assert_eq!(show(&t), "start etl[extract clean[a] load] end");
        assert_eq!(t[1].tasks(), [1, 2, 3]);
        assert_eq!(t[1].children[1].id, "etl.clean");
    }

    #[test]
    fn a_task_id_without_its_group_prefix_keeps_its_id() {
        let s = spec(&[("load", Some("etl"))]);
        assert_eq!(show(&tree(&s, &[0])), "etl[load]");
    }
}

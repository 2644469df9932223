//! `ExecutorRouter`: one `Executor` in front of several, choosing per task by its execution
//! mode: `inline` tasks (http_api calls the control plane makes itself) go to the inline
//! executor, everything else to the isolating one (subprocess on Lite, pods on Pro). Events
//! of both are merged into each subscription, so the engine sees a single executor.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use leoflow_ports::dag::ExecutionMode;
use leoflow_ports::executor::{Attempt, Capabilities, Error, EventStream, Executor};
use leoflow_ports::run::AttemptId;

/// Routes attempts by execution mode. Without an inline executor, every attempt goes to
/// the isolating one (which rejects kinds it cannot run).
#[derive(Clone)]
pub struct ExecutorRouter {
    isolated: Arc<dyn Executor>,
    inline: Option<Arc<dyn Executor>>,
}

impl ExecutorRouter {
    pub fn new(isolated: Arc<dyn Executor>) -> ExecutorRouter {
        ExecutorRouter {
            isolated,
            inline: None,
        }
    }

    /// Sends `inline` tasks to `executor`.
    #[must_use]
    pub fn with_inline(mut self, executor: Arc<dyn Executor>) -> ExecutorRouter {
        self.inline = Some(executor);
        self
    }

    fn for_attempt(&self, attempt: &Attempt) -> &Arc<dyn Executor> {
        match (&self.inline, attempt.task().effective_mode()) {
            (Some(inline), ExecutionMode::Inline) => inline,
            _ => &self.isolated,
        }
    }

    fn all(&self) -> impl Iterator<Item = &Arc<dyn Executor>> {
        std::iter::once(&self.isolated).chain(self.inline.iter())
    }
}

#[async_trait]
impl Executor for ExecutorRouter {
    fn name(&self) -> &str {
        self.isolated.name()
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = self.isolated.capabilities();
        for extra in self.inline.iter().map(|e| e.capabilities()) {
            for kind in extra.kinds {
                if !caps.kinds.contains(&kind) {
                    caps.kinds.push(kind);
                }
            }
        }
        caps
    }

    async fn launch(&self, attempt: Attempt) -> Result<(), Error> {
        self.for_attempt(&attempt).launch(attempt).await
    }

    async fn cancel(&self, attempt: &AttemptId) -> Result<(), Error> {
        // Cancelling an attempt an executor does not know is a no-op by contract.
        for executor in self.all() {
            executor.cancel(attempt).await?;
        }
        Ok(())
    }

    fn subscribe(&self) -> EventStream {
        futures::stream::select_all(self.all().map(|e| e.subscribe())).boxed()
    }

    async fn live(&self) -> Result<Vec<AttemptId>, Error> {
        let mut ids = Vec::new();
        for executor in self.all() {
            ids.extend(executor.live().await?);
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures::StreamExt;
    use leoflow_ports::dag::{DagSpec, ExecutionMode, TaskKind};
    use leoflow_ports::executor::{Attempt, Event, Executor};
    use leoflow_ports::run::{AttemptId, RunType, TaskKey};
    use leoflow_ports::testkit::fake_executor::FakeExecutor;

    use super::ExecutorRouter;

    fn attempt(dag: &Arc<DagSpec>, task: &str) -> Attempt {
        Attempt {
            id: AttemptId {
                task: TaskKey {
                    dag_id: dag.dag_id.clone(),
                    run_id: "r".into(),
                    task_id: task.into(),
                    map_index: -1,
                },
                try_number: 1,
            },
            dag: dag.clone(),
            version_number: 1,
            run_type: RunType::Manual,
            timeout: None,
        }
    }

    fn dag() -> Arc<DagSpec> {
        let spec: DagSpec = serde_json::from_value(serde_json::json!({
            "schema_version": "1.0",
            "dag_id": "d",
            "dag_version": "v1",
            "image": "",
            "tasks": [
                {"task_id": "call", "type": "http_api",
                 "http_request": {"method": "GET", "url": "http://127.0.0.1:1/"}},
                {"task_id": "call_in_pod", "type": "http_api", "execution_mode": "pod",
                 "http_request": {"method": "GET", "url": "http://127.0.0.1:1/"}},
                {"task_id": "work", "type": "bash", "entrypoint": "true"}
            ]
        }))
        .expect("a valid spec");
        assert_eq!(spec.tasks[0].kind, TaskKind::HttpApi);
        assert_eq!(spec.tasks[1].effective_mode(), ExecutionMode::Pod);
        Arc::new(spec)
    }

    #[tokio::test]
    async fn inline_tasks_go_to_the_inline_executor_and_the_rest_to_the_isolated_one() {
        let isolated = FakeExecutor::new();
        let inline = FakeExecutor::new();
        let router =
            ExecutorRouter::new(Arc::new(isolated.clone())).with_inline(Arc::new(inline.clone()));
        let mut events = router.subscribe();
        let dag = dag();
        for task in ["call", "call_in_pod", "work"] {
            router.launch(attempt(&dag, task)).await.expect("launch");
        }
        let launched = |e: &FakeExecutor| -> Vec<String> {
            e.launches().into_iter().map(|a| a.task.task_id).collect()
        };
        assert_eq!(launched(&inline), vec!["call"]);
        assert_eq!(launched(&isolated), vec!["call_in_pod", "work"]);
        // Both executors' events arrive on the one subscription.
        let mut finished = Vec::new();
        while finished.len() < 3 {
            match events.next().await {
                Some(Event::Finished { attempt, .. }) => finished.push(attempt.task.task_id),
                Some(_) => {}
                None => panic!("the merged stream ended early"),
            }
        }
        finished.sort();
        assert_eq!(finished, vec!["call", "call_in_pod", "work"]);
    }

    #[tokio::test]
    async fn without_an_inline_executor_everything_goes_to_the_isolated_one() {
        let isolated = FakeExecutor::new();
        let router = ExecutorRouter::new(Arc::new(isolated.clone()));
        let dag = dag();
        router.launch(attempt(&dag, "call")).await.expect("launch");
        assert_eq!(isolated.launches().len(), 1);
    }
}

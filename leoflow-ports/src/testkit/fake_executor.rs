//! `FakeExecutor`: a scriptable in-process [`Executor`] for engine tests and throughput
//! benchmarks. Each task (or each try of a task) is told how its attempt ends; events are
//! emitted synchronously during `launch`, and every call is recorded for assertions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::dag::TaskKind;
use crate::executor::{Attempt, Capabilities, Error, Event, EventStream, Executor, Outcome};
use crate::run::AttemptId;

/// How a launched attempt ends.
#[derive(Debug, Clone, PartialEq)]
pub enum Behavior {
    /// `Finished` with a success outcome and this return value.
    Succeed(Option<Value>),
    /// `Finished` with a retryable failure.
    Fail {
        message: String,
        exit_code: Option<i32>,
    },
    /// `Finished` with a failure that must not be retried (`AirflowFailException`).
    FailPermanently(String),
    /// `Finished` with a skipped outcome.
    Skip,
    /// Only `Started`: the attempt stays live until cancelled or [`FakeExecutor::finish`]ed.
    Hang,
    /// `Exited` with this code and no `Finished`, as a process that died before reporting.
    Exit(i32),
    /// `Lost` with this reason.
    Lose(String),
}

/// A scriptable fake executor. Cheap to clone; clones share scripts, subscribers and
/// records.
///
/// By default every attempt succeeds at once with no return value, which makes it the
/// no-op executor of the throughput benchmarks: `launch` is O(1) and allocates little.
#[derive(Clone, Default)]
pub struct FakeExecutor {
    inner: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    default: Behavior,
    /// Per task, for every try.
    by_task: HashMap<String, Behavior>,
    /// Per task and try; wins over `by_task`.
    by_try: HashMap<String, HashMap<u32, Behavior>>,
    subscribers: Vec<mpsc::UnboundedSender<Event>>,
    launch_calls: usize,
    /// Unique attempts in launch order.
    launches: Vec<AttemptId>,
    /// How many times each attempt was started. Launch is idempotent, so a value above 1
    /// is a bug in the fake, and the accessor exists so tests can say so.
    started: HashMap<AttemptId, u32>,
    /// Hung attempts not yet cancelled or finished, in launch order.
    live: Vec<AttemptId>,
    cancels: Vec<AttemptId>,
    next_ref: u64,
}

impl Default for Behavior {
    fn default() -> Behavior {
        Behavior::Succeed(None)
    }
}

impl State {
    fn behavior_for(&self, id: &AttemptId) -> Behavior {
        let task_id = id.task.task_id.as_str();
        if let Some(b) = self
            .by_try
            .get(task_id)
            .and_then(|tries| tries.get(&id.try_number))
        {
            return b.clone();
        }
        self.by_task.get(task_id).unwrap_or(&self.default).clone()
    }

    /// Sends to every subscriber, forgetting the ones whose stream was dropped.
    fn emit(&mut self, event: &Event) {
        self.subscribers.retain(|tx| tx.send(event.clone()).is_ok());
    }
}

impl FakeExecutor {
    /// An executor on which every attempt succeeds immediately with no return value.
    pub fn new() -> FakeExecutor {
        FakeExecutor::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not turn every later assertion into a poison error.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How attempts of unscripted tasks end.
    pub fn set_default(&self, behavior: Behavior) {
        self.state().default = behavior;
    }

    /// How every try of `task_id` ends (unless a try is scripted with [`Self::script_try`]).
    pub fn script(&self, task_id: &str, behavior: Behavior) {
        self.state().by_task.insert(task_id.to_string(), behavior);
    }

    /// How try `try_number` of `task_id` ends; wins over [`Self::script`].
    pub fn script_try(&self, task_id: &str, try_number: u32, behavior: Behavior) {
        self.state()
            .by_try
            .entry(task_id.to_string())
            .or_default()
            .insert(try_number, behavior);
    }

    /// How many times `launch` was called, duplicates included.
    pub fn launch_calls(&self) -> usize {
        self.state().launch_calls
    }

    /// Every distinct attempt launched, in launch order.
    pub fn launches(&self) -> Vec<AttemptId> {
        self.state().launches.clone()
    }

    /// How many times `attempt` was actually started (0 or 1 for a correct executor).
    pub fn launch_count(&self, attempt: &AttemptId) -> u32 {
        self.state().started.get(attempt).copied().unwrap_or(0)
    }

    /// Hung attempts that were cancelled, in cancel order.
    pub fn cancels(&self) -> Vec<AttemptId> {
        self.state().cancels.clone()
    }

    /// Ends a hung attempt now as `behavior` says (`Hang` leaves it running). Returns false
    /// when the attempt is not live. Lets a test decide when a long task finishes.
    pub fn finish(&self, attempt: &AttemptId, behavior: Behavior) -> bool {
        let mut state = self.state();
        let Some(pos) = state.live.iter().position(|a| a == attempt) else {
            return false;
        };
        if let Some(event) = terminal_event(attempt, behavior) {
            state.live.remove(pos);
            state.emit(&event);
        }
        true
    }
}

/// The event that ends an attempt, or `None` when it hangs.
fn terminal_event(attempt: &AttemptId, behavior: Behavior) -> Option<Event> {
    let attempt = attempt.clone();
    let finished = |outcome| Event::Finished {
        attempt: attempt.clone(),
        outcome,
    };
    Some(match behavior {
        Behavior::Succeed(return_value) => finished(Outcome::Success { return_value }),
        Behavior::Fail { message, exit_code } => finished(Outcome::Failed {
            message,
            exit_code,
            retryable: true,
        }),
        Behavior::FailPermanently(message) => finished(Outcome::Failed {
            message,
            exit_code: None,
            retryable: false,
        }),
        Behavior::Skip => finished(Outcome::Skipped { message: None }),
        Behavior::Hang => return None,
        Behavior::Exit(code) => Event::Exited {
            attempt,
            exit_code: Some(code),
            message: None,
        },
        Behavior::Lose(reason) => Event::Lost { attempt, reason },
    })
}

#[async_trait]
impl Executor for FakeExecutor {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            kinds: vec![TaskKind::Python, TaskKind::Bash, TaskKind::HttpApi],
            isolated: false,
            reattaches: true,
        }
    }

    async fn launch(&self, attempt: Attempt) -> Result<(), Error> {
        let mut state = self.state();
        state.launch_calls += 1;
        let id = attempt.id;
        if state.started.contains_key(&id) {
            return Ok(());
        }
        state.started.insert(id.clone(), 1);
        state.launches.push(id.clone());
        let behavior = state.behavior_for(&id);
        state.next_ref += 1;
        let started = Event::Started {
            attempt: id.clone(),
            executor_ref: Some(format!("fake-{}", state.next_ref)),
            hostname: None,
        };
        state.emit(&started);
        match terminal_event(&id, behavior) {
            Some(end) => state.emit(&end),
            None => state.live.push(id),
        }
        Ok(())
    }

    async fn cancel(&self, attempt: &AttemptId) -> Result<(), Error> {
        let mut state = self.state();
        if let Some(pos) = state.live.iter().position(|a| a == attempt) {
            let id = state.live.remove(pos);
            state.emit(&Event::Exited {
                attempt: id.clone(),
                exit_code: None,
                message: Some("cancelled".into()),
            });
            state.cancels.push(id);
        }
        Ok(())
    }

    fn subscribe(&self) -> EventStream {
        // Unbounded on purpose: a 10,000-task fan-out emits 20,000 events before anyone
        // reads, and a fake that drops or blocks would test the fake, not the engine.
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.state().subscribers.push(tx);
        Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }

    async fn live(&self) -> Result<Vec<AttemptId>, Error> {
        Ok(self.state().live.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures::{FutureExt, StreamExt};

    use super::*;
    use crate::dag::{DagSpec, TaskSpec};
    use crate::run::{RunKey, RunType, TaskKey};

    fn attempt(task_id: &str, try_number: u32) -> Attempt {
        let mut spec: DagSpec = serde_json::from_value(serde_json::json!({
            "schema_version": "1.0", "dag_id": "d", "dag_version": "v", "tasks": []
        }))
        .unwrap();
        spec.tasks.push(TaskSpec::new(task_id, TaskKind::Python));
        Attempt {
            id: AttemptId {
                task: TaskKey::new(&RunKey::new("d", "r"), task_id, -1),
                try_number,
            },
            dag: Arc::new(spec),
            version_number: 1,
            run_type: RunType::Manual,
            timeout: None,
        }
    }

    /// Everything already emitted. Unconstrained, or tokio's cooperative budget would
    /// make the receiver report "pending" after 128 events.
    async fn drain(events: &mut EventStream) -> Vec<Event> {
        tokio::task::unconstrained(async {
            let mut out = Vec::new();
            while let Some(Some(e)) = events.next().now_or_never() {
                out.push(e);
            }
            out
        })
        .await
    }

    #[tokio::test]
    async fn default_succeeds_and_launch_is_idempotent() {
        let exec = FakeExecutor::new();
        let mut events = exec.subscribe();
        let a = attempt("a", 1);
        exec.launch(a.clone()).await.unwrap();
        exec.launch(a.clone()).await.unwrap();
        let got = drain(&mut events).await;
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(matches!(got[0], Event::Started { .. }));
        assert_eq!(
            got[1],
            Event::Finished {
                attempt: a.id.clone(),
                outcome: Outcome::Success { return_value: None }
            }
        );
        assert_eq!(exec.launch_calls(), 2);
        assert_eq!(exec.launches(), vec![a.id.clone()]);
        assert_eq!(exec.launch_count(&a.id), 1);
    }

    #[tokio::test]
    async fn scripts_per_try_win_over_scripts_per_task() {
        let exec = FakeExecutor::new();
        let mut events = exec.subscribe();
        exec.script("a", Behavior::Exit(3));
        exec.script_try("a", 2, Behavior::Lose("node gone".into()));
        exec.launch(attempt("a", 1)).await.unwrap();
        exec.launch(attempt("a", 2)).await.unwrap();
        let got = drain(&mut events).await;
        assert!(matches!(
            got[1],
            Event::Exited {
                exit_code: Some(3),
                ..
            }
        ));
        assert!(matches!(&got[3], Event::Lost { reason, .. } if reason == "node gone"));
    }

    #[tokio::test]
    async fn hung_attempts_are_live_until_cancelled() {
        let exec = FakeExecutor::new();
        exec.set_default(Behavior::Hang);
        let mut events = exec.subscribe();
        let a = attempt("a", 1);
        exec.launch(a.clone()).await.unwrap();
        assert_eq!(exec.live().await.unwrap(), vec![a.id.clone()]);
        exec.cancel(&a.id).await.unwrap();
        exec.cancel(&a.id).await.unwrap();
        assert!(exec.live().await.unwrap().is_empty());
        assert_eq!(exec.cancels(), vec![a.id.clone()]);
        let got = drain(&mut events).await;
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[1],
            Event::Exited {
                attempt: a.id,
                exit_code: None,
                message: Some("cancelled".into())
            }
        );
    }

    #[tokio::test]
    async fn a_large_fan_out_is_buffered_without_loss() {
        let exec = FakeExecutor::new();
        let mut events = exec.subscribe();
        let base = attempt("a", 1);
        for i in 0..10_000 {
            let mut a = base.clone();
            a.id.task.map_index = i;
            exec.launch(a).await.unwrap();
        }
        assert_eq!(drain(&mut events).await.len(), 20_000);
    }

    #[tokio::test]
    async fn finish_ends_a_hung_attempt() {
        let exec = FakeExecutor::new();
        exec.script("a", Behavior::Hang);
        let mut events = exec.subscribe();
        let a = attempt("a", 1);
        exec.launch(a.clone()).await.unwrap();
        assert!(exec.finish(&a.id, Behavior::Skip));
        assert!(!exec.finish(&a.id, Behavior::Skip));
        let got = drain(&mut events).await;
        assert!(matches!(
            got[1],
            Event::Finished {
                outcome: Outcome::Skipped { .. },
                ..
            }
        ));
        assert!(exec.live().await.unwrap().is_empty());
    }
}

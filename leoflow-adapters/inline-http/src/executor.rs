//! `InlineHttpExecutor`: the `Executor` port over reqwest. Each attempt is one HTTP call
//! made from the control plane, within a concurrency bound and a duration cap; the outcome
//! is reported as a `Finished` event, cancellation aborts the call (`Exited`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use futures::channel::mpsc;
use futures::StreamExt;
use leoflow_ports::dag::{HttpMethod, TaskKind};
use leoflow_ports::datastore::MetaStore;
use leoflow_ports::executor::{
    Attempt, Capabilities, Error, Event, EventStream, Executor, Outcome,
};
use leoflow_ports::http_call::{judge, resolve_call, summary, summary_of_failure};
use leoflow_ports::log::{LogLine, LogStore, LogStream};
use leoflow_ports::run::AttemptId;
use tokio::sync::Semaphore;
use tokio::task::AbortHandle;

use crate::config::InlineHttpConfig;

/// Runs `http_api` attempts as HTTP calls. Cheap to clone; clones share their attempts.
#[derive(Clone)]
pub struct InlineHttpExecutor {
    inner: Arc<Inner>,
}

struct Inner {
    config: InlineHttpConfig,
    client: reqwest::Client,
    connections: Option<Arc<dyn MetaStore>>,
    logs: Arc<dyn LogStore>,
    slots: Arc<Semaphore>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    launched: HashSet<AttemptId>,
    live: HashMap<AttemptId, AbortHandle>,
    subscribers: Vec<mpsc::UnboundedSender<Event>>,
}

impl InlineHttpExecutor {
    /// An executor within `config`'s bounds, writing one summary line per call to `logs`
    /// and resolving `http_conn_id` through `connections` (without it, only absolute URLs
    /// work).
    pub fn new(
        config: InlineHttpConfig,
        connections: Option<Arc<dyn MetaStore>>,
        logs: Arc<dyn LogStore>,
    ) -> InlineHttpExecutor {
        let slots = Arc::new(Semaphore::new(config.max_concurrency.max(1)));
        InlineHttpExecutor {
            inner: Arc::new(Inner {
                config,
                client: reqwest::Client::new(),
                connections,
                logs,
                slots,
                state: Mutex::new(State::default()),
            }),
        }
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every critical section is a few map operations; a poisoned lock holds
        // consistent data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn emit(&self, event: &Event) {
        self.state()
            .subscribers
            .retain(|tx| tx.unbounded_send(event.clone()).is_ok());
    }

    async fn log(&self, attempt: &AttemptId, message: String) {
        let line = LogLine {
            at: Utc::now(),
            stream: LogStream::System,
            message,
        };
        if let Err(e) = self.logs.append(attempt, &[line]).await {
            tracing::warn!(%attempt, error = %e, "could not log an inline HTTP call");
        }
    }

    /// Makes the attempt's call and says how it went.
    async fn call(&self, attempt: &Attempt) -> Outcome {
        let task = attempt.task();
        let needed = task
            .http_request
            .as_ref()
            .and_then(|r| r.needed_connection());
        let conn = match (needed, &self.connections) {
            (Some(id), Some(store)) => match store.get_connection(id).await {
                Ok(c) => c,
                Err(e) => return failed(format!("could not read connection {id:?}: {e}"), true),
            },
            _ => None,
        };
        let call = match resolve_call(task, conn.as_ref(), attempt.timeout) {
            Ok(c) => c,
            Err(message) => return failed(message, false),
        };
        let timeout = call.timeout.min(self.config.max_duration);
        let what = call.what();
        let mut builder = self
            .client
            .request(method(call.method), &call.url)
            .timeout(timeout);
        for (k, v) in &call.headers {
            builder = builder.header(k, v);
        }
        if let Some(body) = call.body {
            builder = builder.body(body);
        }
        let began = Instant::now();
        let outcome = match builder.send().await {
            Err(e) => Err(describe(&e, &what, timeout)),
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let mut body = Vec::new();
                let mut outcome = None;
                loop {
                    match resp.chunk().await {
                        Ok(Some(chunk)) => {
                            body.extend_from_slice(&chunk);
                            if body.len() > self.config.max_response_bytes {
                                outcome = Some(Err(format!(
                                    "{what}: the response body exceeds the {}-byte limit of inline HTTP tasks; return less, or set execution_mode: pod",
                                    self.config.max_response_bytes
                                )));
                                break;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            outcome = Some(Err(describe(&e, &what, timeout)));
                            break;
                        }
                    }
                }
                outcome.unwrap_or(Ok((status, body)))
            }
        };
        let took = began.elapsed();
        match outcome {
            Ok((status, body)) => {
                self.log(&attempt.id, summary(&what, status, took, body.len()))
                    .await;
                judge(status, &body, &call.success_status_codes, &what)
            }
            Err(message) => {
                self.log(&attempt.id, summary_of_failure(&message, took))
                    .await;
                failed(message, true)
            }
        }
    }
}

fn failed(message: String, retryable: bool) -> Outcome {
    Outcome::Failed {
        message,
        exit_code: None,
        retryable,
    }
}

fn method(m: HttpMethod) -> reqwest::Method {
    match m {
        HttpMethod::Get => reqwest::Method::GET,
        HttpMethod::Post => reqwest::Method::POST,
        HttpMethod::Put => reqwest::Method::PUT,
        HttpMethod::Patch => reqwest::Method::PATCH,
        HttpMethod::Delete => reqwest::Method::DELETE,
        HttpMethod::Head => reqwest::Method::HEAD,
    }
}

fn describe(e: &reqwest::Error, what: &str, timeout: Duration) -> String {
    if e.is_timeout() {
        format!(
            "{what} timed out after {:.1}s (the task's timeout_seconds, capped by execution_timeout and LEOFLOW_INLINE_HTTP_MAX_DURATION)",
            timeout.as_secs_f64()
        )
    } else if e.is_connect() {
        format!("{what}: could not connect: {e}")
    } else {
        format!("{what} failed: {e}")
    }
}

#[async_trait]
impl Executor for InlineHttpExecutor {
    fn name(&self) -> &'static str {
        "inline-http"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            kinds: vec![TaskKind::HttpApi],
            isolated: false,
            reattaches: false,
        }
    }

    async fn launch(&self, attempt: Attempt) -> Result<(), Error> {
        if attempt.task().kind != TaskKind::HttpApi {
            return Err(Error::Rejected {
                message: format!(
                    "the inline HTTP executor runs http_api tasks, not {}",
                    attempt.task().kind.as_str()
                ),
            });
        }
        let inner = self.inner.clone();
        let mut state = self.inner.state();
        if !state.launched.insert(attempt.id.clone()) {
            return Ok(());
        }
        let id = attempt.id.clone();
        // Spawned under the state lock: the task can only remove itself from `live` after
        // it was put there.
        let handle = tokio::spawn(async move {
            let Ok(_slot) = inner.slots.clone().acquire_owned().await else {
                return;
            };
            inner.emit(&Event::Started {
                attempt: attempt.id.clone(),
                executor_ref: Some("inline-http".into()),
                hostname: None,
            });
            let outcome = inner.call(&attempt).await;
            // A cancel that took the attempt out of `live` already reported its end.
            if inner.state().live.remove(&attempt.id).is_some() {
                inner.emit(&Event::Finished {
                    attempt: attempt.id,
                    outcome,
                });
            }
        });
        state.live.insert(id, handle.abort_handle());
        Ok(())
    }

    async fn cancel(&self, attempt: &AttemptId) -> Result<(), Error> {
        let Some(handle) = self.inner.state().live.remove(attempt) else {
            return Ok(());
        };
        handle.abort();
        self.inner
            .log(attempt, "cancelled: the HTTP call was aborted".into())
            .await;
        self.inner.emit(&Event::Exited {
            attempt: attempt.clone(),
            exit_code: None,
            message: Some("cancelled".into()),
        });
        Ok(())
    }

    fn subscribe(&self) -> EventStream {
        let (tx, rx) = mpsc::unbounded();
        self.inner.state().subscribers.push(tx);
        rx.boxed()
    }

    async fn live(&self) -> Result<Vec<AttemptId>, Error> {
        let mut ids: Vec<AttemptId> = self.inner.state().live.keys().cloned().collect();
        ids.sort();
        Ok(ids)
    }
}

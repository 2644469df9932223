//! `PgNotifier`: the `Notifier` port on LISTEN/NOTIFY. Changes travel as JSON on one
//! channel; every process (this one included) receives them through its shared LISTEN
//! connection, and a subscriber gets `Change::Resync` when it fell behind or the connection
//! was re-established. Publishing goes through one task owning one connection, which sends
//! whatever concurrent publishers queued meanwhile in a single statement.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};
use leoflow_ports::notify::{Change, Error, Notifier};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, oneshot};

use crate::listen::{ListenHub, Signal, CHANGES_CHANNEL};

/// Postgres limits a NOTIFY payload to just under 8000 bytes.
const MAX_PAYLOAD: usize = 7999;
/// At most this many changes per NOTIFY statement.
const MAX_BATCH: usize = 1000;
/// How long connecting or sending may take before a publish fails.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// A change waiting to be sent, and who to tell when it was.
struct Pending {
    payload: String,
    done: oneshot::Sender<Result<(), Error>>,
}

/// The Postgres `Notifier`. Cheap to clone.
#[derive(Clone)]
pub struct PgNotifier {
    publish: mpsc::UnboundedSender<Pending>,
    hub: ListenHub,
}

impl PgNotifier {
    /// Must be called inside a tokio runtime: it starts the publishing task, which ends
    /// when the last clone is dropped.
    pub(crate) fn new(options: PgConnectOptions, hub: ListenHub) -> PgNotifier {
        let (publish, queue) = mpsc::unbounded_channel();
        tokio::spawn(publisher(options, queue));
        PgNotifier { publish, hub }
    }
}

/// Sends queued changes in arrival order. A batch stops before a payload it already holds:
/// Postgres delivers identical payloads of one transaction only once.
async fn publisher(options: PgConnectOptions, mut queue: mpsc::UnboundedReceiver<Pending>) {
    let mut conn: Option<PgConnection> = None;
    let mut next = None;
    loop {
        let first = match next.take() {
            Some(p) => p,
            None => match queue.recv().await {
                Some(p) => p,
                None => break,
            },
        };
        let mut seen = HashSet::from([first.payload.clone()]);
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(p) if seen.contains(&p.payload) => {
                    next = Some(p);
                    break;
                }
                Ok(p) => {
                    seen.insert(p.payload.clone());
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let payloads: Vec<&str> = batch.iter().map(|p| p.payload.as_str()).collect();
        let result = send(&options, &mut conn, &payloads).await;
        if result.is_err() {
            // Whatever went wrong, the next batch starts on a fresh connection.
            conn = None;
        }
        for p in batch {
            let _ = p.done.send(result.clone());
        }
    }
    if let Some(conn) = conn {
        let _ = conn.close().await;
    }
}

async fn send(
    options: &PgConnectOptions,
    conn: &mut Option<PgConnection>,
    payloads: &[&str],
) -> Result<(), Error> {
    // A connection kept from earlier batches may have died meanwhile (server restart,
    // terminated backend): then the batch is sent again on a fresh one. A duplicate wake-up
    // is harmless; a lost one is not.
    if let Some(c) = conn.as_mut() {
        if notify_all(c, payloads).await.is_ok() {
            return Ok(());
        }
        *conn = None;
    }
    let mut fresh = tokio::time::timeout(SEND_TIMEOUT, PgConnection::connect_with(options))
        .await
        .map_err(|_| timed_out())?
        .map_err(crate::error::notify)?;
    notify_all(&mut fresh, payloads).await?;
    *conn = Some(fresh);
    Ok(())
}

fn timed_out() -> Error {
    Error::Unavailable {
        message: format!("publishing a change to Postgres took longer than {SEND_TIMEOUT:?}"),
        retryable: true,
    }
}

async fn notify_all(conn: &mut PgConnection, payloads: &[&str]) -> Result<(), Error> {
    let sent = sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
        .bind(CHANGES_CHANNEL)
        .bind(payloads)
        .execute(conn);
    tokio::time::timeout(SEND_TIMEOUT, sent)
        .await
        .map_err(|_| timed_out())?
        .map_err(crate::error::notify)?;
    Ok(())
}

impl std::fmt::Debug for PgNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgNotifier").finish_non_exhaustive()
    }
}

/// The JSON sent for a change; a change too large for NOTIFY becomes a `Resync`, which
/// costs subscribers a re-read but loses nothing.
pub(crate) fn payload(change: &Change) -> String {
    match serde_json::to_string(change) {
        Ok(json) if json.len() <= MAX_PAYLOAD => json,
        _ => {
            tracing::warn!(?change, "change too large for NOTIFY; publishing a resync");
            r#"{"kind":"resync"}"#.to_string()
        }
    }
}

#[async_trait]
impl Notifier for PgNotifier {
    async fn publish(&self, change: Change) -> Result<(), Error> {
        let gone = || Error::Unavailable {
            message: "the notifier is shutting down".into(),
            retryable: false,
        };
        let (done, sent) = oneshot::channel();
        self.publish
            .send(Pending {
                payload: payload(&change),
                done,
            })
            .map_err(|_| gone())?;
        sent.await.map_err(|_| gone())?
    }

    async fn subscribe(&self) -> Result<BoxStream<'static, Change>, Error> {
        let rx = self
            .hub
            .subscribe(CHANGES_CHANNEL)
            .await
            .map_err(crate::error::notify)?;
        Ok(stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(Signal::Payload(p)) => match serde_json::from_str::<Change>(&p) {
                        Ok(change) => return Some((change, rx)),
                        Err(e) => tracing::debug!(error = %e, payload = %p, "ignoring a notification that is not a change"),
                    },
                    Ok(Signal::Reconnected) | Err(RecvError::Lagged(_)) => {
                        return Some((Change::Resync, rx));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        })
        .boxed())
    }
}

#[cfg(test)]
mod tests {
    use leoflow_ports::run::RunKey;

    use super::*;

    #[test]
    fn payloads_round_trip_and_oversize_becomes_resync() {
        let change = Change::RunCreated {
            run: RunKey::new("d", "r"),
        };
        let p = payload(&change);
        assert_eq!(serde_json::from_str::<Change>(&p).unwrap(), change);
        let huge = Change::DagChanged {
            dag_id: "x".repeat(10_000),
        };
        assert_eq!(
            serde_json::from_str::<Change>(&payload(&huge)).unwrap(),
            Change::Resync
        );
    }
}

//! One LISTEN connection per process, shared by the notifier and the log followers: it
//! fans notifications out to in-process subscribers and, when the connection drops (server
//! restart, terminated backend, silent network loss caught by a self-ping), reconnects with
//! backoff, re-subscribes and tells every subscriber that notifications may have been lost.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::PgPool;
use tokio::sync::{broadcast, watch, OnceCell};

/// Channel of `notify::Change` payloads.
pub(crate) const CHANGES_CHANNEL: &str = "leoflow_changes";
/// Channel of "attempt X has new log lines" wake-ups.
pub(crate) const LOGS_CHANNEL: &str = "leoflow_logs";
/// Payload of the liveness ping (on `CHANGES_CHANNEL`; never a valid `Change`).
const PING: &str = "ping";

/// What a subscriber receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Signal {
    Payload(Arc<str>),
    /// The connection was re-established: anything sent meanwhile was lost.
    Reconnected,
}

/// Cheap to clone; the background task stops when the last clone is dropped.
#[derive(Clone)]
pub(crate) struct ListenHub {
    inner: Arc<Inner>,
}

struct Inner {
    options: PgConnectOptions,
    pool: PgPool,
    ping_interval: Duration,
    senders: HashMap<&'static str, broadcast::Sender<Signal>>,
    started: OnceCell<()>,
    /// Dropped with the hub, which ends the background task.
    stop: watch::Sender<()>,
}

const SUBSCRIBER_BUFFER: usize = 1024;

impl ListenHub {
    pub(crate) fn new(options: PgConnectOptions, pool: PgPool, ping_interval: Duration) -> Self {
        let senders = [CHANGES_CHANNEL, LOGS_CHANNEL]
            .into_iter()
            .map(|c| (c, broadcast::channel(SUBSCRIBER_BUFFER).0))
            .collect();
        ListenHub {
            inner: Arc::new(Inner {
                options,
                pool,
                ping_interval,
                senders,
                started: OnceCell::new(),
                stop: watch::channel(()).0,
            }),
        }
    }

    /// A receiver of `channel`'s signals. On return the LISTEN is active: anything notified
    /// from now on reaches the receiver (or, after a connection loss, a `Reconnected`).
    pub(crate) async fn subscribe(
        &self,
        channel: &'static str,
    ) -> Result<broadcast::Receiver<Signal>, sqlx::Error> {
        let Some(sender) = self.inner.senders.get(channel) else {
            return Err(sqlx::Error::Configuration(
                format!("no such notification channel `{channel}`").into(),
            ));
        };
        let rx = sender.subscribe();
        self.inner
            .started
            .get_or_try_init(|| async {
                let listener = connect(&self.inner.options).await?;
                self.spawn(listener);
                Ok::<_, sqlx::Error>(())
            })
            .await?;
        Ok(rx)
    }

    fn spawn(&self, listener: PgListener) {
        let senders = self.inner.senders.clone();
        let options = self.inner.options.clone();
        let liveness = self.inner.ping_interval * 3;
        let mut stop = self.inner.stop.subscribe();
        tokio::spawn(async move {
            let mut listener = listener;
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    received = tokio::time::timeout(liveness, listener.try_recv()) => {
                        match received {
                            Ok(Ok(Some(n))) => {
                                if n.payload() == PING {
                                    continue;
                                }
                                if let Some(tx) = senders.get(n.channel()) {
                                    let _ = tx.send(Signal::Payload(n.payload().into()));
                                }
                                continue;
                            }
                            Ok(Ok(None)) => tracing::warn!("LISTEN connection to Postgres lost; reconnecting"),
                            Ok(Err(e)) => tracing::warn!(error = %e, "LISTEN connection to Postgres failed; reconnecting"),
                            Err(_) => tracing::warn!(?liveness, "no notification (not even our own ping) on the LISTEN connection; reconnecting"),
                        }
                    }
                }
                drop(listener);
                listener = tokio::select! {
                    _ = stop.changed() => return,
                    l = reconnect(&options) => l,
                };
                for tx in senders.values() {
                    let _ = tx.send(Signal::Reconnected);
                }
            }
        });
        // The self-ping: if our own NOTIFY stops arriving, the LISTEN connection is dead
        // even though no error surfaced (a silent network partition).
        let pool = self.inner.pool.clone();
        let every = self.inner.ping_interval;
        let mut stop = self.inner.stop.subscribe();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tick.tick() => {
                        let _ = sqlx::query("SELECT pg_notify($1, $2)")
                            .bind(CHANGES_CHANNEL)
                            .bind(PING)
                            .execute(&pool)
                            .await;
                    }
                }
            }
        });
    }
}

async fn connect(options: &PgConnectOptions) -> Result<PgListener, sqlx::Error> {
    // A pool of one used only by this listener: dropping the listener drops it, so a dead
    // connection is never reused.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_with(options.clone())
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.ignore_pool_close_event(true);
    listener.eager_reconnect(false);
    listener.listen_all([CHANGES_CHANNEL, LOGS_CHANNEL]).await?;
    Ok(listener)
}

async fn reconnect(options: &PgConnectOptions) -> PgListener {
    let mut delay = Duration::from_millis(50);
    loop {
        match connect(options).await {
            Ok(l) => {
                tracing::info!("LISTEN connection to Postgres re-established");
                return l;
            }
            Err(e) => {
                tracing::debug!(error = %e, ?delay, "LISTEN reconnect failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}

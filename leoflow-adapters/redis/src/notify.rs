//! `RedisNotifier`: changes are JSON messages on one pub/sub channel. Each subscription
//! has its own pub/sub connection and a forwarding task; when that connection drops, the
//! task re-subscribes (with back-off) and sends `Resync`, because changes published in
//! between were missed. A subscriber that stops reading gets `Resync` instead of an
//! unbounded queue; publishing never waits for anyone.

use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use leoflow_ports::notify::{Change, Error, Notifier};
use redis::aio::{ConnectionManager, PubSub};
use redis::{Client, RedisError};
use tokio::sync::mpsc::{self, error::TrySendError};

use crate::connection::{describe, RedisConnection};
use crate::keys;

/// Changes buffered per subscription before it is told to resync instead.
const BUFFER: usize = 1024;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A `Notifier` on Redis pub/sub.
pub struct RedisNotifier {
    conn: ConnectionManager,
    client: Client,
    channel: String,
}

impl RedisNotifier {
    pub fn new(conn: &RedisConnection) -> RedisNotifier {
        RedisNotifier {
            conn: conn.manager.clone(),
            client: conn.client.clone(),
            channel: keys::changes(&conn.prefix),
        }
    }
}

fn unavailable(e: RedisError) -> Error {
    let (message, retryable) = describe(e);
    Error::Unavailable { message, retryable }
}

async fn subscribed(client: &Client, channel: &str) -> Result<PubSub, RedisError> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub)
}

/// Delivers into `tx` without ever blocking; remembers a change that did not fit, so a
/// `Resync` goes out first once there is room. False when the subscriber is gone.
struct Outbox {
    tx: mpsc::Sender<Change>,
    lagged: bool,
}

impl Outbox {
    fn offer(&mut self, change: Change) -> bool {
        if self.lagged {
            match self.tx.try_send(Change::Resync) {
                Ok(()) => self.lagged = false,
                Err(TrySendError::Full(_)) => return true,
                Err(TrySendError::Closed(_)) => return false,
            }
        }
        match self.tx.try_send(change) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.lagged = true;
                true
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }
}

/// Forwards messages until the subscriber drops its stream, re-subscribing after drops.
async fn forward(client: Client, channel: String, first: PubSub, tx: mpsc::Sender<Change>) {
    let mut outbox = Outbox { tx, lagged: false };
    let mut pubsub = first;
    loop {
        let mut messages = pubsub.into_on_message();
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else { break };
                    let change = message
                        .get_payload::<String>()
                        .ok()
                        .and_then(|p| serde_json::from_str::<Change>(&p).ok())
                        .unwrap_or(Change::Resync);
                    if !outbox.offer(change) {
                        return;
                    }
                }
                () = outbox.tx.closed() => return,
            }
        }
        drop(messages);
        tracing::warn!(%channel, "the Redis pub/sub connection dropped; re-subscribing");
        let mut backoff = FIRST_BACKOFF;
        pubsub = loop {
            if outbox.tx.is_closed() {
                return;
            }
            match subscribed(&client, &channel).await {
                Ok(p) => break p,
                Err(e) => {
                    tracing::warn!(error = %e, "re-subscribing to Redis failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        if !outbox.offer(Change::Resync) {
            return;
        }
    }
}

#[async_trait]
impl Notifier for RedisNotifier {
    async fn publish(&self, change: Change) -> Result<(), Error> {
        let payload = serde_json::to_string(&change).map_err(|e| Error::Unavailable {
            message: format!("cannot encode {change:?}: {e}"),
            retryable: false,
        })?;
        redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(payload)
            .query_async::<i64>(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn subscribe(&self) -> Result<BoxStream<'static, Change>, Error> {
        let pubsub = subscribed(&self.client, &self.channel)
            .await
            .map_err(unavailable)?;
        let (tx, mut rx) = mpsc::channel(BUFFER);
        tokio::spawn(forward(
            self.client.clone(),
            self.channel.clone(),
            pubsub,
            tx,
        ));
        Ok(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed())
    }
}

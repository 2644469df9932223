//! `MemoryNotifier`: change signals over a tokio broadcast channel. A subscriber that
//! falls more than the buffer behind gets `Change::Resync` and then carries on.

use async_trait::async_trait;
use futures::stream::BoxStream;
use leoflow_ports::notify::{Change, Error, Notifier};
use tokio::sync::broadcast;

/// An in-memory `Notifier`, for a single process.
pub struct MemoryNotifier {
    tx: broadcast::Sender<Change>,
}

impl MemoryNotifier {
    /// How many changes a subscriber may fall behind before it is told to resync. Large
    /// enough for a 10,000-task fan-out to finish without one; small enough (about 2 MiB
    /// of buffer) not to matter for the idle footprint.
    pub const DEFAULT_CAPACITY: usize = 16_384;

    pub fn new() -> MemoryNotifier {
        MemoryNotifier::with_capacity(MemoryNotifier::DEFAULT_CAPACITY)
    }

    /// A notifier whose subscribers may lag `capacity` changes before they resync.
    pub fn with_capacity(capacity: usize) -> MemoryNotifier {
        MemoryNotifier {
            tx: broadcast::Sender::new(capacity.max(1)),
        }
    }
}

impl Default for MemoryNotifier {
    fn default() -> MemoryNotifier {
        MemoryNotifier::new()
    }
}

#[async_trait]
impl Notifier for MemoryNotifier {
    async fn publish(&self, change: Change) -> Result<(), Error> {
        // An error only means nobody is subscribed, which is fine: there is nobody to wake.
        let _ = self.tx.send(change);
        Ok(())
    }

    async fn subscribe(&self) -> Result<BoxStream<'static, Change>, Error> {
        let rx = self.tx.subscribe();
        Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Ok(change) => Some((change, rx)),
                // The receiver skips to the oldest change still buffered; the subscriber
                // re-reads the datastore and then continues from there.
                Err(broadcast::error::RecvError::Lagged(_)) => Some((Change::Resync, rx)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        })))
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[tokio::test]
    async fn a_lagging_subscriber_gets_resync_then_continues() {
        let notifier = MemoryNotifier::with_capacity(4);
        let mut sub = notifier.subscribe().await.unwrap();
        for i in 0..10 {
            let dag_id = format!("d{i}");
            notifier
                .publish(Change::DagChanged { dag_id })
                .await
                .unwrap();
        }
        assert_eq!(sub.next().await, Some(Change::Resync));
        let rest: Vec<Change> = sub.take(4).collect().await;
        let expected: Vec<Change> = (6..10)
            .map(|i| Change::DagChanged {
                dag_id: format!("d{i}"),
            })
            .collect();
        assert_eq!(rest, expected);
    }
}

//! The `Notifier` conformance suite: delivery to every subscription opened before a
//! publish, and publishing that never waits for slow subscribers.

use std::future::Future;
use std::sync::Arc;

use futures::stream::BoxStream;
use futures::StreamExt;

use super::{within, Context};
use crate::notify::{Change, Notifier};
use crate::run::{RunKey, TaskKey};

/// The list of behaviours, written once for both the macro and `run_all`.
#[doc(hidden)]
#[macro_export]
macro_rules! __leoflow_notify_behaviours {
    ($callback:ident! { $($args:tt)* }) => {
        $crate::$callback! { $($args)* behaviours [
            a_change_published_after_subscribe_is_delivered_in_order,
            every_subscriber_receives_every_change,
            publish_without_subscribers_succeeds,
            publish_does_not_wait_for_a_subscriber_that_never_reads,
            a_dropped_subscription_does_not_disturb_the_others,
        ] }
    };
}

/// One `#[tokio::test]` per notifier behaviour, in a module `notify_conformance`.
///
/// The argument is a future yielding a fresh `Arc<impl Notifier>`; see
/// [`crate::testkit`].
#[macro_export]
macro_rules! notify_conformance {
    ($factory:expr) => {
        $crate::__leoflow_notify_behaviours!(__leoflow_conformance_tests! {
            plain notify notify_conformance ($crate::notify::Notifier) ($factory)
        });
    };
}

/// Runs every behaviour, each on a fresh notifier from `factory`.
pub async fn run_all<F, Fut>(factory: F) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Notifier>>,
{
    crate::__leoflow_notify_behaviours!(__leoflow_run_all! { plain factory })
}

/// One change of each kind but `Resync`.
fn changes() -> Vec<Change> {
    let run = RunKey::new("d", "r1");
    vec![
        Change::RunCreated { run: run.clone() },
        Change::TaskFinished {
            task: TaskKey::new(&run, "a", 2),
        },
        Change::RunChanged { run },
        Change::DagVersionRegistered {
            dag_id: "d".into(),
            version_number: 3,
        },
        Change::DagChanged { dag_id: "d".into() },
    ]
}

async fn next_change(stream: &mut BoxStream<'static, Change>) -> Result<Change, String> {
    within("a published change", stream.next())
        .await?
        .ok_or_else(|| "the subscription ended".to_string())
}

async fn publish_all(port: &dyn Notifier, changes: &[Change]) -> Result<(), String> {
    for c in changes {
        port.publish(c.clone()).await.ctx("publish")?;
    }
    Ok(())
}

/// Changes published after `subscribe` returned arrive, in publish order.
pub async fn a_change_published_after_subscribe_is_delivered_in_order(
    port: &dyn Notifier,
) -> Result<(), String> {
    let mut sub = port.subscribe().await.ctx("subscribe")?;
    publish_all(port, &changes()).await?;
    for expected in changes() {
        ensure_eq!(next_change(&mut sub).await?, expected, "delivered change");
    }
    Ok(())
}

/// Each open subscription receives each change.
pub async fn every_subscriber_receives_every_change(port: &dyn Notifier) -> Result<(), String> {
    let mut subs = Vec::new();
    for _ in 0..3 {
        subs.push(port.subscribe().await.ctx("subscribe")?);
    }
    publish_all(port, &changes()).await?;
    for (i, sub) in subs.iter_mut().enumerate() {
        for expected in changes() {
            ensure_eq!(
                next_change(sub).await?,
                expected,
                "change delivered to subscriber {i}"
            );
        }
    }
    Ok(())
}

/// Publishing with nobody listening is not an error.
pub async fn publish_without_subscribers_succeeds(port: &dyn Notifier) -> Result<(), String> {
    publish_all(port, &changes()).await?;
    let mut sub = port.subscribe().await.ctx("subscribe")?;
    drop(port.subscribe().await.ctx("subscribe")?);
    port.publish(Change::DagChanged { dag_id: "x".into() })
        .await
        .ctx("publish")?;
    // Changes published before `subscribe` may be replayed or not, and a `Resync` is
    // always allowed; the change published afterwards must come.
    let wanted = Change::DagChanged { dag_id: "x".into() };
    let earlier = changes();
    loop {
        let got = next_change(&mut sub).await?;
        if got == wanted {
            return Ok(());
        }
        ensure!(
            got == Change::Resync || earlier.contains(&got),
            "expected {wanted:?}, got {got:?}"
        );
    }
}

/// Thousands of publishes complete while a subscriber reads nothing; it then sees the
/// changes in order or a `Resync`.
pub async fn publish_does_not_wait_for_a_subscriber_that_never_reads(
    port: &dyn Notifier,
) -> Result<(), String> {
    let mut slow = port.subscribe().await.ctx("subscribe")?;
    let burst: Vec<Change> = (0..5_000)
        .map(|i| Change::DagChanged {
            dag_id: format!("d{i}"),
        })
        .collect();
    within(
        "5,000 publishes with a stalled subscriber",
        publish_all(port, &burst),
    )
    .await??;
    let first = next_change(&mut slow).await?;
    ensure!(
        first == Change::Resync || first == burst[0],
        "a lagging subscriber got {first:?} first; expected the first change or Resync"
    );
    Ok(())
}

/// Dropping one subscription leaves publishing and the other subscriptions working.
pub async fn a_dropped_subscription_does_not_disturb_the_others(
    port: &dyn Notifier,
) -> Result<(), String> {
    let gone = port.subscribe().await.ctx("subscribe")?;
    let mut kept = port.subscribe().await.ctx("subscribe")?;
    drop(gone);
    publish_all(port, &changes()).await?;
    for expected in changes() {
        ensure_eq!(
            next_change(&mut kept).await?,
            expected,
            "change after a drop"
        );
    }
    Ok(())
}

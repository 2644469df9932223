//! `ManualClock`: a [`Clock`] that only moves when a test moves it, so timing behaviour
//! (retry delays, TTLs, lease expiry, timeouts) is tested without ever sleeping.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::clock::Clock;

/// A hand-driven clock. Clones share the same time, so a test keeps one clone and hands
/// another to the code under test.
///
/// `sleep_until(t)` futures resolve as soon as the clock is advanced (or set) to `t` or
/// later; nothing waits on real time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    // The watch channel is both the current time and the wake-up signal: sleepers wait on
    // a receiver, and every change of time notifies all of them at once.
    now: watch::Sender<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: DateTime<Utc>) -> ManualClock {
        ManualClock {
            now: watch::Sender::new(start),
        }
    }

    /// Moves time forward by `by` and wakes every sleeper whose deadline has passed.
    ///
    /// Panics if `by` does not fit in a `chrono::TimeDelta` (hundreds of millions of
    /// years), which only a broken test asks for.
    pub fn advance(&self, by: Duration) {
        let by = chrono::TimeDelta::from_std(by).expect("ManualClock::advance: duration too large");
        self.now.send_modify(|now| *now += by);
    }

    /// Moves time to `t` and wakes every sleeper whose deadline has passed.
    ///
    /// Panics if `t` is earlier than the current time: a `Clock` never goes backwards.
    pub fn set(&self, t: DateTime<Utc>) {
        // Panicking inside `send_modify` would skip waking sleepers; decide under the
        // lock, complain after it.
        let mut backwards = None;
        self.now.send_modify(|now| {
            if t >= *now {
                *now = t;
            } else {
                backwards = Some(*now);
            }
        });
        if let Some(now) = backwards {
            panic!("ManualClock::set({t}) would move time backwards from {now}");
        }
    }

    /// How many `sleep_until` futures are waiting right now. Lets a test advance time only
    /// once the code under test has gone to sleep.
    pub fn sleepers(&self) -> usize {
        self.now.receiver_count()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'static, ()> {
        // Subscribing here, not inside the future, means an `advance` that happens between
        // this call and the first poll is still seen.
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            // An error means every clone of the clock is gone: time can never reach the
            // deadline, and resolving is kinder to a test than hanging it forever.
            let _ = rx.wait_for(|now| *now >= deadline).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    #[tokio::test]
    async fn sleepers_wake_only_once_time_passes_their_deadline() {
        let clock = ManualClock::new(t0());
        let deadline = t0() + chrono::TimeDelta::seconds(10);
        let handle = tokio::spawn(clock.sleep_until(deadline));
        clock.advance(Duration::from_secs(9));
        tokio::task::yield_now().await;
        assert!(!handle.is_finished());
        assert_eq!(clock.sleepers(), 1);
        clock.advance(Duration::from_secs(1));
        handle.await.unwrap();
        assert_eq!(clock.now(), deadline);
        assert_eq!(clock.sleepers(), 0);
    }

    #[tokio::test]
    async fn past_deadlines_resolve_at_once_and_clones_share_time() {
        let clock = ManualClock::new(t0());
        let other = clock.clone();
        other.set(t0() + chrono::TimeDelta::seconds(5));
        assert_eq!(clock.now(), t0() + chrono::TimeDelta::seconds(5));
        clock.sleep_until(t0()).await;
    }

    #[test]
    fn time_never_goes_backwards() {
        let clock = ManualClock::new(t0());
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            clock.set(t0() - chrono::TimeDelta::seconds(1));
        }));
        assert!(result.is_err());
        assert_eq!(clock.now(), t0());
    }
}

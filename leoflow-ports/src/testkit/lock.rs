//! The `LockManager` conformance suite: exclusive leases, strictly increasing fencing
//! tokens, renewal, expiry on the injected clock, and release of one's own lease only.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::clock::ManualClock;
use super::Context;
use crate::clock::Clock;
use crate::lock::{Error, Lease, LockManager};

/// The list of behaviours, written once for both the macro and `run_all`.
#[doc(hidden)]
#[macro_export]
macro_rules! __leoflow_lock_behaviours {
    ($callback:ident! { $($args:tt)* }) => {
        $crate::$callback! { $($args)* behaviours [
            a_free_lease_is_granted,
            a_held_lease_is_not_granted_to_another_holder,
            tokens_strictly_increase_across_acquisitions,
            an_expired_lease_can_be_taken_by_another_holder,
            a_released_lease_can_be_taken_at_once,
            renew_extends_the_lease_and_keeps_the_token,
            renew_of_a_lease_taken_by_another_is_lost,
            renew_of_a_released_lease_is_lost,
            release_only_releases_the_callers_own_lease,
            leases_of_different_names_are_independent,
        ] }
    };
}

/// One `#[tokio::test]` per lock behaviour, in a module `lock_conformance`.
///
/// The argument is a future yielding `(Arc<impl LockManager>, ManualClock)`, a fresh lock
/// manager reading time from that clock; see [`crate::testkit`].
#[macro_export]
macro_rules! lock_conformance {
    ($factory:expr) => {
        $crate::__leoflow_lock_behaviours!(__leoflow_conformance_tests! {
            clocked lock lock_conformance ($crate::lock::LockManager) ($factory)
        });
    };
}

/// Runs every behaviour, each on a fresh lock manager and clock from `factory`.
pub async fn run_all<F, Fut>(factory: F) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = (Arc<dyn LockManager>, ManualClock)>,
{
    crate::__leoflow_lock_behaviours!(__leoflow_run_all! { clocked factory })
}

const NAME: &str = "scheduler";
const TTL: Duration = Duration::from_secs(10);

async fn acquire(port: &dyn LockManager, holder: &str) -> Result<Option<Lease>, String> {
    port.try_acquire(NAME, holder, TTL).await.ctx("try_acquire")
}

async fn must_acquire(port: &dyn LockManager, holder: &str) -> Result<Lease, String> {
    acquire(port, holder)
        .await?
        .ok_or_else(|| format!("{holder} could not acquire a free lease"))
}

/// Moves the clock just past the lease's expiry.
fn expire(clock: &ManualClock, lease: &Lease) {
    clock.set(lease.expires_at.max(clock.now()) + chrono::TimeDelta::seconds(1));
}

fn is_lost(result: &Result<impl std::fmt::Debug, Error>) -> bool {
    matches!(result, Err(Error::Lost { name }) if name == NAME)
}

/// A free lease is granted with the caller's name and holder and a future expiry.
pub async fn a_free_lease_is_granted(
    port: &dyn LockManager,
    clock: &ManualClock,
) -> Result<(), String> {
    let lease = must_acquire(port, "a").await?;
    ensure_eq!(lease.name, NAME, "lease name");
    ensure_eq!(lease.holder, "a", "lease holder");
    ensure!(
        lease.expires_at > clock.now(),
        "a new lease expires at {} but now is {}",
        lease.expires_at,
        clock.now()
    );
    Ok(())
}

/// While a lease is held and not expired, nobody else gets it.
pub async fn a_held_lease_is_not_granted_to_another_holder(
    port: &dyn LockManager,
    clock: &ManualClock,
) -> Result<(), String> {
    let lease = must_acquire(port, "a").await?;
    let other = acquire(port, "b").await?;
    ensure!(
        other.is_none(),
        "two holders at once: {lease:?} and {other:?}"
    );
    let almost = lease.expires_at - chrono::TimeDelta::milliseconds(1);
    if almost > clock.now() {
        clock.set(almost);
    }
    let other = acquire(port, "b").await?;
    ensure!(
        other.is_none(),
        "a lease was granted just before the holder's expiry: {other:?}"
    );
    Ok(())
}

/// Every acquisition, after a release or an expiry, gets a token above all earlier ones.
pub async fn tokens_strictly_increase_across_acquisitions(
    port: &dyn LockManager,
    clock: &ManualClock,
) -> Result<(), String> {
    let first = must_acquire(port, "a").await?;
    port.release(&first).await.ctx("release")?;
    let second = must_acquire(port, "b").await?;
    ensure!(
        second.token > first.token,
        "token {} after release is not above {}",
        second.token,
        first.token
    );
    expire(clock, &second);
    let third = must_acquire(port, "a").await?;
    ensure!(
        third.token > second.token,
        "token {} after expiry is not above {}",
        third.token,
        second.token
    );
    port.release(&third).await.ctx("release")?;
    let fourth = must_acquire(port, "a").await?;
    ensure!(
        fourth.token > third.token,
        "token {} of the same holder is not above {}",
        fourth.token,
        third.token
    );
    Ok(())
}

/// Once a lease expired, another holder gets it.
pub async fn an_expired_lease_can_be_taken_by_another_holder(
    port: &dyn LockManager,
    clock: &ManualClock,
) -> Result<(), String> {
    let lease = must_acquire(port, "a").await?;
    expire(clock, &lease);
    let taken = must_acquire(port, "b").await?;
    ensure_eq!(taken.holder, "b", "holder of the taken lease");
    let again = acquire(port, "a").await?;
    ensure!(
        again.is_none(),
        "the old holder took the lease back from b: {again:?}"
    );
    Ok(())
}

/// Releasing frees the lease immediately.
pub async fn a_released_lease_can_be_taken_at_once(
    port: &dyn LockManager,
    _clock: &ManualClock,
) -> Result<(), String> {
    let lease = must_acquire(port, "a").await?;
    port.release(&lease).await.ctx("release")?;
    let taken = must_acquire(port, "b").await?;
    ensure_eq!(taken.holder, "b", "holder after release");
    Ok(())
}

/// `renew` pushes the expiry out and keeps the token; the renewed lease outlives the
/// original expiry.
pub async fn renew_extends_the_lease_and_keeps_the_token(
    port: &dyn LockManager,
    clock: &ManualClock,
) -> Result<(), String> {
    let lease = must_acquire(port, "a").await?;
    clock.advance(TTL / 2);
    let renewed = port.renew(&lease, TTL).await.ctx("renew")?;
    ensure_eq!(renewed.token, lease.token, "token after renew");
    ensure_eq!(renewed.holder, "a", "holder after renew");
    ensure!(
        renewed.expires_at > lease.expires_at,
        "renew did not extend: {} -> {}",
        lease.expires_at,
        renewed.expires_at
    );
    clock.set(lease.expires_at + chrono::TimeDelta::seconds(1));
    if renewed.expires_at > clock.now() {
        let other = acquire(port, "b").await?;
        ensure!(
            other.is_none(),
            "a renewed lease was taken at its original expiry: {other:?}"
        );
    }
    let again = port.renew(&renewed, TTL).await.ctx("second renew")?;
    ensure_eq!(again.token, lease.token, "token after a second renew");
    Ok(())
}

/// Renewing a lease that expired and was taken by another holder is `Lost`.
pub async fn renew_of_a_lease_taken_by_another_is_lost(
    port: &dyn LockManager,
    clock: &ManualClock,
) -> Result<(), String> {
    let lease = must_acquire(port, "a").await?;
    expire(clock, &lease);
    let taken = must_acquire(port, "b").await?;
    let result = port.renew(&lease, TTL).await;
    ensure!(
        is_lost(&result),
        "renew of a taken lease: expected Lost, got {result:?}"
    );
    let other = acquire(port, "a").await?;
    ensure!(
        other.is_none(),
        "the failed renew freed b's lease {taken:?}"
    );
    Ok(())
}

/// Renewing a lease after releasing it is `Lost`.
pub async fn renew_of_a_released_lease_is_lost(
    port: &dyn LockManager,
    _clock: &ManualClock,
) -> Result<(), String> {
    let lease = must_acquire(port, "a").await?;
    port.release(&lease).await.ctx("release")?;
    let result = port.renew(&lease, TTL).await;
    ensure!(
        is_lost(&result),
        "renew of a released lease: expected Lost, got {result:?}"
    );
    Ok(())
}

/// A deposed holder's release (its lease expired and was taken) leaves the new holder's
/// lease in place. The release itself may succeed or report `Lost`.
pub async fn release_only_releases_the_callers_own_lease(
    port: &dyn LockManager,
    clock: &ManualClock,
) -> Result<(), String> {
    let old = must_acquire(port, "a").await?;
    expire(clock, &old);
    let current = must_acquire(port, "b").await?;
    let result = port.release(&old).await;
    ensure!(
        result.is_ok() || is_lost(&result),
        "release of a lost lease: expected Ok or Lost, got {result:?}"
    );
    let third = acquire(port, "c").await?;
    ensure!(
        third.is_none(),
        "a stale release freed the new holder's lease: c got {third:?}"
    );
    let renewed = port
        .renew(&current, TTL)
        .await
        .ctx("renew by the new holder")?;
    ensure_eq!(renewed.token, current.token, "the new holder's token");
    Ok(())
}

/// Leases of different names do not exclude each other.
pub async fn leases_of_different_names_are_independent(
    port: &dyn LockManager,
    _clock: &ManualClock,
) -> Result<(), String> {
    let one = port.try_acquire("one", "a", TTL).await.ctx("try_acquire")?;
    let two = port.try_acquire("two", "b", TTL).await.ctx("try_acquire")?;
    ensure!(
        one.is_some() && two.is_some(),
        "leases of two names: {one:?}, {two:?}"
    );
    let one_again = port.try_acquire("one", "b", TTL).await.ctx("try_acquire")?;
    ensure!(
        one_again.is_none(),
        "lease `one` granted twice: {one_again:?}"
    );
    Ok(())
}

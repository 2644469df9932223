//! The `XComStore` conformance suite: the size cap, replacement, expiry on the injected
//! clock, deletion per task and per run, and listing order.

use std::future::Future;
use std::sync::Arc;

use serde_json::{json, Value};

use super::clock::ManualClock;
use super::Context;
use crate::clock::Clock;
use crate::run::{RunKey, TaskKey};
use crate::xcom::{json_size, Error, XComEntry, XComStore};

/// The list of behaviours, written once for both the macro and `run_all`.
#[doc(hidden)]
#[macro_export]
macro_rules! __leoflow_xcom_behaviours {
    ($callback:ident! { $($args:tt)* }) => {
        $crate::$callback! { $($args)* behaviours [
            put_then_get_returns_the_value_and_its_size,
            get_of_a_missing_value_is_none,
            put_replaces_the_value_of_the_same_task_and_key,
            a_value_over_the_cap_is_too_large_and_nothing_is_stored,
            a_value_at_the_cap_is_accepted,
            expired_values_are_never_returned,
            purge_expired_removes_and_counts_only_expired_values,
            delete_for_task_removes_only_that_task_instance,
            delete_for_run_removes_only_that_run,
            list_is_ordered_by_task_map_index_and_key_and_filters_by_task,
        ] }
    };
}

/// One `#[tokio::test]` per XCom behaviour, in a module `xcom_conformance`.
///
/// The argument is a future yielding `(Arc<impl XComStore>, ManualClock)`, a fresh empty
/// store reading time from that clock; see [`crate::testkit`].
#[macro_export]
macro_rules! xcom_conformance {
    ($factory:expr) => {
        $crate::__leoflow_xcom_behaviours!(__leoflow_conformance_tests! {
            clocked xcom xcom_conformance ($crate::xcom::XComStore) ($factory)
        });
    };
}

/// Runs every behaviour, each on a fresh store and clock from `factory`.
pub async fn run_all<F, Fut>(factory: F) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = (Arc<dyn XComStore>, ManualClock)>,
{
    crate::__leoflow_xcom_behaviours!(__leoflow_run_all! { clocked factory })
}

fn run_key(run_id: &str) -> RunKey {
    RunKey::new("d", run_id)
}

fn task(run_id: &str, task_id: &str, map_index: i32) -> TaskKey {
    TaskKey::new(&run_key(run_id), task_id, map_index)
}

async fn put(port: &dyn XComStore, task: &TaskKey, key: &str, value: &Value) -> Result<(), String> {
    port.put(task, key, value).await.ctx("put")
}

async fn get(port: &dyn XComStore, task: &TaskKey, key: &str) -> Result<Option<Value>, String> {
    Ok(port.get(task, key).await.ctx("get")?.map(|e| e.value))
}

fn names(entries: &[XComEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| format!("{}:{}", e.task, e.key))
        .collect()
}

/// A JSON string whose compact encoding is exactly `size` bytes (`size` ≥ 2).
fn value_of_size(size: usize) -> Value {
    Value::String("x".repeat(size.saturating_sub(2)))
}

/// A stored value reads back with its task, key, compact JSON size and a future expiry.
pub async fn put_then_get_returns_the_value_and_its_size(
    port: &dyn XComStore,
    clock: &ManualClock,
) -> Result<(), String> {
    let t = task("r1", "a", -1);
    let value = json!({"rows": [1, 2, 3], "name": "ünïcode"});
    put(port, &t, "return_value", &value).await?;
    let entry = port.get(&t, "return_value").await.ctx("get")?;
    let entry = entry.ok_or("a stored value is missing")?;
    ensure_eq!(entry.task, t, "entry task");
    ensure_eq!(entry.key, "return_value", "entry key");
    ensure_eq!(entry.value, value, "entry value");
    ensure_eq!(entry.size_bytes, json_size(&value), "entry size_bytes");
    ensure!(
        entry.created_at <= clock.now() && entry.expires_at > clock.now(),
        "entry times: created {} expires {} at now {}",
        entry.created_at,
        entry.expires_at,
        clock.now()
    );
    Ok(())
}

/// Nothing stored under a (task, key) reads as `None`.
pub async fn get_of_a_missing_value_is_none(
    port: &dyn XComStore,
    _clock: &ManualClock,
) -> Result<(), String> {
    put(port, &task("r1", "a", -1), "k", &json!(1)).await?;
    ensure_eq!(
        get(port, &task("r1", "a", -1), "other").await?,
        None,
        "other key"
    );
    ensure_eq!(
        get(port, &task("r1", "a", 0), "k").await?,
        None,
        "other map index"
    );
    ensure_eq!(
        get(port, &task("r2", "a", -1), "k").await?,
        None,
        "other run"
    );
    Ok(())
}

/// A second put of the same (task, key) replaces the value.
pub async fn put_replaces_the_value_of_the_same_task_and_key(
    port: &dyn XComStore,
    _clock: &ManualClock,
) -> Result<(), String> {
    let t = task("r1", "a", -1);
    put(port, &t, "k", &json!("first")).await?;
    put(port, &t, "k", &json!({"second": true})).await?;
    ensure_eq!(
        get(port, &t, "k").await?,
        Some(json!({"second": true})),
        "value"
    );
    let all = port.list(&run_key("r1"), None).await.ctx("list")?;
    ensure_eq!(all.len(), 1, "entries after replacing one");
    Ok(())
}

/// One byte over the cap is `TooLarge` with size and limit, and nothing changes.
pub async fn a_value_over_the_cap_is_too_large_and_nothing_is_stored(
    port: &dyn XComStore,
    _clock: &ManualClock,
) -> Result<(), String> {
    let limit = port.max_value_bytes();
    let t = task("r1", "a", -1);
    put(port, &t, "k", &json!("small")).await?;
    let big = value_of_size(limit + 1);
    for key in ["k", "fresh"] {
        match port.put(&t, key, &big).await {
            Err(Error::TooLarge { size, limit: l }) if size == limit + 1 && l == limit => {}
            other => {
                return Err(format!(
                    "put of {} bytes under a {limit}-byte cap: expected TooLarge {{ size: {}, limit: {limit} }}, got {other:?}",
                    limit + 1,
                    limit + 1
                ))
            }
        }
    }
    ensure_eq!(
        get(port, &t, "k").await?,
        Some(json!("small")),
        "the value under the refused put"
    );
    ensure_eq!(
        get(port, &t, "fresh").await?,
        None,
        "a key only a refused put wrote"
    );
    Ok(())
}

/// A value of exactly the cap is stored.
pub async fn a_value_at_the_cap_is_accepted(
    port: &dyn XComStore,
    _clock: &ManualClock,
) -> Result<(), String> {
    let exact = value_of_size(port.max_value_bytes());
    let t = task("r1", "a", -1);
    put(port, &t, "k", &exact).await?;
    ensure!(
        get(port, &t, "k").await? == Some(exact),
        "a value at the cap was not stored"
    );
    Ok(())
}

/// Before `expires_at` a value is readable; after it neither `get` nor `list` returns it.
pub async fn expired_values_are_never_returned(
    port: &dyn XComStore,
    clock: &ManualClock,
) -> Result<(), String> {
    let t = task("r1", "a", -1);
    put(port, &t, "k", &json!(1)).await?;
    let entry = port.get(&t, "k").await.ctx("get")?.ok_or("value missing")?;
    let just_before = entry.expires_at - chrono::TimeDelta::milliseconds(1);
    if just_before > clock.now() {
        clock.set(just_before);
        ensure!(
            get(port, &t, "k").await?.is_some(),
            "a value vanished before its expiry"
        );
    }
    clock.set(entry.expires_at + chrono::TimeDelta::seconds(1));
    ensure_eq!(get(port, &t, "k").await?, None, "get of an expired value");
    let listed = port.list(&run_key("r1"), None).await.ctx("list")?;
    ensure!(
        listed.is_empty(),
        "list returned expired values: {:?}",
        names(&listed)
    );
    Ok(())
}

/// `purge_expired` deletes exactly the expired values and says how many.
pub async fn purge_expired_removes_and_counts_only_expired_values(
    port: &dyn XComStore,
    clock: &ManualClock,
) -> Result<(), String> {
    let old = task("r1", "a", -1);
    put(port, &old, "k1", &json!(1)).await?;
    put(port, &old, "k2", &json!(2)).await?;
    let entry = port
        .get(&old, "k2")
        .await
        .ctx("get")?
        .ok_or("value missing")?;
    clock.set(entry.expires_at + chrono::TimeDelta::seconds(1));
    let fresh = task("r1", "b", -1);
    put(port, &fresh, "k", &json!(3)).await?;
    let purged = port.purge_expired().await.ctx("purge_expired")?;
    ensure_eq!(purged, 2, "purge_expired count");
    let again = port.purge_expired().await.ctx("purge_expired")?;
    ensure_eq!(again, 0, "a second purge_expired count");
    ensure_eq!(
        get(port, &fresh, "k").await?,
        Some(json!(3)),
        "the unexpired value"
    );
    Ok(())
}

/// `delete_for_task` removes every key of one instance, not its siblings.
pub async fn delete_for_task_removes_only_that_task_instance(
    port: &dyn XComStore,
    _clock: &ManualClock,
) -> Result<(), String> {
    let target = task("r1", "a", 0);
    put(port, &target, "k1", &json!(1)).await?;
    put(port, &target, "k2", &json!(2)).await?;
    put(port, &task("r1", "a", 1), "k1", &json!(3)).await?;
    put(port, &task("r1", "b", 0), "k1", &json!(4)).await?;
    put(port, &task("r2", "a", 0), "k1", &json!(5)).await?;
    port.delete_for_task(&target).await.ctx("delete_for_task")?;
    let left = port.list(&run_key("r1"), None).await.ctx("list")?;
    ensure_eq!(
        names(&left),
        vec!["d/r1/a[1]:k1", "d/r1/b[0]:k1"],
        "run r1 after delete_for_task"
    );
    ensure_eq!(
        get(port, &task("r2", "a", 0), "k1").await?,
        Some(json!(5)),
        "another run's value"
    );
    Ok(())
}

/// `delete_for_run` removes every value of one run, not of other runs.
pub async fn delete_for_run_removes_only_that_run(
    port: &dyn XComStore,
    _clock: &ManualClock,
) -> Result<(), String> {
    put(port, &task("r1", "a", -1), "k", &json!(1)).await?;
    put(port, &task("r1", "b", 3), "k", &json!(2)).await?;
    put(port, &task("r2", "a", -1), "k", &json!(3)).await?;
    port.delete_for_run(&run_key("r1"))
        .await
        .ctx("delete_for_run")?;
    let left = port.list(&run_key("r1"), None).await.ctx("list")?;
    ensure!(left.is_empty(), "delete_for_run left {:?}", names(&left));
    ensure_eq!(
        get(port, &task("r2", "a", -1), "k").await?,
        Some(json!(3)),
        "another run's value"
    );
    Ok(())
}

/// `list` is ordered by (task_id, map_index, key), limited to the run, optionally to a task.
pub async fn list_is_ordered_by_task_map_index_and_key_and_filters_by_task(
    port: &dyn XComStore,
    _clock: &ManualClock,
) -> Result<(), String> {
    put(port, &task("r1", "b", -1), "k", &json!(1)).await?;
    put(port, &task("r1", "a", 1), "z", &json!(2)).await?;
    put(port, &task("r1", "a", 0), "y", &json!(3)).await?;
    put(port, &task("r1", "a", 0), "x", &json!(4)).await?;
    put(port, &task("r2", "a", 0), "x", &json!(5)).await?;
    let all = port.list(&run_key("r1"), None).await.ctx("list")?;
    ensure_eq!(
        names(&all),
        vec!["d/r1/a[0]:x", "d/r1/a[0]:y", "d/r1/a[1]:z", "d/r1/b:k"],
        "list(r1)"
    );
    ensure_eq!(all[0].value, json!(4), "first listed value");
    let only_a = port.list(&run_key("r1"), Some("a")).await.ctx("list")?;
    ensure_eq!(
        names(&only_a),
        vec!["d/r1/a[0]:x", "d/r1/a[0]:y", "d/r1/a[1]:z"],
        "list(r1, a)"
    );
    let none = port.list(&run_key("r3"), None).await.ctx("list")?;
    ensure!(
        none.is_empty(),
        "list of a run without values returned {:?}",
        names(&none)
    );
    Ok(())
}

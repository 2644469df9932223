//! XCom on a real server: the default 256 KiB cap, values Postgres's jsonb could not hold,
//! and expiry on the system clock.

use std::time::Duration;

use leoflow_ports::run::{RunKey, TaskKey};
use leoflow_ports::xcom::{Error, XComStore, DEFAULT_MAX_VALUE_BYTES};
use leoflow_postgres::testing::{fresh_adapters, fresh_adapters_with};
use serde_json::{json, Value};

fn task() -> TaskKey {
    TaskKey::new(&RunKey::new("d", "r"), "t", -1)
}

/// A JSON string whose compact encoding is `size` bytes.
fn value_of_size(size: usize) -> Value {
    Value::String("x".repeat(size - 2))
}

#[tokio::test]
async fn a_value_over_the_default_cap_is_rejected_with_a_clear_error() {
    let a = fresh_adapters().await;
    assert_eq!(a.xcom.max_value_bytes(), DEFAULT_MAX_VALUE_BYTES);
    let too_big = value_of_size(DEFAULT_MAX_VALUE_BYTES + 1);
    let err = a
        .xcom
        .put(&task(), "return_value", &too_big)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::TooLarge {
            size: 262_145,
            limit: 262_144
        }
    );
    let message = err.to_string();
    println!("{message}");
    assert!(
        message.contains("262145 bytes exceeds the 262144-byte limit"),
        "{message}"
    );
    assert!(message.contains("write large data to storage"), "{message}");
    assert_eq!(a.xcom.get(&task(), "return_value").await.unwrap(), None);

    let at_cap = value_of_size(DEFAULT_MAX_VALUE_BYTES);
    a.xcom.put(&task(), "return_value", &at_cap).await.unwrap();
    let entry = a.xcom.get(&task(), "return_value").await.unwrap().unwrap();
    assert_eq!(entry.size_bytes, DEFAULT_MAX_VALUE_BYTES);
    assert_eq!(entry.value, at_cap);
}

#[tokio::test]
async fn values_round_trip_exactly() {
    let a = fresh_adapters().await;
    let value = json!({
        "nul": "a\u{0}b",
        "big": 18_446_744_073_709_551_615_u64,
        "float": 0.1,
        "neg": -2.5e-7,
        "nested": [{"z": 1, "a": [true, null]}],
        "unicode": "é🚀",
    });
    a.xcom.put(&task(), "k", &value).await.unwrap();
    assert_eq!(
        a.xcom.get(&task(), "k").await.unwrap().unwrap().value,
        value
    );
}

#[tokio::test]
async fn values_expire_on_the_system_clock() {
    let a = fresh_adapters_with(|mut c| {
        c.xcom_ttl = Duration::from_millis(200);
        c
    })
    .await;
    a.xcom.put(&task(), "k", &json!(1)).await.unwrap();
    assert!(a.xcom.get(&task(), "k").await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(a.xcom.get(&task(), "k").await.unwrap(), None);
    assert_eq!(a.xcom.purge_expired().await.unwrap(), 1);
}

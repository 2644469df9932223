//! Key names. Components are JSON-encoded, so ids containing `:` or quotes can never make
//! two different keys collide.

use leoflow_ports::run::{RunKey, TaskKey};
use serde_json::json;

/// The member naming one value inside its run's index: `[task_id, map_index, key]`.
pub fn member(task: &TaskKey, key: &str) -> String {
    json!([task.task_id, task.map_index, key]).to_string()
}

/// The string key holding one XCom value.
pub fn xcom_value(prefix: &str, run: &RunKey, member: &str) -> String {
    format!(
        "{prefix}:xcom:v:{}:{member}",
        json!([run.dag_id, run.run_id])
    )
}

/// The set of a run's value members.
pub fn xcom_index(prefix: &str, run: &RunKey) -> String {
    format!("{prefix}:xcom:i:{}", json!([run.dag_id, run.run_id]))
}

/// The sorted set of every value key by its expiry (milliseconds), for `purge_expired`.
pub fn xcom_expiry(prefix: &str) -> String {
    format!("{prefix}:xcom:expiry")
}

/// The hash holding a lease's holder, token and expiry.
pub fn lease(prefix: &str, name: &str) -> String {
    format!("{prefix}:lease:{}", json!(name))
}

/// The counter a lease's fencing tokens come from (never expires).
pub fn lease_tokens(prefix: &str, name: &str) -> String {
    format!("{prefix}:lease-token:{}", json!(name))
}

/// The pub/sub channel of change notifications.
pub fn changes(prefix: &str) -> String {
    format!("{prefix}:changes")
}

#[cfg(test)]
mod tests {
    use leoflow_ports::run::{RunKey, TaskKey};

    use super::{member, xcom_value};

    #[test]
    fn ids_with_separators_do_not_collide() {
        let a = RunKey::new("d:x", "r");
        let b = RunKey::new("d", "x:r");
        let m = member(&TaskKey::new(&a, "t", -1), "k");
        assert_ne!(xcom_value("p", &a, &m), xcom_value("p", &b, &m));
        assert_eq!(m, r#"["t",-1,"k"]"#);
    }
}

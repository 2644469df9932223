//! Airflow 3.2.1's response shapes that several resources share (DAG, DAG version, DAG
//! run, task instance, collections), built from the domain records. Nullable fields are
//! always present as `null`, as Airflow renders them.

use chrono::{DateTime, SecondsFormat, Utc};
use leoflow_ports::dag::DagSpec;
use leoflow_ports::run::{DagRun, TaskInstance};
use leoflow_ports::state::TaskState;
use leoflow_ports::version::{DagRecord, DagVersion};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The bundle every DAG is reported in.
pub const BUNDLE: &str = "leoflow";
/// The one pool.
pub const DEFAULT_POOL: &str = "default_pool";
/// Airflow's default for `max_active_tasks`.
const DEFAULT_MAX_ACTIVE_TASKS: u32 = 16;
/// Airflow's default for `max_active_runs`.
const DEFAULT_MAX_ACTIVE_RUNS: u32 = 16;

/// An RFC 3339 timestamp with microseconds and `Z`, as Airflow renders them.
pub fn ts(t: DateTime<Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(SecondsFormat::Micros, true))
}

pub fn ts_opt(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, ts)
}

/// A stable UUID-shaped id derived from `parts` (Leoflow keys rows by name, Airflow's
/// shapes want UUIDs).
pub fn uuid_of(parts: &[&str]) -> String {
    let digest = Sha256::digest(parts.join("\u{1f}").as_bytes());
    let h = hex::encode(&digest[..16]);
    format!(
        "{}-{}-8{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// `{<field>: items, total_entries: total}`.
pub fn collection(field: &str, items: Vec<Value>, total: usize) -> Value {
    let mut map = serde_json::Map::new();
    map.insert(field.into(), Value::Array(items));
    map.insert("total_entries".into(), json!(total));
    Value::Object(map)
}

/// `DagVersionResponse`.
pub fn version(v: &DagVersion) -> Value {
    json!({
        "id": uuid_of(&[&v.dag_id, &v.version_number.to_string()]),
        "version_number": v.version_number,
        "dag_id": v.dag_id,
        "bundle_name": BUNDLE,
        "bundle_version": v.label,
        "created_at": ts(v.created_at),
        "dag_display_name": v.dag_id,
        "bundle_url": null,
    })
}

fn fileloc(spec: &DagSpec) -> String {
    spec.fileloc
        .clone()
        .unwrap_or_else(|| format!("{}/dag.py", spec.dag_id))
}

/// Airflow's human summary of a schedule.
fn timetable_description(schedule: Option<&str>) -> Value {
    let Some(s) = schedule else {
        return json!("Never, external triggers only");
    };
    let text = match s {
        "@once" => "Once".to_string(),
        "@hourly" => "Hourly".to_string(),
        "@daily" | "@midnight" => "Daily".to_string(),
        "@weekly" => "Weekly".to_string(),
        "@monthly" => "Monthly".to_string(),
        "@yearly" | "@annually" => "Yearly".to_string(),
        other => other.to_string(),
    };
    json!(text)
}

/// `DAGResponse`.
pub fn dag(rec: &DagRecord, spec: &DagSpec) -> Value {
    json!({
        "dag_id": rec.dag_id,
        "dag_display_name": rec.dag_id,
        "is_paused": rec.is_paused,
        "is_stale": !rec.is_active,
        "last_parsed_time": ts(rec.last_registered_at),
        "last_parse_duration": null,
        "last_expired": null,
        "bundle_name": BUNDLE,
        "bundle_version": spec.dag_version,
        "relative_fileloc": fileloc(spec),
        "fileloc": fileloc(spec),
        "description": spec.description,
        "timetable_summary": spec.schedule,
        "timetable_description": timetable_description(spec.schedule.as_deref()),
        "timetable_partitioned": false,
        "tags": spec.tags.iter().map(|t| json!({"name": t, "dag_id": rec.dag_id, "dag_display_name": rec.dag_id})).collect::<Vec<_>>(),
        "max_active_tasks": spec.max_active_tasks.unwrap_or(DEFAULT_MAX_ACTIVE_TASKS),
        "max_active_runs": spec.max_active_runs.unwrap_or(DEFAULT_MAX_ACTIVE_RUNS),
        "max_consecutive_failed_dag_runs": 0,
        "has_task_concurrency_limits": false,
        "has_import_errors": false,
        "next_dagrun_logical_date": null,
        "next_dagrun_data_interval_start": null,
        "next_dagrun_data_interval_end": null,
        "next_dagrun_run_after": null,
        "allowed_run_types": ["manual", "scheduled"],
        "owners": [spec.owner.clone().unwrap_or_else(|| "airflow".into())],
        "file_token": hex::encode(&Sha256::digest(format!("{}fileloc", rec.dag_id).as_bytes())[..8]),
    })
}

/// `DAGDetailsResponse`: [`dag`] plus the spec's details and the latest version.
pub fn dag_details(rec: &DagRecord, spec: &DagSpec, latest: Option<&DagVersion>) -> Value {
    let mut v = dag(rec, spec);
    let extra = json!({
        "catchup": spec.catchup,
        "dag_run_timeout": spec.dagrun_timeout_seconds.map(|s| format!("P0DT0H0M{s}S")),
        "asset_expression": null,
        "doc_md": spec.doc_md,
        "start_date": ts_opt(spec.start_date),
        "end_date": ts_opt(spec.end_date),
        "is_paused_upon_creation": null,
        "params": serde_json::to_value(&spec.params).unwrap_or(Value::Null),
        "render_template_as_native_obj": false,
        "template_search_path": null,
        "timezone": spec.schedule_timezone.clone().unwrap_or_else(|| "UTC".into()),
        "last_parsed": ts(rec.last_registered_at),
        "default_args": serde_json::to_value(&spec.default_args).unwrap_or(Value::Null),
        "owner_links": null,
        "is_favorite": false,
        "active_runs_count": 0,
        "concurrency": spec.max_active_tasks.unwrap_or(DEFAULT_MAX_ACTIVE_TASKS),
        "latest_dag_version": latest.map_or(Value::Null, version),
    });
    if let (Value::Object(base), Value::Object(more)) = (&mut v, extra) {
        base.extend(more);
    }
    v
}

fn seconds_between(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> Value {
    match (start, end) {
        (Some(s), Some(e)) => json!((e - s).num_microseconds().unwrap_or(0) as f64 / 1e6),
        _ => Value::Null,
    }
}

/// `DAGRunResponse`.
pub fn run(r: &DagRun, version: Option<&DagVersion>) -> Value {
    json!({
        "dag_run_id": r.run_id,
        "dag_id": r.dag_id,
        "logical_date": ts_opt(r.logical_date),
        "queued_at": ts(r.queued_at),
        "start_date": ts_opt(r.started_at),
        "end_date": ts_opt(r.ended_at),
        "duration": seconds_between(r.started_at, r.ended_at),
        "data_interval_start": ts_opt(r.data_interval_start),
        "data_interval_end": ts_opt(r.data_interval_end),
        "run_after": ts(r.run_after),
        "last_scheduling_decision": null,
        "run_type": r.run_type.as_str(),
        "state": r.state.as_str(),
        "triggered_by": match r.run_type {
            leoflow_ports::run::RunType::Scheduled => "timetable",
            leoflow_ports::run::RunType::Backfill => "backfill",
            leoflow_ports::run::RunType::Manual => "rest_api",
        },
        "triggering_user_name": r.triggered_by,
        "conf": r.conf,
        "note": r.note,
        "dag_versions": version.map(version_list).unwrap_or_default(),
        "bundle_version": version.map(|v| v.label.clone()),
        "dag_display_name": r.dag_id,
        "partition_key": null,
    })
}

fn version_list(v: &DagVersion) -> Vec<Value> {
    vec![version(v)]
}

/// A task state as Airflow spells it (`none` is `null`).
pub fn task_state(s: TaskState) -> Value {
    match s {
        TaskState::None => Value::Null,
        other => json!(other.as_str()),
    }
}

/// The fields `TaskInstanceResponse` and `TaskInstanceHistoryResponse` share.
fn ti_common(ti: &TaskInstance, version: Option<&DagVersion>) -> serde_json::Map<String, Value> {
    let v = json!({
        "task_id": ti.key.task_id,
        "dag_id": ti.key.dag_id,
        "dag_run_id": ti.key.run_id,
        "map_index": ti.key.map_index,
        "start_date": ts_opt(ti.started_at),
        "end_date": ts_opt(ti.ended_at),
        "duration": seconds_between(ti.started_at, ti.ended_at),
        "state": task_state(ti.state),
        "try_number": ti.try_number,
        "max_tries": ti.max_tries,
        "task_display_name": ti.key.task_id,
        "dag_display_name": ti.key.dag_id,
        "hostname": ti.hostname,
        "unixname": null,
        "pool": DEFAULT_POOL,
        "pool_slots": 1,
        "queue": "default",
        "priority_weight": 1,
        "operator": ti.operator,
        "operator_name": ti.operator,
        "queued_when": ts_opt(ti.queued_at),
        "scheduled_when": ts_opt(ti.scheduled_at),
        "pid": null,
        "executor": null,
        "executor_config": "{}",
        "dag_version": version.map_or(Value::Null, self::version),
    });
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// `TaskInstanceResponse`.
pub fn task_instance(ti: &TaskInstance, run: &DagRun, version: Option<&DagVersion>) -> Value {
    let mut m = ti_common(ti, version);
    let id_parts = [
        ti.key.dag_id.as_str(),
        ti.key.run_id.as_str(),
        ti.key.task_id.as_str(),
        &ti.key.map_index.to_string(),
    ];
    m.insert("id".into(), json!(uuid_of(&id_parts)));
    m.insert("logical_date".into(), ts_opt(run.logical_date));
    m.insert("run_after".into(), ts(run.run_after));
    m.insert("note".into(), json!(ti.note));
    m.insert("rendered_map_index".into(), Value::Null);
    m.insert("rendered_fields".into(), json!({}));
    m.insert("trigger".into(), Value::Null);
    m.insert("triggerer_job".into(), Value::Null);
    Value::Object(m)
}

/// `TaskInstanceHistoryResponse`.
pub fn task_instance_try(ti: &TaskInstance, version: Option<&DagVersion>) -> Value {
    Value::Object(ti_common(ti, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_uuid_shaped_and_stable() {
        let a = uuid_of(&["d", "1"]);
        assert_eq!(a, uuid_of(&["d", "1"]));
        assert_ne!(a, uuid_of(&["d", "2"]));
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
    }
}

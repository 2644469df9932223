//! The private `/ui/*` API the Airflow 3.2.1 web UI calls (`_private_ui.yaml` in the
//! `apache-airflow-core` wheel): the DAG list with recent runs, the grid and graph data,
//! the dashboard, and valid empty answers for what Leoflow does not have (assets,
//! backfills, teams, deadlines, partitions), plus the `/api/v2` reads the UI needs that
//! the REST API proper does not serve (`v2_gaps`). Its routes join the REST API's route table,
//! so the same guard authenticates them (bearer token or `_token` cookie) and checks their
//! roles and query parameters.

mod absent;
mod calendar;
mod dags;
mod dashboard;
mod gantt;
mod graph;
mod grid;
mod hook_meta;
mod session;
mod task_groups;
mod v2_gaps;

use std::sync::Arc;

use axum::http::Method;
use axum::routing::MethodRouter;
use axum::Json;
use chrono::{DateTime, Utc};
use leoflow_ports::run::DagRun;
use serde_json::{json, Value};

use crate::rest_api::identity::Role;
use crate::rest_api::routes::{route, Access, Route};
use crate::rest_api::shapes::{ts, ts_opt};
use crate::rest_api::Api;

const DAGS_QUERY: &[&str] = &[
    "dag_runs_limit",
    "limit",
    "offset",
    "tags",
    "tags_match_mode",
    "owners",
    "dag_ids",
    "dag_id_pattern",
    "dag_display_name_pattern",
    "exclude_stale",
    "paused",
    "has_import_errors",
    "last_dag_run_state",
    "bundle_name",
    "bundle_version",
    "order_by",
    "is_favorite",
    "has_asset_schedule",
    "asset_dependency",
    "has_pending_actions",
];
const GRID_RUNS_QUERY: &[&str] = &[
    "offset",
    "limit",
    "order_by",
    "run_after_gte",
    "run_after_gt",
    "run_after_lte",
    "run_after_lt",
    "run_type",
    "state",
    "triggering_user",
];
const GRID_STRUCTURE_QUERY: &[&str] = &[
    "include_upstream",
    "include_downstream",
    "depth",
    "root",
    "offset",
    "limit",
    "order_by",
    "run_after_gte",
    "run_after_gt",
    "run_after_lte",
    "run_after_lt",
    "run_type",
    "state",
    "triggering_user",
];
const STRUCTURE_QUERY: &[&str] = &[
    "dag_id",
    "include_upstream",
    "include_downstream",
    "depth",
    "root",
    "external_dependencies",
    "version_number",
];
const CALENDAR_QUERY: &[&str] = &[
    "granularity",
    "logical_date_gte",
    "logical_date_gt",
    "logical_date_lte",
    "logical_date_lt",
    "partition_date_gte",
    "partition_date_gt",
    "partition_date_lte",
    "partition_date_lt",
];
const PAGE_QUERY: &[&str] = &["limit", "offset", "order_by"];
const HITL_QUERY: &[&str] = &[
    "limit",
    "offset",
    "order_by",
    "dag_id_pattern",
    "task_id",
    "task_id_pattern",
    "map_index",
    "state",
    "response_received",
    "responded_by_user_id",
    "responded_by_user_name",
    "subject_search",
    "body_search",
    "created_at_gte",
    "created_at_gt",
    "created_at_lte",
    "created_at_lt",
];
const JOBS_QUERY: &[&str] = &[
    "is_alive",
    "start_date_gte",
    "start_date_gt",
    "start_date_lte",
    "start_date_lt",
    "end_date_gte",
    "end_date_gt",
    "end_date_lte",
    "end_date_lt",
    "limit",
    "offset",
    "order_by",
    "job_state",
    "job_type",
    "hostname",
    "executor_class",
];
const ASSET_EVENTS_QUERY: &[&str] = &[
    "limit",
    "offset",
    "order_by",
    "asset_id",
    "source_dag_id",
    "source_task_id",
    "source_run_id",
    "source_map_index",
    "name_pattern",
    "timestamp_gte",
    "timestamp_gt",
    "timestamp_lte",
    "timestamp_lt",
];

/// Every `/ui/*` route, one line each, in the REST API's route-table form.
#[rustfmt::skip]
pub(crate) fn table() -> Vec<(Route, MethodRouter<Arc<Api>>)> {
    use Access::{AtLeast, Public};
    use Role::Viewer;
    const GET: Method = Method::GET;
    const POST: Method = Method::POST;
    vec![
        route(GET, "/ui/config", Public, &[], None, session::config),
        route(GET, "/ui/auth/menus", AtLeast(Viewer), &[], None, session::menus),
        route(GET, "/ui/auth/me", AtLeast(Viewer), &[], None, session::me),
        route(POST, "/ui/auth/token", AtLeast(Viewer), &[], None, session::token),
        route(GET, "/ui/dags", AtLeast(Viewer), DAGS_QUERY, None, dags::list),
        route(GET, "/ui/dags/{dag_id}/latest_run", AtLeast(Viewer), &[], None, dags::latest_run),
        route(GET, "/ui/dashboard/dag_stats", AtLeast(Viewer), &[], None, dashboard::dag_stats),
        route(GET, "/ui/dashboard/historical_metrics_data", AtLeast(Viewer), &["start_date", "end_date"], None, dashboard::historical_metrics),
        route(GET, "/ui/grid/runs/{dag_id}", AtLeast(Viewer), GRID_RUNS_QUERY, None, grid::runs),
        route(GET, "/ui/grid/structure/{dag_id}", AtLeast(Viewer), GRID_STRUCTURE_QUERY, None, grid::structure),
        route(GET, "/ui/grid/ti_summaries/{dag_id}", AtLeast(Viewer), &["run_ids"], None, grid::ti_summaries),
        route(GET, "/ui/structure/structure_data", AtLeast(Viewer), STRUCTURE_QUERY, None, graph::structure_data),
        route(GET, "/ui/gantt/{dag_id}/{run_id}", AtLeast(Viewer), &[], None, gantt::get),
        route(GET, "/ui/calendar/{dag_id}", AtLeast(Viewer), CALENDAR_QUERY, None, calendar::get),
        route(GET, "/ui/connections/hook_meta", AtLeast(Viewer), &[], None, hook_meta::list),
        route(GET, "/ui/dependencies", AtLeast(Viewer), &["node_id", "dependency_type"], None, absent::dependencies),
        route(GET, "/ui/backfills", AtLeast(Viewer), &["limit", "offset", "order_by", "dag_id", "active"], None, absent::backfills),
        route(GET, "/ui/teams", AtLeast(Viewer), PAGE_QUERY, None, absent::teams),
        route(GET, "/ui/next_run_assets/{dag_id}", AtLeast(Viewer), &[], None, absent::next_run_assets),
        route(GET, "/ui/dags/{dag_id}/dagRuns/{dag_run_id}/deadlines", AtLeast(Viewer), PAGE_QUERY, None, absent::deadlines),
        route(GET, "/ui/partitioned_dag_runs", AtLeast(Viewer), &["dag_id", "has_created_dag_run_id"], None, absent::partitioned_dag_runs),
        route(GET, "/ui/pending_partitioned_dag_run/{dag_id}/{partition_key}", AtLeast(Viewer), &[], None, absent::pending_partitioned_dag_run),
        // The /api/v2 reads the UI needs beyond the REST API proper.
        route(GET, "/api/v2/dagTags", AtLeast(Viewer), &["limit", "offset", "order_by", "tag_name_pattern"], None, v2_gaps::dag_tags),
        route(GET, "/api/v2/dagSources/{dag_id}", AtLeast(Viewer), &["version_number"], None, v2_gaps::dag_source),
        route(GET, "/api/v2/plugins", AtLeast(Viewer), &["limit", "offset"], None, || async { v2_gaps::empty("plugins") }),
        route(GET, "/api/v2/plugins/importErrors", AtLeast(Viewer), &[], None, || async { v2_gaps::empty("import_errors") }),
        route(GET, "/api/v2/providers", AtLeast(Viewer), &["limit", "offset"], None, || async { v2_gaps::empty("providers") }),
        route(GET, "/api/v2/jobs", AtLeast(Viewer), JOBS_QUERY, None, || async { v2_gaps::empty("jobs") }),
        route(GET, "/api/v2/dagWarnings", AtLeast(Viewer), &["dag_id", "warning_type", "limit", "offset", "order_by"], None, || async { v2_gaps::empty("dag_warnings") }),
        route(GET, "/api/v2/assets", AtLeast(Viewer), &["limit", "offset", "name_pattern", "uri_pattern", "dag_ids", "only_active", "order_by"], None, || async { v2_gaps::empty("assets") }),
        route(GET, "/api/v2/assets/aliases", AtLeast(Viewer), &["limit", "offset", "name_pattern", "order_by"], None, || async { v2_gaps::empty("asset_aliases") }),
        route(GET, "/api/v2/assets/events", AtLeast(Viewer), ASSET_EVENTS_QUERY, None, || async { v2_gaps::empty("asset_events") }),
        route(GET, "/api/v2/dags/{dag_id}/assets/queuedEvents", AtLeast(Viewer), &["before"], None, || async { v2_gaps::empty("queued_events") }),
        route(GET, "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/upstreamAssetEvents", AtLeast(Viewer), &[], None, || async { v2_gaps::empty("asset_events") }),
        route(GET, "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/hitlDetails", AtLeast(Viewer), HITL_QUERY, None, || async { v2_gaps::empty("hitl_details") }),
        route(GET, "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}/hitlDetails", AtLeast(Viewer), &[], None, v2_gaps::hitl_detail),
        route(GET, "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/links", AtLeast(Viewer), &["map_index"], None, || async { Json(json!({"extra_links": {}, "total_entries": 0})) }),
        route(GET, "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/dependencies", AtLeast(Viewer), &["map_index"], None, v2_gaps::task_dependencies),
        route(GET, "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}/dependencies", AtLeast(Viewer), &[], None, v2_gaps::task_dependencies),
        route(GET, "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}/tries", AtLeast(Viewer), &[], None, v2_gaps::mapped_tries),
        route(GET, "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}/tries/{task_try_number}", AtLeast(Viewer), &[], None, v2_gaps::mapped_try),
    ]
}

/// A run's duration in seconds: until its end, or until `now` while it is unfinished.
fn duration(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Value {
    match start {
        Some(s) => json!((end.unwrap_or(now) - s).num_milliseconds() as f64 / 1e3),
        None => Value::Null,
    }
}

/// Airflow's integer run id, derived from the run's key (FNV-1a, 32 bits): stable across
/// responses, which is all the UI uses it for.
fn run_number(r: &DagRun) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in r.dag_id.bytes().chain([0]).chain(r.run_id.bytes()) {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// `DAGRunLightResponse`.
fn light_run(r: &DagRun, now: DateTime<Utc>) -> Value {
    json!({
        "id": run_number(r),
        "dag_id": r.dag_id,
        "run_id": r.run_id,
        "logical_date": ts_opt(r.logical_date),
        "run_after": ts(r.run_after),
        "start_date": ts_opt(r.started_at),
        "end_date": ts_opt(r.ended_at),
        "state": r.state.as_str(),
        "duration": duration(r.started_at, r.ended_at, now),
    })
}

//! `GET /ui/calendar/{dag_id}`: a DAG's runs counted by day (or hour) and state, for the
//! calendar view. A run is placed at its logical date, or its `run_after` when it has none.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use leoflow_ports::datastore::RunFilter;
use serde_json::{json, Value};

use crate::problem::{datastore_problem, Problem};
use crate::rest_api::dags::load;
use crate::rest_api::query::{Params, Range};
use crate::rest_api::{shapes, Api};

/// `GET /ui/calendar/{dag_id}?granularity=daily|hourly&logical_date_gte=…`.
pub async fn get(
    State(api): State<Arc<Api>>,
    Path(dag_id): Path<String>,
    q: RawQuery,
) -> Result<Json<Value>, Problem> {
    let q = Params::from(q);
    load(&api, &dag_id).await?;
    let bucket = match q.one("granularity").unwrap_or("daily") {
        "daily" => TimeDelta::days(1),
        "hourly" => TimeDelta::hours(1),
        other => {
            return Err(Problem::bad_request(format!(
                "granularity must be daily or hourly, got {other:?}"
            )))
        }
    };
    let window = Range::from_params(&q, "logical_date")?;
    let filter = RunFilter {
        dag_id: Some(dag_id),
        ..RunFilter::default()
    };
    let (runs, _) = api
        .engine
        .datastore()
        .list_runs(&filter)
        .await
        .map_err(datastore_problem)?;
    let mut counts: BTreeMap<(DateTime<Utc>, &str), usize> = BTreeMap::new();
    for r in &runs {
        let at = r.logical_date.unwrap_or(r.run_after);
        if !window.contains(Some(at)) {
            continue;
        }
        let slot = at.duration_trunc(bucket).unwrap_or(at);
        *counts.entry((slot, r.state.as_str())).or_default() += 1;
    }
    let dag_runs: Vec<Value> = counts
        .into_iter()
        .map(|((date, state), count)| json!({"date": shapes::ts(date), "state": state, "count": count}))
        .collect();
    Ok(Json(
        json!({"total_entries": dag_runs.len(), "dag_runs": dag_runs}),
    ))
}

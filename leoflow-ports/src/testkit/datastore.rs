//! The `Datastore` conformance suite: versions by content hash, atomic run creation,
//! compare-and-set transitions, fencing, archived tries, listings, and the metadata CRUD.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::fixtures::{self, at, moved};
use super::Context;
use crate::dag::DagSpec;
use crate::datastore::{
    AuditEvent, Connection, Datastore, Error, ImportError, RunFilter, TaskFilter, Transition, User,
    Variable,
};
use crate::lock::FencingToken;
use crate::run::{DagRun, RunKey, RunType, TaskInstance, TaskKey};
use crate::state::{RunState, TaskState};
use crate::version::{content_hash, DagVersion};

/// The list of behaviours, written once for both the macro and `run_all`.
#[doc(hidden)]
#[macro_export]
macro_rules! __leoflow_datastore_behaviours {
    ($callback:ident! { $($args:tt)* }) => {
        $crate::$callback! { $($args)* behaviours [
            register_version_creates_the_dag_at_version_one,
            register_version_is_idempotent_by_content_hash,
            register_version_numbers_new_content_in_order,
            re_registering_an_older_spec_makes_it_latest_again,
            register_version_reactivates_a_deactivated_dag,
            list_dags_is_ordered_by_id_and_hides_inactive_dags,
            set_paused_is_stored_and_unknown_dag_is_not_found,
            clear_history_deletes_runs_and_keeps_versions,
            create_run_stores_the_run_and_every_task_instance,
            create_run_of_an_existing_run_is_a_conflict_and_changes_nothing,
            create_run_that_fails_stores_nothing,
            create_run_with_a_stale_fence_is_refused_and_stores_nothing,
            list_runs_filters_by_dag_and_state_newest_first,
            list_runs_paginates_and_counts_before_paging,
            active_runs_are_queued_and_running_oldest_first,
            last_scheduled_logical_date_ignores_other_run_types,
            update_run_is_a_compare_and_set_on_state,
            delete_run_removes_the_run_and_its_task_instances,
            transition_writes_when_state_and_try_match,
            transition_from_a_wrong_state_changes_nothing,
            transition_at_a_wrong_try_changes_nothing,
            concurrent_transitions_from_one_state_let_exactly_one_win,
            transition_with_a_stale_fence_is_refused_and_changes_nothing,
            transition_of_an_unknown_instance_writes_nothing,
            transition_keeps_note_and_heartbeat_until_a_new_try,
            transition_many_is_one_compare_and_set_per_item_in_order,
            tries_archive_the_previous_try_when_the_try_number_grows,
            heartbeat_is_recorded_for_the_current_attempt,
            heartbeat_of_an_attempt_that_is_not_current_is_refused,
            in_flight_lists_queued_and_running_instances_of_every_run,
            add_task_instances_adds_new_ones_and_keeps_existing_ones,
            list_task_instances_filters_orders_and_counts,
            set_task_note_is_stored_and_unknown_instance_is_not_found,
            stale_fence_is_refused_by_every_fenced_write,
            raise_fence_never_lowers_the_fence,
            users_are_inserted_or_replaced,
            variables_round_trip_and_deleting_a_missing_one_is_not_found,
            connections_round_trip_and_deleting_a_missing_one_is_not_found,
            audit_ids_increase_and_the_log_lists_newest_first,
            import_errors_are_replaced_by_filename_and_deleted,
        ] }
    };
}

/// One `#[tokio::test]` per datastore behaviour, in a module `datastore_conformance`.
///
/// The argument is a future yielding a fresh, empty `Arc<impl Datastore>`; see
/// [`crate::testkit`].
#[macro_export]
macro_rules! datastore_conformance {
    ($factory:expr) => {
        $crate::__leoflow_datastore_behaviours!(__leoflow_conformance_tests! {
            plain datastore datastore_conformance ($crate::datastore::Datastore) ($factory)
        });
    };
}

/// Runs every behaviour, each on a fresh datastore from `factory`.
pub async fn run_all<F, Fut>(factory: F) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Datastore>>,
{
    crate::__leoflow_datastore_behaviours!(__leoflow_run_all! { plain factory })
}

// ---------------------------------------------------------------------------------------
// Shared steps.

/// The spec every seeded run belongs to: version 1 of `dag_id`.
fn seed_spec(dag_id: &str) -> DagSpec {
    fixtures::spec(dag_id, "v1", &["a", "b", "c"])
}

async fn register(
    port: &dyn Datastore,
    spec: DagSpec,
    when: DateTime<Utc>,
) -> Result<(DagVersion, bool), String> {
    let hash = content_hash(&spec);
    port.register_version(Arc::new(spec), &hash, when)
        .await
        .ctx("register_version")
}

/// Registers the DAG (so adapters with foreign keys accept the run) and creates a run of
/// it with unmapped instances of `task_ids`.
async fn seed_run(
    port: &dyn Datastore,
    run: &DagRun,
    task_ids: &[&str],
) -> Result<Vec<TaskInstance>, String> {
    register(port, seed_spec(&run.dag_id), at(0)).await?;
    let tasks = fixtures::tasks(&run.key(), task_ids);
    port.create_run(run, &tasks, None).await.ctx("create_run")?;
    Ok(tasks)
}

async fn get_ti(port: &dyn Datastore, key: &TaskKey) -> Result<TaskInstance, String> {
    port.get_task_instance(key)
        .await
        .ctx("get_task_instance")?
        .ok_or_else(|| format!("task instance {key} is missing"))
}

async fn get_run(port: &dyn Datastore, key: &RunKey) -> Result<DagRun, String> {
    port.get_run(key)
        .await
        .ctx("get_run")?
        .ok_or_else(|| format!("run {key} is missing"))
}

/// Moves a stored instance to `state` at `try_number`, requiring the write to happen.
async fn step(
    port: &dyn Datastore,
    key: &TaskKey,
    state: TaskState,
    try_number: u32,
) -> Result<TaskInstance, String> {
    let current = get_ti(port, key).await?;
    let next = moved(&current, state, try_number);
    let written = port
        .transition(&cas(&current, next.clone()), None)
        .await
        .ctx("transition")?;
    ensure!(
        written,
        "transition of {key} from {} (try {}) to {state} (try {try_number}) was not written",
        current.state,
        current.try_number
    );
    Ok(next)
}

/// A transition expecting `current` as stored.
fn cas(current: &TaskInstance, new: TaskInstance) -> Transition {
    Transition {
        expected_state: current.state,
        expected_try: current.try_number,
        new,
    }
}

fn keys(tis: &[TaskInstance]) -> Vec<String> {
    tis.iter().map(|t| t.key.to_string()).collect()
}

fn run_ids(runs: &[DagRun]) -> Vec<String> {
    runs.iter().map(|r| r.key().to_string()).collect()
}

fn is_fenced(err: &Error, token: u64, current: u64) -> bool {
    matches!(err, Error::Fenced { token: t, current: c } if *t == token && *c == current)
}

/// A run whose state was moved with `update_run`.
async fn set_run_state(
    port: &dyn Datastore,
    key: &RunKey,
    state: RunState,
) -> Result<DagRun, String> {
    let current = get_run(port, key).await?;
    let mut next = current.clone();
    next.state = state;
    let written = port
        .update_run(current.state, &next, None)
        .await
        .ctx("update_run")?;
    ensure!(written, "update_run of {key} to {state} was not written");
    Ok(next)
}

// ---------------------------------------------------------------------------------------
// DAGs and versions.

/// The first registration creates the DAG, unpaused and active, at version 1.
pub async fn register_version_creates_the_dag_at_version_one(
    port: &dyn Datastore,
) -> Result<(), String> {
    let spec = fixtures::spec("d", "v1", &["a"]);
    let hash = content_hash(&spec);
    let (version, created) = register(port, spec.clone(), at(5)).await?;
    ensure!(
        created,
        "the first registration reported an existing version"
    );
    ensure_eq!(version.dag_id, "d", "version dag_id");
    ensure_eq!(version.version_number, 1, "first version number");
    ensure_eq!(version.label, "v1", "version label");
    ensure_eq!(version.spec_hash, hash, "version spec_hash");
    ensure_eq!(*version.spec, spec, "version spec");
    ensure_eq!(version.created_at, at(5), "version created_at");

    let dag = port.get_dag("d").await.ctx("get_dag")?;
    let dag = dag.ok_or("the registered DAG is missing")?;
    ensure!(!dag.is_paused, "a new DAG must be unpaused");
    ensure!(dag.is_active, "a new DAG must be active");
    ensure_eq!(dag.latest_version, 1, "latest_version");
    ensure_eq!(dag.created_at, at(5), "created_at");
    ensure_eq!(dag.last_registered_at, at(5), "last_registered_at");

    let stored = port.get_version("d", 1).await.ctx("get_version")?;
    ensure_eq!(stored, Some(version), "get_version(d, 1)");
    let missing = port.get_version("d", 2).await.ctx("get_version")?;
    ensure!(missing.is_none(), "get_version(d, 2) returned {missing:?}");
    let unknown = port.get_dag("nope").await.ctx("get_dag")?;
    ensure!(unknown.is_none(), "get_dag(nope) returned {unknown:?}");
    Ok(())
}

/// The same content under another label is the same version, not a new one.
pub async fn register_version_is_idempotent_by_content_hash(
    port: &dyn Datastore,
) -> Result<(), String> {
    let (first, _) = register(port, fixtures::spec("d", "v1", &["a"]), at(0)).await?;
    let (again, created) =
        register(port, fixtures::spec("d", "relabelled", &["a"]), at(10)).await?;
    ensure!(
        !created,
        "re-registering the same content created a version"
    );
    ensure_eq!(again, first, "the version returned for known content");
    let versions = port.list_versions("d").await.ctx("list_versions")?;
    ensure_eq!(versions.len(), 1, "number of versions");
    let dag = port
        .get_dag("d")
        .await
        .ctx("get_dag")?
        .ok_or("DAG missing")?;
    ensure_eq!(dag.latest_version, 1, "latest_version");
    Ok(())
}

/// New content gets the next number and becomes the latest; versions list newest first.
pub async fn register_version_numbers_new_content_in_order(
    port: &dyn Datastore,
) -> Result<(), String> {
    let specs = [
        fixtures::spec("d", "v1", &["a"]),
        fixtures::spec("d", "v2", &["a", "b"]),
        fixtures::spec("d", "v3", &["a", "b", "c"]),
    ];
    for (i, spec) in specs.iter().enumerate() {
        let (version, created) = register(port, spec.clone(), at(i as i64)).await?;
        ensure!(created, "registration {} did not create a version", i + 1);
        ensure_eq!(version.version_number, i as u32 + 1, "version number");
        let dag = port
            .get_dag("d")
            .await
            .ctx("get_dag")?
            .ok_or("DAG missing")?;
        ensure_eq!(dag.latest_version, i as u32 + 1, "latest_version");
    }
    let versions = port.list_versions("d").await.ctx("list_versions")?;
    let numbers: Vec<u32> = versions.iter().map(|v| v.version_number).collect();
    ensure_eq!(numbers, vec![3, 2, 1], "list_versions order");
    let v2 = port.get_version("d", 2).await.ctx("get_version")?;
    ensure_eq!(
        v2.map(|v| v.spec.tasks.len()),
        Some(2),
        "tasks of version 2"
    );
    Ok(())
}

/// Re-registering an older version's content (a reverted DAG file) returns that version
/// and makes it the one new runs use again.
pub async fn re_registering_an_older_spec_makes_it_latest_again(
    port: &dyn Datastore,
) -> Result<(), String> {
    register(port, fixtures::spec("d", "v1", &["a"]), at(0)).await?;
    register(port, fixtures::spec("d", "v2", &["a", "b"]), at(1)).await?;
    let (version, created) = register(port, fixtures::spec("d", "v1", &["a"]), at(2)).await?;
    ensure!(!created, "reverting to known content created a version");
    ensure_eq!(
        version.version_number,
        1,
        "the version of the reverted content"
    );
    let dag = port
        .get_dag("d")
        .await
        .ctx("get_dag")?
        .ok_or("DAG missing")?;
    ensure_eq!(dag.latest_version, 1, "latest_version after the revert");
    ensure_eq!(dag.last_registered_at, at(2), "last_registered_at");
    let versions = port.list_versions("d").await.ctx("list_versions")?;
    ensure_eq!(versions.len(), 2, "number of versions");
    Ok(())
}

/// Deactivation hides the DAG but keeps its history; registering again re-activates it.
pub async fn register_version_reactivates_a_deactivated_dag(
    port: &dyn Datastore,
) -> Result<(), String> {
    let run = fixtures::run("d", "r1", at(100));
    seed_run(port, &run, &["a"]).await?;
    port.deactivate("d").await.ctx("deactivate")?;
    let dag = port
        .get_dag("d")
        .await
        .ctx("get_dag")?
        .ok_or("DAG missing")?;
    ensure!(!dag.is_active, "a deactivated DAG is still active");
    let listed = port.list_dags().await.ctx("list_dags")?;
    ensure!(
        listed.is_empty(),
        "list_dags shows a deactivated DAG: {listed:?}"
    );
    ensure!(
        port.get_run(&run.key()).await.ctx("get_run")?.is_some(),
        "deactivation deleted the DAG's runs"
    );

    let (version, created) = register(port, seed_spec("d"), at(200)).await?;
    ensure!(!created, "re-registering known content created a version");
    ensure_eq!(version.version_number, 1, "version number");
    let dag = port
        .get_dag("d")
        .await
        .ctx("get_dag")?
        .ok_or("DAG missing")?;
    ensure!(dag.is_active, "registration did not re-activate the DAG");
    let listed = port.list_dags().await.ctx("list_dags")?;
    ensure_eq!(listed.len(), 1, "list_dags after re-activation");
    Ok(())
}

/// `list_dags` returns active DAGs ordered by id.
pub async fn list_dags_is_ordered_by_id_and_hides_inactive_dags(
    port: &dyn Datastore,
) -> Result<(), String> {
    for id in ["c", "a", "d", "b"] {
        register(port, fixtures::spec(id, "v1", &["t"]), at(0)).await?;
    }
    port.deactivate("d").await.ctx("deactivate")?;
    let ids: Vec<String> = port
        .list_dags()
        .await
        .ctx("list_dags")?
        .into_iter()
        .map(|d| d.dag_id)
        .collect();
    ensure_eq!(ids, vec!["a", "b", "c"], "list_dags");
    Ok(())
}

/// `set_paused` returns and stores the new flag; an unknown DAG is `NotFound`.
pub async fn set_paused_is_stored_and_unknown_dag_is_not_found(
    port: &dyn Datastore,
) -> Result<(), String> {
    register(port, fixtures::spec("d", "v1", &["a"]), at(0)).await?;
    let paused = port.set_paused("d", true).await.ctx("set_paused")?;
    ensure!(
        paused.is_paused,
        "set_paused(true) returned an unpaused record"
    );
    let dag = port
        .get_dag("d")
        .await
        .ctx("get_dag")?
        .ok_or("DAG missing")?;
    ensure!(dag.is_paused, "the pause was not stored");
    let unpaused = port.set_paused("d", false).await.ctx("set_paused")?;
    ensure!(
        !unpaused.is_paused,
        "set_paused(false) returned a paused record"
    );
    let dag = port
        .get_dag("d")
        .await
        .ctx("get_dag")?
        .ok_or("DAG missing")?;
    ensure!(!dag.is_paused, "the unpause was not stored");
    match port.set_paused("nope", true).await {
        Err(Error::NotFound { .. }) => Ok(()),
        other => Err(format!(
            "set_paused(nope): expected NotFound, got {other:?}"
        )),
    }
}

/// `clear_history` deletes the DAG's runs and instances, nothing else.
pub async fn clear_history_deletes_runs_and_keeps_versions(
    port: &dyn Datastore,
) -> Result<(), String> {
    let run = fixtures::run("d", "r1", at(100));
    let tasks = seed_run(port, &run, &["a", "b"]).await?;
    step(port, &tasks[0].key, TaskState::Queued, 1).await?;
    let other = fixtures::run("e", "r1", at(100));
    seed_run(port, &other, &["a"]).await?;

    port.clear_history("d").await.ctx("clear_history")?;
    ensure!(
        port.get_run(&run.key()).await.ctx("get_run")?.is_none(),
        "the cleared run is still stored"
    );
    let tis = port
        .task_instances(&run.key())
        .await
        .ctx("task_instances")?;
    ensure!(
        tis.is_empty(),
        "the cleared run's instances remain: {:?}",
        keys(&tis)
    );
    ensure!(
        port.get_task_instance(&tasks[0].key)
            .await
            .ctx("get_task_instance")?
            .is_none(),
        "get_task_instance still finds a cleared instance"
    );
    let in_flight = port.in_flight().await.ctx("in_flight")?;
    ensure!(
        in_flight.is_empty(),
        "in_flight lists cleared instances: {:?}",
        keys(&in_flight)
    );
    let dag = port.get_dag("d").await.ctx("get_dag")?;
    ensure!(dag.is_some(), "clear_history deleted the DAG");
    let versions = port.list_versions("d").await.ctx("list_versions")?;
    ensure_eq!(versions.len(), 1, "versions after clear_history");
    ensure!(
        port.get_run(&other.key()).await.ctx("get_run")?.is_some(),
        "clear_history deleted another DAG's run"
    );
    port.create_run(&run, &tasks, None)
        .await
        .ctx("create_run after clear_history")?;
    let in_flight = port.in_flight().await.ctx("in_flight")?;
    ensure!(
        in_flight.is_empty(),
        "a re-created run inherits in-flight instances: {:?}",
        keys(&in_flight)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Runs.

/// The run and all its instances are stored; instances read back by (task_id, map_index).
pub async fn create_run_stores_the_run_and_every_task_instance(
    port: &dyn Datastore,
) -> Result<(), String> {
    register(port, seed_spec("d"), at(0)).await?;
    let run = fixtures::run("d", "r1", at(100));
    let key = run.key();
    let tasks = vec![
        fixtures::task(&key, "b", -1),
        fixtures::task(&key, "a", 1),
        fixtures::task(&key, "a", 0),
    ];
    port.create_run(&run, &tasks, None)
        .await
        .ctx("create_run")?;
    ensure_eq!(get_run(port, &key).await?, run, "stored run");
    let stored = port.task_instances(&key).await.ctx("task_instances")?;
    let expected = vec![tasks[2].clone(), tasks[1].clone(), tasks[0].clone()];
    ensure_eq!(
        stored,
        expected,
        "task_instances (ordered by task_id, map_index)"
    );
    for t in &tasks {
        ensure_eq!(
            get_ti(port, &t.key).await?,
            *t,
            "get_task_instance({})",
            t.key
        );
    }
    let missing = port
        .get_run(&RunKey::new("d", "nope"))
        .await
        .ctx("get_run")?;
    ensure!(
        missing.is_none(),
        "get_run of an unknown run returned {missing:?}"
    );
    let missing = port
        .get_task_instance(&TaskKey::new(&key, "zzz", -1))
        .await
        .ctx("get_task_instance")?;
    ensure!(
        missing.is_none(),
        "get_task_instance of an unknown task returned {missing:?}"
    );
    Ok(())
}

/// A second run with the same key is `Conflict`, and neither it nor its instances land.
pub async fn create_run_of_an_existing_run_is_a_conflict_and_changes_nothing(
    port: &dyn Datastore,
) -> Result<(), String> {
    let run = fixtures::run("d", "r1", at(100));
    let tasks = seed_run(port, &run, &["a"]).await?;
    let mut dup = run.clone();
    dup.conf = json!({"second": true});
    let dup_tasks = fixtures::tasks(&run.key(), &["a", "b"]);
    match port.create_run(&dup, &dup_tasks, None).await {
        Err(Error::Conflict { .. }) => {}
        other => {
            return Err(format!(
                "duplicate create_run: expected Conflict, got {other:?}"
            ))
        }
    }
    ensure_eq!(get_run(port, &run.key()).await?, run, "the original run");
    let stored = port
        .task_instances(&run.key())
        .await
        .ctx("task_instances")?;
    ensure_eq!(stored, tasks, "the original run's instances");
    Ok(())
}

/// A create_run that fails part-way (here: the same instance twice) leaves nothing. An
/// adapter may instead accept it and store the instance once.
pub async fn create_run_that_fails_stores_nothing(port: &dyn Datastore) -> Result<(), String> {
    register(port, seed_spec("d"), at(0)).await?;
    let run = fixtures::run("d", "r1", at(100));
    let key = run.key();
    let tasks = vec![
        fixtures::task(&key, "a", -1),
        fixtures::task(&key, "b", -1),
        fixtures::task(&key, "a", -1),
    ];
    let result = port.create_run(&run, &tasks, None).await;
    let stored_run = port.get_run(&key).await.ctx("get_run")?;
    let stored = port.task_instances(&key).await.ctx("task_instances")?;
    if result.is_err() {
        ensure!(stored_run.is_none(), "a failed create_run stored the run");
        ensure!(
            stored.is_empty(),
            "a failed create_run stored instances: {:?}",
            keys(&stored)
        );
    } else {
        ensure!(
            stored_run.is_some(),
            "a successful create_run stored no run"
        );
        ensure_eq!(keys(&stored), vec!["d/r1/a", "d/r1/b"], "instances stored");
    }
    Ok(())
}

/// A create_run carrying a token below the fence is `Fenced` and stores nothing.
pub async fn create_run_with_a_stale_fence_is_refused_and_stores_nothing(
    port: &dyn Datastore,
) -> Result<(), String> {
    register(port, seed_spec("d"), at(0)).await?;
    port.raise_fence(FencingToken(5)).await.ctx("raise_fence")?;
    let run = fixtures::run("d", "r1", at(100));
    let tasks = fixtures::tasks(&run.key(), &["a", "b"]);
    match port.create_run(&run, &tasks, Some(FencingToken(4))).await {
        Err(e) if is_fenced(&e, 4, 5) => {}
        other => {
            return Err(format!(
                "create_run with token 4 under fence 5: expected Fenced {{ token: 4, current: 5 }}, got {other:?}"
            ))
        }
    }
    ensure!(
        port.get_run(&run.key()).await.ctx("get_run")?.is_none(),
        "a fenced create_run stored the run"
    );
    let stored = port
        .task_instances(&run.key())
        .await
        .ctx("task_instances")?;
    ensure!(stored.is_empty(), "a fenced create_run stored instances");
    port.create_run(&run, &tasks, Some(FencingToken(5)))
        .await
        .ctx("create_run at the current fence")?;
    Ok(())
}

/// Four runs over two DAGs, at distinct times, in a spread of states.
async fn seed_listing(port: &dyn Datastore) -> Result<(), String> {
    seed_run(port, &fixtures::run("a", "r1", at(10)), &["a"]).await?;
    seed_run(port, &fixtures::run("a", "r2", at(20)), &["a"]).await?;
    seed_run(port, &fixtures::run("a", "r3", at(30)), &["a"]).await?;
    seed_run(port, &fixtures::run("b", "r4", at(25)), &["a"]).await?;
    set_run_state(port, &RunKey::new("a", "r2"), RunState::Running).await?;
    set_run_state(port, &RunKey::new("a", "r3"), RunState::Running).await?;
    set_run_state(port, &RunKey::new("a", "r3"), RunState::Success).await?;
    Ok(())
}

/// `list_runs` filters by DAG and states, newest `run_after` first.
pub async fn list_runs_filters_by_dag_and_state_newest_first(
    port: &dyn Datastore,
) -> Result<(), String> {
    seed_listing(port).await?;
    let cases: [(RunFilter, Vec<&str>); 4] = [
        (RunFilter::default(), vec!["a/r3", "b/r4", "a/r2", "a/r1"]),
        (
            RunFilter {
                dag_id: Some("a".into()),
                ..RunFilter::default()
            },
            vec!["a/r3", "a/r2", "a/r1"],
        ),
        (
            RunFilter {
                states: vec![RunState::Queued, RunState::Running],
                ..RunFilter::default()
            },
            vec!["b/r4", "a/r2", "a/r1"],
        ),
        (
            RunFilter {
                dag_id: Some("a".into()),
                states: vec![RunState::Success],
                ..RunFilter::default()
            },
            vec!["a/r3"],
        ),
    ];
    for (filter, expected) in cases {
        let (runs, total) = port.list_runs(&filter).await.ctx("list_runs")?;
        ensure_eq!(run_ids(&runs), expected, "list_runs({filter:?})");
        ensure_eq!(total, expected.len(), "total of list_runs({filter:?})");
    }
    Ok(())
}

/// `limit`/`offset` page the ordered result; the total counts every match.
pub async fn list_runs_paginates_and_counts_before_paging(
    port: &dyn Datastore,
) -> Result<(), String> {
    seed_listing(port).await?;
    let cases = [
        (Some(2), 0, vec!["a/r3", "b/r4"]),
        (Some(2), 2, vec!["a/r2", "a/r1"]),
        (Some(1), 1, vec!["b/r4"]),
        (None, 3, vec!["a/r1"]),
        (Some(5), 10, vec![]),
    ];
    for (limit, offset, expected) in cases {
        let filter = RunFilter {
            limit,
            offset,
            ..RunFilter::default()
        };
        let (runs, total) = port.list_runs(&filter).await.ctx("list_runs")?;
        ensure_eq!(
            run_ids(&runs),
            expected,
            "list_runs(limit {limit:?}, offset {offset})"
        );
        ensure_eq!(
            total,
            4,
            "total of list_runs(limit {limit:?}, offset {offset})"
        );
    }
    Ok(())
}

/// `active_runs` lists queued and running runs of every DAG, oldest first.
pub async fn active_runs_are_queued_and_running_oldest_first(
    port: &dyn Datastore,
) -> Result<(), String> {
    seed_listing(port).await?;
    let active = port.active_runs().await.ctx("active_runs")?;
    ensure_eq!(
        run_ids(&active),
        vec!["a/r1", "a/r2", "b/r4"],
        "active_runs"
    );
    set_run_state(port, &RunKey::new("a", "r2"), RunState::Failed).await?;
    let active = port.active_runs().await.ctx("active_runs")?;
    ensure_eq!(
        run_ids(&active),
        vec!["a/r1", "b/r4"],
        "active_runs after a run failed"
    );
    Ok(())
}

/// Only the DAG's own scheduled runs count for `last_scheduled_logical_date`.
pub async fn last_scheduled_logical_date_ignores_other_run_types(
    port: &dyn Datastore,
) -> Result<(), String> {
    let none = port
        .last_scheduled_logical_date("d")
        .await
        .ctx("last_scheduled_logical_date")?;
    ensure!(none.is_none(), "a DAG without runs has last date {none:?}");
    let day = 86_400;
    seed_run(port, &fixtures::run("d", "s1", at(2 * day)), &["a"]).await?;
    seed_run(port, &fixtures::run("d", "s2", at(3 * day)), &["a"]).await?;
    let mut manual = fixtures::manual_run("d", "m1", at(10 * day));
    manual.logical_date = Some(at(9 * day));
    seed_run(port, &manual, &["a"]).await?;
    let mut backfill = fixtures::run("d", "b1", at(20 * day));
    backfill.run_type = RunType::Backfill;
    seed_run(port, &backfill, &["a"]).await?;
    seed_run(port, &fixtures::run("e", "s9", at(30 * day)), &["a"]).await?;
    let last = port
        .last_scheduled_logical_date("d")
        .await
        .ctx("last_scheduled_logical_date")?;
    ensure_eq!(last, Some(at(2 * day)), "last scheduled logical date");
    Ok(())
}

/// `update_run` writes only when the stored state is the expected one.
pub async fn update_run_is_a_compare_and_set_on_state(port: &dyn Datastore) -> Result<(), String> {
    let run = fixtures::run("d", "r1", at(100));
    seed_run(port, &run, &["a"]).await?;
    let mut running = run.clone();
    running.state = RunState::Running;
    running.started_at = Some(at(101));
    let written = port
        .update_run(RunState::Queued, &running, None)
        .await
        .ctx("update_run")?;
    ensure!(written, "update_run from the stored state was not written");
    ensure_eq!(
        get_run(port, &run.key()).await?,
        running,
        "run after update_run"
    );

    let mut failed = running.clone();
    failed.state = RunState::Failed;
    failed.ended_at = Some(at(102));
    let written = port
        .update_run(RunState::Queued, &failed, None)
        .await
        .ctx("update_run")?;
    ensure!(!written, "update_run from a stale state was written");
    ensure_eq!(
        get_run(port, &run.key()).await?,
        running,
        "run after a refused update_run"
    );
    Ok(())
}

/// `delete_run` removes the run and every trace of its instances.
pub async fn delete_run_removes_the_run_and_its_task_instances(
    port: &dyn Datastore,
) -> Result<(), String> {
    let run = fixtures::run("d", "r1", at(100));
    let tasks = seed_run(port, &run, &["a", "b"]).await?;
    step(port, &tasks[0].key, TaskState::Queued, 1).await?;
    for (state, try_number) in [
        (TaskState::Queued, 1),
        (TaskState::Running, 1),
        (TaskState::UpForRetry, 1),
        (TaskState::Queued, 2),
    ] {
        step(port, &tasks[1].key, state, try_number).await?;
    }
    let other = fixtures::run("d", "r2", at(200));
    seed_run(port, &other, &["a"]).await?;

    port.delete_run(&run.key()).await.ctx("delete_run")?;
    ensure!(
        port.get_run(&run.key()).await.ctx("get_run")?.is_none(),
        "the deleted run is still stored"
    );
    let tis = port
        .task_instances(&run.key())
        .await
        .ctx("task_instances")?;
    ensure!(
        tis.is_empty(),
        "the deleted run's instances remain: {:?}",
        keys(&tis)
    );
    let in_flight = port.in_flight().await.ctx("in_flight")?;
    ensure!(
        in_flight.is_empty(),
        "in_flight lists deleted instances: {:?}",
        keys(&in_flight)
    );
    let (listed, total) = port
        .list_task_instances(&TaskFilter::default())
        .await
        .ctx("list_task_instances")?;
    ensure_eq!(
        keys(&listed),
        vec!["d/r2/a"],
        "list_task_instances after delete_run"
    );
    ensure_eq!(total, 1, "total after delete_run");
    let (runs, _) = port
        .list_runs(&RunFilter::default())
        .await
        .ctx("list_runs")?;
    ensure_eq!(run_ids(&runs), vec!["d/r2"], "list_runs after delete_run");

    // The same run id again starts from scratch: nothing of the deleted run leaks in.
    port.create_run(&run, &tasks, None)
        .await
        .ctx("create_run after delete_run")?;
    let in_flight = port.in_flight().await.ctx("in_flight")?;
    ensure!(
        in_flight.is_empty(),
        "a re-created run inherits in-flight instances: {:?}",
        keys(&in_flight)
    );
    ensure!(
        port.tries(&tasks[1].key).await.ctx("tries")?.is_empty(),
        "a re-created run inherits archived tries"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Task instances.

/// A transition whose expectation matches writes the whole new row.
pub async fn transition_writes_when_state_and_try_match(
    port: &dyn Datastore,
) -> Result<(), String> {
    let run = fixtures::run("d", "r1", at(100));
    let tasks = seed_run(port, &run, &["a"]).await?;
    let key = &tasks[0].key;
    let queued = step(port, key, TaskState::Queued, 1).await?;
    ensure_eq!(get_ti(port, key).await?, queued, "instance after queued");
    let running = step(port, key, TaskState::Running, 1).await?;
    ensure_eq!(get_ti(port, key).await?, running, "instance after running");
    let mut done = moved(&running, TaskState::Failed, 1);
    done.error_message = Some("boom".into());
    let written = port
        .transition(&cas(&running, done.clone()), None)
        .await
        .ctx("transition")?;
    ensure!(written, "a matching transition was not written");
    ensure_eq!(get_ti(port, key).await?, done, "instance after failed");
    Ok(())
}

/// A transition expecting another state is not written and changes nothing.
pub async fn transition_from_a_wrong_state_changes_nothing(
    port: &dyn Datastore,
) -> Result<(), String> {
    let run = fixtures::run("d", "r1", at(100));
    let tasks = seed_run(port, &run, &["a"]).await?;
    let key = &tasks[0].key;
    let queued = step(port, key, TaskState::Queued, 1).await?;
    let t = Transition {
        expected_state: TaskState::Scheduled,
        expected_try: 1,
        new: moved(&queued, TaskState::Running, 1),
    };
    let written = port.transition(&t, None).await.ctx("transition")?;
    ensure!(
        !written,
        "a transition expecting `scheduled` overwrote a `queued` instance"
    );
    ensure_eq!(
        get_ti(port, key).await?,
        queued,
        "instance after a refused transition"
    );
    Ok(())
}

/// A transition expecting another try is not written and changes nothing.
pub async fn transition_at_a_wrong_try_changes_nothing(port: &dyn Datastore) -> Result<(), String> {
    let run = fixtures::run("d", "r1", at(100));
    let tasks = seed_run(port, &run, &["a"]).await?;
    let key = &tasks[0].key;
    let queued = step(port, key, TaskState::Queued, 1).await?;
    let t = Transition {
        expected_state: TaskState::Queued,
        expected_try: 2,
        new: moved(&queued, TaskState::Running, 2),
    };
    let written = port.transition(&t, None).await.ctx("transition")?;
    ensure!(!written, "a transition expecting try 2 overwrote try 1");
    ensure_eq!(
        get_ti(port, key).await?,
        queued,
        "instance after a refused transition"
    );
    Ok(())
}

/// Two transitions racing from the same state: exactly one is written, and it is the one
/// stored.
pub async fn concurrent_transitions_from_one_state_let_exactly_one_win(
    port: &dyn Datastore,
) -> Result<(), String> {
    let run = fixtures::run("d", "r1", at(100));
    let tasks = seed_run(port, &run, &["a"]).await?;
    let key = &tasks[0].key;
    let queued = step(port, key, TaskState::Queued, 1).await?;
    let mut one = moved(&queued, TaskState::Running, 1);
    one.hostname = Some("scheduler-1".into());
    let mut two = moved(&queued, TaskState::Running, 1);
    two.hostname = Some("scheduler-2".into());
    let (t1, t2) = (cas(&queued, one.clone()), cas(&queued, two.clone()));
    let (r1, r2) = futures::join!(port.transition(&t1, None), port.transition(&t2, None));
    let (r1, r2) = (r1.ctx("transition")?, r2.ctx("transition")?);
    ensure!(
        r1 != r2,
        "racing transitions: first written {r1}, second written {r2}"
    );
    let winner = if r1 { one } else { two };
    ensure_eq!(
        get_ti(port, key).await?,
        winner,
        "the stored instance is the winner's"
    );
    Ok(())
}

/// A transition with a token below the fence is `Fenced` and changes nothing.
pub async fn transition_with_a_stale_fence_is_refused_and_changes_nothing(
    port: &dyn Datastore,
) -> Result<(), String> {
    let run = fixtures::run("d", "r1", at(100));
    let tasks = seed_run(port, &run, &["a"]).await?;
    let key = &tasks[0].key;
    port.raise_fence(FencingToken(7)).await.ctx("raise_fence")?;
    let t = cas(&tasks[0], moved(&tasks[0], TaskState::Queued, 1));
    match port.transition(&t, Some(FencingToken(6))).await {
        Err(e) if is_fenced(&e, 6, 7) => {}
        other => {
            return Err(format!(
                "transition with token 6 under fence 7: expected Fenced {{ token: 6, current: 7 }}, got {other:?}"
            ))
        }
    }
    ensure_eq!(
        get_ti(port, key).await?,
        tasks[0],
        "instance after a fenced transition"
    );
    let written = port
        .transition(&t, Some(FencingToken(7)))
        .await
        .ctx("transition")?;
    ensure!(written, "a transition at the current fence was not written");
    Ok(())
}

/// A transition of an instance that does not exist creates nothing (it returns false or
/// `NotFound`).
pub async fn transition_of_an_unknown_instance_writes_nothing(
    port: &dyn Datastore,
) -> Result<(), String> {
    let run = fixtures::run("d", "r1", at(100));
    seed_run(port, &run, &["a"]).await?;
    let ghost = fixtures::task(&run.key(), "ghost", -1);
    let t = cas(&ghost, moved(&ghost, TaskState::Queued, 1));
    match port.transition(&t, None).await {
        Ok(false) | Err(Error::NotFound { .. }) => {}
        other => {
            return Err(format!(
                "transition of an unknown instance returned {other:?}"
            ))
        }
    }
    let stored = port
        .get_task_instance(&ghost.key)
        .await
        .ctx("get_task_instance")?;
    ensure!(
        stored.is_none(),
        "a transition created an instance: {stored:?}"
    );
    Ok(())
}

/// A transition does not write `note` or `last_heartbeat_at`; a new try clears the
/// heartbeat (and keeps the note).
pub async fn transition_keeps_note_and_heartbeat_until_a_new_try(
    port: &dyn Datastore,
) -> Result<(), String> {
    let run = fixtures::run("d", "r1", at(100));
    let tasks = seed_run(port, &run, &["a"]).await?;
    let key = &tasks[0].key;
    step(port, key, TaskState::Queued, 1).await?;
    let running = step(port, key, TaskState::Running, 1).await?;
    let beat = port.heartbeat(key, 1, at(50)).await.ctx("heartbeat")?;
    ensure!(beat, "heartbeat of the running attempt was refused");
    port.set_task_note(key, Some("keep me".into()))
        .await
        .ctx("set_task_note")?;

    let mut retry = moved(&running, TaskState::UpForRetry, 1);
    retry.note = None;
    retry.last_heartbeat_at = Some(at(999));
    let written = port
        .transition(&cas(&running, retry), None)
        .await
        .ctx("transition")?;
    ensure!(written, "running -> up_for_retry was not written");
    let stored = get_ti(port, key).await?;
    ensure_eq!(
        stored.note.as_deref(),
        Some("keep me"),
        "note after a transition"
    );
    ensure_eq!(
        stored.last_heartbeat_at,
        Some(at(50)),
        "heartbeat after a same-try transition"
    );

    let mut next_try = moved(&stored, TaskState::Queued, 2);
    next_try.note = None;
    next_try.last_heartbeat_at = Some(at(999));
    let written = port
        .transition(&cas(&stored, next_try), None)
        .await
        .ctx("transition")?;
    ensure!(written, "up_for_retry -> queued (try 2) was not written");
    let stored = get_ti(port, key).await?;
    ensure_eq!(
        stored.note.as_deref(),
        Some("keep me"),
        "note after a new try"
    );
    ensure_eq!(stored.last_heartbeat_at, None, "heartbeat after a new try");
    Ok(())
}

/// `transition_many` is one compare-and-set per item, results in input order.
pub async fn transition_many_is_one_compare_and_set_per_item_in_order(
    port: &dyn Datastore,
) -> Result<(), String> {
    let run = fixtures::run("d", "r1", at(100));
    let tasks = seed_run(port, &run, &["a", "b", "c"]).await?;
    let ts = vec![
        cas(&tasks[0], moved(&tasks[0], TaskState::Scheduled, 0)),
        Transition {
            expected_state: TaskState::Running,
            expected_try: 0,
            new: moved(&tasks[1], TaskState::Scheduled, 0),
        },
        cas(&tasks[2], moved(&tasks[2], TaskState::Skipped, 0)),
    ];
    let results = port
        .transition_many(&ts, None)
        .await
        .ctx("transition_many")?;
    ensure_eq!(results, vec![true, false, true], "transition_many results");
    let states: Vec<TaskState> = port
        .task_instances(&run.key())
        .await
        .ctx("task_instances")?
        .iter()
        .map(|t| t.state)
        .collect();
    ensure_eq!(
        states,
        vec![TaskState::Scheduled, TaskState::None, TaskState::Skipped],
        "states after transition_many"
    );
    Ok(())
}

/// When the try number grows, the previous try is archived as it was; `tries` lists the
/// archived tries and the current one, oldest first. A never-started instance has none.
pub async fn tries_archive_the_previous_try_when_the_try_number_grows(
    port: &dyn Datastore,
) -> Result<(), String> {
    let run = fixtures::run("d", "r1", at(100));
    let tasks = seed_run(port, &run, &["a"]).await?;
    let key = &tasks[0].key;
    let tries = port.tries(key).await.ctx("tries")?;
    ensure!(
        tries.is_empty(),
        "a never-started instance has tries: {tries:?}"
    );

    step(port, key, TaskState::Queued, 1).await?;
    step(port, key, TaskState::Running, 1).await?;
    let first = step(port, key, TaskState::UpForRetry, 1).await?;
    let tries = port.tries(key).await.ctx("tries")?;
    ensure_eq!(tries, vec![first.clone()], "tries during the first try");

    step(port, key, TaskState::Queued, 2).await?;
    step(port, key, TaskState::Running, 2).await?;
    let second = step(port, key, TaskState::Failed, 2).await?;
    let tries = port.tries(key).await.ctx("tries")?;
    ensure_eq!(tries, vec![first, second], "tries after the second try");
    Ok(())
}

/// A heartbeat of the queued or running attempt at its try is recorded.
pub async fn heartbeat_is_recorded_for_the_current_attempt(
    port: &dyn Datastore,
) -> Result<(), String> {
    let run = fixtures::run("d", "r1", at(100));
    let tasks = seed_run(port, &run, &["a"]).await?;
    let key = &tasks[0].key;
    step(port, key, TaskState::Queued, 1).await?;
    let beat = port.heartbeat(key, 1, at(10)).await.ctx("heartbeat")?;
    ensure!(beat, "heartbeat of a queued attempt was refused");
    ensure_eq!(
        get_ti(port, key).await?.last_heartbeat_at,
        Some(at(10)),
        "heartbeat"
    );
    step(port, key, TaskState::Running, 1).await?;
    let beat = port.heartbeat(key, 1, at(20)).await.ctx("heartbeat")?;
    ensure!(beat, "heartbeat of a running attempt was refused");
    ensure_eq!(
        get_ti(port, key).await?.last_heartbeat_at,
        Some(at(20)),
        "heartbeat"
    );
    Ok(())
}

/// A heartbeat for another try, or once the attempt finished, returns false and is not
/// recorded.
pub async fn heartbeat_of_an_attempt_that_is_not_current_is_refused(
    port: &dyn Datastore,
) -> Result<(), String> {
    let run = fixtures::run("d", "r1", at(100));
    let tasks = seed_run(port, &run, &["a"]).await?;
    let key = &tasks[0].key;
    let beat = port.heartbeat(key, 0, at(5)).await.ctx("heartbeat")?;
    ensure!(
        !beat,
        "heartbeat of a never-dispatched instance was accepted"
    );
    step(port, key, TaskState::Queued, 1).await?;
    step(port, key, TaskState::Running, 1).await?;
    let beat = port.heartbeat(key, 2, at(10)).await.ctx("heartbeat")?;
    ensure!(!beat, "heartbeat of try 2 accepted while try 1 runs");
    ensure_eq!(
        get_ti(port, key).await?.last_heartbeat_at,
        None,
        "heartbeat of a wrong try"
    );
    step(port, key, TaskState::Success, 1).await?;
    let beat = port.heartbeat(key, 1, at(20)).await.ctx("heartbeat")?;
    ensure!(!beat, "heartbeat of a finished attempt was accepted");
    ensure_eq!(
        get_ti(port, key).await?.last_heartbeat_at,
        None,
        "heartbeat of a finished attempt"
    );
    Ok(())
}

/// `in_flight` is exactly the queued and running instances of every run, kept current.
pub async fn in_flight_lists_queued_and_running_instances_of_every_run(
    port: &dyn Datastore,
) -> Result<(), String> {
    let r1 = fixtures::run("d", "r1", at(100));
    let t1 = seed_run(port, &r1, &["a", "b", "c"]).await?;
    let r2 = fixtures::run("e", "r2", at(100));
    let t2 = seed_run(port, &r2, &["a", "b"]).await?;
    step(port, &t1[0].key, TaskState::Queued, 1).await?;
    step(port, &t1[1].key, TaskState::Queued, 1).await?;
    step(port, &t1[1].key, TaskState::Running, 1).await?;
    step(port, &t1[2].key, TaskState::Scheduled, 0).await?;
    step(port, &t2[0].key, TaskState::Queued, 1).await?;
    step(port, &t2[1].key, TaskState::Skipped, 0).await?;
    let mut got = keys(&port.in_flight().await.ctx("in_flight")?);
    got.sort();
    ensure_eq!(got, vec!["d/r1/a", "d/r1/b", "e/r2/a"], "in_flight");

    step(port, &t1[0].key, TaskState::Running, 1).await?;
    step(port, &t1[0].key, TaskState::Success, 1).await?;
    step(port, &t2[0].key, TaskState::Running, 1).await?;
    step(port, &t2[0].key, TaskState::UpForRetry, 1).await?;
    let in_flight = port.in_flight().await.ctx("in_flight")?;
    ensure_eq!(
        keys(&in_flight),
        vec!["d/r1/b"],
        "in_flight after two instances ended"
    );
    ensure_eq!(
        in_flight[0],
        get_ti(port, &t1[1].key).await?,
        "the in-flight instance"
    );
    Ok(())
}

/// New instances are added to a run; instances that exist already are left untouched;
/// adding to an unknown run is `NotFound`.
pub async fn add_task_instances_adds_new_ones_and_keeps_existing_ones(
    port: &dyn Datastore,
) -> Result<(), String> {
    let run = fixtures::run("d", "r1", at(100));
    let key = run.key();
    let tasks = seed_run(port, &run, &["a", "b"]).await?;
    let queued = step(port, &tasks[0].key, TaskState::Queued, 1).await?;
    let added = vec![
        fixtures::task(&key, "a", -1),
        fixtures::task(&key, "b", 1),
        fixtures::task(&key, "b", 0),
    ];
    port.add_task_instances(&key, &added, None)
        .await
        .ctx("add_task_instances")?;
    let stored = port.task_instances(&key).await.ctx("task_instances")?;
    ensure_eq!(
        keys(&stored),
        vec!["d/r1/a", "d/r1/b", "d/r1/b[0]", "d/r1/b[1]"],
        "instances after add_task_instances"
    );
    ensure_eq!(
        stored[0],
        queued,
        "an existing instance after add_task_instances"
    );

    let unknown = RunKey::new("d", "nope");
    let ghost = fixtures::tasks(&unknown, &["a"]);
    match port.add_task_instances(&unknown, &ghost, None).await {
        Err(Error::NotFound { .. }) => {}
        other => {
            return Err(format!(
                "add_task_instances to an unknown run: expected NotFound, got {other:?}"
            ))
        }
    }
    let stored = port.task_instances(&unknown).await.ctx("task_instances")?;
    ensure!(stored.is_empty(), "instances were added to an unknown run");
    Ok(())
}

/// `list_task_instances` filters, orders by (dag, run, task, map index), pages, counts.
pub async fn list_task_instances_filters_orders_and_counts(
    port: &dyn Datastore,
) -> Result<(), String> {
    let rb = fixtures::run("b", "r1", at(100));
    seed_run(port, &rb, &["a"]).await?;
    let ra2 = fixtures::run("a", "r2", at(100));
    seed_run(port, &ra2, &["b", "a"]).await?;
    let ra1 = fixtures::run("a", "r1", at(50));
    let t = seed_run(port, &ra1, &["c", "a"]).await?;
    port.add_task_instances(&ra1.key(), &[fixtures::task(&ra1.key(), "c", 0)], None)
        .await
        .ctx("add_task_instances")?;
    step(port, &t[0].key, TaskState::Queued, 1).await?;

    let cases: Vec<(TaskFilter, Vec<&str>, usize)> = vec![
        (
            TaskFilter::default(),
            vec![
                "a/r1/a",
                "a/r1/c",
                "a/r1/c[0]",
                "a/r2/a",
                "a/r2/b",
                "b/r1/a",
            ],
            6,
        ),
        (
            TaskFilter {
                dag_id: Some("a".into()),
                run_id: Some("r1".into()),
                ..TaskFilter::default()
            },
            vec!["a/r1/a", "a/r1/c", "a/r1/c[0]"],
            3,
        ),
        (
            TaskFilter {
                run_id: Some("r1".into()),
                task_id: Some("a".into()),
                ..TaskFilter::default()
            },
            vec!["a/r1/a", "b/r1/a"],
            2,
        ),
        (
            TaskFilter {
                states: vec![TaskState::Queued, TaskState::Running],
                ..TaskFilter::default()
            },
            vec!["a/r1/c"],
            1,
        ),
        (
            TaskFilter {
                limit: Some(2),
                offset: 2,
                ..TaskFilter::default()
            },
            vec!["a/r1/c[0]", "a/r2/a"],
            6,
        ),
        (
            TaskFilter {
                dag_id: Some("a".into()),
                offset: 4,
                ..TaskFilter::default()
            },
            vec!["a/r2/b"],
            5,
        ),
    ];
    for (f, expected, total) in cases {
        let (got, count) = port
            .list_task_instances(&f)
            .await
            .ctx("list_task_instances")?;
        ensure_eq!(keys(&got), expected, "list_task_instances({f:?})");
        ensure_eq!(count, total, "total of list_task_instances({f:?})");
    }
    Ok(())
}

/// `set_task_note` is stored and cleared; an unknown instance is `NotFound`.
pub async fn set_task_note_is_stored_and_unknown_instance_is_not_found(
    port: &dyn Datastore,
) -> Result<(), String> {
    let run = fixtures::run("d", "r1", at(100));
    let tasks = seed_run(port, &run, &["a"]).await?;
    let key = &tasks[0].key;
    port.set_task_note(key, Some("why".into()))
        .await
        .ctx("set_task_note")?;
    ensure_eq!(
        get_ti(port, key).await?.note.as_deref(),
        Some("why"),
        "note"
    );
    port.set_task_note(key, None).await.ctx("set_task_note")?;
    ensure_eq!(get_ti(port, key).await?.note, None, "note after clearing");
    let ghost = TaskKey::new(&run.key(), "ghost", -1);
    match port.set_task_note(&ghost, Some("x".into())).await {
        Err(Error::NotFound { .. }) => Ok(()),
        other => Err(format!(
            "set_task_note of an unknown instance: expected NotFound, got {other:?}"
        )),
    }
}

/// `update_run`, `add_task_instances` and `transition_many` refuse a stale token with
/// `Fenced` and change nothing; unfenced writes and writes at the fence are accepted.
pub async fn stale_fence_is_refused_by_every_fenced_write(
    port: &dyn Datastore,
) -> Result<(), String> {
    let run = fixtures::run("d", "r1", at(100));
    let key = run.key();
    let tasks = seed_run(port, &run, &["a"]).await?;
    port.raise_fence(FencingToken(3)).await.ctx("raise_fence")?;

    let mut running = run.clone();
    running.state = RunState::Running;
    match port
        .update_run(RunState::Queued, &running, Some(FencingToken(2)))
        .await
    {
        Err(e) if is_fenced(&e, 2, 3) => {}
        other => {
            return Err(format!(
                "update_run with a stale token: expected Fenced, got {other:?}"
            ))
        }
    }
    ensure_eq!(
        get_run(port, &key).await?,
        run,
        "run after a fenced update_run"
    );

    let extra = [fixtures::task(&key, "b", -1)];
    match port
        .add_task_instances(&key, &extra, Some(FencingToken(2)))
        .await
    {
        Err(e) if is_fenced(&e, 2, 3) => {}
        other => {
            return Err(format!(
                "add_task_instances with a stale token: expected Fenced, got {other:?}"
            ))
        }
    }
    let stored = port.task_instances(&key).await.ctx("task_instances")?;
    ensure_eq!(
        keys(&stored),
        vec!["d/r1/a"],
        "instances after a fenced add_task_instances"
    );

    let ts = [cas(&tasks[0], moved(&tasks[0], TaskState::Scheduled, 0))];
    match port.transition_many(&ts, Some(FencingToken(2))).await {
        Err(e) if is_fenced(&e, 2, 3) => {}
        other => {
            return Err(format!(
                "transition_many with a stale token: expected Fenced, got {other:?}"
            ))
        }
    }
    ensure_eq!(
        get_ti(port, &tasks[0].key).await?,
        tasks[0],
        "instance after a fenced write"
    );

    let written = port
        .update_run(RunState::Queued, &running, Some(FencingToken(3)))
        .await
        .ctx("update_run at the fence")?;
    ensure!(written, "update_run at the current fence was not written");
    port.add_task_instances(&key, &extra, None)
        .await
        .ctx("unfenced add_task_instances")?;
    let results = port
        .transition_many(&ts, None)
        .await
        .ctx("unfenced transition_many")?;
    ensure_eq!(results, vec![true], "unfenced transition_many");
    Ok(())
}

/// Raising the fence to a lower value is a no-op: the highest token stays the fence.
pub async fn raise_fence_never_lowers_the_fence(port: &dyn Datastore) -> Result<(), String> {
    let run = fixtures::run("d", "r1", at(100));
    let tasks = seed_run(port, &run, &["a"]).await?;
    port.raise_fence(FencingToken(10))
        .await
        .ctx("raise_fence")?;
    port.raise_fence(FencingToken(4)).await.ctx("raise_fence")?;
    let t = cas(&tasks[0], moved(&tasks[0], TaskState::Scheduled, 0));
    match port.transition(&t, Some(FencingToken(9))).await {
        Err(e) if is_fenced(&e, 9, 10) => {}
        other => {
            return Err(format!(
                "token 9 after raising to 10 then 4: expected Fenced {{ token: 9, current: 10 }}, got {other:?}"
            ))
        }
    }
    let written = port
        .transition(&t, Some(FencingToken(11)))
        .await
        .ctx("transition")?;
    ensure!(written, "a token above the fence was refused");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Metadata.

fn user(name: &str, role: &str) -> User {
    User {
        username: name.into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        role: role.into(),
        tenant: "default".into(),
        is_active: true,
        created_at: at(0),
    }
}

/// `put_user` inserts or replaces by username.
pub async fn users_are_inserted_or_replaced(port: &dyn Datastore) -> Result<(), String> {
    port.put_user(&user("zoe", "Viewer"))
        .await
        .ctx("put_user")?;
    port.put_user(&user("adam", "Viewer"))
        .await
        .ctx("put_user")?;
    let mut promoted = user("zoe", "Admin");
    promoted.is_active = false;
    port.put_user(&promoted).await.ctx("put_user")?;
    let got = port.get_user("zoe").await.ctx("get_user")?;
    ensure_eq!(got, Some(promoted.clone()), "get_user after replace");
    let missing = port.get_user("nobody").await.ctx("get_user")?;
    ensure!(
        missing.is_none(),
        "get_user of an unknown user returned {missing:?}"
    );
    let mut all = port.list_users().await.ctx("list_users")?;
    all.sort_by(|a, b| a.username.cmp(&b.username));
    ensure_eq!(all, vec![user("adam", "Viewer"), promoted], "list_users");
    Ok(())
}

/// Variables: put replaces, list is ordered by key, delete of a missing key is `NotFound`.
pub async fn variables_round_trip_and_deleting_a_missing_one_is_not_found(
    port: &dyn Datastore,
) -> Result<(), String> {
    let var = |key: &str, value: &str| Variable {
        key: key.into(),
        value: value.into(),
        description: Some(format!("about {key}")),
    };
    port.put_variable(&var("b", "1"))
        .await
        .ctx("put_variable")?;
    port.put_variable(&var("a", "1"))
        .await
        .ctx("put_variable")?;
    port.put_variable(&var("b", "2"))
        .await
        .ctx("put_variable")?;
    ensure_eq!(
        port.get_variable("b").await.ctx("get_variable")?,
        Some(var("b", "2")),
        "get_variable after replace"
    );
    ensure_eq!(
        port.list_variables().await.ctx("list_variables")?,
        vec![var("a", "1"), var("b", "2")],
        "list_variables"
    );
    port.delete_variable("a").await.ctx("delete_variable")?;
    ensure!(
        port.get_variable("a").await.ctx("get_variable")?.is_none(),
        "a deleted variable is still stored"
    );
    match port.delete_variable("a").await {
        Err(Error::NotFound { .. }) => Ok(()),
        other => Err(format!(
            "delete of a missing variable: expected NotFound, got {other:?}"
        )),
    }
}

/// Connections: put replaces, list is ordered by id, delete of a missing id is `NotFound`.
pub async fn connections_round_trip_and_deleting_a_missing_one_is_not_found(
    port: &dyn Datastore,
) -> Result<(), String> {
    let conn = |id: &str, host: &str| Connection {
        conn_id: id.into(),
        conn_type: "postgres".into(),
        description: None,
        host: Some(host.into()),
        login: Some("me".into()),
        schema: Some("db".into()),
        port: Some(5432),
        password_ciphertext: Some("c1ph3r".into()),
        extra_ciphertext: None,
    };
    port.put_connection(&conn("pg_b", "h1"))
        .await
        .ctx("put_connection")?;
    port.put_connection(&conn("pg_a", "h1"))
        .await
        .ctx("put_connection")?;
    port.put_connection(&conn("pg_b", "h2"))
        .await
        .ctx("put_connection")?;
    ensure_eq!(
        port.get_connection("pg_b").await.ctx("get_connection")?,
        Some(conn("pg_b", "h2")),
        "get_connection after replace"
    );
    ensure_eq!(
        port.list_connections().await.ctx("list_connections")?,
        vec![conn("pg_a", "h1"), conn("pg_b", "h2")],
        "list_connections"
    );
    port.delete_connection("pg_a")
        .await
        .ctx("delete_connection")?;
    ensure!(
        port.get_connection("pg_a")
            .await
            .ctx("get_connection")?
            .is_none(),
        "a deleted connection is still stored"
    );
    match port.delete_connection("pg_a").await {
        Err(Error::NotFound { .. }) => Ok(()),
        other => Err(format!(
            "delete of a missing connection: expected NotFound, got {other:?}"
        )),
    }
}

/// Audit ids are assigned increasing; the log lists newest first, per DAG, paged, counted.
pub async fn audit_ids_increase_and_the_log_lists_newest_first(
    port: &dyn Datastore,
) -> Result<(), String> {
    let event = |n: i64, dag: &str| AuditEvent {
        id: 0,
        at: at(n),
        actor: Some("admin".into()),
        event: format!("event-{n}"),
        dag_id: Some(dag.into()),
        run_id: None,
        task_id: None,
        extra: json!({"n": n}),
    };
    let mut stored = Vec::new();
    for (n, dag) in [(1, "x"), (2, "y"), (3, "x")] {
        let mut e = event(n, dag);
        e.id = port.append_audit(&e).await.ctx("append_audit")?;
        if let Some(previous) = stored.last().map(|p: &AuditEvent| p.id) {
            ensure!(e.id > previous, "audit id {} is not above {previous}", e.id);
        }
        stored.push(e);
    }
    let newest_first: Vec<AuditEvent> = stored.iter().rev().cloned().collect();
    let (all, total) = port.list_audit(None, 10, 0).await.ctx("list_audit")?;
    ensure_eq!(all, newest_first, "list_audit(None)");
    ensure_eq!(total, 3, "list_audit total");
    let (page, total) = port.list_audit(Some("x"), 1, 0).await.ctx("list_audit")?;
    ensure_eq!(page, vec![stored[2].clone()], "list_audit(x, limit 1)");
    ensure_eq!(total, 2, "list_audit(x) total");
    let (page, total) = port.list_audit(Some("x"), 10, 1).await.ctx("list_audit")?;
    ensure_eq!(page, vec![stored[0].clone()], "list_audit(x, offset 1)");
    ensure_eq!(total, 2, "list_audit(x, offset 1) total");
    Ok(())
}

/// Import errors are keyed by filename, listed in filename order, and deletable.
pub async fn import_errors_are_replaced_by_filename_and_deleted(
    port: &dyn Datastore,
) -> Result<(), String> {
    let err = |file: &str, message: &str| ImportError {
        filename: file.into(),
        message: message.into(),
        at: at(1),
    };
    port.put_import_error(&err("dags/b.py", "old"))
        .await
        .ctx("put_import_error")?;
    port.put_import_error(&err("dags/a.py", "x"))
        .await
        .ctx("put_import_error")?;
    port.put_import_error(&err("dags/b.py", "new"))
        .await
        .ctx("put_import_error")?;
    ensure_eq!(
        port.list_import_errors().await.ctx("list_import_errors")?,
        vec![err("dags/a.py", "x"), err("dags/b.py", "new")],
        "list_import_errors"
    );
    port.delete_import_error("dags/a.py")
        .await
        .ctx("delete_import_error")?;
    ensure_eq!(
        port.list_import_errors().await.ctx("list_import_errors")?,
        vec![err("dags/b.py", "new")],
        "list_import_errors after delete"
    );
    Ok(())
}

-- Leoflow schema 1.
--
-- Vocabulary follows Airflow (dag, dag_run, task_instance, try_number, map_index,
-- logical_date, run_after, conn_id, ...). Keys are the natural keys of the domain model
-- ((dag_id, run_id), (dag_id, run_id, task_id, map_index)) rather than surrogate UUIDs, so
-- every port call addresses its row directly through a primary-key index.
-- States are text with CHECK constraints instead of enum types: readable in psql, and a
-- later migration can widen them without ALTER TYPE.

-- DAGs and their immutable versions -------------------------------------------------------

CREATE TABLE dags (
    dag_id             text PRIMARY KEY,
    is_paused          boolean     NOT NULL DEFAULT false,
    -- False once deregistered: hidden and never scheduled, history kept.
    is_active          boolean     NOT NULL DEFAULT true,
    -- The version new runs are pinned to.
    latest_version     integer     NOT NULL CHECK (latest_version >= 1),
    created_at         timestamptz NOT NULL,
    last_registered_at timestamptz NOT NULL
);

CREATE TABLE dag_versions (
    dag_id         text        NOT NULL REFERENCES dags (dag_id) ON DELETE CASCADE,
    -- 1-based, in registration order, per DAG.
    version_number integer     NOT NULL CHECK (version_number >= 1),
    -- The free-form `dag_version` label of the spec.
    label          text        NOT NULL,
    -- sha256 of the canonical spec JSON; one version per distinct content.
    spec_hash      text        NOT NULL,
    spec           jsonb       NOT NULL,
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (dag_id, version_number),
    UNIQUE (dag_id, spec_hash)
);

-- Runs ------------------------------------------------------------------------------------

-- No foreign key to dags: a run names its DAG and version by value, and the engine (not
-- the store) decides which DAGs may run.
CREATE TABLE dag_runs (
    dag_id              text        NOT NULL,
    run_id              text        NOT NULL,
    run_type            text        NOT NULL CHECK (run_type IN ('scheduled', 'manual', 'backfill')),
    logical_date        timestamptz,
    data_interval_start timestamptz,
    data_interval_end   timestamptz,
    run_after           timestamptz NOT NULL,
    -- json, not jsonb: kept exactly as given (jsonb cannot hold "\u0000").
    conf                json        NOT NULL DEFAULT '{}',
    note                text,
    state               text        NOT NULL CHECK (state IN ('queued', 'running', 'success', 'failed')),
    version_number      integer     NOT NULL CHECK (version_number >= 1),
    queued_at           timestamptz NOT NULL,
    started_at          timestamptz,
    ended_at            timestamptz,
    triggered_by        text,
    PRIMARY KEY (dag_id, run_id)
);

-- The scheduler's working set: queued and running runs, oldest first.
CREATE INDEX dag_runs_active ON dag_runs (run_after, dag_id, run_id)
    WHERE state IN ('queued', 'running');
-- API listings, newest first: every run, a DAG's runs, and runs by state.
CREATE INDEX dag_runs_newest ON dag_runs (run_after DESC, run_id DESC, dag_id DESC);
CREATE INDEX dag_runs_by_dag ON dag_runs (dag_id, run_after DESC, run_id DESC);
CREATE INDEX dag_runs_by_state ON dag_runs (state, run_after DESC, run_id DESC, dag_id DESC);
-- Catch-up: the last scheduled logical date of a DAG.
CREATE INDEX dag_runs_last_scheduled ON dag_runs (dag_id, logical_date DESC)
    WHERE run_type = 'scheduled';

-- Task instances and their archived tries ---------------------------------------------------

-- One row per (run, task, map index). Attempts advance try_number in place; the previous
-- try is copied to task_instance_tries by a trigger when try_number grows.
CREATE TABLE task_instances (
    dag_id            text        NOT NULL,
    run_id            text        NOT NULL,
    task_id           text        NOT NULL,
    map_index         integer     NOT NULL DEFAULT -1,
    state             text        NOT NULL CHECK (state IN ('none', 'scheduled', 'queued', 'running',
                          'success', 'failed', 'skipped', 'upstream_failed', 'up_for_retry',
                          'removed', 'deferred')),
    try_number        integer     NOT NULL CHECK (try_number >= 0),
    max_tries         integer     NOT NULL CHECK (max_tries >= 0),
    operator          text        NOT NULL,
    scheduled_at      timestamptz,
    queued_at         timestamptz,
    started_at        timestamptz,
    ended_at          timestamptz,
    next_retry_at     timestamptz,
    last_heartbeat_at timestamptz,
    executor_ref      text,
    hostname          text,
    exit_code         integer,
    error_message     text,
    note              text,
    -- The primary key doubles as the "task instances of a run, by (task_id, map_index)"
    -- index the scheduler and the API read.
    PRIMARY KEY (dag_id, run_id, task_id, map_index),
    FOREIGN KEY (dag_id, run_id) REFERENCES dag_runs (dag_id, run_id) ON DELETE CASCADE
);

-- Attempts handed to an executor (recovery at startup, reaping).
CREATE INDEX task_instances_in_flight ON task_instances (dag_id, run_id, task_id, map_index)
    WHERE state IN ('queued', 'running');
-- Instances ready to dispatch (scheduled) or waiting for their retry delay.
CREATE INDEX task_instances_ready ON task_instances (dag_id, run_id, task_id, map_index)
    WHERE state IN ('scheduled', 'up_for_retry');
-- API: one task across the DAG's runs.
CREATE INDEX task_instances_by_task ON task_instances (dag_id, task_id);

CREATE TABLE task_instance_tries (
    dag_id            text        NOT NULL,
    run_id            text        NOT NULL,
    task_id           text        NOT NULL,
    map_index         integer     NOT NULL,
    try_number        integer     NOT NULL,
    state             text        NOT NULL,
    max_tries         integer     NOT NULL,
    operator          text        NOT NULL,
    scheduled_at      timestamptz,
    queued_at         timestamptz,
    started_at        timestamptz,
    ended_at          timestamptz,
    next_retry_at     timestamptz,
    last_heartbeat_at timestamptz,
    executor_ref      text,
    hostname          text,
    exit_code         integer,
    error_message     text,
    note              text,
    archived_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dag_id, run_id, task_id, map_index, try_number),
    FOREIGN KEY (dag_id, run_id) REFERENCES dag_runs (dag_id, run_id) ON DELETE CASCADE
);

CREATE FUNCTION archive_task_instance_try() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_instance_tries (dag_id, run_id, task_id, map_index, try_number, state,
        max_tries, operator, scheduled_at, queued_at, started_at, ended_at, next_retry_at,
        last_heartbeat_at, executor_ref, hostname, exit_code, error_message, note)
    VALUES (OLD.dag_id, OLD.run_id, OLD.task_id, OLD.map_index, OLD.try_number, OLD.state,
        OLD.max_tries, OLD.operator, OLD.scheduled_at, OLD.queued_at, OLD.started_at,
        OLD.ended_at, OLD.next_retry_at, OLD.last_heartbeat_at, OLD.executor_ref,
        OLD.hostname, OLD.exit_code, OLD.error_message, OLD.note)
    ON CONFLICT (dag_id, run_id, task_id, map_index, try_number) DO UPDATE SET
        state = EXCLUDED.state, max_tries = EXCLUDED.max_tries, operator = EXCLUDED.operator,
        scheduled_at = EXCLUDED.scheduled_at, queued_at = EXCLUDED.queued_at,
        started_at = EXCLUDED.started_at, ended_at = EXCLUDED.ended_at,
        next_retry_at = EXCLUDED.next_retry_at, last_heartbeat_at = EXCLUDED.last_heartbeat_at,
        executor_ref = EXCLUDED.executor_ref, hostname = EXCLUDED.hostname,
        exit_code = EXCLUDED.exit_code, error_message = EXCLUDED.error_message,
        note = EXCLUDED.note, archived_at = now();
    RETURN NULL;
END
$$;

-- A try that never started (try_number 0) is not archived.
CREATE TRIGGER task_instances_archive_try
    AFTER UPDATE OF try_number ON task_instances
    FOR EACH ROW WHEN (NEW.try_number > OLD.try_number AND OLD.try_number > 0)
    EXECUTE FUNCTION archive_task_instance_try();

-- Fencing and leases ----------------------------------------------------------------------

-- The highest fencing token raised so far (one row). Leader-only writes lock it FOR SHARE
-- and compare in the same statement, so a raise waits for in-flight fenced writes and
-- every later write sees the new token.
CREATE TABLE fence (
    id    boolean PRIMARY KEY DEFAULT true CHECK (id),
    token bigint  NOT NULL CHECK (token >= 0)
);
INSERT INTO fence (id, token) VALUES (true, 0);

-- Tokens handed out with each lease acquisition: strictly increasing, never reused.
CREATE SEQUENCE lease_tokens AS bigint MINVALUE 1;

-- Who holds which lease (informational: the advisory lock is the authority).
CREATE TABLE leases (
    name        text        PRIMARY KEY,
    holder      text        NOT NULL,
    token       bigint      NOT NULL,
    lock_id     bigint      NOT NULL,
    backend_pid integer     NOT NULL,
    acquired_at timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);

-- XCom --------------------------------------------------------------------------------------

-- Values are `json` (kept as the exact text written), not `jsonb`: jsonb rejects "\u0000"
-- and renormalises numbers, and the size cap applies to the compact text.
CREATE TABLE xcoms (
    dag_id     text        NOT NULL,
    run_id     text        NOT NULL,
    task_id    text        NOT NULL,
    map_index  integer     NOT NULL,
    key        text        NOT NULL,
    value      json        NOT NULL,
    size_bytes integer     NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (dag_id, run_id, task_id, map_index, key)
);
CREATE INDEX xcoms_expires_at ON xcoms (expires_at);

-- Task logs -----------------------------------------------------------------------------------

-- One row per attempt: how many lines it has and whether it is closed. Appends lock this
-- row, so concurrent writers of one attempt get consecutive, non-overlapping offsets.
CREATE TABLE task_logs (
    dag_id     text        NOT NULL,
    run_id     text        NOT NULL,
    task_id    text        NOT NULL,
    map_index  integer     NOT NULL,
    try_number integer     NOT NULL,
    line_count bigint      NOT NULL DEFAULT 0,
    closed_at  timestamptz,
    PRIMARY KEY (dag_id, run_id, task_id, map_index, try_number)
);

-- Lines in chunks (one or more per append): `lines` is a JSON array of {at, stream, message}
-- covering offsets [first_line, first_line + line_count).
CREATE TABLE task_log_chunks (
    dag_id     text    NOT NULL,
    run_id     text    NOT NULL,
    task_id    text    NOT NULL,
    map_index  integer NOT NULL,
    try_number integer NOT NULL,
    first_line bigint  NOT NULL,
    line_count integer NOT NULL CHECK (line_count > 0),
    lines      json    NOT NULL,
    PRIMARY KEY (dag_id, run_id, task_id, map_index, try_number, first_line)
);

-- API metadata ------------------------------------------------------------------------------------

CREATE TABLE users (
    username      text        PRIMARY KEY,
    -- A PHC string (argon2 or bcrypt), never the password.
    password_hash text        NOT NULL,
    role          text        NOT NULL,
    tenant        text        NOT NULL DEFAULT 'default',
    is_active     boolean     NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL
);

CREATE TABLE variables (
    key         text PRIMARY KEY,
    value       text NOT NULL,
    description text
);

-- Secrets arrive encrypted; the column names say so.
CREATE TABLE connections (
    conn_id             text PRIMARY KEY,
    conn_type           text NOT NULL,
    description         text,
    host                text,
    login               text,
    schema              text,
    port                integer CHECK (port BETWEEN 0 AND 65535),
    password_ciphertext text,
    extra_ciphertext    text
);

CREATE TABLE audit_log (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL,
    actor   text,
    event   text        NOT NULL,
    dag_id  text,
    run_id  text,
    task_id text,
    extra   json        NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_by_dag ON audit_log (dag_id, id DESC);

CREATE TABLE import_errors (
    filename text        PRIMARY KEY,
    message  text        NOT NULL,
    at       timestamptz NOT NULL
);

"""Every compiled DAG obeys docs/dag-json.md: only its fields, their types, id patterns, sorting and references.

The CLI leaves out dag_version, image and source (the Rust side adds them), so those must be absent here.
"""

from __future__ import annotations

import os
import re

import pytest

from support import DAGS_DIR, compile_paths

ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}$")
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
CRON_OR_PRESET = re.compile(
    r"^(@(once|hourly|daily|midnight|weekly|monthly|quarterly|yearly|annually|continuous)|@every \d+s|(\S+ ){4,5}\S+)$"
)
TRIGGER_RULES = {
    "all_success",
    "all_failed",
    "all_done",
    "all_done_setup_success",
    "all_skipped",
    "one_success",
    "one_failed",
    "one_done",
    "none_failed",
    "none_failed_min_one_success",
    "none_skipped",
    "always",
}
TOP_LEVEL = {
    "schema_version",
    "dag_id",
    "description",
    "owner",
    "tags",
    "schedule",
    "schedule_timezone",
    "start_date",
    "end_date",
    "catchup",
    "max_active_runs",
    "max_active_tasks",
    "dagrun_timeout_seconds",
    "default_args",
    "params",
    "doc_md",
    "fileloc",
    "staging",
    "tasks",
}
TASK_FIELDS = {
    "task_id",
    "type",
    "operator",
    "task_group",
    "is_setup",
    "is_teardown",
    "depends_on",
    "trigger_rule",
    "retries",
    "retry_delay_seconds",
    "retry_exponential_backoff",
    "max_retry_delay_seconds",
    "execution_timeout_seconds",
    "execution_mode",
    "entrypoint",
    "http_request",
    "env",
    "secrets",
    "resources",
    "execution",
    "xcom_input",
    "call_args",
    "xcom_schema",
    "multiple_outputs",
    "branch",
    "ignore_downstream_trigger_rules",
    "sensor",
    "map",
    "doc_md",
}
HTTP_FIELDS = {"method", "url", "headers", "body", "timeout_seconds", "success_status_codes", "http_conn_id"}
SENSOR_FIELDS = {"poke_interval_seconds", "timeout_seconds", "mode", "soft_fail", "exponential_backoff"}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_ref(ref, upstream: set) -> None:
    if isinstance(ref, str):
        assert ref in upstream
    else:
        assert set(ref) == {"task_id", "key"} and ref["task_id"] in upstream and isinstance(ref["key"], str)


def _check_input(value, upstream: set) -> None:
    if isinstance(value, list):
        for ref in value:
            _check_ref(ref, upstream)
    elif isinstance(value, dict) and "dict" in value:
        assert set(value) == {"dict"}
        for ref in value["dict"].values():
            _check_ref(ref, upstream)
    else:
        _check_ref(value, upstream)


def _check_source(source, upstream: set) -> None:
    if isinstance(source, dict) and "literal" in source:
        assert set(source) == {"literal"} and isinstance(source["literal"], list)
    else:
        _check_ref(source, upstream)


def check_contract(dag: dict) -> None:
    assert set(dag) <= TOP_LEVEL, set(dag) - TOP_LEVEL
    assert dag["schema_version"] == "1.0"
    assert ID.match(dag["dag_id"])
    assert isinstance(dag["tags"], list) and len(set(dag["tags"])) == len(dag["tags"])
    assert dag["schedule"] is None or CRON_OR_PRESET.match(dag["schedule"])
    assert isinstance(dag["catchup"], bool)
    for key in ("start_date", "end_date"):
        if key in dag:
            assert RFC3339_UTC.match(dag[key]), dag[key]
    for key in ("max_active_runs", "max_active_tasks"):
        if key in dag:
            assert isinstance(dag[key], int) and dag[key] >= 1
    if "dagrun_timeout_seconds" in dag:
        assert _is_number(dag["dagrun_timeout_seconds"]) and dag["dagrun_timeout_seconds"] > 0
    for param in dag.get("params", {}).values():
        assert set(param) == {"value", "description", "schema"} and isinstance(param["schema"], dict)
    assert isinstance(dag["fileloc"], str) and not os.path.isabs(dag["fileloc"])
    ids = [task["task_id"] for task in dag["tasks"]]
    assert ids and ids == sorted(ids) and len(set(ids)) == len(ids)
    for task in dag["tasks"]:
        assert set(task) <= TASK_FIELDS, set(task) - TASK_FIELDS
        assert type(task["task_id"]) is str and ID.match(task["task_id"])
        assert task["type"] in {"python", "bash", "http_api", "empty"}
        assert isinstance(task["operator"], str) and task["operator"]
        upstream = set(task.get("depends_on", []))
        if "depends_on" in task:
            assert task["depends_on"] == sorted(upstream) and upstream and upstream <= set(ids)
            assert task["task_id"] not in upstream
        assert task.get("trigger_rule", "all_success") in TRIGGER_RULES
        assert task.get("trigger_rule") != "all_success", "the default trigger rule is not written"
        if "retries" in task:
            assert isinstance(task["retries"], int) and 0 <= task["retries"] <= 100
        for key in ("retry_delay_seconds", "max_retry_delay_seconds"):
            if key in task:
                assert _is_number(task[key]) and task[key] >= 0
        if "execution_timeout_seconds" in task:
            assert _is_number(task["execution_timeout_seconds"]) and task["execution_timeout_seconds"] > 0
        if task["type"] == "python":
            assert task["entrypoint"] == f"{dag['fileloc']}:{task['task_id']}"
        if task["type"] == "bash":
            assert task["entrypoint"].strip(), "a bash task needs its command as the entrypoint"
        if task["type"] == "http_api":
            request = task["http_request"]
            assert set(request) <= HTTP_FIELDS and {"method", "url"} <= set(request)
            assert "entrypoint" not in task
        if task["type"] == "empty":
            assert "entrypoint" not in task
        if "env" in task:
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in task["env"].items())
        for value in task.get("xcom_input", {}).values():
            _check_input(value, upstream)
        assert isinstance(task.get("call_args", {}), dict)
        for key in ("is_setup", "is_teardown", "multiple_outputs", "ignore_downstream_trigger_rules"):
            if key in task:
                assert isinstance(task[key], bool)
        if "branch" in task:
            assert task["branch"] in {"branch", "short_circuit", "latest_only"}
        if "ignore_downstream_trigger_rules" in task:
            assert task.get("branch") == "short_circuit"
        if "sensor" in task:
            assert set(task["sensor"]) == SENSOR_FIELDS and task["sensor"]["mode"] in {"poke", "reschedule"}
        if "map" in task:
            (kind,) = task["map"]
            assert kind in {"expand", "expand_kwargs"}
            if kind == "expand":
                for source in task["map"]["expand"].values():
                    _check_source(source, upstream)
            else:
                _check_source(task["map"]["expand_kwargs"], upstream)


FILES = sorted(f for f in os.listdir(DAGS_DIR) if f.endswith(".py"))


@pytest.mark.parametrize("filename", FILES)
def test_compiled_dags_follow_the_contract(filename):
    document = compile_paths([os.path.join(DAGS_DIR, filename)], DAGS_DIR)
    assert document["errors"] == []
    for dag in document["dags"]:
        check_contract(dag)
        assert not {"dag_version", "image", "source"} & set(dag)


def test_contract_checker_rejects_unknown_fields():
    dag = {
        "schema_version": "1.0",
        "dag_id": "x",
        "tags": [],
        "schedule": None,
        "catchup": False,
        "fileloc": "dag.py",
        "tasks": [{"task_id": "a", "type": "empty", "operator": "EmptyOperator", "retires": 3}],
    }
    with pytest.raises(AssertionError):
        check_contract(dag)

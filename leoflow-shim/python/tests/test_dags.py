"""Every DAG file in tests/dags compiles to what Airflow 3's DagBag reports for it.

Each expectation lists task ids, edges, trigger rules, retries, retry delays, timeouts, mapped tasks, schedule,
catchup and tags (written from Airflow's documented behaviour); optional entries pin other dag.json fields.
Rules, retries, delays, timeouts and mapped tasks not listed are asserted absent.
"""

from __future__ import annotations

import datetime
import os

import pytest

from support import DAGS_DIR, compile_paths, edges_of, parse_edges, task_map

E = parse_edges

EXPECTED = {
    "taskflow_etl.py": {
        "tutorial_taskflow_api": dict(
            tasks={"extract", "transform", "load"},
            edges=E("extract >> transform >> load"),
            schedule="@daily",
            catchup=False,
            tags=["example", "taskflow"],
            dag={"start_date": "2021-01-01T00:00:00Z", "doc_md": "### TaskFlow API Tutorial Documentation"},
            fields={
                "extract": {
                    "operator": "@task",
                    "multiple_outputs": True,
                    "doc_md": "Extract task",
                    "entrypoint": "taskflow_etl.py:extract",
                },
                "transform": {"multiple_outputs": True, "xcom_input": {"order_data_dict": "extract"}},
                "load": {
                    "xcom_input": {"total_order_value": {"task_id": "transform", "key": "total_order_value"}},
                    "call_args": {"label": "Total order value"},
                },
            },
        )
    },
    "taskflow_task_options.py": {
        "taskflow_task_options": dict(
            tasks={"fetch_rows", "crunch", "always_report", "alert"},
            edges=E("fetch_rows >> crunch >> {always_report, alert}"),
            schedule="0 6 * * *",
            catchup=False,
            tags=["options"],
            trigger_rules={"always_report": "all_done", "alert": "one_failed"},
            retries={"fetch_rows": 3, "alert": 0},
            retry_delays={"fetch_rows": 30},
            timeouts={"crunch": 600},
            fields={
                "crunch": {
                    "retry_exponential_backoff": True,
                    "max_retry_delay_seconds": 3600,
                    "xcom_input": {"rows": "fetch_rows"},
                }
            },
        )
    },
    "classic_operators.py": {
        "classic_operators": dict(
            tasks={"start", "compute", "shout", "listing", "report"},
            edges=E("start >> {compute, shout} >> report; start >> listing"),
            schedule="@hourly",
            catchup=False,
            tags=["classic"],
            fields={
                "start": {"type": "empty", "operator": "EmptyOperator"},
                "compute": {"type": "python", "operator": "PythonOperator", "call_args": {"a": 1, "b": 2, "scale": 10}},
                "shout": {"type": "bash", "entrypoint": "echo $GREETING", "env": {"GREETING": "hello"}},
                "listing": {"type": "bash", "entrypoint": "ls -la {{ ds }}"},
            },
        )
    },
    "legacy_imports.py": {
        "legacy_imports": dict(
            tasks={"begin", "show_bucket", "count", "sync", "finish"},
            edges=E("begin >> show_bucket >> count >> sync >> finish"),
            schedule="@every 86400s",
            catchup=False,
            tags=["legacy"],
            trigger_rules={"finish": "none_failed"},
            retries={"begin": 1, "show_bucket": 1, "count": 1, "sync": 4, "finish": 1},
            retry_delays={t: 300 for t in ("begin", "show_bucket", "count", "sync", "finish")},
            dag={"owner": "data-eng"},
            fields={"sync": {"entrypoint": "echo sync s3://example"}},
        )
    },
    "default_args_inheritance.py": {
        "default_args_inheritance": dict(
            tasks={"inherits", "overrides", "own_defaults", "grp.in_group", "grp.tf_in_group", "no_retries"},
            edges=E("inherits >> overrides >> own_defaults >> {grp.in_group, grp.tf_in_group} >> no_retries"),
            schedule=None,
            catchup=False,
            tags=[],
            retries={
                "inherits": 2,
                "overrides": 5,
                "own_defaults": 7,
                "grp.in_group": 9,
                "grp.tf_in_group": 9,
                "no_retries": 0,
            },
            retry_delays={
                "inherits": 120,
                "overrides": 10,
                "own_defaults": 120,
                "grp.in_group": 120,
                "grp.tf_in_group": 120,
                "no_retries": 120,
            },
            timeouts={
                "inherits": 1800,
                "overrides": 1800,
                "own_defaults": 90,
                "grp.in_group": 1800,
                "grp.tf_in_group": 1800,
                "no_retries": 1800,
            },
            dag={"owner": "platform", "description": "default_args precedence"},
            fields={
                "inherits": {"retry_exponential_backoff": True, "max_retry_delay_seconds": 1200},
                "grp.in_group": {"task_group": "grp"},
            },
        )
    },
    "knobs_unset.py": {
        "knobs_unset": dict(
            tasks={"first", "second", "third"},
            edges=E("first >> second >> third"),
            schedule=None,
            catchup=False,
            tags=[],
            absent={
                "first": [
                    "retries",
                    "retry_delay_seconds",
                    "execution_timeout_seconds",
                    "trigger_rule",
                    "retry_exponential_backoff",
                    "max_retry_delay_seconds",
                ]
            },
        )
    },
    "taskgroups_nested.py": {
        "taskgroups_nested": dict(
            tasks={
                "start",
                "section_1.task_1",
                "section_1.task_2",
                "section_1.task_3",
                "section_2.first",
                "section_2.inner_section_2.deep_a",
                "section_2.inner_section_2.deep_b",
                "unprefixed",
                "end",
            },
            edges=E(
                "start >> section_1.task_1 >> {section_1.task_2, section_1.task_3} >> section_2.first"
                " >> section_2.inner_section_2.deep_a >> section_2.inner_section_2.deep_b >> unprefixed >> end"
            ),
            schedule="@weekly",
            catchup=False,
            tags=["groups"],
            fields={
                "section_2.inner_section_2.deep_a": {"task_group": "section_2.inner_section_2"},
                "unprefixed": {"task_group": "flat"},
            },
            absent={"start": ["task_group"]},
        )
    },
    "task_group_decorator.py": {
        "task_group_decorator": dict(
            tasks={
                "task_start",
                "task_group_function.task_1",
                "task_group_function.task_2",
                "task_group_function__1.task_1",
                "task_group_function__1.task_2",
                "task_group_function__2.task_1",
                "task_group_function__2.task_2",
                "custom.lonely",
                "task_end",
            },
            edges=E(
                "task_start >> task_group_function.task_1 >> task_group_function.task_2"
                " >> task_group_function__1.task_1 >> task_group_function__1.task_2"
                " >> task_group_function__2.task_1 >> task_group_function__2.task_2 >> custom.lonely >> task_end"
            ),
            schedule=None,
            catchup=False,
            tags=["groups"],
            fields={
                "task_group_function__1.task_1": {
                    "task_group": "task_group_function__1",
                    "xcom_input": {"value": "task_group_function.task_2"},
                },
                "custom.lonely": {"call_args": {"value": "x"}},
            },
        )
    },
    "branching_taskflow.py": {
        "branching_taskflow": dict(
            tasks={
                "run_this_first",
                "branching",
                "branch_a",
                "branch_b",
                "branch_c",
                "follow_branch_a",
                "follow_branch_b",
                "follow_branch_c",
                "join",
            },
            edges=E(
                "run_this_first >> branching >> {branch_a, branch_b, branch_c};"
                "branch_a >> follow_branch_a >> join; branch_b >> follow_branch_b >> join;"
                "branch_c >> follow_branch_c >> join"
            ),
            schedule="@daily",
            catchup=False,
            tags=["branching", "example"],
            trigger_rules={"join": "none_failed_min_one_success"},
            fields={
                "branching": {
                    "operator": "@task.branch",
                    "branch": "branch",
                    "type": "python",
                    "call_args": {"choices": ["branch_a", "branch_b", "branch_c"]},
                }
            },
        )
    },
    "branching_classic.py": {
        "branching_classic": dict(
            tasks={"pick", "weekday", "weekend", "done"},
            edges=E("pick >> {weekday, weekend} >> done"),
            schedule="@daily",
            catchup=False,
            tags=[],
            trigger_rules={"done": "none_failed_min_one_success"},
            fields={"pick": {"operator": "BranchPythonOperator", "branch": "branch", "type": "python"}},
        )
    },
    "short_circuit.py": {
        "short_circuit": dict(
            tasks={
                "condition_is_true",
                "condition_is_false",
                "true_1",
                "true_2",
                "false_1",
                "false_2",
                "respect_trigger_rules",
                "always_runs",
            },
            edges=E(
                "condition_is_true >> true_1 >> true_2; condition_is_false >> false_1 >> false_2;"
                "respect_trigger_rules >> always_runs"
            ),
            schedule=None,
            catchup=False,
            tags=["example"],
            trigger_rules={"always_runs": "all_done"},
            fields={
                "condition_is_true": {
                    "operator": "@task.short_circuit",
                    "branch": "short_circuit",
                    "ignore_downstream_trigger_rules": True,
                    "call_args": {"condition": True},
                },
                "respect_trigger_rules": {
                    "operator": "ShortCircuitOperator",
                    "branch": "short_circuit",
                    "ignore_downstream_trigger_rules": False,
                },
            },
        )
    },
    "latest_only.py": {
        "latest_only": dict(
            tasks={"latest_only", "task1"},
            edges=E("latest_only >> task1"),
            schedule="@every 14400s",
            catchup=False,
            tags=["example3"],
            fields={"latest_only": {"type": "empty", "operator": "LatestOnlyOperator", "branch": "latest_only"}},
            absent={"latest_only": ["entrypoint"]},
        )
    },
    "mapping_literal.py": {
        "mapping_literal": dict(
            tasks={"add_one", "sum_it", "multiply", "show", "ranged"},
            edges=E("add_one >> sum_it"),
            schedule=None,
            catchup=False,
            tags=[],
            mapped={"add_one", "multiply", "show", "ranged"},
            fields={
                "add_one": {"map": {"expand": {"x": {"literal": [1, 2, 3]}}}},
                "multiply": {
                    "map": {"expand": {"x": {"literal": [1, 2]}, "y": {"literal": [3, 4]}}},
                    "call_args": {"factor": 10},
                },
                "show": {"map": {"expand": {"pair": {"literal": [["a", 1], ["b", 2]]}}}},
                "ranged": {"map": {"expand": {"x": {"literal": [0, 1, 2]}}}},
                "sum_it": {"xcom_input": {"values": "add_one"}},
            },
        )
    },
    "mapping_xcom.py": {
        "mapping_xcom": dict(
            tasks={"make_list", "consumer", "collect"},
            edges=E("make_list >> consumer >> collect"),
            schedule=None,
            catchup=False,
            tags=["mapping"],
            retries={"consumer": 2},
            mapped={"consumer"},
            fields={
                "consumer": {"map": {"expand": {"arg": "make_list"}}, "call_args": {"scale": 3}},
                "collect": {"xcom_input": {"results": "consumer"}},
            },
        )
    },
    "mapping_expand_kwargs.py": {
        "mapping_expand_kwargs": dict(
            tasks={"copy", "build_pairs", "copy_dynamic"},
            edges=E("build_pairs >> copy_dynamic"),
            schedule=None,
            catchup=False,
            tags=[],
            mapped={"copy", "copy_dynamic"},
            fields={
                "copy": {"map": {"expand_kwargs": {"literal": [{"src": "x", "dst": "y"}, {"src": "u", "dst": "v"}]}}},
                "copy_dynamic": {"map": {"expand_kwargs": "build_pairs"}},
            },
        )
    },
    "mapping_classic.py": {
        "mapping_classic": dict(
            tasks={"echo", "with_env", "doubled", "commands", "from_output"},
            edges=E("echo >> with_env >> doubled >> from_output; commands >> from_output"),
            schedule=None,
            catchup=False,
            tags=[],
            retries={t: 1 for t in ("echo", "with_env", "doubled", "commands", "from_output")},
            retry_delays={"echo": 5},
            mapped={"echo", "with_env", "doubled", "from_output"},
            fields={
                "echo": {
                    "type": "python",
                    "operator": "BashOperator",
                    "entrypoint": "mapping_classic.py:echo",
                    "map": {"expand": {"bash_command": {"literal": ["echo 1", "echo 2", "echo 3"]}}},
                },
                "with_env": {
                    "type": "bash",
                    "entrypoint": "echo $X",
                    "map": {"expand": {"env": {"literal": [{"X": "1"}, {"X": "2"}]}}},
                },
                "doubled": {
                    "type": "python",
                    "operator": "PythonOperator",
                    "map": {"expand": {"op_args": {"literal": [[1], [2]]}}},
                },
                "from_output": {
                    "type": "python",
                    "operator": "BashOperator",
                    "map": {"expand": {"bash_command": "commands"}},
                },
            },
        )
    },
    "setup_teardown_decorators.py": {
        "setup_teardown_decorators": dict(
            tasks={"create_cluster", "run_query", "summarize", "delete_cluster", "prepare", "clean", "inside_block"},
            edges=E(
                "create_cluster >> run_query >> summarize >> delete_cluster; create_cluster >> delete_cluster;"
                "prepare >> inside_block >> clean; prepare >> clean"
            ),
            schedule=None,
            catchup=False,
            tags=["example"],
            trigger_rules={"delete_cluster": "all_done_setup_success", "clean": "all_done_setup_success"},
            fields={
                "create_cluster": {"is_setup": True},
                "prepare": {"is_setup": True},
                "delete_cluster": {"is_teardown": True, "xcom_input": {"cluster": "create_cluster"}},
                "clean": {"is_teardown": True},
            },
            absent={"run_query": ["is_setup", "is_teardown"]},
        )
    },
    "setup_teardown_classic.py": {
        "setup_teardown_classic": dict(
            tasks={"create_bucket", "work", "more_work", "delete_bucket", "grant", "revoke"},
            edges=E(
                "create_bucket >> work >> more_work >> delete_bucket; create_bucket >> delete_bucket;grant >> revoke"
            ),
            schedule=None,
            catchup=False,
            tags=[],
            trigger_rules={"delete_bucket": "all_done_setup_success", "revoke": "all_done_setup_success"},
            fields={
                "create_bucket": {"is_setup": True, "type": "bash"},
                "delete_bucket": {"is_teardown": True},
                "grant": {"is_setup": True},
                "revoke": {"is_teardown": True},
            },
        )
    },
    "setup_teardown_nested.py": {
        "setup_teardown_nested": dict(
            tasks={"outer_setup", "outer_work", "outer_teardown", "inner_setup", "inner_work", "inner_teardown"},
            edges=E(
                "outer_setup >> outer_work >> outer_teardown; outer_setup >> outer_teardown;"
                "outer_setup >> inner_setup >> inner_work >> inner_teardown >> outer_teardown;"
                "inner_setup >> inner_teardown"
            ),
            schedule=None,
            catchup=False,
            tags=[],
            trigger_rules={"outer_teardown": "all_done_setup_success", "inner_teardown": "all_done_setup_success"},
        )
    },
    "sensors.py": {
        "sensors": dict(
            tasks={"wait_for_upstream", "wait_file", "wait_py", "proceed"},
            edges=E("{wait_for_upstream, wait_file, wait_py} >> proceed"),
            schedule="@daily",
            catchup=False,
            tags=[],
            fields={
                "wait_for_upstream": {
                    "operator": "@task.sensor",
                    "type": "python",
                    "sensor": {
                        "poke_interval_seconds": 30,
                        "timeout_seconds": 3600,
                        "mode": "reschedule",
                        "soft_fail": False,
                        "exponential_backoff": False,
                    },
                },
                "wait_file": {
                    "operator": "BashSensor",
                    "type": "bash",
                    "entrypoint": "test -f /tmp/flag",
                    "sensor": {
                        "poke_interval_seconds": 60,
                        "timeout_seconds": 604800,
                        "mode": "poke",
                        "soft_fail": False,
                        "exponential_backoff": False,
                    },
                },
                "wait_py": {
                    "operator": "PythonSensor",
                    "type": "python",
                    "call_args": {"path": "/tmp/x"},
                    "sensor": {
                        "poke_interval_seconds": 60,
                        "timeout_seconds": 7200,
                        "mode": "poke",
                        "soft_fail": True,
                        "exponential_backoff": True,
                    },
                },
                "proceed": {"xcom_input": {"signal": "wait_for_upstream"}},
            },
        )
    },
    "http_operator.py": {
        "http_operator": dict(
            tasks={"get_full_url", "post_json", "legacy_default_conn"},
            edges=E("get_full_url >> post_json >> legacy_default_conn"),
            schedule=None,
            catchup=False,
            tags=["http"],
            retries={"post_json": 2},
            timeouts={"get_full_url": 30},
            fields={
                "get_full_url": {
                    "type": "http_api",
                    "operator": "HttpOperator",
                    "http_request": {"method": "GET", "url": "https://httpbin.org/get"},
                },
                "post_json": {
                    "http_request": {
                        "method": "POST",
                        "url": "/post",
                        "http_conn_id": "http_target",
                        "headers": {"Content-Type": "application/json"},
                        "body": {"name": "leoflow", "n": 1},
                        "timeout_seconds": 15,
                    }
                },
                "legacy_default_conn": {
                    "operator": "SimpleHttpOperator",
                    "http_request": {"method": "GET", "url": "api/ping", "http_conn_id": "http_default"},
                },
            },
            absent={"get_full_url": ["entrypoint", "execution_mode"]},
        )
    },
    "custom_operators.py": {
        "custom_operators": dict(
            tasks={"who", "hello", "static_hello", "wait_flag", "loud", "timed"},
            edges=E("who >> hello; wait_flag >> {hello, static_hello} >> loud >> timed"),
            schedule=None,
            catchup=False,
            tags=[],
            retries={"who": 3, "hello": 3, "static_hello": 1, "wait_flag": 3, "loud": 3, "timed": 3},
            fields={
                "hello": {
                    "type": "python",
                    "operator": "HelloOperator",
                    "entrypoint": "custom_operators.py:hello",
                    "xcom_input": {"name": "who"},
                },
                "wait_flag": {
                    "operator": "WaitForFlag",
                    "sensor": {
                        "poke_interval_seconds": 5,
                        "timeout_seconds": 50,
                        "mode": "poke",
                        "soft_fail": False,
                        "exponential_backoff": False,
                    },
                },
                "loud": {"type": "bash", "operator": "LoudBash", "entrypoint": "echo LOUD"},
                "timed": {"type": "python", "operator": "TimedBash", "entrypoint": "custom_operators.py:timed"},
            },
        )
    },
    "params_dag.py": {
        "params_dag": dict(
            tasks={"show"},
            edges=set(),
            schedule=None,
            catchup=False,
            tags=[],
            dag={
                "params": {
                    "x": {"value": 5, "description": "how many", "schema": {"type": "integer", "minimum": 3}},
                    "name": {
                        "value": "world",
                        "description": None,
                        "schema": {"type": "string", "enum": ["world", "moon"], "title": "Who"},
                    },
                    "flag": {"value": True, "description": None, "schema": {}},
                    "required_value": {"value": None, "description": None, "schema": {"type": "string"}},
                    "from_default_args": {"value": 1, "description": None, "schema": {}},
                }
            },
        )
    },
    "schedules_and_dates.py": {
        **{
            dag_id: dict(
                tasks={"only"},
                edges=set(),
                schedule=schedule,
                catchup=False,
                tags=[],
                dag={"start_date": "2024-01-01T00:00:00Z"},
            )
            for dag_id, schedule in [
                ("sched_none", None),
                ("sched_once", "@once"),
                ("sched_daily", "@daily"),
                ("sched_cron", "*/15 * * * *"),
                ("sched_timedelta", "@every 5400s"),
            ]
        },
        "sched_continuous": dict(
            tasks={"only"}, edges=set(), schedule="@continuous", catchup=False, tags=[], dag={"max_active_runs": 1}
        ),
        "sched_paris": dict(
            tasks={"only"},
            edges=set(),
            schedule="30 2 * * *",
            catchup=True,
            tags=[],
            dag={
                "schedule_timezone": "Europe/Paris",
                "start_date": "2023-12-31T23:00:00Z",
                "end_date": "2024-12-30T23:00:00Z",
                "max_active_runs": 3,
                "max_active_tasks": 8,
                "dagrun_timeout_seconds": 7200,
            },
        ),
        "sched_timetable": dict(
            tasks={"only"},
            edges=set(),
            schedule="0 9 * * 1-5",
            catchup=False,
            tags=[],
            dag={"schedule_timezone": "America/New_York", "start_date": "2024-01-01T12:30:00Z"},
        ),
    },
    "fan_in.py": {
        "fan_in": dict(
            tasks={"shard", "shard__1", "shard__2", "shard__3", "stats", "aggregate"},
            edges=E("{shard, shard__1, shard__2, shard__3, stats} >> aggregate"),
            schedule=None,
            catchup=False,
            tags=[],
            fields={
                "aggregate": {
                    "xcom_input": {
                        "parts": ["shard", "shard__1", "shard__2", "shard__3"],
                        "summary": {
                            "dict": {
                                "mean": {"task_id": "stats", "key": "mean"},
                                "max": {"task_id": "stats", "key": "max"},
                                "first": "shard",
                            }
                        },
                    },
                    "call_args": {"label": "sum"},
                },
                "shard__2": {"call_args": {"n": 2}, "entrypoint": "fan_in.py:shard__2"},
                "stats": {"multiple_outputs": True},
            },
        )
    },
    "chain_helpers.py": {
        "chain_helpers": dict(
            tasks=set("abcdefghijklmn"),
            edges=E("a >> {b, c}; b >> d; c >> e; {d, e} >> f; g >> {h, i} >> {j, k}; {l, m} >> n"),
            schedule=None,
            catchup=False,
            tags=[],
        )
    },
    "multiple_dags.py": {
        "multi_first": dict(tasks={"hello"}, edges=set(), schedule="@daily", catchup=False, tags=["multi"]),
        "multi_second": dict(
            tasks={"one", "two"}, edges=E("one >> two"), schedule="@hourly", catchup=False, tags=["multi"]
        ),
    },
    "sibling_import.py": {
        "sibling_import": dict(
            tasks={"step_0", "step_1", "step_2"},
            edges=E("step_0 >> step_1 >> step_2"),
            schedule=None,
            catchup=False,
            tags=["warehouse_a"],
            fields={"step_1": {"entrypoint": "echo step 1"}},
        )
    },
    "shared_commands.py": {},
    "classic_xcom_outputs.py": {
        "classic_xcom_outputs": dict(
            tasks={"producer", "consumer", "make_command", "runs_dynamic", "templated"},
            edges=E("producer >> {consumer, make_command, templated}; {consumer, make_command} >> runs_dynamic"),
            schedule=None,
            catchup=False,
            tags=[],
            fields={
                "producer": {"multiple_outputs": True},
                "consumer": {
                    "xcom_input": {
                        "path": {"task_id": "producer", "key": "path"},
                        "rows": {"task_id": "producer", "key": "rows"},
                    }
                },
                "runs_dynamic": {
                    "type": "python",
                    "operator": "BashOperator",
                    "xcom_input": {"bash_command": "make_command"},
                },
                "templated": {"type": "bash"},
            },
        )
    },
    "trigger_dagrun.py": {
        "trigger_controller": dict(
            tasks={"trigger_target"},
            edges=set(),
            schedule="@once",
            catchup=False,
            tags=["trigger"],
            fields={
                "trigger_target": {
                    "type": "python",
                    "operator": "TriggerDagRunOperator",
                    "entrypoint": "trigger_dagrun.py:trigger_target",
                }
            },
        )
    },
    "relationship_methods.py": {
        "relationship_methods": dict(
            tasks=set("abcdefgh") | {"produce", "tail"},
            edges=E("{a, b} >> c >> e >> {f, g}; {a, b} >> d >> g >> h >> produce; a >> produce; {produce, f} >> tail"),
            schedule=None,
            catchup=False,
            tags=[],
        )
    },
    "trigger_rules_all.py": {
        "trigger_rules_all": dict(
            tasks={"root", "enum_all_done_setup_success", "enum_none_skipped"}
            | {
                f"rule_{r}"
                for r in (
                    "all_success",
                    "all_failed",
                    "all_done",
                    "all_skipped",
                    "one_success",
                    "one_failed",
                    "one_done",
                    "none_failed",
                    "none_failed_min_one_success",
                    "none_skipped",
                    "always",
                )
            },
            edges={("root", t) for t in ("enum_all_done_setup_success", "enum_none_skipped")}
            | {
                ("root", f"rule_{r}")
                for r in (
                    "all_success",
                    "all_failed",
                    "all_done",
                    "all_skipped",
                    "one_success",
                    "one_failed",
                    "one_done",
                    "none_failed",
                    "none_failed_min_one_success",
                    "none_skipped",
                    "always",
                )
            },
            schedule=None,
            catchup=False,
            tags=[],
            trigger_rules={
                **{
                    f"rule_{r}": r
                    for r in (
                        "all_failed",
                        "all_done",
                        "all_skipped",
                        "one_success",
                        "one_failed",
                        "one_done",
                        "none_failed",
                        "none_failed_min_one_success",
                        "none_skipped",
                        "always",
                    )
                },
                "enum_all_done_setup_success": "all_done_setup_success",
                "enum_none_skipped": "none_skipped",
            },
        )
    },
    "virtualenv_tasks.py": {
        "virtualenv_tasks": dict(
            tasks={"in_venv", "virtualenv_classic"},
            edges=E("in_venv >> virtualenv_classic"),
            schedule=None,
            catchup=False,
            tags=[],
            fields={
                "in_venv": {"operator": "@task.virtualenv", "type": "python", "call_args": {"n": 3}},
                "virtualenv_classic": {"operator": "PythonVirtualenvOperator", "type": "python"},
            },
        )
    },
    "task_bash_decorator.py": {
        "task_bash_decorator": dict(
            tasks={"get_name", "greet", "sleep_it"},
            edges=E("get_name >> greet >> sleep_it"),
            schedule=None,
            catchup=False,
            tags=[],
            retries={"greet": 1},
            fields={
                "greet": {
                    "type": "python",
                    "operator": "@task.bash",
                    "entrypoint": "task_bash_decorator.py:greet",
                    "xcom_input": {"name": "get_name"},
                }
            },
            absent={"greet": ["env"]},
        )
    },
    "docs_and_owner.py": {
        "docs_and_owner": dict(
            tasks={"documented", "from_docstring", "explicit", "later"},
            edges=E("documented >> {from_docstring, explicit} >> later"),
            schedule=None,
            catchup=False,
            tags=[],
            dag={"description": "Documented DAG", "owner": "analytics", "doc_md": "# Docs\nSome *markdown*."},
            fields={
                "documented": {"doc_md": "Runs `true`."},
                "from_docstring": {"doc_md": "Docstring becomes doc_md."},
                "explicit": {"doc_md": "explicit wins"},
                "later": {"doc_md": "set after creation"},
            },
        )
    },
    "dynamic_dag_factory.py": {
        f"customer_{c}": dict(
            tasks={"extract", "load"},
            edges=E("extract >> load"),
            schedule="@daily",
            catchup=False,
            tags=["customer"],
            fields={"load": {"entrypoint": f"echo load {c}"}},
        )
        for c in ("acme", "globex")
    },
    "taskflow_suffixes.py": {
        "taskflow_suffixes": dict(
            tasks={"step", "step__1", "step__2", "renamed", "step__7", "step__8", "grp.step", "grp.step__1"},
            edges=E("step >> step__1 >> step__2 >> renamed >> step__7 >> step__8 >> grp.step >> grp.step__1"),
            schedule=None,
            catchup=False,
            tags=[],
            fields={"step__8": {"call_args": {"n": 8}}, "grp.step__1": {"call_args": {"n": 6}}},
        )
    },
    "edge_labels.py": {
        "edge_labels": dict(
            tasks={"ingest", "analyze", "check_integrity", "describe_integrity", "email_error", "save", "report"},
            edges=E(
                "ingest >> analyze >> check_integrity >> save >> report;"
                "check_integrity >> describe_integrity >> email_error >> report"
            ),
            schedule="@daily",
            catchup=False,
            tags=[],
        )
    },
    "context_and_variables.py": {
        "context_and_variables": dict(
            tasks={"uses_context", "classic_ds"},
            edges=E("uses_context >> classic_ds"),
            schedule=None,
            catchup=False,
            tags=["threshold-7"],
            fields={"uses_context": {"call_args": {"limit": 7}}},
            absent={"uses_context": ["xcom_input"]},
        )
    },
    "dag_function_params.py": {
        "dag_function_params": dict(
            tasks={"send"},
            edges=set(),
            schedule=None,
            catchup=False,
            tags=[],
            dag={
                "doc_md": "Greets by e-mail.",
                "params": {
                    "region": {"value": "eu", "description": None, "schema": {"enum": ["eu", "us"]}},
                    "email": {"value": "ops@example.com", "description": None, "schema": {}},
                    "limit": {"value": 10, "description": None, "schema": {}},
                },
            },
            fields={"send": {"call_args": {"subject": "report"}}},
            absent={"send": ["xcom_input"]},
        )
    },
    "bash_script_template.py": {
        "bash_script_template": dict(
            tasks={"from_script", "trailing_space", "in_dir"},
            edges=set(),
            schedule=None,
            catchup=False,
            tags=[],
            fields={
                "from_script": {"type": "bash", "entrypoint": '#!/usr/bin/env bash\necho "hello from script"\n'},
                "trailing_space": {"type": "bash", "entrypoint": "/usr/local/bin/run.sh "},
                "in_dir": {
                    "type": "python",
                    "operator": "BashOperator",
                    "entrypoint": "bash_script_template.py:in_dir",
                },
            },
        )
    },
    "xcomarg_edges.py": {
        "xcomarg_edges": dict(
            tasks={"start", "one", "two", "end"},
            edges=E("start >> one >> two >> end"),
            schedule=None,
            catchup=False,
            tags=[],
            absent={"two": ["xcom_input"]},
        )
    },
    "airflow3_tutorial.py": {
        "tutorial": dict(
            tasks={"print_date", "sleep", "templated"},
            edges=E("print_date >> {sleep, templated}"),
            schedule="@every 86400s",
            catchup=False,
            tags=["example"],
            retries={"print_date": 1, "sleep": 3, "templated": 1},
            retry_delays={"print_date": 300, "sleep": 300, "templated": 300},
            dag={
                "description": "A simple tutorial DAG",
                "doc_md": "Airflow 3's classic tutorial DAG: default_args, templated BashOperator, doc_md, a fan-out.",
            },
            fields={
                "print_date": {"doc_md": "#### Task Documentation\nYou can document your task.\n"},
                "templated": {
                    "entrypoint": '\n{% for i in range(5) %}\n    echo "{{ ds }}"\n'
                    '    echo "{{ macros.ds_add(ds, 7)}}"\n{% endfor %}\n'
                },
            },
        )
    },
    "taskgroup_explicit_args.py": {
        "taskgroup_explicit_args": dict(
            tasks={"prepare", "load.first", "load.second", "publish"},
            edges=E("prepare >> load.first >> load.second >> publish"),
            schedule="@daily",
            catchup=False,
            tags=[],
            retries={"load.first": 4, "load.second": 4},
            fields={"load.first": {"task_group": "load"}},
        )
    },
    "legacy_paths_mix.py": {
        "legacy_paths_mix": dict(
            tasks={"gate", "ready", "process.clean", "process.publish", "kick_downstream"},
            edges=E("gate >> ready >> process.clean >> process.publish >> kick_downstream"),
            schedule="@hourly",
            catchup=False,
            tags=[],
            dag={"params": {"dry_run": {"value": False, "description": None, "schema": {"type": "boolean"}}}},
            fields={
                "gate": {"type": "empty", "branch": "latest_only"},
                "ready": {
                    "type": "bash",
                    "sensor": {
                        "poke_interval_seconds": 10,
                        "timeout_seconds": 100,
                        "mode": "reschedule",
                        "soft_fail": False,
                        "exponential_backoff": False,
                    },
                },
                "kick_downstream": {"operator": "TriggerDagRunOperator"},
            },
        )
    },
    "skip_pipeline.py": {
        "skip_pipeline": dict(
            tasks={
                "skip_operator_1",
                "always_true_1",
                "all_success",
                "final_1",
                "skip_operator_2",
                "always_true_2",
                "one_success",
                "final_2",
            },
            edges=E(
                "{skip_operator_1, always_true_1} >> all_success >> final_1;"
                "{skip_operator_2, always_true_2} >> one_success >> final_2"
            ),
            schedule="@every 86400s",
            catchup=False,
            tags=["example"],
            trigger_rules={"one_success": "one_success"},
            fields={
                "skip_operator_1": {"type": "python", "operator": "EmptySkipOperator"},
                "always_true_1": {"type": "empty"},
            },
        )
    },
    "group_mapping_mix.py": {
        "group_mapping_mix": dict(
            tasks={"ingest.list_files", "ingest.parse", "summarize"},
            edges=E("ingest.list_files >> ingest.parse >> summarize"),
            schedule=None,
            catchup=False,
            tags=[],
            mapped={"ingest.parse"},
            fields={
                "ingest.parse": {"map": {"expand": {"path": "ingest.list_files"}}},
                "summarize": {"xcom_input": {"items": "ingest.parse"}},
            },
        )
    },
}


def _knob(dag: dict, key: str) -> dict:
    return {t["task_id"]: t[key] for t in dag["tasks"] if key in t}


def check(dag: dict, expected: dict) -> None:
    """Compare one compiled DAG with its expectation (see the module docstring)."""
    tasks = task_map(dag)
    assert set(tasks) == expected["tasks"]
    assert [t["task_id"] for t in dag["tasks"]] == sorted(tasks), "tasks must be sorted by task_id"
    assert edges_of(dag) == expected["edges"]
    assert dag["schedule"] == expected["schedule"]
    assert dag["catchup"] is expected["catchup"]
    assert dag["tags"] == expected["tags"]
    assert _knob(dag, "trigger_rule") == expected.get("trigger_rules", {})
    assert _knob(dag, "retries") == expected.get("retries", {})
    assert _knob(dag, "retry_delay_seconds") == expected.get("retry_delays", {})
    assert _knob(dag, "execution_timeout_seconds") == expected.get("timeouts", {})
    assert {t for t, task in tasks.items() if "map" in task} == expected.get("mapped", set())
    for key, value in expected.get("dag", {}).items():
        assert dag.get(key) == value, key
    for task_id, fields in expected.get("fields", {}).items():
        for key, value in fields.items():
            assert tasks[task_id].get(key) == value, f"{task_id}.{key}"
    for task_id, keys in expected.get("absent", {}).items():
        for key in keys:
            assert key not in tasks[task_id], f"{task_id}.{key} should be absent"


def test_every_dag_file_has_an_expectation():
    files = sorted(f for f in os.listdir(DAGS_DIR) if f.endswith(".py"))
    assert len(files) >= 40
    assert files == sorted(EXPECTED)


@pytest.mark.parametrize("filename", sorted(EXPECTED))
def test_dag_file(filename):
    document = compile_paths([os.path.join(DAGS_DIR, filename)], DAGS_DIR)
    assert document["errors"] == []
    compiled = {dag["dag_id"]: dag for dag in document["dags"]}
    assert set(compiled) == set(EXPECTED[filename])
    for dag_id, expected in EXPECTED[filename].items():
        assert compiled[dag_id]["fileloc"] == filename
        check(compiled[dag_id], expected)


def test_days_ago_start_date_is_midnight_utc_two_days_back():
    document = compile_paths([os.path.join(DAGS_DIR, "legacy_imports.py")], DAGS_DIR)
    start = document["dags"][0]["start_date"]
    expected = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=2)).strftime("%Y-%m-%d")
    assert start == f"{expected}T00:00:00Z"


def test_whole_folder_compiles_in_one_call():
    files = sorted(os.path.join(DAGS_DIR, f) for f in os.listdir(DAGS_DIR) if f.endswith(".py"))
    document = compile_paths(files, DAGS_DIR)
    assert document["errors"] == []
    expected_ids = {dag_id for dags in EXPECTED.values() for dag_id in dags}
    assert sorted(dag["dag_id"] for dag in document["dags"]) == sorted(expected_ids)

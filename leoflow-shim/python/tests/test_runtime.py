"""The task runtime end to end: a hand-written context.json, `python -m leoflow_shim run <workdir>` as a real
process, then result.json, xcom.jsonl and the log (stdout/stderr) are checked."""

from __future__ import annotations

import shutil
import textwrap

import pytest
from attempts import TOKEN, FakeAgent, Project

needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")

try:
    import jinja2  # noqa: F401

    ENGINES = ["jinja2", "builtin"]
except ImportError:
    ENGINES = ["builtin"]


@pytest.fixture
def project(tmp_path):
    return Project(tmp_path)


def dag(body: str, dag_id: str = "t", extra: str = "") -> str:
    """A DAG file with `body` (indented inside `with DAG(...)`)."""
    return (
        "from datetime import datetime\n"
        "from airflow.sdk import DAG, task, get_current_context, Variable, Connection, BaseOperator, Param\n"
        "from airflow.exceptions import AirflowSkipException, AirflowFailException\n"
        + textwrap.dedent(extra)
        + f"\nwith DAG(dag_id={dag_id!r}, start_date=datetime(2024, 1, 1), schedule=None, params={{'x': 5}}) as dag:\n"
        + textwrap.indent(textwrap.dedent(body), "    ")
    )


# -- TaskFlow ---------------------------------------------------------------------------------------------------


def test_taskflow_gets_inputs_over_call_args_and_never_logs_its_return_value(project):
    project.write(
        dag(
            """
            @task
            def extract():
                return 1

            @task
            def load(rows, factor=2, label="x"):
                print("loading", len(rows))
                return {"rows": rows, "factor": factor, "label": label, "secret": "RETURN-MARKER"}

            load(extract(), factor=3)
            """
        )
    )
    workdir = project.attempt(
        "load",
        spec={"xcom_input": {"rows": "extract"}, "depends_on": ["extract"]},
        inputs={"rows": [1, 2], "factor": 7},
        call_args={"factor": 3, "label": "from-call-args"},
    )
    ran = project.run(workdir)
    assert ran.returncode == 0
    assert ran.value == {"rows": [1, 2], "factor": 7, "label": "from-call-args", "secret": "RETURN-MARKER"}
    assert "loading 2" in ran.stdout
    assert "RETURN-MARKER" not in ran.stdout + ran.stderr


def test_mapped_kwargs_win_and_literal_map_values_are_rendered(project):
    project.write(
        dag(
            """
            @task
            def add(x, scale, tag):
                return [x * scale, tag]

            add.partial(scale=3).expand(x=[1, 2, 3], tag=["{{ ds }}"])
            """
        )
    )
    workdir = project.attempt(
        "add",
        map_index=1,
        spec={"map": {"expand": {"x": {"literal": [1, 2, 3]}, "tag": {"literal": ["{{ ds }}"]}}}},
        call_args={"scale": 3, "x": 100},
        inputs={"x": 200},
        mapped_kwargs={"x": 2, "tag": "{{ ds }}"},
    )
    assert project.run(workdir).value == [6, "2024-03-05"]


def test_values_from_mapped_task_outputs_are_not_rendered(project):
    project.write(
        dag(
            """
            @task
            def make():
                return ["{{ ds }}"]

            @task
            def echo(value):
                return value

            echo.expand(value=make())
            """
        )
    )
    workdir = project.attempt(
        "echo", map_index=0, spec={"map": {"expand": {"value": "make"}}}, mapped_kwargs={"value": "{{ ds }}"}
    )
    assert project.run(workdir).value == "{{ ds }}"


def test_multiple_outputs_returns_the_dict_and_checks_it(project):
    project.write(
        dag(
            """
            @task(multiple_outputs=True)
            def split():
                return {"a": 1, "b": [2]}

            @task(multiple_outputs=True)
            def bad():
                return [1]

            split() >> bad()
            """
        )
    )
    assert project.run(project.attempt("split", spec={"multiple_outputs": True})).value == {"a": 1, "b": [2]}
    ran = project.run(project.attempt("bad", spec={"multiple_outputs": True}))
    assert ran.result["status"] == "failed" and "expected dictionary for multiple_outputs" in ran.result["error"]


def test_context_keys_and_get_current_context(project):
    project.write(
        dag(
            """
            def helper():
                ctx = get_current_context()
                return ctx["ti"].task_id

            @task
            def inspect(ti=None, dag_run=None, params=None, **context):
                return {
                    "helper": helper(),
                    "ti": [ti.dag_id, ti.task_id, ti.run_id, ti.try_number, ti.map_index],
                    "task_map_index": context["task"].map_index,
                    "dag": context["dag"].dag_id,
                    "dag_run": [dag_run.run_id, dag_run.run_type, dag_run.conf, dag_run.logical_date.isoformat()],
                    "dates": [context["ds"], context["ds_nodash"], context["ts"], context["ts_nodash"]],
                    "interval": [context["data_interval_start"].isoformat(), context["data_interval_end"].isoformat()],
                    "params": params,
                    "run_id": context["run_id"],
                    "macros": context["macros"].ds_add(context["ds"], -1),
                    "same": context["task_instance"] is ti,
                }

            inspect()
            """
        )
    )
    workdir = project.attempt("inspect", try_number=2, params={"x": 5, "y": 1}, conf={"y": 9})
    value = project.run(workdir).value
    assert value == {
        "helper": "inspect",
        "ti": ["t", "inspect", "manual__2024-03-05", 2, -1],
        "task_map_index": -1,
        "dag": "t",
        "dag_run": ["manual__2024-03-05", "manual", {"y": 9}, "2024-03-05T10:00:00+00:00"],
        "dates": ["2024-03-05", "20240305", "2024-03-05T10:00:00+00:00", "20240305T100000"],
        "interval": ["2024-03-05T10:00:00+00:00", "2024-03-05T10:00:00+00:00"],
        "params": {"x": 5, "y": 9},
        "run_id": "manual__2024-03-05",
        "macros": "2024-03-04",
        "same": True,
    }


def test_a_run_without_logical_date_renders_dates_from_run_after(project):
    project.write(
        dag(
            """
            @task
            def when(ds=None, dag_run=None, logical_date=None):
                return [ds, dag_run.logical_date, logical_date.isoformat()]

            when()
            """
        )
    )
    workdir = project.attempt("when", logical_date=None, run_after="2024-07-01T08:30:00.5Z")
    assert project.run(workdir).value == ["2024-07-01", None, "2024-07-01T08:30:00.500000+00:00"]


def test_dag_params_passed_to_tasks_come_from_the_run(project):
    project.write(
        """
import pendulum
from airflow.sdk import dag, task

@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"))
def t(email: str = "ops@example.com", limit: int = 10):
    @task
    def send(to, limit, subject: str = "hi"):
        return [to, limit, subject]

    send(email, limit, subject="report")

t()
"""
    )
    workdir = project.attempt(
        "send", params={"email": "ops@example.com", "limit": 10}, conf={"limit": 3}, call_args={"subject": "report"}
    )
    assert project.run(workdir).value == ["ops@example.com", 3, "report"]


def test_go_era_module_callable_entrypoint(project):
    project.write(
        """
from airflow.sdk import get_current_context

def double(n, bonus=0):
    return n * 2 + bonus + len(get_current_context()["ds"])
""",
        name="jobs.py",
    )
    workdir = project.attempt("double", entrypoint="jobs:double", inputs={"n": 21}, call_args={"n": 1, "other": 5})
    assert project.run(workdir).value == 52


def test_virtualenv_task_runs_in_process(project):
    project.write(
        dag(
            """
            @task.virtualenv(requirements=["colorama==0.4.0"], system_site_packages=False)
            def in_venv(n):
                import sys
                return [n, sys.prefix == sys.base_prefix or True]

            in_venv(3)
            """
        )
    )
    assert project.run(project.attempt("in_venv", call_args={"n": 3})).value == [3, True]


# -- classic operators ---------------------------------------------------------------------------------------------


def test_python_operator_op_args_op_kwargs_and_templates_dict(project):
    project.write(
        dag(
            """
            def add(a, b, scale=1, templates_dict=None, **context):
                return [(a + b) * scale, templates_dict["day"], context["ti"].task_id]

            from airflow.providers.standard.operators.python import PythonOperator
            PythonOperator(task_id="compute", python_callable=add, op_args=[1, 2], op_kwargs={"scale": 10},
                           templates_dict={"day": "{{ ds_nodash }}"})
            """
        )
    )
    workdir = project.attempt("compute", call_args={"a": 1, "b": 2, "scale": 10})
    assert project.run(workdir).value == [30, "20240305", "compute"]


def test_branch_operators_return_the_chosen_ids(project):
    project.write(
        dag(
            """
            from airflow.providers.standard.operators.python import BranchPythonOperator
            from airflow.providers.standard.operators.empty import EmptyOperator

            def choose(**context):
                return "weekday" if context["logical_date"].weekday() < 5 else "weekend"

            pick = BranchPythonOperator(task_id="pick", python_callable=choose)

            @task.branch
            def pick_many(n):
                return ["a", "b"] if n > 1 else "a"

            pick >> [EmptyOperator(task_id="weekday"), EmptyOperator(task_id="weekend")]
            pick_many(2) >> [EmptyOperator(task_id="a"), EmptyOperator(task_id="b")]
            """
        )
    )
    assert project.run(project.attempt("pick", spec={"branch": "branch"})).value == "weekday"
    assert project.run(project.attempt("pick_many", spec={"branch": "branch"}, call_args={"n": 2})).value == ["a", "b"]


def test_short_circuit_returns_its_value_as_is(project):
    project.write(
        dag(
            """
            from airflow.providers.standard.operators.python import ShortCircuitOperator

            ShortCircuitOperator(task_id="stop", python_callable=lambda: False)

            @task.short_circuit
            def check(value):
                return value

            check([])
            """
        )
    )
    ran = project.run(project.attempt("stop", spec={"branch": "short_circuit"}))
    assert ran.result == {"status": "success", "return_value": False}
    assert project.run(project.attempt("check", spec={"branch": "short_circuit"}, call_args={"value": []})).value == []


def test_custom_operator_execute_gets_rendered_fields_and_upstream_outputs(project):
    project.write(
        dag(
            """
            class HelloOperator(BaseOperator):
                template_fields = ("name", "greeting")

                def __init__(self, name, greeting="Hello {{ params.x }}", **kwargs):
                    super().__init__(**kwargs)
                    self.name = name
                    self.greeting = greeting

                def pre_execute(self, context):
                    self.greeting += "!"

                def execute(self, context):
                    print("executing", self.task_id)
                    return f"{self.greeting} {self.name}"

            @task
            def who():
                return "world"

            HelloOperator(task_id="hello", name=who())
            """
        )
    )
    workdir = project.attempt(
        "hello",
        spec={"xcom_input": {"name": "who"}, "depends_on": ["who"]},
        inputs={"name": "{{ not rendered }}"},
        params={"x": 5},
    )
    ran = project.run(workdir)
    assert ran.value == "Hello 5! {{ not rendered }}"
    assert "executing hello" in ran.stdout


def test_do_xcom_push_false_returns_null(project):
    project.write(
        dag(
            """
            @task(do_xcom_push=False)
            def quiet():
                return 42

            quiet()
            """
        )
    )
    assert project.run(project.attempt("quiet")).result == {"status": "success", "return_value": None}


# -- bash ----------------------------------------------------------------------------------------------------------


@needs_bash
def test_task_bash_streams_output_and_returns_the_last_line(project):
    project.write(
        dag(
            """
            @task.bash(env={"GREETING": "hi"}, append_env=True)
            def greet(name):
                return ('echo "$GREETING {{ params.x }}"; echo "ctx=$AIRFLOW_CTX_DAG_ID/$AIRFLOW_CTX_TASK_ID"; '
                        'echo "token=${LEOFLOW_AGENT_TOKEN:-none}"; echo last ' + name)

            greet("leoflow")
            """
        )
    )
    workdir = project.attempt("greet", call_args={"name": "leoflow"}, params={"x": 5})
    ran = project.run(workdir, env={"LEOFLOW_AGENT_TOKEN": TOKEN})
    assert ran.value == "last leoflow"
    assert "hi 5" in ran.stdout
    assert "ctx=t/greet" in ran.stdout
    assert "token=none" in ran.stdout


@needs_bash
def test_task_bash_exit_codes_fail_or_skip(project):
    project.write(
        dag(
            """
            @task.bash
            def fails():
                return "echo partial; exit 3"

            @task.bash(skip_on_exit_code=[42])
            def skips():
                return "exit 42"

            fails() >> skips()
            """
        )
    )
    ran = project.run(project.attempt("fails"))
    assert ran.result["status"] == "failed" and ran.result["retryable"] is True
    assert "non-zero exit code 3" in ran.result["error"]
    assert "partial" in ran.stdout
    ran = project.run(project.attempt("skips"))
    assert ran.result == {"status": "skipped", "message": "Bash command returned exit code 42. Skipping."}


@needs_bash
def test_bash_operator_compiled_as_python(project, tmp_path):
    project.write(
        dag(
            f"""
            from airflow.providers.standard.operators.bash import BashOperator
            BashOperator(task_id="b", bash_command="echo {{{{ ds }}}} $MODE $HOME_SET; pwd",
                         cwd={str(tmp_path)!r}, env={{"MODE": "x"}}, append_env=False,
                         output_processor=lambda out: out.upper())
            BashOperator(task_id="skipper", bash_command="exit 7", skip_on_exit_code=7)
            """
        )
    )
    ran = project.run(project.attempt("b"))
    assert ran.value == str(tmp_path).upper()
    assert "2024-03-05 x" in ran.stdout
    assert project.run(project.attempt("skipper")).status == "skipped"


@needs_bash
def test_mapped_bash_operator_unmaps_and_renders_literal_commands(project):
    project.write(
        dag(
            """
            from airflow.providers.standard.operators.bash import BashOperator
            BashOperator.partial(task_id="echo").expand(bash_command=["echo one", "echo {{ ti.map_index }}-{{ ds }}"])
            """
        )
    )
    workdir = project.attempt(
        "echo",
        map_index=1,
        spec={"map": {"expand": {"bash_command": {"literal": ["echo one", "echo {{ ti.map_index }}-{{ ds }}"]}}}},
        mapped_kwargs={"bash_command": "echo {{ ti.map_index }}-{{ ds }}"},
    )
    assert project.run(workdir).value == "1-2024-03-05"


# -- sensors -------------------------------------------------------------------------------------------------------


SENSORS = """
from airflow.sdk import PokeReturnValue
from airflow.providers.standard.sensors.python import PythonSensor

POKES = {"n": 0}

@task.sensor(poke_interval=30, timeout=3600)
def third_time():
    POKES["n"] += 1
    print("poke", POKES["n"])
    return PokeReturnValue(is_done=POKES["n"] >= 3, xcom_value={"pokes": POKES["n"]})

PythonSensor(task_id="never", python_callable=lambda: False, poke_interval=30, timeout=60)
PythonSensor(task_id="never_soft", python_callable=lambda: False, poke_interval=30, timeout=60, soft_fail=True)
third_time()
"""


def _sensor(interval=0.05, timeout=30.0, soft_fail=False):
    return {
        "sensor": {
            "poke_interval_seconds": interval,
            "timeout_seconds": timeout,
            "mode": "reschedule",
            "soft_fail": soft_fail,
            "exponential_backoff": False,
        }
    }


def test_sensor_pokes_until_done_with_the_dag_json_interval(project):
    project.write(dag(SENSORS))
    ran = project.run(project.attempt("third_time", spec=_sensor()), timeout=20)
    assert ran.value == {"pokes": 3}
    assert ran.stdout.split() == ["poke", "1", "poke", "2", "poke", "3"]


def test_sensor_timeout_fails_without_retry_or_skips_with_soft_fail(project):
    project.write(dag(SENSORS))
    ran = project.run(project.attempt("never", spec=_sensor(timeout=0.3)), timeout=20)
    assert ran.result["status"] == "failed" and ran.result["retryable"] is False
    assert "AirflowSensorTimeout" in ran.result["error"]
    ran = project.run(project.attempt("never_soft", spec=_sensor(timeout=0.3, soft_fail=True)), timeout=20)
    assert ran.status == "skipped" and "timed out" in ran.result["message"]


def test_exponential_backoff_intervals_grow_and_respect_the_timeout():
    from leoflow_shim.operators.sensors import BaseSensorOperator

    sensor = BaseSensorOperator(task_id="s", poke_interval=4, timeout=100, exponential_backoff=True)
    first, second, third = (sensor._next_poke_interval(0.0, 0.0, n) for n in (1, 2, 3))
    assert 2 <= first < 4 and 4 <= second < 8 and 8 <= third < 16
    assert sensor._next_poke_interval(0.0, 99.0, 10) <= 1


# -- outcomes ------------------------------------------------------------------------------------------------------


OUTCOMES = """
import datetime as _dt

@task
def skip_me():
    raise AirflowSkipException("nothing to do today")

@task
def fail_hard():
    raise AirflowFailException("bad input,\\n do not retry")

@task
def flaky():
    raise ValueError("connection reset")

@task
def returns_datetime():
    return {"when": _dt.datetime(2024, 1, 1)}

@task
def returns_nan():
    return float("nan")

@task
def exits():
    raise SystemExit(3)

for make in (skip_me, fail_hard, flaky, returns_datetime, returns_nan, exits):
    make()
"""


def test_skip_and_fail_exceptions(project):
    project.write(dag(OUTCOMES))
    ran = project.run(project.attempt("skip_me"))
    assert ran.returncode == 0 and ran.result == {"status": "skipped", "message": "nothing to do today"}
    ran = project.run(project.attempt("fail_hard"))
    assert ran.result == {
        "status": "failed",
        "error": "AirflowFailException: bad input, do not retry",
        "retryable": False,
    }
    ran = project.run(project.attempt("flaky"))
    assert ran.returncode == 0
    assert ran.result == {"status": "failed", "error": "ValueError: connection reset", "retryable": True}
    assert "Traceback" in ran.stderr and 'raise ValueError("connection reset")' in ran.stderr
    assert project.run(project.attempt("exits")).result["error"] == "SystemExit: 3"


def test_a_return_value_that_is_not_json_fails_without_retry(project):
    project.write(dag(OUTCOMES))
    ran = project.run(project.attempt("returns_datetime"))
    assert ran.result["status"] == "failed" and ran.result["retryable"] is False
    error = ran.result["error"]
    assert "datetime.datetime" in error and "JSON-serialisable" in error and "return its path" in error
    ran = project.run(project.attempt("returns_nan"))
    assert ran.result["retryable"] is False and "NaN" in ran.result["error"]


def test_trigger_dag_run_fails_clearly(project):
    project.write(
        dag(
            """
            from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
            TriggerDagRunOperator(task_id="trigger", trigger_dag_id="other", conf={"a": 1})
            """
        )
    )
    ran = project.run(project.attempt("trigger"))
    assert ran.result["status"] == "failed" and ran.result["retryable"] is False
    assert "not supported yet in this runtime" in ran.result["error"] and "'other'" in ran.result["error"]


def test_a_broken_dag_file_or_context_is_a_failure_with_a_result(project):
    project.write("from airflow.sdk import DAG\nwith DAG('t') as dag:\n    undefined_name\n")
    ran = project.run(project.attempt("x"))
    assert ran.returncode == 0 and ran.result["status"] == "failed"
    assert "dag.py:3" in ran.result["error"] and "undefined_name" in ran.result["error"]
    workdir = project.attempt("x")
    with open(f"{workdir}/context.json", "w") as fh:
        fh.write("{not json")
    ran = project.run(workdir)
    assert ran.returncode == 0 and ran.result["retryable"] is False and "context.json" in ran.result["error"]


def test_unknown_task_and_wrong_type_fail(project):
    project.write(dag("EmptyOp = None\n@task\ndef a():\n    return 1\na()\n"))
    assert "nope" in project.run(project.attempt("nope")).result["error"]
    ran = project.run(project.attempt("a", spec={"type": "bash"}))
    assert ran.result["retryable"] is False and "type 'bash'" in ran.result["error"]


# -- templating ----------------------------------------------------------------------------------------------------


TEMPLATED = """
class Render(BaseOperator):
    template_fields = ("text", "items")

    def __init__(self, text, items=(), **kwargs):
        super().__init__(**kwargs)
        self.text = text
        self.items = items

    def execute(self, context):
        return {"text": self.text, "items": list(self.items)}

Render(
    task_id="render",
    text="{{ ds }}|{{ params.x }}|{{ ti.try_number }}|{{ macros.ds_add(ds, 1) }}|{{ var.value.color }}"
         "|{{ conn.db.host }}|{{ logical_date | ds_nodash }}|{{ dag_run.conf.get('k', 'none') }}",
    items=["{{ run_id }}", {"nested": "{{ task.task_id }}"}, 3],
)
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_templated_fields_are_rendered(project, engine):
    project.write(dag(TEMPLATED))
    env = {
        "LEOFLOW_TEMPLATE_ENGINE": engine,
        "AIRFLOW_VAR_COLOR": "blue",
        "AIRFLOW_CONN_DB": "postgres://u:p@db.local:5432/x",
    }
    ran = project.run(project.attempt("render", try_number=3, params={"x": 7}), env=env)
    assert ran.value == {
        "text": "2024-03-05|7|3|2024-03-06|blue|db.local|20240305|none",
        "items": ["manual__2024-03-05", {"nested": "render"}, 3],
    }


def test_builtin_engine_refuses_statements_without_retry(project):
    project.write(
        dag(
            "Render = None\nfrom airflow.providers.standard.operators.bash import BashOperator\n"
            'BashOperator(task_id="loop", bash_command="{% for i in range(2) %}echo {{ i }}{% endfor %}",'
            ' cwd="/")\n'
        )
    )
    ran = project.run(project.attempt("loop"), env={"LEOFLOW_TEMPLATE_ENGINE": "builtin"})
    assert ran.result["status"] == "failed" and ran.result["retryable"] is False
    assert "install jinja2" in ran.result["error"]


# -- Variables, Connections, XComs ---------------------------------------------------------------------------------


def test_variables_and_connections_come_from_the_environment(project):
    project.write(
        dag(
            """
            from airflow.hooks.base import BaseHook

            @task
            def read():
                conn = BaseHook.get_connection("warehouse")
                same = Connection.get("warehouse")
                return {
                    "var": Variable.get("color"),
                    "json": Variable.get("limits", deserialize_json=True),
                    "default": Variable.get("missing", default_var="fallback"),
                    "conn": [conn.conn_type, conn.host, conn.port, conn.login, conn.password, conn.schema],
                    "extra": same.extra_dejson,
                }

            read()
            """
        )
    )
    env = {
        "AIRFLOW_VAR_COLOR": "blue",
        "AIRFLOW_VAR_LIMITS": '{"max": 3}',
        "AIRFLOW_CONN_WAREHOUSE": "postgres://me:s%40cret@db.example:5432/sales?__extra__=%7B%22sslmode%22%3A%22require%22%7D",
    }
    assert project.run(project.attempt("read"), env=env).value == {
        "var": "blue",
        "json": {"max": 3},
        "default": "fallback",
        "conn": ["postgres", "db.example", 5432, "me", "s@cret", "sales"],
        "extra": {"sslmode": "require"},
    }


XCOMS = """
@task
def extract():
    return 1

@task
def other():
    return 2

@task
def pull(value, ti=None):
    return {
        "from_inputs": ti.xcom_pull(task_ids="extract"),
        "listed": ti.xcom_pull(task_ids=["extract"]),
        "other_key": ti.xcom_pull(task_ids="other", key="extra"),
        "one_instance": ti.xcom_pull(task_ids="other", map_indexes=2),
        "missing": ti.xcom_pull(task_ids="other", key="nothing", default="dflt"),
    }

@task
def sneaky(ti=None):
    return ti.xcom_pull(task_ids="secret")

@task
def push(ti=None):
    ti.xcom_push(key="count", value=3)
    ti.xcom_push(key="rows", value=[{"a": 1}])
    return ti.xcom_pull(key="count")

@task
def push_bad(ti=None):
    ti.xcom_push(key="bad", value=object())

@task
def token():
    import os
    return os.environ.get("LEOFLOW_AGENT_TOKEN")

[extract(), other()] >> pull(extract()) >> sneaky() >> push() >> push_bad() >> token()
"""


def test_xcom_pull_uses_inputs_then_the_agent(project):
    project.write(dag(XCOMS))
    spec = {"xcom_input": {"value": "extract"}, "depends_on": ["extract", "other"]}
    values = {("other", "extra", None): {"k": "v"}, ("other", "return_value", 2): "instance 2"}
    with FakeAgent(values) as agent:
        ran = project.run(project.attempt("pull", spec=spec, inputs={"value": 41}), env=agent.env())
        assert ran.value == {
            "from_inputs": 41,
            "listed": [41],
            "other_key": {"k": "v"},
            "one_instance": "instance 2",
            "missing": "dflt",
        }
        asked = [(q["task_id"], q.get("key"), q.get("map_index"), auth) for _, q, auth in agent.requests]
        assert asked == [
            ("other", "extra", None, f"Bearer {TOKEN}"),
            ("other", "return_value", "2", f"Bearer {TOKEN}"),
            ("other", "nothing", None, f"Bearer {TOKEN}"),
        ]


def test_xcom_pull_of_an_undeclared_task_is_refused_clearly(project):
    project.write(dag(XCOMS))
    with FakeAgent(forbidden={"secret"}) as agent:
        ran = project.run(project.attempt("sneaky"), env=agent.env())
    assert ran.result["status"] == "failed" and ran.result["retryable"] is False
    assert "declared upstreams" in ran.result["error"] and "'secret'" in ran.result["error"]


def test_xcom_push_appends_json_lines(project):
    project.write(dag(XCOMS))
    ran = project.run(project.attempt("push"))
    assert ran.value == 3
    assert ran.xcoms == [{"key": "count", "value": 3}, {"key": "rows", "value": [{"a": 1}]}]
    ran = project.run(project.attempt("push_bad"))
    assert ran.result["status"] == "failed" and "not JSON-serialisable" in ran.result["error"]
    assert ran.xcoms == []


def test_the_agent_token_is_hidden_from_task_code(project):
    project.write(dag(XCOMS))
    assert project.run(project.attempt("token"), env={"LEOFLOW_AGENT_TOKEN": TOKEN}).value is None

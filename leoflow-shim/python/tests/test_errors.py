"""Compile errors carry the user's file and line and say what was wrong and what to do instead.

Each case is a small DAG file; the line marked `# <-` is where the error must point (no marker: line null).
"""

from __future__ import annotations

import textwrap

import pytest

from support import compile_paths, compile_source

HEADER = """\
from datetime import datetime, timedelta
from airflow.sdk import DAG, Asset, TaskGroup, Variable, get_current_context, task, task_group
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.http.operators.http import HttpOperator
"""

CASES = {
    "syntax_error": ("with DAG('x') as dag:\n    if True  # <-\n        pass\n", ["syntax error"]),
    "missing_third_party_module": (
        "import pandas as pd  # <-\n",
        ["module 'pandas' is not installed", "`dependencies` in leoflow.yaml", "inside the task function"],
    ),
    "missing_submodule_names_the_package": (
        "from sklearn.linear_model import LinearRegression  # <-\n",
        ["module 'sklearn", "declare 'sklearn' under `dependencies`"],
    ),
    "unsupported_provider": (
        "from airflow.providers.amazon.aws.operators.s3 import S3CreateBucketOperator  # <-\n",
        ["Airflow module 'airflow.providers.amazon", "not supported by Leoflow", "inside a @task"],
    ),
    "removed_airflow2_module": (
        "from airflow.operators.dummy import DummyOperator  # <-\n",
        ["airflow.operators.dummy", "EmptyOperator"],
    ),
    "unknown_airflow_module": (
        "import airflow.secrets.local_filesystem  # <-\n",
        ["airflow.secrets", "not part of Leoflow's Airflow shim"],
    ),
    "unsupported_name": (
        "from airflow.sdk import ObjectStoragePath  # <-\n",
        ["'ObjectStoragePath' (from airflow.sdk) is not supported by Leoflow", "storage library inside a @task"],
    ),
    "duplicate_classic_task_id": (
        "with DAG('dup') as dag:\n    EmptyOperator(task_id='a')\n    EmptyOperator(task_id='a')  # <-\n",
        ["Task id 'a' has already been added to the DAG", "unique task_id"],
    ),
    "duplicate_task_group": (
        "with DAG('g') as dag:\n    with TaskGroup('grp'):\n        EmptyOperator(task_id='a')\n"
        "    with TaskGroup('grp'):  # <-\n        EmptyOperator(task_id='b')\n",
        ["group_id 'grp' has already been added", "unique group_id"],
    ),
    "task_id_colliding_with_group_id": (
        "with DAG('g') as dag:\n    with TaskGroup('grp'):\n        EmptyOperator(task_id='a')\n"
        "    EmptyOperator(task_id='grp')  # <-\n",
        ["Task id 'grp' has already been added"],
    ),
    "cycle": (
        "with DAG('cyc') as dag:\n    a = EmptyOperator(task_id='a')\n    b = EmptyOperator(task_id='b')\n"
        "    c = EmptyOperator(task_id='c')\n    a >> b >> c\n    c >> a  # <-\n",
        ["cycle detected in DAG 'cyc': a >> b >> c >> a"],
    ),
    "self_dependency": (
        "with DAG('selfdep') as dag:\n    a = EmptyOperator(task_id='a')\n    a >> a  # <-\n",
        ["cycle detected in DAG 'selfdep': a >> a"],
    ),
    "unknown_trigger_rule": (
        "with DAG('rule') as dag:\n    @task(trigger_rule='all_good')\n    def t():\n        pass\n    t()  # <-\n",
        ["unknown trigger_rule 'all_good' on task 't' of DAG 'rule'", "none_failed_min_one_success"],
    ),
    "unknown_trigger_rule_classic": (
        "with DAG('rule2') as dag:\n    EmptyOperator(task_id='e', trigger_rule='none_failed_or_skipped')  # <-\n",
        ["unknown trigger_rule 'none_failed_or_skipped'"],
    ),
    "templated_pull_of_a_task_not_upstream": (
        "with DAG('pull') as dag:\n    a = BashOperator(task_id='a', bash_command='echo 1')\n"
        "    b = BashOperator(task_id='b', bash_command=\"echo {{ ti.xcom_pull(task_ids='a') }}\")  # <-\n",
        ["task 'b' pulls the XCom of task 'a'", "not upstream of 'b'", "add `a >> b`"],
    ),
    "templated_pull_of_an_unknown_task": (
        "with DAG('pull2') as dag:\n"
        "    b = BashOperator(task_id='b', bash_command=\"echo {{ ti.xcom_pull('nope') }}\")  # <-\n",
        ["has no task 'nope'"],
    ),
    "xcom_from_another_dag": (
        "@task\ndef produce():\n    return 1\n\n@task\ndef consume(x):\n    return x\n\n"
        "with DAG('one') as one:\n    value = produce()\nwith DAG('two') as two:\n    consume(value)  # <-\n",
        ["task 'produce' (DAG 'one')", "task 'consume' (DAG 'two')", "TriggerDagRunOperator"],
    ),
    "mixed_literal_and_xcom_list": (
        "with DAG('mixed') as dag:\n    @task\n    def p():\n        return 1\n    @task\n    def agg(items):\n"
        "        return items\n    agg([p(), 5])  # <-\n",
        ["argument 'items' of task 'agg' mixes task outputs (XComArgs) with literal values"],
    ),
    "nested_xcom_in_dict": (
        "with DAG('nested') as dag:\n    @task\n    def p():\n        return 1\n    @task\n    def agg(cfg):\n"
        "        return cfg\n    agg({'a': [p()]})  # <-\n",
        ["argument 'cfg' of task 'agg' mixes task outputs"],
    ),
    "variable_without_default_at_parse_time": (
        "BUCKET = Variable.get('bucket')  # <-\n",
        ["reading Variable 'bucket' while the DAG file is parsed", "only readable inside tasks at run time"],
    ),
    "get_current_context_at_parse_time": (
        "ctx = get_current_context()  # <-\n",
        ["get_current_context()", "inside the task function body"],
    ),
    "unsupported_task_decorator": (
        "with DAG('d') as dag:\n    @task.docker(image='python:3.11')  # <-\n    def t():\n        pass\n",
        ["@task.docker is not supported by Leoflow", "use @task"],
    ),
    "external_python_decorator": (
        "with DAG('d') as dag:\n    @task.external_python(python='/venv/bin/python')  # <-\n"
        "    def t():\n        pass\n",
        ["@task.external_python is not supported by Leoflow"],
    ),
    "removed_dag_argument": (
        "dag = DAG('old', schedule_interval='@daily')  # <-\n",
        ["unexpected keyword argument 'schedule_interval'", "use schedule="],
    ),
    "unknown_dag_argument": (
        "dag = DAG('old', shedule='@daily')  # <-\n",
        ["DAG.__init__() got an unexpected keyword argument 'shedule'"],
    ),
    "invalid_operator_argument": (
        "with DAG('k') as dag:\n    BashOperator(task_id='a', bash_command='true', retires=3)  # <-\n",
        ["Invalid arguments were passed to BashOperator (task_id: a)", "'retires' -> 'retries'"],
    ),
    "missing_operator_argument": (
        "with DAG('k2') as dag:\n    BashOperator(task_id='a')  # <-\n",
        ["missing keyword argument 'bash_command'"],
    ),
    "taskflow_called_with_wrong_arguments": (
        "with DAG('k3') as dag:\n    @task\n    def add(a, b):\n        return a + b\n    add(1)  # <-\n",
        ["invalid arguments for task 'add'", "missing a required argument: 'b'"],
    ),
    "error_raised_in_a_helper_module": (
        "import failing_helper\nwith DAG('h') as dag:\n    failing_helper.build()  # <-\n",
        ["ValueError: bad config", "(raised in failing_helper.py:3)"],
    ),
    "asset_schedule": (
        "with DAG('a', schedule=[Asset('s3://bucket/key')]) as dag:  # <-\n    EmptyOperator(task_id='e')\n",
        ["asset-triggered schedules", "TriggerDagRunOperator"],
    ),
    "http_response_check": (
        "with DAG('r') as dag:\n    HttpOperator(task_id='h', endpoint='/x', response_check=lambda r: True)  # <-\n",
        ["HttpOperator(response_check=...) on task 'h' is not supported by Leoflow", "downstream @task"],
    ),
    "http_with_task_output": (
        "with DAG('r2') as dag:\n    @task\n    def body():\n        return {}\n"
        "    HttpOperator(task_id='h', endpoint='/x', data=body())  # <-\n",
        ["a task output in HttpOperator.data (task 'h') is not supported by Leoflow"],
    ),
    "retries_out_of_range": (
        "with DAG('r3') as dag:\n    BashOperator(task_id='a', bash_command='true', retries=500)  # <-\n",
        ["retries=500 is outside Leoflow's range 0..100"],
    ),
    "mapped_task_group": (
        "with DAG('m') as dag:\n    @task_group\n    def g(x):\n        pass\n    g.expand(x=[1, 2])  # <-\n",
        ["mapped task groups", "not supported by Leoflow"],
    ),
    "expand_over_a_scalar": (
        "with DAG('m2') as dag:\n    @task\n    def t(x):\n        return x\n    t.expand(x=5)  # <-\n",
        ["expand() got an unexpected type 'int' for keyword argument 'x'"],
    ),
    "expand_over_custom_xcom_key": (
        "with DAG('m3') as dag:\n    @task(multiple_outputs=True)\n    def p():\n        return {'a': [1]}\n"
        "    @task\n    def t(x):\n        return x\n    t.expand(x=p()['a'])  # <-\n",
        ["cannot map over XCom with custom key 'a'"],
    ),
    "xcom_transform_map": (
        "with DAG('m4') as dag:\n    @task\n    def p():\n        return [1]\n    p().map(lambda v: v + 1)  # <-\n",
        ["XComArg.map() is not supported by Leoflow"],
    ),
    "iterating_a_task_output": (
        "with DAG('i') as dag:\n    @task\n    def items():\n        return [1, 2]\n"
        "    for item in items():  # <-\n        pass\n",
        ["the output of task 'items' is not known while the DAG file is parsed", ".expand()"],
    ),
    "dag_without_tasks": ("with DAG('empty') as dag:  # <-\n    pass\n", ["DAG 'empty' has no tasks"]),
    "catchup_without_start_date": (
        "dag = DAG('c', schedule='@daily', catchup=True)  # <-\n",
        ["start_date is required when catchup=True"],
    ),
    "setup_followed_by_non_default_rule": (
        "with DAG('s') as dag:\n    s = EmptyOperator(task_id='s').as_setup()\n"
        "    w = EmptyOperator(task_id='w', trigger_rule='all_done')  # <-\n    s >> w\n",
        ["Setup tasks must be followed with trigger rule ALL_SUCCESS", "task 'w' follows setup task 's'"],
    ),
    "invalid_cron": ("dag = DAG('c2', schedule='0 0 * *')  # <-\n", ["invalid cron expression '0 0 * *'"]),
    "fractional_timedelta_schedule": (
        "dag = DAG('c3', schedule=timedelta(seconds=1.5))  # <-\n",
        ["whole number of seconds"],
    ),
    "required_param_with_schedule": (
        "from airflow.sdk import Param\ndag = DAG('p', schedule='@daily', params={'x': Param(type='string')})  # <-\n",
        ["not allowed to define a Schedule", "required params without default values", "(x)"],
    ),
    "invalid_task_id": (
        "with DAG('ids') as dag:\n    EmptyOperator(task_id='has space')  # <-\n",
        ["'has space' has to be made of alphanumeric characters"],
    ),
    "non_ascii_dag_id": ("dag = DAG('dåg')  # <-\n", ["not accepted by Leoflow", "ASCII"]),
    "sys_exit": ("import sys\nsys.exit(3)  # <-\n", ["called sys.exit(3)"]),
    "no_dag_in_an_airflow_file": ("@task\ndef helper():\n    return 1\n", ["no DAG found in dag.py"]),
    "name_error": ("with DAG('n') as dag:\n    undefined_thing()  # <-\n", ["NameError", "undefined_thing"]),
    "sensor_mode": (
        "from airflow.providers.standard.sensors.bash import BashSensor\nwith DAG('sm') as dag:\n"
        "    BashSensor(task_id='s', bash_command='true', mode='smart')  # <-\n",
        ["The mode must be one of ['poke', 'reschedule']"],
    ),
    "custom_operator_without_super_init": (
        "from airflow.sdk import BaseOperator\nclass Broken(BaseOperator):\n    def __init__(self, **kwargs):\n"
        "        self.x = 1\nwith DAG('b') as dag:\n    Broken(task_id='b')  # <-\n",
        ["Broken.__init__ did not call super().__init__(**kwargs)"],
    ),
    "dag_test_call": ("with DAG('t') as dag:\n    EmptyOperator(task_id='e')\ndag.test()  # <-\n", ["dag.test()"]),
}


def _expected_line(source: str):
    for number, text in enumerate(source.splitlines(), start=1):
        if "# <-" in text:
            return number
    return None


@pytest.mark.parametrize("name", sorted(CASES))
def test_error_case(tmp_path, name):
    body, fragments = CASES[name]
    source = HEADER + textwrap.dedent(body)
    (tmp_path / "failing_helper.py").write_text('"""Helper."""\ndef build():\n    raise ValueError("bad config")\n')
    document = compile_source(tmp_path, source)
    assert document["dags"] == []
    assert len(document["errors"]) == 1, document["errors"]
    error = document["errors"][0]
    assert error["file"] == "dag.py"
    assert error["line"] == _expected_line(source)
    for fragment in fragments:
        assert fragment in error["message"]


def test_import_timeout(tmp_path):
    from leoflow_shim.cli import compile_files

    path = tmp_path / "slow.py"
    path.write_text("from airflow.sdk import DAG\nwhile True:  # spin\n    pass\n")
    document = compile_files([str(path)], str(tmp_path), timeout=0.2)
    (error,) = document["errors"]
    assert error["line"] in (2, 3)
    assert "took longer than 0.2s" in error["message"]


def test_every_error_in_a_dag_is_reported(tmp_path):
    source = HEADER + textwrap.dedent(
        """\
        with DAG('many') as dag:
            BashOperator(task_id='a', bash_command='true', retries=101)
            BashOperator(task_id='b', bash_command='true', retries=-1)
        """
    )
    document = compile_source(tmp_path, source)
    assert [e["line"] for e in document["errors"]] == [7, 8]


def test_good_dags_survive_a_broken_one_in_the_same_file(tmp_path):
    source = HEADER + textwrap.dedent(
        """\
        with DAG('good') as good:
            EmptyOperator(task_id='e')
        with DAG('bad') as bad:
            pass
        """
    )
    document = compile_source(tmp_path, source)
    assert [d["dag_id"] for d in document["dags"]] == ["good"]
    assert [e["message"] for e in document["errors"]] == ["DAG 'bad' has no tasks; Leoflow needs at least one"]


def test_duplicate_dag_id_across_files(tmp_path):
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text(HEADER + "with DAG('same') as dag:\n    EmptyOperator(task_id='e')\n")
    document = compile_paths([tmp_path / "a.py", tmp_path / "b.py"], tmp_path)
    assert [d["fileloc"] for d in document["dags"]] == ["a.py"]
    (error,) = document["errors"]
    assert error["file"] == "b.py" and error["line"] == 6
    assert "dag_id 'same' is already defined in a.py" in error["message"]


def test_duplicate_dag_id_in_one_file(tmp_path):
    source = (
        HEADER
        + "d1 = DAG('twice')\nEmptyOperator(task_id='e', dag=d1)\n"
        + "d2 = DAG('twice')\nEmptyOperator(task_id='e', dag=d2)\n"
    )
    document = compile_source(tmp_path, source)
    (error,) = document["errors"]
    assert error["line"] == 8 and "already defined earlier in this file" in error["message"]


def test_file_without_airflow_is_skipped_silently(tmp_path):
    (tmp_path / "util.py").write_text("def helper():\n    return 'dag'\n")
    assert compile_paths([tmp_path / "util.py"], tmp_path) == {"dags": [], "errors": []}


def test_file_mentioning_airflow_without_dag_word_is_skipped_like_dagbag(tmp_path):
    (tmp_path / "util.py").write_text("from airflow.sdk import task\n@task\ndef helper():\n    return 1\n")
    assert compile_paths([tmp_path / "util.py"], tmp_path) == {"dags": [], "errors": []}

"""Each DAG file is imported in isolation: sibling modules, interpreter state and shim state never leak."""

from __future__ import annotations

import sys
import types

from support import DAGS_DIR, PYTHON_ROOT, compile_paths

TEMPLATE = """\
from helpers import VALUE
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
with DAG("{dag_id}", tags=[VALUE]) as dag:
    EmptyOperator(task_id="e")
"""


def _project(root, name, value):
    folder = root / name
    folder.mkdir()
    (folder / "helpers.py").write_text(f"VALUE = {value!r}\n")
    (folder / "dag.py").write_text(TEMPLATE.format(dag_id=name))
    return folder / "dag.py"


def test_sibling_modules_with_the_same_name_do_not_leak(tmp_path):
    first = _project(tmp_path, "first", "from-first")
    second = _project(tmp_path, "second", "from-second")
    document = compile_paths([first, second], tmp_path)
    assert document["errors"] == []
    assert {d["dag_id"]: d["tags"] for d in document["dags"]} == {
        "first": ["from-first"],
        "second": ["from-second"],
    }


def test_imported_modules_and_sys_path_are_restored(tmp_path):
    path = _project(tmp_path, "proj", "x")
    before_path = list(sys.path)
    compile_paths([path], tmp_path)
    assert "helpers" not in sys.modules
    assert not any(name.startswith("unusual_prefix_") for name in sys.modules)
    assert str(tmp_path / "proj") not in sys.path
    # The only path the loader may leave behind is the shim's own root (so `import airflow` finds the shim).
    assert set(sys.path) - set(before_path) <= {PYTHON_ROOT}


def test_open_contexts_do_not_leak_into_the_next_file(tmp_path):
    (tmp_path / "leaky.py").write_text(
        "from airflow.sdk import DAG, TaskGroup\n"
        "from airflow.providers.standard.operators.empty import EmptyOperator\n"
        "dag = DAG('leaky')\n"
        "dag.__enter__()\n"
        "TaskGroup('open_group').__enter__()\n"
        "EmptyOperator(task_id='inside')\n"
    )
    (tmp_path / "clean.py").write_text(
        "from airflow.sdk import DAG\n"
        "from airflow.providers.standard.operators.empty import EmptyOperator\n"
        "with DAG('clean') as dag:\n"
        "    EmptyOperator(task_id='plain')\n"
    )
    document = compile_paths([tmp_path / "leaky.py", tmp_path / "clean.py"], tmp_path)
    assert document["errors"] == []
    tasks = {d["dag_id"]: [t["task_id"] for t in d["tasks"]] for d in document["dags"]}
    assert tasks == {"leaky": ["open_group.inside"], "clean": ["plain"]}


def test_compiling_twice_gives_the_same_result():
    files = [f"{DAGS_DIR}/taskflow_suffixes.py", f"{DAGS_DIR}/task_group_decorator.py"]
    assert compile_paths(files, DAGS_DIR) == compile_paths(files, DAGS_DIR)


def test_foreign_airflow_modules_are_evicted(tmp_path):
    fake = types.ModuleType("airflow")
    fake.__file__ = str(tmp_path / "site-packages" / "airflow" / "__init__.py")
    fake_sdk = types.ModuleType("airflow.sdk")
    fake_sdk.__file__ = str(tmp_path / "site-packages" / "airflow" / "sdk" / "__init__.py")
    saved = {name: mod for name, mod in sys.modules.items() if name == "airflow" or name.startswith("airflow.")}
    for name in saved:
        del sys.modules[name]
    sys.modules["airflow"] = fake
    sys.modules["airflow.sdk"] = fake_sdk
    try:
        (tmp_path / "dag.py").write_text(
            "from airflow.sdk import DAG\n"
            "from airflow.providers.standard.operators.empty import EmptyOperator\n"
            "with DAG('evicted') as dag:\n"
            "    EmptyOperator(task_id='e')\n"
        )
        document = compile_paths([tmp_path / "dag.py"], tmp_path)
        assert document["errors"] == []
        assert sys.modules["airflow"] is not fake
    finally:
        for name in [n for n in sys.modules if n == "airflow" or n.startswith("airflow.")]:
            del sys.modules[name]
        sys.modules.update(saved)

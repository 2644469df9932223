"""The command line contract the Rust side relies on (run as a subprocess, exactly as Rust runs it)."""

from __future__ import annotations

import json
import os
import textwrap

from support import DAGS_DIR, PYTHON_ROOT, cli_document, run_cli


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_compile_writes_one_json_document(tmp_path):
    dag = _write(
        tmp_path / "dags" / "etl.py",
        """\
        from airflow.sdk import DAG, task
        with DAG("etl", schedule="@daily") as dag:
            @task
            def extract():
                return 1
            extract()
        """,
    )
    proc = run_cli("compile", "--root", str(tmp_path), str(dag))
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    document = json.loads(lines[0])
    assert set(document) == {"dags", "errors"}
    assert document["errors"] == []
    (compiled,) = document["dags"]
    assert compiled["fileloc"] == "dags/etl.py"
    assert compiled["tasks"][0]["entrypoint"] == "dags/etl.py:extract"
    assert not {"dag_version", "image", "source"} & set(compiled)


def test_errors_still_exit_zero_with_file_and_line(tmp_path):
    bad = _write(
        tmp_path / "bad.py",
        """\
        from airflow.sdk import DAG
        import pandas
        """,
    )
    good = _write(
        tmp_path / "good.py",
        """\
        from airflow.sdk import DAG
        from airflow.providers.standard.operators.empty import EmptyOperator
        with DAG("good") as dag:
            EmptyOperator(task_id="e")
        """,
    )
    document = cli_document("compile", "--root", str(tmp_path), str(bad), str(good))
    assert [d["dag_id"] for d in document["dags"]] == ["good"]
    assert document["errors"] == [
        {
            "file": "bad.py",
            "line": 2,
            "message": document["errors"][0]["message"],
        }
    ]
    assert "module 'pandas' is not installed" in document["errors"][0]["message"]


def test_relative_file_arguments_resolve_from_the_working_directory(tmp_path):
    _write(
        tmp_path / "proj" / "dag.py",
        """\
        from airflow.sdk import DAG
        from airflow.providers.standard.operators.empty import EmptyOperator
        with DAG("rel") as dag:
            EmptyOperator(task_id="e")
        """,
    )
    document = cli_document("compile", "--root", "proj", "proj/dag.py", cwd=str(tmp_path))
    assert document["dags"][0]["fileloc"] == "dag.py"


def test_dags_from_several_files_come_in_argument_order():
    files = [os.path.join(DAGS_DIR, name) for name in ("multiple_dags.py", "latest_only.py", "fan_in.py")]
    document = cli_document("compile", "--root", DAGS_DIR, *files)
    assert [d["dag_id"] for d in document["dags"]] == ["multi_first", "multi_second", "latest_only", "fan_in"]


def test_output_from_dag_files_never_reaches_stdout(tmp_path):
    noisy = _write(
        tmp_path / "noisy.py",
        """\
        import os, subprocess, sys
        from airflow.sdk import DAG
        from airflow.providers.standard.operators.empty import EmptyOperator
        print("print to stdout")
        sys.stdout.write("sys.stdout.write\\n")
        os.write(1, b"raw fd 1\\n")
        subprocess.run(["echo", "child process"])
        with DAG("noisy") as dag:
            EmptyOperator(task_id="e")
        """,
    )
    proc = run_cli("compile", "--root", str(tmp_path), str(noisy))
    assert proc.returncode == 0
    document = json.loads(proc.stdout)
    assert document["dags"][0]["dag_id"] == "noisy"
    for text in ("print to stdout", "sys.stdout.write", "raw fd 1", "child process"):
        assert text in proc.stderr


def test_missing_file_and_directory_are_errors_not_crashes(tmp_path):
    (tmp_path / "folder").mkdir()
    document = cli_document("compile", "--root", str(tmp_path), str(tmp_path / "nope.py"), str(tmp_path / "folder"))
    assert document == {
        "dags": [],
        "errors": [
            {"file": "nope.py", "line": None, "message": "nope.py does not exist"},
            {"file": "folder", "line": None, "message": "folder is a directory; pass the DAG files it contains"},
        ],
    }


def test_bad_usage_exits_non_zero():
    assert run_cli().returncode == 2
    assert run_cli("compile", "x.py").returncode == 2  # --root is required
    assert run_cli("compile", "--root", ".").returncode == 2  # at least one file
    assert run_cli("frobnicate").returncode == 2


def test_version_prints_the_shim_version():
    from leoflow_shim import __version__

    proc = run_cli("version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == __version__


def test_shim_wins_over_an_installed_airflow(tmp_path):
    fake = tmp_path / "site" / "airflow"
    _write(fake / "__init__.py", "raise ImportError('the real airflow must not be imported')\n")
    _write(fake / "sdk" / "__init__.py", "raise ImportError('the real airflow must not be imported')\n")
    dag = _write(
        tmp_path / "dag.py",
        """\
        from airflow.sdk import DAG
        from airflow.providers.standard.operators.empty import EmptyOperator
        with DAG("shadowed") as dag:
            EmptyOperator(task_id="e")
        """,
    )
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), PYTHON_ROOT])}
    document = cli_document("compile", "--root", str(tmp_path), str(dag), extra_env=env)
    assert document["errors"] == []
    assert document["dags"][0]["dag_id"] == "shadowed"


def test_import_timeout_option(tmp_path):
    slow = _write(
        tmp_path / "slow.py",
        """\
        import time
        from airflow.sdk import DAG
        time.sleep(30)
        """,
    )
    document = cli_document("compile", "--root", str(tmp_path), "--timeout", "0.5", str(slow))
    (error,) = document["errors"]
    assert error["line"] == 3
    assert "took longer than 0.5s" in error["message"]

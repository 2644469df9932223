"""The pendulum stand-in: used when the real package is missing, returns stdlib values with tzinfo."""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import textwrap

import pytest

from support import cli_document

FALLBACK = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "leoflow_shim", "_fallback", "pendulum", "__init__.py"
)


@pytest.fixture()
def stand_in():
    spec = importlib.util.spec_from_file_location("pendulum_stand_in", FALLBACK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_datetime_defaults_to_utc(stand_in):
    value = stand_in.datetime(2024, 1, 2, 3, 4)
    assert isinstance(value, dt.datetime)
    assert value.utcoffset() == dt.timedelta(0)
    assert (value.year, value.month, value.day, value.hour, value.minute) == (2024, 1, 2, 3, 4)


def test_named_timezones(stand_in):
    value = stand_in.datetime(2024, 7, 1, tz="Europe/Paris")
    assert value.utcoffset() == dt.timedelta(hours=2)
    assert stand_in.timezone("America/New_York").key == "America/New_York"
    assert value.in_timezone("UTC").hour == 22


def test_duration_is_a_timedelta(stand_in):
    assert stand_in.duration(hours=1, minutes=30) == dt.timedelta(minutes=90)
    with pytest.raises(ValueError):
        stand_in.duration(months=1)


def test_today_now_yesterday(stand_in):
    today = stand_in.today("UTC")
    assert (today.hour, today.minute, today.second, today.microsecond) == (0, 0, 0, 0)
    assert stand_in.yesterday() == today - dt.timedelta(days=1)
    assert stand_in.tomorrow() == today + dt.timedelta(days=1)
    assert abs(stand_in.now() - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(seconds=5)


def test_parse_and_add(stand_in):
    value = stand_in.parse("2024-03-01T10:00:00Z")
    assert value.utcoffset() == dt.timedelta(0)
    assert value.add(months=11).month == 2 and value.add(months=11).year == 2025
    assert value.subtract(days=1).day == 29
    naive = stand_in.parse("2024-03-01", tz="Asia/Tokyo")
    assert naive.utcoffset() == dt.timedelta(hours=9)


def test_dag_files_get_the_stand_in_when_pendulum_is_missing(tmp_path):
    spec = importlib.util.find_spec("pendulum")
    if spec is not None and os.path.dirname(FALLBACK) not in (spec.origin or ""):
        pytest.skip("the real pendulum is installed here; the stand-in is not used")
    path = tmp_path / "dag.py"
    path.write_text(
        textwrap.dedent("""\
        import pendulum
        from airflow.sdk import DAG
        from airflow.providers.standard.operators.empty import EmptyOperator
        with DAG(
            "with_pendulum",
            start_date=pendulum.datetime(2024, 1, 1, tz="Asia/Tokyo"),
            dagrun_timeout=pendulum.duration(hours=1),
            tags=[pendulum.__version__],
        ) as dag:
            EmptyOperator(task_id="e")
        """)
    )
    document = cli_document("compile", "--root", str(tmp_path), str(path))
    (dag,) = document["dags"]
    assert dag["start_date"] == "2023-12-31T15:00:00Z"
    assert dag["schedule_timezone"] == "Asia/Tokyo"
    assert dag["dagrun_timeout_seconds"] == 3600
    assert dag["tags"] == ["0.0.0+leoflow-stand-in"]


def test_an_installed_pendulum_wins_over_the_stand_in(tmp_path):
    fake = tmp_path / "site" / "pendulum"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "import datetime\n__version__ = 'real'\ndef datetime_(*a, **k):\n    return None\n"
    )
    path = tmp_path / "dag.py"
    path.write_text(
        textwrap.dedent("""\
        import pendulum
        from airflow.sdk import DAG
        from airflow.providers.standard.operators.empty import EmptyOperator
        with DAG("real_pendulum", tags=[pendulum.__version__]) as dag:
            EmptyOperator(task_id="e")
        """)
    )
    from support import PYTHON_ROOT

    env = {"PYTHONPATH": os.pathsep.join([PYTHON_ROOT, str(tmp_path / "site")])}
    document = cli_document("compile", "--root", str(tmp_path), str(path), extra_env=env)
    assert document["dags"][0]["tags"] == ["real"]

"""Template rendering: the built-in subset (always available) and jinja2 (when installed), with Airflow's context."""

from __future__ import annotations

import datetime as dt
import types

import pytest

from leoflow_shim import macros
from leoflow_shim.templating import (
    TemplateError,
    UnsupportedTemplate,
    render_builtin,
    render_string,
    render_value,
)

try:
    import jinja2  # noqa: F401

    ENGINES = ["jinja2", "builtin"]
except ImportError:
    ENGINES = ["builtin"]

WHEN = dt.datetime(2024, 3, 5, 10, 0, tzinfo=dt.timezone.utc)


def _context(**extra):
    ti = types.SimpleNamespace(
        task_id="t1", try_number=2, map_index=-1, xcom_pull=lambda task_ids, key="return_value": 7
    )
    return {
        "ds": "2024-03-05",
        "ts": WHEN.isoformat(),
        "logical_date": WHEN,
        "params": {"x": 5, "name": "leo", "nested": {"k": [1, 2]}},
        "ti": ti,
        "task_instance": ti,
        "macros": macros,
        "run_id": "manual__1",
        "dag_run": types.SimpleNamespace(conf={"a": "b"}),
        **extra,
    }


@pytest.mark.parametrize(
    "template, expected",
    [
        ("{{ ds }}", "2024-03-05"),
        ("{{ds}}-{{ params.x }}", "2024-03-05-5"),
        ("{{ params['name'] }} {{ params.nested.k[1] }}", "leo 2"),
        ("{{ ti.try_number }} {{ task_instance.task_id }}", "2 t1"),
        ("{{ macros.ds_add(ds, 1) }} {{ macros.ds_add(ds, -5) }}", "2024-03-06 2024-02-29"),
        ("{{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m/%Y') }}", "05/03/2024"),
        ("{{ logical_date | ds_nodash }} {{ logical_date | ts_nodash }}", "20240305 20240305T100000"),
        ("{{ params.x * 2 + 1 }} {{ params.x > 3 and 'big' or 'small' }}", "11 big"),
        ("{{ 'yes' if params.x == 5 else 'no' }}", "yes"),
        ("{{ params.missing | default('dflt') }} {{ params.name | upper }}", "dflt LEO"),
        ("{{ dag_run.conf.get('a') }} {{ ti.xcom_pull(task_ids='up') }}", "b 7"),
        ("{{ [1, 2] | join(',') }} {{ params.nested | tojson }}", '1,2 {"k": [1, 2]}'),
        ("{{ true }} {{ none }} {{ params.name | length }}", "True None 3"),
        ("a {# a comment #}b", "a b"),
        ("x   {{- ds -}}   y", "x2024-03-05y"),
        ("echo {{ ds }}\n", "echo 2024-03-05"),
        ("no template at all\n", "no template at all\n"),
    ],
)
@pytest.mark.parametrize("engine", ENGINES)
def test_the_subset_renders_alike_in_both_engines(monkeypatch, engine, template, expected):
    monkeypatch.setenv("LEOFLOW_TEMPLATE_ENGINE", engine)
    assert render_string(template, _context()) == expected


@pytest.mark.parametrize(
    "template, message",
    [
        ("{% for i in range(3) %}{{ i }}{% endfor %}", "statement"),
        ("{{ 'a' ~ 'b' }}", "built-in template subset"),
        ("{{ ds is defined }}", "a test"),
        ("{{ params.x | unknown_filter }}", "the filter 'unknown_filter'"),
    ],
)
def test_builtin_subset_refuses_what_it_cannot_render(template, message):
    with pytest.raises(UnsupportedTemplate, match=message) as info:
        render_builtin(template, _context())
    assert "install jinja2" in str(info.value)


@pytest.mark.parametrize(
    "template, message",
    [
        ("{{ nope }}", "'nope' is undefined"),
        ("{{ params.nope }}", "no attribute or key 'nope'"),
        ("{{ ti.__class__ }}", "not allowed"),
        ("{{ ds", "unterminated"),
    ],
)
def test_builtin_subset_errors_name_the_problem(template, message):
    with pytest.raises(TemplateError, match=message):
        render_builtin(template, _context())


def test_user_defined_macros_and_filters_of_the_dag():
    dag = types.SimpleNamespace(
        user_defined_macros={"project": "acme"}, user_defined_filters={"shout": lambda v: v.upper() + "!"}
    )
    assert render_builtin("{{ project | shout }} {{ ds }}", _context(), dag) == "ACME! 2024-03-05"


def test_render_value_walks_containers_and_never_renders_task_outputs():
    from leoflow_shim.params import DagParam

    param = DagParam(types.SimpleNamespace(params={}), "name")
    value = {"a": ["{{ ds }}", ("{{ params.x }}",)], "b": param, "c": 3, "d": {"{{ ds }}"}}
    rendered = render_value(value, _context(params={"name": "{{ ds }}", "x": 1}))
    assert rendered == {"a": ["2024-03-05", ("1",)], "b": "{{ ds }}", "c": 3, "d": {"2024-03-05"}}


def test_render_value_reads_template_files_next_to_the_dag(tmp_path):
    (tmp_path / "query.sql").write_text("select '{{ ds }}'\n")
    dag = types.SimpleNamespace(fileloc=str(tmp_path / "dag.py"))
    assert render_value("query.sql", _context(), dag, template_ext=(".sql",)) == "select '2024-03-05'"
    with pytest.raises(TemplateError, match="not found"):
        render_value("missing.sql", _context(), dag, template_ext=(".sql",))


def test_jinja2_renders_full_jinja_with_airflow_filters(monkeypatch):
    pytest.importorskip("jinja2")
    monkeypatch.delenv("LEOFLOW_TEMPLATE_ENGINE", raising=False)
    template = "{% for i in range(2) %}{{ i }}{% endfor %} {{ logical_date | ds }} {{ params.x ~ '!' }} {{ nope }}."
    assert render_string(template, _context()) == "01 2024-03-05 5! ."


def test_jinja2_native_rendering_when_the_dag_asks_for_it(monkeypatch):
    pytest.importorskip("jinja2")
    monkeypatch.delenv("LEOFLOW_TEMPLATE_ENGINE", raising=False)
    dag = types.SimpleNamespace(render_template_as_native_obj=True)
    assert render_string("{{ params.nested }}", _context(), dag) == {"k": [1, 2]}


def test_jinja2_sandbox_blocks_dunder_access(monkeypatch):
    pytest.importorskip("jinja2")
    monkeypatch.delenv("LEOFLOW_TEMPLATE_ENGINE", raising=False)
    with pytest.raises(TemplateError):
        render_string("{{ ti.__class__.__mro__ }}", _context())

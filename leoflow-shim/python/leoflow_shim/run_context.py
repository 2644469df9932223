"""The Airflow context of a running attempt, built from the agent's context.json.

Keys: `ti` / `task_instance`, `task`, `dag`, `dag_run`, `run_id`, `ds`, `ds_nodash`, `ts`, `ts_nodash`,
`ts_nodash_with_tz`, `logical_date`, `data_interval_start`, `data_interval_end`, `params`, `macros`, `var`, `conn`,
`try_number`, `task_instance_key_str`, plus Airflow's other keys with empty values (`inlets`, `outlets`,
`prev_*_success`, `triggering_asset_events`...).

Dates are UTC (pendulum DateTimes when pendulum is installed, else the shim's stand-in, a datetime subclass).
A run without a logical date (an Airflow 3 manual run) renders `ds`, `ts` and `logical_date` from its `run_after`,
as the agent does for bash tasks, and its data interval is that same instant. `dag_run.logical_date` keeps the
run's own value (None there).
"""

from __future__ import annotations

import datetime as _dt
import re

from .notset import NOTSET

_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?\s*([Zz]|[+-]\d{2}:?\d{2})?$"
)


def parse_timestamp(value):
    """An RFC 3339 timestamp (any number of fraction digits, `Z` or an offset) as a UTC DateTime; None stays None."""
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        parsed = value
    else:
        match = _TIMESTAMP.match(str(value).strip())
        if match is None:
            raise ValueError(f"{value!r} is not an RFC 3339 timestamp")
        year, month, day, hour, minute, second, fraction, zone = match.groups()
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        if zone is None or zone in ("Z", "z"):
            tz = _dt.timezone.utc
        else:
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            tz = _dt.timezone(sign * _dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
        parsed = _dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_dt.timezone.utc)
    import pendulum  # the real one, or the shim's stand-in (the loader makes it importable)

    return pendulum.instance(parsed.astimezone(_dt.timezone.utc))


class DagRunInfo:
    """`dag_run` in the context: the run's identity, dates and conf."""

    def __init__(self, dag_id: str, run: dict):
        self.dag_id = dag_id
        self.run_id = run.get("run_id")
        self.run_type = run.get("run_type")
        self.logical_date = parse_timestamp(run.get("logical_date"))
        self.data_interval_start = parse_timestamp(run.get("data_interval_start"))
        self.data_interval_end = parse_timestamp(run.get("data_interval_end"))
        self.run_after = parse_timestamp(run.get("run_after"))
        conf = run.get("conf")
        self.conf = conf if isinstance(conf, dict) else ({} if conf is None else conf)
        self.state = "running"
        self.start_date = None
        self.end_date = None
        self.triggered_by = None
        self.external_trigger = self.run_type == "manual"

    def __repr__(self) -> str:
        return f"<DagRun {self.dag_id} @ {self.logical_date}: {self.run_id}, state:{self.state}>"


class _VariableValues:
    """`var.value` / `var.json`: attribute or get() access to Variables."""

    def __init__(self, deserialize_json: bool):
        self._deserialize_json = deserialize_json

    def get(self, key: str, default_var=NOTSET, default=NOTSET):
        from .variable import Variable

        if default is NOTSET:
            default = default_var
        return Variable.get(key, default=default, deserialize_json=self._deserialize_json)

    def __getattr__(self, key: str):
        if key.startswith("__"):
            raise AttributeError(key)
        return self.get(key)

    def __getitem__(self, key: str):
        return self.get(key)


class VariableAccessor:
    """`var` in the context: `{{ var.value.name }}`, `{{ var.json.name.field }}`, `var.value.get(name, default)`."""

    def __init__(self):
        self.value = _VariableValues(deserialize_json=False)
        self.json = _VariableValues(deserialize_json=True)


class ConnectionAccessor:
    """`conn` in the context: `{{ conn.my_db.host }}`, `conn.get(conn_id, default_conn)`."""

    def get(self, conn_id: str, default_conn=None):
        from .connection import Connection
        from .exceptions import AirflowNotFoundException

        try:
            return Connection.get(conn_id)
        except AirflowNotFoundException:
            return default_conn

    def __getattr__(self, conn_id: str):
        if conn_id.startswith("__"):
            raise AttributeError(conn_id)
        from .connection import Connection

        return Connection.get(conn_id)


def run_params(document: dict, task) -> dict:
    """The run's params: DAG defaults overlaid with the run's conf (context.json), plus the task's own params
    where the conf does not set them (Airflow's precedence: conf > task params > DAG params)."""
    from .params import Param

    params = dict(document.get("params") or {})
    conf = (document.get("run") or {}).get("conf")
    conf = conf if isinstance(conf, dict) else {}
    for name, value in (getattr(task, "params", None) or {}).items():
        if name in conf:
            continue
        if isinstance(value, Param):
            if not value.has_value:
                continue
            value = value.value
        params[name] = value
    return params


def build_context(document: dict, ti, task, dag, params: dict) -> dict:
    """Airflow's context for the attempt described by `document` (context.json)."""
    from . import macros

    run = document.get("run") or {}
    attempt = document.get("attempt") or {}
    dag_id = attempt.get("dag_id") or getattr(dag, "dag_id", None)
    dag_run = DagRunInfo(dag_id, run)
    date = dag_run.logical_date or dag_run.run_after or parse_timestamp(_dt.datetime.now(_dt.timezone.utc))
    interval_start = dag_run.data_interval_start or date
    interval_end = dag_run.data_interval_end or date
    ds = date.strftime("%Y-%m-%d")
    ts = date.isoformat()
    ti.dag_run = dag_run
    context = {
        "conn": ConnectionAccessor(),
        "dag": dag,
        "dag_run": dag_run,
        "data_interval_end": interval_end,
        "data_interval_start": interval_start,
        "ds": ds,
        "ds_nodash": ds.replace("-", ""),
        "expanded_ti_count": None,
        "inlets": list(getattr(task, "inlets", None) or []),
        "inlet_events": {},
        "logical_date": date,
        "macros": macros,
        "map_index_template": getattr(task, "map_index_template", None),
        "outlets": list(getattr(task, "outlets", None) or []),
        "outlet_events": {},
        "params": params,
        "prev_data_interval_start_success": None,
        "prev_data_interval_end_success": None,
        "prev_start_date_success": None,
        "prev_end_date_success": None,
        "run_id": dag_run.run_id,
        "start_date": None,
        "task": task,
        "task_instance": ti,
        "task_instance_key_str": f"{dag_id}__{ti.task_id}__{dag_run.run_id}",
        "task_reschedule_count": 0,
        "test_mode": False,
        "ti": ti,
        "triggering_asset_events": {},
        "try_number": ti.try_number,
        "ts": ts,
        "ts_nodash": date.strftime("%Y%m%dT%H%M%S"),
        "ts_nodash_with_tz": ts.replace("-", "").replace(":", ""),
        "var": VariableAccessor(),
    }
    ti._context = context
    return context

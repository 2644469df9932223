"""The running attempt's task instance (`ti` / `task_instance` in the context): identity, xcom_pull and xcom_push.

xcom_pull answers from the inputs the agent delivered with the task (context.json `inputs`, keyed by the task's
`xcom_input`) when they cover the request, and otherwise asks the agent (`GET /agent/v1/xcom`). The agent serves
the XComs of the task's declared upstreams only. xcom_push appends `{"key": k, "value": v}` lines to
`<workdir>/xcom.jsonl`, and the agent forwards them when the attempt ends.
"""

from __future__ import annotations

import json
import socket

from .exceptions import AirflowException
from .jsonvalues import NotJSON, dumps
from .notset import NOTSET
from .xcom import XCOM_RETURN_KEY


def _reference(ref):
    """(task_id, key) of one dag.json XCom reference: "task" or {"task_id", "key"}."""
    if isinstance(ref, str):
        return ref, XCOM_RETURN_KEY
    return ref["task_id"], ref.get("key") or XCOM_RETURN_KEY


def known_xcoms(xcom_input: dict, inputs: dict) -> dict:
    """(task_id, key) -> value for every XCom the agent already resolved into `inputs` (fan-ins included)."""
    known = {}
    for param, spec in (xcom_input or {}).items():
        if param not in inputs:
            continue
        value = inputs[param]
        if isinstance(spec, str) or (isinstance(spec, dict) and "task_id" in spec):
            known[_reference(spec)] = value
        elif isinstance(spec, list) and isinstance(value, list) and len(value) == len(spec):
            for ref, item in zip(spec, value):
                known[_reference(ref)] = item
        elif isinstance(spec, dict) and isinstance(spec.get("dict"), dict) and isinstance(value, dict):
            for name, ref in spec["dict"].items():
                if name in value:
                    known[_reference(ref)] = value[name]
    return known


class RuntimeTaskInstance:
    """Airflow's RuntimeTaskInstance for one attempt."""

    def __init__(
        self,
        *,
        dag_id: str,
        run_id: str,
        task_id: str,
        map_index: int = -1,
        try_number: int = 1,
        task=None,
        known=None,
        client=None,
        xcom_path=None,
    ):
        self.dag_id = dag_id
        self.run_id = run_id
        self.task_id = task_id
        self.map_index = map_index
        self.try_number = try_number
        self.task = task
        retries = getattr(task, "retries", 0)
        self.max_tries = retries if isinstance(retries, int) else 0
        self.hostname = socket.gethostname()
        self.state = "running"
        self.dag_run = None
        self.start_date = None
        self.end_date = None
        self.log_url = None
        self._known = dict(known or {})
        self._client = client
        self._xcom_path = xcom_path
        self._pushed: dict = {}
        self._context = None

    @property
    def operator(self) -> str:
        return type(self.task).__name__ if self.task is not None else "PythonOperator"

    def get_template_context(self):
        return self._context

    def xcom_push(self, key: str, value, **_ignored) -> None:
        """Push an XCom under `key` for this task; the value must be JSON-serialisable."""
        if not isinstance(key, str) or not key:
            raise ValueError(f"xcom_push needs a non-empty string key, got {key!r}")
        try:
            text = dumps(value)
        except NotJSON as err:
            raise TypeError(
                f"xcom_push(key={key!r}) got a value that is not JSON-serialisable: it contains {err}. Push JSON data "
                "(dict, list, str, number, bool, None), or write the data to storage and push its path"
            ) from None
        line = '{"key":' + json.dumps(key, ensure_ascii=False) + ',"value":' + text + "}\n"
        if self._xcom_path is not None:
            with open(self._xcom_path, "a", encoding="utf-8") as fh:
                fh.write(line)
        self._pushed[key] = json.loads(text)

    def xcom_pull(
        self,
        task_ids=None,
        dag_id=None,
        key: str = XCOM_RETURN_KEY,
        include_prior_dates: bool = False,
        *,
        map_indexes=NOTSET,
        default=None,
        run_id=None,
    ):
        """Airflow 3's xcom_pull, within this DAG run.

        One task id (or none: this task) gives one value; a list of task ids gives a list. A mapped upstream read
        without map_indexes gives the list of its instances' values. A value that was never pushed is `default`.
        """
        if (dag_id is not None and dag_id != self.dag_id) or (run_id is not None and run_id != self.run_id):
            raise AirflowException(
                "xcom_pull from another DAG or another run is not supported by Leoflow; a task reads the XComs of its "
                "upstream tasks in its own run"
            )
        if include_prior_dates:
            raise AirflowException(
                "xcom_pull(include_prior_dates=True) is not supported by Leoflow; XComs are read from the current run"
            )
        key = key or XCOM_RETURN_KEY
        single_task = task_ids is None or isinstance(task_ids, str)
        ids = [self.task_id] if task_ids is None else [task_ids] if isinstance(task_ids, str) else list(task_ids)
        single_index = map_indexes is NOTSET or map_indexes is None or isinstance(map_indexes, int)
        if map_indexes is NOTSET or map_indexes is None:
            indexes = [None]
        elif isinstance(map_indexes, int):
            indexes = [map_indexes]
        else:
            indexes = list(map_indexes)
        values = []
        for task_id in ids:
            for index in indexes:
                value = self._pull_one(task_id, key, index)
                values.append(default if value is None else value)
        return values[0] if single_task and single_index and values else values

    def _pull_one(self, task_id: str, key: str, map_index):
        if map_index is None and (task_id, key) in self._known:
            return self._known[(task_id, key)]
        if task_id == self.task_id and map_index in (None, self.map_index) and key in self._pushed:
            return self._pushed[key]
        if self._client is None:
            from .agent_client import AgentClient

            self._client = AgentClient(None, None)
        return self._client.get_xcom(task_id, key, map_index, reader=f"task '{self.task_id}'")

    def __repr__(self) -> str:
        index = f" map_index={self.map_index}" if self.map_index >= 0 else ""
        return (
            f"<RuntimeTaskInstance: {self.dag_id}.{self.task_id} run_id={self.run_id} "
            f"try_number={self.try_number}{index}>"
        )

"""Airflow Variables: readable inside running tasks (from AIRFLOW_VAR_<KEY>); at compile time only with a default."""

from __future__ import annotations

import json
import os

from . import scope
from .errors import UnsupportedFeature
from .notset import NOTSET
from .task_context import is_task_running


def _at_compile_time() -> bool:
    return scope.current().mode == "compile" and not is_task_running()


class Variable:
    """Airflow's Variable: `Variable.get(key, default=..., deserialize_json=...)`."""

    def __init__(self, key=None, val=None, description=None):
        self.key = key
        self.val = val
        self.description = description

    @classmethod
    def get(cls, key: str, default=NOTSET, deserialize_json: bool = False, default_var=NOTSET):
        if default is NOTSET:
            default = default_var
        if _at_compile_time():
            if default is not NOTSET:
                return default
            raise UnsupportedFeature(
                f"reading Variable {key!r} while the DAG file is parsed",
                "Variables are only readable inside tasks at run time; move Variable.get() into the task function, "
                "or give it a default (Variable.get(key, default=...)) for the compile",
            )
        raw = os.environ.get("AIRFLOW_VAR_" + key.upper())
        if raw is None:
            if default is not NOTSET:
                return default
            raise KeyError(f"Variable {key} does not exist")
        return json.loads(raw) if deserialize_json else raw

    @classmethod
    def set(cls, key: str, value, description=None, serialize_json: bool = False):
        raise UnsupportedFeature(
            "Variable.set()", "Leoflow Variables are read-only in tasks; set them in the UI or API"
        )

    @classmethod
    def update(cls, key: str, value, serialize_json: bool = False):
        cls.set(key, value)

    @classmethod
    def delete(cls, key: str):
        raise UnsupportedFeature("Variable.delete()", "delete Variables in the UI or API")

    @classmethod
    def setdefault(cls, key: str, default, description=None, deserialize_json: bool = False):
        return cls.get(key, default=default, deserialize_json=deserialize_json)

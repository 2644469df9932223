"""`airflow.utils.state`: DagRunState, TaskInstanceState and State."""

from __future__ import annotations

from leoflow_shim.state import DagRunState, State, TaskInstanceState

__all__ = ["DagRunState", "State", "TaskInstanceState"]

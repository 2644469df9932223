"""`airflow.utils.context`: the Context type."""

from __future__ import annotations

from leoflow_shim.task_context import Context, get_current_context

__all__ = ["Context", "get_current_context"]

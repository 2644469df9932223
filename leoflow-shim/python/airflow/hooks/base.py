"""`airflow.hooks.base`: BaseHook (get_connection works inside running tasks)."""

from __future__ import annotations

from leoflow_shim.connection import BaseHook

__all__ = ["BaseHook"]

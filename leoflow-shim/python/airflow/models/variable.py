"""`airflow.models.variable`: Variable."""

from __future__ import annotations

from leoflow_shim.variable import Variable

__all__ = ["Variable"]

"""`airflow.models.connection`: Connection."""

from __future__ import annotations

from leoflow_shim.connection import Connection

__all__ = ["Connection"]

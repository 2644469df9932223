"""`airflow.models.dag`: DAG."""

from __future__ import annotations

from leoflow_shim.dag import DAG, dag

__all__ = ["DAG", "dag"]

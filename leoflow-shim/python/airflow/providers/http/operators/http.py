"""`airflow.providers.http.operators.http`: HttpOperator (and the SimpleHttpOperator alias)."""

from __future__ import annotations

from leoflow_shim.operators.http import HttpOperator, SimpleHttpOperator

__all__ = ["HttpOperator", "SimpleHttpOperator"]

"""`airflow.models.baseoperator`: BaseOperator, chain, chain_linear, cross_downstream."""

from __future__ import annotations

from leoflow_shim.dependencies import chain, chain_linear, cross_downstream
from leoflow_shim.operator import BaseOperator

__all__ = ["BaseOperator", "chain", "chain_linear", "cross_downstream"]

"""`airflow.models.param`: Param and ParamsDict."""

from __future__ import annotations

from leoflow_shim.params import DagParam, Param, ParamsDict

__all__ = ["DagParam", "Param", "ParamsDict"]

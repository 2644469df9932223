"""`airflow.datasets`: Airflow 2's name for assets."""

from __future__ import annotations

from leoflow_shim.assets import Asset as Dataset
from leoflow_shim.assets import AssetAll as DatasetAll
from leoflow_shim.assets import AssetAny as DatasetAny

__all__ = ["Dataset", "DatasetAll", "DatasetAny"]

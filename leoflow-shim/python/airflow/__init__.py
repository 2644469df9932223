"""Leoflow's structural shim of the `airflow` package: DAG files import it instead of Apache Airflow."""

from __future__ import annotations

__version__ = "3.2.1+leoflow"

from leoflow_shim.assets import Asset, Dataset
from leoflow_shim.dag import DAG
from leoflow_shim.xcom import XComArg

__all__ = ["DAG", "Asset", "Dataset", "XComArg", "__version__"]

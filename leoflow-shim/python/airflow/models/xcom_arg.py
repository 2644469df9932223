"""`airflow.models.xcom_arg`: XComArg."""

from __future__ import annotations

from leoflow_shim.xcom import PlainXComArg, XComArg

__all__ = ["PlainXComArg", "XComArg"]

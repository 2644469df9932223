"""`airflow.sdk.bases.hook`: BaseHook."""

from __future__ import annotations

from leoflow_shim.connection import BaseHook

__all__ = ["BaseHook"]

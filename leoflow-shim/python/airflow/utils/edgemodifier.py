"""`airflow.utils.edgemodifier`: Label and EdgeModifier."""

from __future__ import annotations

from leoflow_shim.dependencies import EdgeModifier, Label

__all__ = ["EdgeModifier", "Label"]

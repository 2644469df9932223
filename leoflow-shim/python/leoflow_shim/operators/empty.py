"""EmptyOperator and LatestOnlyOperator: tasks the scheduler completes itself (dag.json type "empty")."""

from __future__ import annotations

from ..operator import BaseOperator, overrides


class EmptyOperator(BaseOperator):
    """Operator that does literally nothing; dag.json type "empty" (succeeds in the scheduler)."""

    ui_color = "#e8f7e4"

    def execute(self, context):
        return None

    def _leoflow_spec(self, fileloc):
        if overrides(self, EmptyOperator, "execute"):
            return super()._leoflow_spec(fileloc)
        return {"type": "empty"}


class LatestOnlyOperator(BaseOperator):
    """Skips direct downstream tasks unless the run is manual or the latest scheduled interval."""

    ui_color = "#e9ffdb"

    def execute(self, context):
        return None

    def _leoflow_spec(self, fileloc):
        return {"type": "empty", "branch": "latest_only"}

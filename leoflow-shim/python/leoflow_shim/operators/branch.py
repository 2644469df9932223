"""BaseBranchOperator: custom operators whose choose_branch() picks the downstream task ids to follow."""

from __future__ import annotations

from ..operator import BaseOperator


class BaseBranchOperator(BaseOperator):
    """Subclass and implement choose_branch(context) returning a task id or a list of task ids."""

    _leoflow_branch = "branch"

    def choose_branch(self, context):
        raise NotImplementedError

    def execute(self, context):
        return self.choose_branch(context)


class BranchMixIn:
    """Marker kept for imports of Airflow's BranchMixIn."""

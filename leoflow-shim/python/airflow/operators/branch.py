"""`airflow.operators.branch`: BaseBranchOperator."""

from __future__ import annotations

from leoflow_shim.operators.branch import BaseBranchOperator, BranchMixIn

__all__ = ["BaseBranchOperator", "BranchMixIn"]

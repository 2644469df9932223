"""The Airflow 3 authoring API (`airflow.sdk`) as provided by the Leoflow shim."""

from __future__ import annotations

from airflow.sdk import timezone
from leoflow_shim.assets import Asset, AssetAlias, AssetAll, AssetAny, Metadata, asset
from leoflow_shim.connection import BaseHook, Connection
from leoflow_shim.dag import DAG, dag
from leoflow_shim.dependencies import EdgeModifier, Label, chain, chain_linear, cross_downstream
from leoflow_shim.operator import BaseOperator
from leoflow_shim.operators.branch import BaseBranchOperator
from leoflow_shim.operators.sensors import BaseSensorOperator, PokeReturnValue
from leoflow_shim.params import Param, ParamsDict
from leoflow_shim.state import DagRunState, TaskInstanceState
from leoflow_shim.task_context import Context, get_current_context, get_parsing_context
from leoflow_shim.taskflow import setup, task, teardown
from leoflow_shim.taskgroup import TaskGroup, task_group
from leoflow_shim.timetables import (
    CronDataIntervalTimetable,
    CronTriggerTimetable,
    DeltaDataIntervalTimetable,
    DeltaTriggerTimetable,
    EventsTimetable,
    MultipleCronTriggerTimetable,
)
from leoflow_shim.trigger_rule import TriggerRule
from leoflow_shim.variable import Variable
from leoflow_shim.xcom import XComArg

__version__ = "1.2.1+leoflow"


def literal(value):
    """Mark a value as not to be rendered as a template (templates are kept as written anyway)."""
    return value


__all__ = [
    "Asset",
    "AssetAlias",
    "AssetAll",
    "AssetAny",
    "BaseBranchOperator",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "Connection",
    "Context",
    "CronDataIntervalTimetable",
    "CronTriggerTimetable",
    "DAG",
    "DagRunState",
    "DeltaDataIntervalTimetable",
    "DeltaTriggerTimetable",
    "EdgeModifier",
    "EventsTimetable",
    "Label",
    "Metadata",
    "MultipleCronTriggerTimetable",
    "Param",
    "ParamsDict",
    "PokeReturnValue",
    "TaskGroup",
    "TaskInstanceState",
    "TriggerRule",
    "Variable",
    "XComArg",
    "asset",
    "chain",
    "chain_linear",
    "cross_downstream",
    "dag",
    "get_current_context",
    "get_parsing_context",
    "literal",
    "setup",
    "task",
    "task_group",
    "teardown",
    "timezone",
]

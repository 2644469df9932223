"""Airflow 2 models path (`airflow.models`): DAG, BaseOperator, Variable, Connection, Param, XComArg."""

from __future__ import annotations

from leoflow_shim.connection import Connection
from leoflow_shim.dag import DAG
from leoflow_shim.mapping import MappedOperator
from leoflow_shim.operator import BaseOperator
from leoflow_shim.params import Param
from leoflow_shim.variable import Variable
from leoflow_shim.xcom import XComArg

__all__ = ["DAG", "BaseOperator", "Connection", "MappedOperator", "Param", "Variable", "XComArg"]

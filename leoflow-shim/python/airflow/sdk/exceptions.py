"""Airflow's exceptions under their Airflow 3 `airflow.sdk.exceptions` path."""

from __future__ import annotations

from leoflow_shim.exceptions import *  # noqa: F401,F403
from leoflow_shim.exceptions import AirflowException, AirflowFailException, AirflowSkipException  # noqa: F401

"""`airflow.exceptions`: Airflow's exception classes."""

from __future__ import annotations

from leoflow_shim.exceptions import *  # noqa: F401,F403
from leoflow_shim.exceptions import (  # noqa: F401
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    DuplicateTaskIdFound,
)

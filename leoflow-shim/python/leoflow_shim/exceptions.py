"""Airflow's exception classes, so DAG files and task code can import, raise and catch them."""

from __future__ import annotations


class AirflowException(Exception):
    """Base class for all Airflow errors."""

    status_code = 500


class AirflowBadRequest(AirflowException):
    status_code = 400


class AirflowNotFoundException(AirflowException):
    status_code = 404


class AirflowConfigException(AirflowException):
    """Raised for configuration problems."""


class AirflowSensorTimeout(AirflowException):
    """Raised when a sensor times out."""


class AirflowRescheduleException(AirflowException):
    """Raised by a sensor in reschedule mode."""

    def __init__(self, reschedule_date=None):
        super().__init__()
        self.reschedule_date = reschedule_date


class AirflowSkipException(AirflowException):
    """Raise inside a task to mark it skipped."""


class AirflowFailException(AirflowException):
    """Raise inside a task to fail it without retrying."""


class AirflowTaskTimeout(AirflowException):
    """Raised when a task exceeds its execution_timeout."""


class AirflowTaskTerminated(AirflowException):
    """Raised when a task is killed externally."""


class AirflowDagCycleException(AirflowException):
    """Raised when a DAG has a cycle."""


class AirflowDagDuplicatedIdException(AirflowException):
    """Raised when two DAG files define the same dag_id."""


class AirflowClusterPolicyViolation(AirflowException):
    """Raised by cluster policies."""


class DuplicateTaskIdFound(AirflowException):
    """Raised when a task id (or group id) is used twice in a DAG."""


class TaskAlreadyInTaskGroup(AirflowException):
    """Raised when a task is added to a second task group."""


class TaskNotFound(AirflowNotFoundException):
    """Raised when a task id is not in the DAG."""


class DagNotFound(AirflowNotFoundException):
    """Raised when a DAG is not found."""


class ParamValidationError(AirflowException):
    """Raised when a Param default is invalid."""


class TaskDeferred(BaseException):
    """Raised by deferrable operators; Leoflow has no triggerer, so deferral is unsupported."""


class RemovedInAirflow4Warning(DeprecationWarning):
    """Deprecation category used by Airflow 3."""

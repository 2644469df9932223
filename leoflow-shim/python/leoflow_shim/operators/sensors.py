"""Sensors: BaseSensorOperator, PokeReturnValue, BashSensor and PythonSensor (dag.json `sensor` block)."""

from __future__ import annotations

import subprocess
import time

from ..exceptions import AirflowException, AirflowSensorTimeout, AirflowSkipException
from ..operator import BaseOperator, overrides
from ..timevalues import to_seconds
from .bash import _plain_env
from .python import CallableTaskMixin

VALID_MODES = ("poke", "reschedule")


class PokeReturnValue:
    """What a poke may return: done or not, plus an XCom value."""

    def __init__(self, is_done: bool, xcom_value=None):
        self.is_done = is_done
        self.xcom_value = xcom_value

    def __bool__(self) -> bool:
        return self.is_done


class BaseSensorOperator(BaseOperator):
    """Pokes until a condition is true or the timeout passes."""

    ui_color = "#e6f1f2"

    def __init__(
        self,
        *,
        poke_interval=60,
        timeout=60 * 60 * 24 * 7,
        soft_fail: bool = False,
        mode: str = "poke",
        exponential_backoff: bool = False,
        max_wait=None,
        silent_fail: bool = False,
        never_fail: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if mode not in VALID_MODES:
            raise AirflowException(
                f"The mode must be one of {list(VALID_MODES)},'{self.dag_id or ''}.{self.task_id}'; received '{mode}'."
            )
        self.poke_interval = to_seconds(poke_interval, "poke_interval")
        self.timeout = to_seconds(timeout, "timeout")
        if self.poke_interval < 0:
            raise AirflowException("The poke_interval must be a non-negative number")
        if self.timeout < 0:
            raise AirflowException("The timeout must be a non-negative number")
        self.soft_fail = soft_fail
        self.mode = mode
        self.exponential_backoff = exponential_backoff
        self.max_wait = max_wait
        self.silent_fail = silent_fail
        self.never_fail = never_fail

    def poke(self, context):
        raise NotImplementedError(f"{type(self).__name__} must implement poke()")

    def execute(self, context):
        started = time.monotonic()
        interval = float(self.poke_interval)
        while True:
            result = self.poke(context)
            if isinstance(result, PokeReturnValue):
                if result.is_done:
                    return result.xcom_value
            elif result:
                return None
            if time.monotonic() - started > float(self.timeout):
                if self.soft_fail:
                    raise AirflowSkipException(f"Sensor {self.task_id} timed out; skipping (soft_fail)")
                raise AirflowSensorTimeout(f"Sensor {self.task_id} has timed out")
            time.sleep(interval)
            if self.exponential_backoff:
                interval = min(interval * 2, float(self.timeout))

    def _leoflow_sensor(self) -> dict:
        return {
            "poke_interval_seconds": self.poke_interval,
            "timeout_seconds": self.timeout,
            "mode": self.mode,
            "soft_fail": bool(self.soft_fail),
            "exponential_backoff": bool(self.exponential_backoff),
        }

    def _leoflow_spec(self, fileloc):
        spec = super()._leoflow_spec(fileloc)
        spec["sensor"] = self._leoflow_sensor()
        return spec


class BashSensor(BaseSensorOperator):
    """Succeeds once the bash command exits 0."""

    template_fields = ("bash_command", "env")

    def __init__(self, *, bash_command, env=None, output_encoding: str = "utf-8", retry_exit_code=None, **kwargs):
        super().__init__(**kwargs)
        self.bash_command = bash_command
        self.env = env
        self.output_encoding = output_encoding
        self.retry_exit_code = retry_exit_code

    def poke(self, context):
        result = subprocess.run(["bash", "-c", self.bash_command], env=self.env)
        if self.retry_exit_code is not None and result.returncode == self.retry_exit_code:
            return False
        if result.returncode not in (0, 1) and self.retry_exit_code is not None:
            raise AirflowException(f"Bash sensor command failed with exit code {result.returncode}")
        return result.returncode == 0

    def _leoflow_spec(self, fileloc):
        native = (
            not overrides(self, BashSensor, "poke")
            and not overrides(self, BaseSensorOperator, "execute")
            and isinstance(self.bash_command, str)
            and self.retry_exit_code is None
            and _plain_env(self.env)
        )
        if not native:
            return super()._leoflow_spec(fileloc)
        spec = {"type": "bash", "entrypoint": self.bash_command}
        if self.env:
            spec["env"] = dict(self.env)
        spec["sensor"] = self._leoflow_sensor()
        return spec


class PythonSensor(CallableTaskMixin, BaseSensorOperator):
    """Waits until the callable returns a truthy value (or a done PokeReturnValue)."""

    template_fields = ("templates_dict", "op_args", "op_kwargs")
    _leoflow_map = None

    def __init__(self, *, python_callable, op_args=None, op_kwargs=None, templates_dict=None, **kwargs):
        super().__init__(**kwargs)
        self.python_callable = python_callable
        self.op_args = list(op_args or ())
        self.op_kwargs = dict(op_kwargs or {})
        self.templates_dict = templates_dict

    def poke(self, context):
        return self.execute_callable(context)

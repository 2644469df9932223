"""Sensors: BaseSensorOperator, PokeReturnValue, BashSensor and PythonSensor (dag.json `sensor` block)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
import traceback

from ..exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    AirflowTaskTimeout,
)
from ..operator import BaseOperator, overrides
from ..timevalues import to_seconds
from .bash import PRIVATE_VARIABLES, _plain_env
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
        """Airflow's poke loop: poke until done, sleeping poke_interval (or the exponential backoff) in between.

        `mode="reschedule"` pokes in the same process too (the attempt keeps its slot while it waits).
        """
        started = time.monotonic()
        started_at = time.time()
        poke_count = 1
        while True:
            result = self._poke_once(context)
            if isinstance(result, PokeReturnValue):
                if result.is_done:
                    return result.xcom_value
            elif result:
                return None
            elapsed = time.monotonic() - started
            if elapsed > float(self.timeout):
                message = (
                    f"Sensor has timed out; run duration of {elapsed:.1f} seconds exceeds the specified timeout of "
                    f"{self.timeout}."
                )
                if self.soft_fail:
                    raise AirflowSkipException(message)
                raise AirflowSensorTimeout(message)
            interval = self._next_poke_interval(started_at, elapsed, poke_count)
            # Wake up at the timeout at the latest: one last poke there, then the timeout.
            time.sleep(max(0.0, min(interval, float(self.timeout) - elapsed)))
            poke_count += 1

    def _poke_once(self, context):
        """One poke with Airflow's soft_fail / silent_fail / never_fail handling of errors."""
        try:
            return self.poke(context)
        except (AirflowSensorTimeout, AirflowTaskTimeout, AirflowFailException) as err:
            if self.soft_fail:
                raise AirflowSkipException("Skipping due to soft_fail is set to True.") from err
            if self.never_fail:
                raise AirflowSkipException("Skipping due to never_fail is set to True.") from err
            raise
        except AirflowSkipException:
            raise
        except Exception as err:
            if self.silent_fail:
                print(f"Sensor poke failed:\n{traceback.format_exc()}", file=sys.stderr)
                return False
            if self.never_fail:
                raise AirflowSkipException("Skipping due to never_fail is set to True.") from err
            raise

    def _next_poke_interval(self, started_at: float, elapsed: float, poke_count: int) -> float:
        """poke_interval, or Airflow's jittered exponential backoff capped by the time left and max_wait."""
        if not self.exponential_backoff:
            return float(self.poke_interval)
        min_backoff = max(int(float(self.poke_interval) * (2 ** (poke_count - 2))), 1)
        seed = f"{self.dag_id}#{self.task_id}#{started_at}#{poke_count}".encode()
        run_hash = int(hashlib.sha1(seed).hexdigest(), 16)
        interval = min(min_backoff + run_hash % min_backoff, float(self.timeout) - int(elapsed))
        if self.max_wait is not None:
            interval = min(float(to_seconds(self.max_wait, "max_wait")), interval)
        return float(interval)

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
        """Run the command in a temporary directory: exit 0 is done; retry_exit_code (when set) pokes again."""
        env = dict(self.env) if self.env is not None else dict(os.environ)
        for name in PRIVATE_VARIABLES:
            env.pop(name, None)
        with tempfile.TemporaryDirectory(prefix="airflowtmp") as tmp:
            process = subprocess.Popen(
                ["bash", "-c", self.bash_command], cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            with process.stdout:
                for raw in iter(process.stdout.readline, b""):
                    sys.stdout.write(raw.decode(self.output_encoding, errors="backslashreplace").rstrip() + "\n")
                    sys.stdout.flush()
            returncode = process.wait()
        if returncode == 0:
            return True
        if self.retry_exit_code is not None:
            if returncode == self.retry_exit_code:
                return False
            raise AirflowFailException(f"Command exited with return code {returncode}")
        return False

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

"""BashOperator: a shell command. Compiles to dag.json type "bash" when the command is plain text known now."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from .. import scope
from ..exceptions import AirflowException, AirflowSkipException
from ..operator import BaseOperator, overrides
from ..xcom import iter_xcom_args

DEFAULT_SKIP_EXIT_CODE = 99
SCRIPT_EXTENSIONS = (".sh", ".bash")


# Variables the task runtime receives that shell commands must not see (the agent's credential for this attempt).
PRIVATE_VARIABLES = ("LEOFLOW_AGENT_TOKEN",)


def bash_environment(env=None, append_env: bool = False, context=None) -> dict:
    """Airflow's BashOperator.get_env: env (or the process env), plus AIRFLOW_CTX_* of the running task."""
    from ..task_context import context_to_airflow_vars

    if env is None:
        process_env = dict(os.environ)
    elif append_env:
        process_env = {**os.environ, **env}
    else:
        process_env = dict(env)
    process_env.update(context_to_airflow_vars(context))
    for name in PRIVATE_VARIABLES:
        process_env.pop(name, None)
    return process_env


def run_bash(
    command: str,
    env=None,
    append_env: bool = False,
    cwd=None,
    skip_on_exit_code=DEFAULT_SKIP_EXIT_CODE,
    output_encoding: str = "utf-8",
    context=None,
):
    """Run `command` with `bash -c` as Airflow's BashOperator does, stream its output, return its last line.

    stdout and stderr are merged and written line by line to this process's stdout (the task log) while the command
    runs. An exit code in `skip_on_exit_code` raises AirflowSkipException; any other non-zero code fails the task.
    """
    if cwd is not None and not os.path.isdir(cwd):
        raise AirflowException(f"Can not find the cwd: {cwd}")
    skip_codes = [skip_on_exit_code] if isinstance(skip_on_exit_code, int) else list(skip_on_exit_code or [])
    process_env = bash_environment(env, append_env, context)
    last = ""
    with tempfile.TemporaryDirectory(prefix="airflowtmp") as tmp:
        process = subprocess.Popen(
            ["bash", "-c", command],
            cwd=cwd or tmp,
            env=process_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        with process.stdout:
            for raw in iter(process.stdout.readline, b""):
                last = raw.decode(output_encoding, errors="backslashreplace").rstrip()
                sys.stdout.write(last + "\n")
                sys.stdout.flush()
        returncode = process.wait()
    if returncode in skip_codes:
        raise AirflowSkipException(f"Bash command returned exit code {returncode}. Skipping.")
    if returncode != 0:
        raise AirflowException(f"Bash command failed. The command returned a non-zero exit code {returncode}.")
    return last


def _script_template(command: str):
    """Airflow renders a bash_command ending in .sh/.bash as a template file; return that file's text, if found."""
    if not isinstance(command, str) or not command.endswith(SCRIPT_EXTENSIONS):
        return None
    path = command
    if not os.path.isabs(path):
        base = os.path.dirname(scope.current().path or "")
        path = os.path.join(base, command)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    raise FileNotFoundError(
        f"bash_command {command!r} ends with {os.path.splitext(command)[1]}, so Airflow renders it as a script file, "
        "but no such file is next to the DAG file; add the script, or add a trailing space to run it as a command"
    )


class BashOperator(BaseOperator):
    """Execute a Bash script, command or set of commands."""

    template_fields = ("bash_command", "env", "cwd")
    template_fields_renderers = {"bash_command": "bash", "env": "json"}
    template_ext = SCRIPT_EXTENSIONS
    ui_color = "#f0ede4"

    def __init__(
        self,
        *,
        bash_command,
        env=None,
        append_env: bool = False,
        output_encoding: str = "utf-8",
        skip_on_exit_code=DEFAULT_SKIP_EXIT_CODE,
        cwd=None,
        output_processor=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        script = _script_template(bash_command)
        self.bash_command = script if script is not None else bash_command
        self.env = env
        self.append_env = append_env
        self.output_encoding = output_encoding
        self.skip_on_exit_code = skip_on_exit_code
        self.cwd = cwd
        self.output_processor = output_processor

    def execute(self, context):
        from ..task_context import resolve

        command = resolve(self.bash_command, context)
        env = resolve(self.env, context)
        result = run_bash(
            command, env, self.append_env, self.cwd, self.skip_on_exit_code, self.output_encoding, context=context
        )
        return self.output_processor(result) if self.output_processor else result

    def _leoflow_native_bash(self) -> bool:
        """True when dag.json's "bash" kind runs this task faithfully (otherwise the shim runs execute())."""
        return (
            not overrides(self, BashOperator, "execute")
            and isinstance(self.bash_command, str)
            and self.cwd is None
            and self.output_processor is None
            and self.skip_on_exit_code == DEFAULT_SKIP_EXIT_CODE
            and _plain_env(self.env)
        )

    def _leoflow_spec(self, fileloc):
        if not self._leoflow_native_bash():
            return super()._leoflow_spec(fileloc)
        spec = {"type": "bash", "entrypoint": self.bash_command}
        if self.env:
            spec["env"] = dict(self.env)
        return spec


def _plain_env(env) -> bool:
    if env is None:
        return True
    return (
        isinstance(env, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
        and not any(True for _ in iter_xcom_args(env))
    )

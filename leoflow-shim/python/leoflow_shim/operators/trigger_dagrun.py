"""TriggerDagRunOperator: starts a run of another DAG; runs as a Python task whose execute() the runtime provides."""

from __future__ import annotations

from ..exceptions import AirflowException
from ..operator import BaseOperator

# The task runtime installs a callable(trigger_dag_id, run_id, conf, logical_date, ...) here before execute().
trigger_dag_run_hook = None


class TriggerDagRunOperator(BaseOperator):
    """Triggers a DAG run for a specified dag_id."""

    template_fields = ("trigger_dag_id", "trigger_run_id", "logical_date", "conf")
    ui_color = "#ffefeb"

    def __init__(
        self,
        *,
        trigger_dag_id: str,
        trigger_run_id=None,
        conf=None,
        logical_date=None,
        reset_dag_run: bool = False,
        wait_for_completion: bool = False,
        poke_interval: int = 60,
        allowed_states=None,
        failed_states=None,
        skip_when_already_exists: bool = False,
        fail_when_dag_is_paused: bool = False,
        deferrable: bool = False,
        openlineage_inject_parent_info: bool = True,
        note=None,
        run_after=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(trigger_dag_id, str):
            raise TypeError(f"trigger_dag_id must be a string, got {type(trigger_dag_id).__name__}")
        self.trigger_dag_id = trigger_dag_id
        self.trigger_run_id = trigger_run_id
        self.conf = conf
        self.logical_date = logical_date
        self.reset_dag_run = reset_dag_run
        self.wait_for_completion = wait_for_completion
        self.poke_interval = poke_interval
        self.allowed_states = allowed_states
        self.failed_states = failed_states
        self.skip_when_already_exists = skip_when_already_exists

    def execute(self, context):
        from ..task_context import resolve

        if trigger_dag_run_hook is None:
            raise AirflowException("TriggerDagRunOperator needs the Leoflow task runtime to trigger DAG runs")
        return trigger_dag_run_hook(
            trigger_dag_id=self.trigger_dag_id,
            trigger_run_id=resolve(self.trigger_run_id, context),
            conf=resolve(self.conf, context),
            logical_date=resolve(self.logical_date, context),
            wait_for_completion=self.wait_for_completion,
            poke_interval=self.poke_interval,
            allowed_states=self.allowed_states,
            failed_states=self.failed_states,
        )

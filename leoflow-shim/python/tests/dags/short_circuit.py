"""@task.short_circuit and ShortCircuitOperator(ignore_downstream_trigger_rules=False)."""

import pendulum

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import ShortCircuitOperator
from airflow.sdk import chain, dag, task


@dag(start_date=pendulum.datetime(2021, 1, 1, tz="UTC"), catchup=False, schedule=None, tags=["example"])
def short_circuit():
    @task.short_circuit()
    def check_condition(condition):
        return condition

    ds_true = [EmptyOperator(task_id=f"true_{i}") for i in [1, 2]]
    ds_false = [EmptyOperator(task_id=f"false_{i}") for i in [1, 2]]

    condition_is_true = check_condition.override(task_id="condition_is_true")(condition=True)
    condition_is_false = check_condition.override(task_id="condition_is_false")(condition=False)

    chain(condition_is_true, *ds_true)
    chain(condition_is_false, *ds_false)

    respect = ShortCircuitOperator(
        task_id="respect_trigger_rules",
        python_callable=lambda: False,
        ignore_downstream_trigger_rules=False,
    )
    always = EmptyOperator(task_id="always_runs", trigger_rule="all_done")
    respect >> always


short_circuit()

"""More legacy paths: airflow.decorators.task_group, airflow.sensors.bash, airflow.operators.latest_only,
airflow.operators.trigger_dagrun, airflow.models.param.Param and airflow.exceptions in task code."""

import pendulum

from airflow.decorators import dag, task, task_group
from airflow.exceptions import AirflowSkipException
from airflow.models.param import Param
from airflow.operators.latest_only import LatestOnlyOperator
from airflow.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sensors.bash import BashSensor


@dag(
    dag_id="legacy_paths_mix",
    schedule="@hourly",
    start_date=pendulum.datetime(2024, 5, 1, tz="UTC"),
    catchup=False,
    params={"dry_run": Param(False, type="boolean")},
)
def build():
    gate = LatestOnlyOperator(task_id="gate")
    ready = BashSensor(task_id="ready", bash_command="true", poke_interval=10, timeout=100, mode="reschedule")

    @task_group
    def process():
        @task
        def clean():
            raise AirflowSkipException("nothing to clean")

        @task
        def publish():
            return "done"

        clean() >> publish()

    kick = TriggerDagRunOperator(task_id="kick_downstream", trigger_dag_id="downstream_dag")
    gate >> ready >> process() >> kick


build()

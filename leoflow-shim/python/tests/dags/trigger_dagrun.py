"""TriggerDagRunOperator starting another DAG with a conf payload."""

from datetime import datetime

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG

with DAG(dag_id="trigger_controller", start_date=datetime(2024, 1, 1), schedule="@once", tags=["trigger"]) as dag:
    TriggerDagRunOperator(
        task_id="trigger_target",
        trigger_dag_id="trigger_target",
        conf={"message": "Hello World"},
        wait_for_completion=False,
    )

"""Airflow 2 import paths: airflow.DAG, airflow.decorators, airflow.operators.*, airflow.utils.*, airflow.models."""

from datetime import timedelta

from airflow import DAG
from airflow.decorators import task
from airflow.models import Variable
from airflow.operators.bash import BashOperator
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator
from airflow.utils.dates import days_ago
from airflow.utils.trigger_rule import TriggerRule

default_args = {
    "owner": "data-eng",
    "retries": 1,
    "retry_delay": timedelta(minutes=5),
}

BUCKET = Variable.get("bucket", default_var="s3://example")

with DAG(
    dag_id="legacy_imports",
    default_args=default_args,
    schedule=timedelta(days=1),
    start_date=days_ago(2),
    tags=["legacy"],
) as dag:
    begin = EmptyOperator(task_id="begin")

    def _print_bucket():
        print(BUCKET)

    show = PythonOperator(task_id="show_bucket", python_callable=_print_bucket)

    @task
    def count():
        return 3

    sync = BashOperator(task_id="sync", bash_command=f"echo sync {BUCKET}", retries=4)
    finish = EmptyOperator(task_id="finish", trigger_rule=TriggerRule.NONE_FAILED)

    begin >> show >> count() >> sync >> finish

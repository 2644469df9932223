"""XComArgs used purely for ordering: XComArg >> operator, operator >> XComArg, XComArg >> XComArg."""

from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, task

with DAG(dag_id="xcomarg_edges", start_date=datetime(2024, 1, 1), schedule=None) as dag:

    @task
    def one():
        return 1

    @task
    def two():
        return 2

    start = EmptyOperator(task_id="start")
    end = EmptyOperator(task_id="end")
    first = one()
    start >> first >> two() >> end

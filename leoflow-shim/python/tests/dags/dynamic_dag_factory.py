"""Generating several DAGs in a loop and registering them in globals(), a common Airflow pattern."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG


def create_dag(dag_id: str, customer: str) -> DAG:
    dag = DAG(dag_id=dag_id, start_date=datetime(2024, 1, 1), schedule="@daily", tags=["customer"])
    with dag:
        extract = BashOperator(task_id="extract", bash_command=f"echo extract {customer}")
        load = BashOperator(task_id="load", bash_command=f"echo load {customer}")
        extract >> load
    return dag


for customer in ["acme", "globex"]:
    globals()[f"customer_{customer}"] = create_dag(f"customer_{customer}", customer)

"""Classic operators with Airflow 3 provider imports: PythonOperator op_args/op_kwargs, BashOperator env, lists."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG


def add(a, b, scale=1):
    return (a + b) * scale


def report(**context):
    print(context["ti"])


with DAG(
    "classic_operators",
    schedule="@hourly",
    start_date=datetime(2023, 6, 1),
    catchup=False,
    tags=["classic"],
) as dag:
    start = EmptyOperator(task_id="start")
    compute = PythonOperator(task_id="compute", python_callable=add, op_args=[1, 2], op_kwargs={"scale": 10})
    shout = BashOperator(task_id="shout", bash_command="echo $GREETING", env={"GREETING": "hello"})
    listing = BashOperator(task_id="listing", bash_command="ls -la {{ ds }}")
    done = PythonOperator(task_id="report", python_callable=report)

    start >> [compute, shout] >> done
    start >> listing

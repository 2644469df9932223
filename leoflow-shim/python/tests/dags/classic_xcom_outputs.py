"""Outputs of classic operators: `.output`, `.output["key"]`, XComArg in op_kwargs and in bash_command."""

from datetime import datetime

from airflow.models.xcom_arg import XComArg
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, task


def produce():
    return {"path": "/tmp/data.csv", "rows": 10}


def consume(path, rows):
    print(path, rows)


with DAG(dag_id="classic_xcom_outputs", start_date=datetime(2024, 1, 1), schedule=None) as dag:
    producer = PythonOperator(task_id="producer", python_callable=produce, multiple_outputs=True)
    consumer = PythonOperator(
        task_id="consumer",
        python_callable=consume,
        op_kwargs={"path": producer.output["path"], "rows": XComArg(producer, key="rows")},
    )

    @task
    def make_command(path):
        return f"wc -l {path}"

    runs_dynamic = BashOperator(task_id="runs_dynamic", bash_command=make_command(producer.output["path"]))
    templated = BashOperator(
        task_id="templated",
        bash_command="echo {{ ti.xcom_pull(task_ids='producer', key='path') }}",
    )
    producer >> templated
    consumer >> runs_dynamic

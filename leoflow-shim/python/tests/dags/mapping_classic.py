"""Mapping classic operators: BashOperator.partial(...).expand(...), PythonOperator over op_args, EmptyOperator."""

from datetime import datetime, timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, task


def double(x):
    return 2 * x


with DAG(dag_id="mapping_classic", start_date=datetime(2024, 1, 1), schedule=None, default_args={"retries": 1}) as dag:
    echo = BashOperator.partial(task_id="echo", retry_delay=timedelta(seconds=5)).expand(
        bash_command=["echo 1", "echo 2", "echo 3"]
    )
    with_env = BashOperator.partial(task_id="with_env", bash_command="echo $X").expand(env=[{"X": "1"}, {"X": "2"}])
    doubled = PythonOperator.partial(task_id="doubled", python_callable=double).expand(op_args=[[1], [2]])

    @task
    def commands():
        return ["echo a", "echo b"]

    from_output = BashOperator.partial(task_id="from_output").expand(bash_command=commands())
    echo >> with_env >> doubled >> from_output

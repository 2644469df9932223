"""@task.virtualenv and PythonVirtualenvOperator run as plain Python tasks in the DAG image."""

from datetime import datetime

from airflow.providers.standard.operators.python import PythonVirtualenvOperator
from airflow.sdk import DAG, task


def callable_virtualenv():
    from time import sleep

    sleep(0)


with DAG(dag_id="virtualenv_tasks", start_date=datetime(2024, 1, 1), schedule=None) as dag:

    @task.virtualenv(requirements=["colorama==0.4.0"], system_site_packages=False)
    def in_venv(n):
        return n

    classic = PythonVirtualenvOperator(
        task_id="virtualenv_classic", requirements="colorama==0.4.0", python_callable=callable_virtualenv
    )
    in_venv(3) >> classic

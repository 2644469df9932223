"""Imports a sibling helper module the way Airflow's DagBag allows (the DAG folder is on sys.path)."""

from datetime import datetime

from shared_commands import WAREHOUSE, make_command

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG(dag_id="sibling_import", start_date=datetime(2024, 1, 1), schedule=None, tags=[WAREHOUSE]) as dag:
    previous = None
    for n in range(3):
        step = BashOperator(task_id=f"step_{n}", bash_command=make_command(n))
        if previous is not None:
            previous >> step
        previous = step

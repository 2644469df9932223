"""Nested setup/teardown blocks: outer setup before inner setup, inner teardown before outer teardown."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG(dag_id="setup_teardown_nested", start_date=datetime(2024, 1, 1), schedule=None) as dag:
    outer_setup = BashOperator(task_id="outer_setup", bash_command="echo 1").as_setup()
    outer_teardown = BashOperator(task_id="outer_teardown", bash_command="echo 4").as_teardown(setups=outer_setup)
    with outer_teardown:
        BashOperator(task_id="outer_work", bash_command="echo w1")
        inner_setup = BashOperator(task_id="inner_setup", bash_command="echo 2").as_setup()
        inner_teardown = BashOperator(task_id="inner_teardown", bash_command="echo 3").as_teardown(setups=inner_setup)
        with inner_teardown:
            BashOperator(task_id="inner_work", bash_command="echo w2")

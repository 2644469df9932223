"""Classic operators marked with .as_setup() / .as_teardown(setups=...)."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(dag_id="setup_teardown_classic", start_date=datetime(2024, 1, 1), schedule=None) as dag:
    create = BashOperator(task_id="create_bucket", bash_command="echo create")
    work = EmptyOperator(task_id="work")
    more_work = EmptyOperator(task_id="more_work")
    delete = BashOperator(task_id="delete_bucket", bash_command="echo delete").as_teardown(setups=create)
    create >> work >> more_work >> delete

    grant = EmptyOperator(task_id="grant").as_setup()
    revoke = EmptyOperator(task_id="revoke")
    grant >> revoke.as_teardown()

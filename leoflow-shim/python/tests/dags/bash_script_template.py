"""BashOperator with a .sh bash_command: Airflow renders the script file next to the DAG as the command."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG(dag_id="bash_script_template", start_date=datetime(2024, 1, 1), schedule=None) as dag:
    BashOperator(task_id="from_script", bash_command="hello_script.sh")
    BashOperator(task_id="trailing_space", bash_command="/usr/local/bin/run.sh ")
    BashOperator(task_id="in_dir", bash_command="make build", cwd="/srv/app")

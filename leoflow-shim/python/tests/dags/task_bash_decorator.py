"""@task.bash: the function returns the command at run time (compiled as a Python task with operator @task.bash)."""

from datetime import datetime

from airflow.sdk import DAG, task

with DAG(dag_id="task_bash_decorator", start_date=datetime(2024, 1, 1), schedule=None) as dag:

    @task
    def get_name():
        return "leoflow"

    @task.bash(env={"GREETING": "hi"}, retries=1)
    def greet(name: str) -> str:
        return f"echo $GREETING {name}"

    @task.bash
    def sleep_it() -> str:
        return "sleep 1"

    greet(get_name()) >> sleep_it()

"""default_args: DAG level, TaskGroup level, operator level; explicit operator arguments win."""

from datetime import datetime, timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, TaskGroup, task

default_args = {
    "owner": "platform",
    "retries": 2,
    "retry_delay": timedelta(minutes=2),
    "execution_timeout": timedelta(minutes=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=20),
    "depends_on_past": False,
}

with DAG(
    dag_id="default_args_inheritance",
    default_args=default_args,
    start_date=datetime(2024, 3, 1),
    schedule=None,
    description="default_args precedence",
) as dag:
    inherits = BashOperator(task_id="inherits", bash_command="true")
    overrides = BashOperator(task_id="overrides", bash_command="true", retries=5, retry_delay=10)
    own_defaults = BashOperator(
        task_id="own_defaults",
        bash_command="true",
        default_args={"retries": 7, "execution_timeout": timedelta(seconds=90)},
    )

    with TaskGroup("grp", default_args={"retries": 9}) as grp:
        in_group = BashOperator(task_id="in_group", bash_command="true")

        @task
        def tf_in_group():
            return 1

        tf_in_group()

    @task(retries=0)
    def no_retries():
        pass

    inherits >> overrides >> own_defaults >> grp >> no_retries()

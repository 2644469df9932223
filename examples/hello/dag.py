"""hello: the sample DAG of `leoflow lite examples/hello`. Plain Airflow 3 code: it also
runs on Airflow. Python tasks pass values through XCom; a bash task reads one."""
from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import dag, task


@dag(
    dag_id="hello",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example"],
)
def hello():
    @task
    def numbers() -> list[int]:
        return [1, 2, 3, 4]

    @task
    def total(values: list[int]) -> int:
        print(f"adding {values}")
        return sum(values)

    @task.bash
    def announce(value: int) -> str:
        return f"echo 'the total is {value}'"

    done = BashOperator(task_id="done", bash_command="echo 'hello from bash, run {{ run_id }}'")

    announce(total(numbers())) >> done


hello()

"""Custom BaseOperator subclasses: execute() runs at task time; a custom sensor; a BashOperator subclass."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, BaseOperator, BaseSensorOperator, task


class HelloOperator(BaseOperator):
    template_fields = ("name",)

    def __init__(self, name: str, greeting: str = "Hello", **kwargs) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.greeting = greeting

    def execute(self, context):
        message = f"{self.greeting} {self.name}"
        print(message)
        return message


class WaitForFlag(BaseSensorOperator):
    def __init__(self, *, flag: str, **kwargs):
        super().__init__(**kwargs)
        self.flag = flag

    def poke(self, context):
        return True


class LoudBash(BashOperator):
    """Keeps BashOperator.execute, so it still runs as a bash task."""


class TimedBash(BashOperator):
    def execute(self, context):
        return super().execute(context)


with DAG(dag_id="custom_operators", start_date=datetime(2024, 1, 1), schedule=None, default_args={"retries": 3}) as dag:

    @task
    def who():
        return "world"

    hello = HelloOperator(task_id="hello", name=who(), greeting="Hi")
    static = HelloOperator(task_id="static_hello", name="there", retries=1)
    waiter = WaitForFlag(task_id="wait_flag", flag="/tmp/f", poke_interval=5, timeout=50)
    loud = LoudBash(task_id="loud", bash_command="echo LOUD")
    timed = TimedBash(task_id="timed", bash_command="echo timed")
    waiter >> [hello, static] >> loud >> timed

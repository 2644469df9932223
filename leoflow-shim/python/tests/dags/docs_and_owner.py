"""DAG and task documentation (doc_md, docstrings), description and owner from default_args."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, task

with DAG(
    dag_id="docs_and_owner",
    description="Documented DAG",
    start_date=datetime(2024, 1, 1),
    schedule=None,
    default_args={"owner": "analytics"},
    doc_md="# Docs\nSome *markdown*.",
) as dag:
    documented = BashOperator(task_id="documented", bash_command="true", doc_md="Runs `true`.")

    @task
    def from_docstring():
        """Docstring becomes doc_md."""

    @task(doc_md="explicit wins")
    def explicit():
        """ignored docstring"""

    later = BashOperator(task_id="later", bash_command="true")
    later.doc_md = "set after creation"
    documented >> [from_docstring(), explicit()] >> later

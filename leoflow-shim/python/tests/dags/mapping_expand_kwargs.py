"""expand_kwargs over a literal list of dicts and over a task output."""

from datetime import datetime

from airflow.sdk import DAG, task

with DAG(dag_id="mapping_expand_kwargs", start_date=datetime(2024, 1, 1), schedule=None) as dag:

    @task
    def copy(src: str, dst: str):
        print(src, dst)

    @task
    def build_pairs():
        return [{"src": "a", "dst": "b"}, {"src": "c", "dst": "d"}]

    copy.expand_kwargs([{"src": "x", "dst": "y"}, {"src": "u", "dst": "v"}])
    copy.override(task_id="copy_dynamic").expand_kwargs(build_pairs())

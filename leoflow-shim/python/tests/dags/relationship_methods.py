"""Every way to declare an edge: >>, <<, lists on either side, set_upstream, set_downstream, XComArgs."""

from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, task

with DAG(dag_id="relationship_methods", start_date=datetime(2024, 1, 1), schedule=None) as dag:
    a, b, c, d, e, f, g, h = (EmptyOperator(task_id=n) for n in "abcdefgh")
    [a, b] >> c
    d << [a, b]
    e.set_upstream(c)
    e.set_downstream([f, g])
    h << g
    g.set_upstream(d)

    @task
    def produce():
        return 1

    @task
    def tail():
        return 2

    out = produce()
    h >> out
    out << a
    [out, f] >> tail()

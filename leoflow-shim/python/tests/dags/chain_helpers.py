"""chain (including pairwise lists), chain_linear and cross_downstream."""

from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, chain, chain_linear, cross_downstream

with DAG(dag_id="chain_helpers", start_date=datetime(2024, 1, 1), schedule=None) as dag:
    t = {name: EmptyOperator(task_id=name) for name in "abcdefghijklmn"}
    # a >> [b, c]; b >> d; c >> e (pairwise); [d, e] >> f
    chain(t["a"], [t["b"], t["c"]], [t["d"], t["e"]], t["f"])
    # every task of one element is upstream of every task of the next
    chain_linear(t["g"], [t["h"], t["i"]], [t["j"], t["k"]])
    cross_downstream([t["l"], t["m"]], [t["n"]])

"""@setup / @teardown decorators and the `with setup >> teardown:` block that wraps work tasks."""

import pendulum

from airflow.sdk import dag, setup, task, teardown


@dag(start_date=pendulum.datetime(2023, 1, 1, tz="UTC"), catchup=False, schedule=None, tags=["example"])
def setup_teardown_decorators():
    @setup
    def create_cluster():
        return "cluster-1"

    @task
    def run_query(cluster):
        print(cluster)

    @task
    def summarize():
        return "ok"

    @teardown
    def delete_cluster(cluster):
        print("deleting", cluster)

    @setup
    def prepare():
        print("prepare")

    @teardown(on_failure_fail_dagrun=True)
    def clean():
        print("clean")

    cluster = create_cluster()
    run_query(cluster) >> summarize() >> delete_cluster(cluster)

    with prepare() >> clean():

        @task
        def inside_block():
            print("work")

        inside_block()


setup_teardown_decorators()

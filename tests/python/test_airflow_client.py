"""Airflow's own Python client (apache-airflow-client 3.2.1) against a running Leoflow.

Started by tests/tests/rest_api.rs with LEOFLOW_URL, LEOFLOW_USER and LEOFLOW_PASSWORD;
the server has the DAG `client_etl` (extract >> load, extract returns {"rows": 3}).
Everything goes through the client's own API classes and models.
"""
import json
import os
import time
import urllib.request

import airflow_client.client as af
from airflow_client.client.api.connection_api import ConnectionApi
from airflow_client.client.api.dag_api import DAGApi
from airflow_client.client.api.dag_run_api import DagRunApi
from airflow_client.client.api.task_instance_api import TaskInstanceApi
from airflow_client.client.api.variable_api import VariableApi
from airflow_client.client.api.x_com_api import XComApi
from airflow_client.client.models.clear_task_instances_body import ClearTaskInstancesBody
from airflow_client.client.models.clear_task_instances_body_task_ids_inner import (
    ClearTaskInstancesBodyTaskIdsInner,
)
from airflow_client.client.models.connection_body import ConnectionBody
from airflow_client.client.models.dag_patch_body import DAGPatchBody
from airflow_client.client.models.trigger_dag_run_post_body import TriggerDAGRunPostBody
from airflow_client.client.models.variable_body import VariableBody
import pytest

URL = os.environ["LEOFLOW_URL"]
DAG = "client_etl"


def token() -> str:
    body = json.dumps(
        {"username": os.environ["LEOFLOW_USER"], "password": os.environ["LEOFLOW_PASSWORD"]}
    ).encode()
    req = urllib.request.Request(
        URL + "/auth/token", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())["access_token"]


@pytest.fixture(scope="module")
def client():
    conf = af.Configuration(host=URL, access_token=token())
    with af.ApiClient(conf) as c:
        yield c


def wait(client, run_id: str) -> str:
    runs = DagRunApi(client)
    for _ in range(600):
        run = runs.get_dag_run(DAG, run_id)
        if run.state.value in ("success", "failed"):
            return run.state.value
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} never finished")


def test_a_run_from_trigger_to_logs_xcom_and_clear(client):
    dags = DAGApi(client).get_dags(dag_id_pattern="client")
    assert [d.dag_id for d in dags.dags] == [DAG]
    assert DAGApi(client).patch_dag(DAG, DAGPatchBody(is_paused=False)).is_paused is False

    run = DagRunApi(client).trigger_dag_run(
        DAG, TriggerDAGRunPostBody(logical_date=None, conf={"day": 1}, note="from the client")
    )
    assert run.state.value == "queued"
    assert wait(client, run.dag_run_id) == "success"

    tis = TaskInstanceApi(client).get_task_instances(DAG, run.dag_run_id)
    assert {t.task_id: t.state.value for t in tis.task_instances} == {
        "extract": "success",
        "load": "success",
    }
    log = TaskInstanceApi(client).get_log(DAG, run.dag_run_id, "extract", 1)
    assert log.content is not None

    entries = XComApi(client).get_xcom_entries(DAG, run.dag_run_id, "extract")
    assert [e.key for e in entries.xcom_entries] == ["return_value"]
    value = XComApi(client).get_xcom_entry(
        dag_id=DAG, dag_run_id=run.dag_run_id, task_id="extract", xcom_key="return_value"
    )
    assert value.actual_instance.value == {"rows": 3}

    cleared = TaskInstanceApi(client).post_clear_task_instances(
        DAG,
        ClearTaskInstancesBody(
            dry_run=False,
            dag_run_id=run.dag_run_id,
            task_ids=[ClearTaskInstancesBodyTaskIdsInner("load")],
            only_failed=False,
        ),
    )
    assert [t.task_id for t in cleared.task_instances] == ["load"]
    assert wait(client, run.dag_run_id) == "success"
    again = TaskInstanceApi(client).get_task_instance(DAG, run.dag_run_id, "load")
    assert again.try_number == 2


def test_variables_and_connections(client):
    v = VariableApi(client).post_variable(VariableBody(key="region", value="eu"))
    assert v.value == "eu"
    assert VariableApi(client).get_variable("region").value == "eu"
    c = ConnectionApi(client).post_connection(
        ConnectionBody(
            connection_id="warehouse", conn_type="postgres", host="db", port=5432, password="pw"
        )
    )
    assert c.password is None
    assert ConnectionApi(client).get_connection("warehouse").host == "db"

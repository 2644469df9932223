"""TaskFlow ETL in the style of Airflow's tutorial_taskflow_api: @dag, @task, multiple_outputs, XCom keys."""

from __future__ import annotations

import json

import pendulum

from airflow.sdk import dag, task


@dag(
    schedule="@daily",
    start_date=pendulum.datetime(2021, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "taskflow"],
)
def tutorial_taskflow_api():
    """### TaskFlow API Tutorial Documentation"""

    @task()
    def extract() -> dict:
        """Extract task"""
        data_string = '{"1001": 301.27, "1002": 433.21, "1003": 502.22}'
        return json.loads(data_string)

    @task(multiple_outputs=True)
    def transform(order_data_dict: dict):
        total_order_value = sum(order_data_dict.values())
        return {"total_order_value": total_order_value, "count": len(order_data_dict)}

    @task()
    def load(total_order_value: float, label: str = "total"):
        print(f"{label}: {total_order_value:.2f}")

    order_data = extract()
    order_summary = transform(order_data)
    load(order_summary["total_order_value"], label="Total order value")


tutorial_taskflow_api()

"""HttpOperator: one HTTP request, run inline by the control plane (dag.json type "http_api")."""

from __future__ import annotations

from ..errors import UnsupportedFeature
from ..jsonvalues import NotJSON, to_json
from ..notset import NOTSET
from ..operator import BaseOperator, overrides
from ..timevalues import to_seconds
from ..xcom import iter_xcom_args

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class HttpOperator(BaseOperator):
    """Calls an endpoint on an HTTP system (Airflow's default method is POST)."""

    template_fields = ("endpoint", "data", "headers")
    template_fields_renderers = {"headers": "json", "data": "py"}
    template_ext = ()
    ui_color = "#f4a460"

    def __init__(
        self,
        *,
        endpoint=None,
        method: str = "POST",
        data=None,
        headers=None,
        pagination_function=None,
        response_check=None,
        response_filter=None,
        extra_options=None,
        request_kwargs=None,
        http_conn_id=NOTSET,
        log_response: bool = False,
        auth_type=None,
        tcp_keep_alive: bool = True,
        tcp_keep_alive_idle: int = 120,
        tcp_keep_alive_count: int = 20,
        tcp_keep_alive_interval: int = 30,
        deferrable: bool = False,
        retry_args=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("response_check", response_check),
            ("response_filter", response_filter),
            ("pagination_function", pagination_function),
        ):
            if value is not None:
                raise UnsupportedFeature(
                    f"HttpOperator({name}=...) on task '{self.task_id}'",
                    "HTTP tasks run inline in the control plane, which cannot call Python; check or transform the "
                    "response in a downstream @task that takes this task's output",
                )
        if deferrable:
            raise UnsupportedFeature("deferrable HttpOperator", "remove deferrable=True; the request runs inline")
        self.endpoint = endpoint
        self.method = method
        self.data = data
        self.headers = headers
        self.extra_options = extra_options or {}
        self.request_kwargs = request_kwargs or {}
        self.http_conn_id = http_conn_id
        self.log_response = log_response
        self.auth_type = auth_type

    def _leoflow_spec(self, fileloc):
        if overrides(self, HttpOperator, "execute"):
            return super()._leoflow_spec(fileloc)
        for field in self.template_fields:
            if any(True for _ in iter_xcom_args(getattr(self, field))):
                raise UnsupportedFeature(
                    f"a task output in HttpOperator.{field} (task '{self.task_id}')",
                    "HTTP tasks run inline in the control plane without XComs; make the request from a @task with "
                    "urllib (or requests, declared under `dependencies`) instead",
                )
        method = str(self.method).upper()
        if method not in HTTP_METHODS:
            raise UnsupportedFeature(f"HTTP method {self.method!r}", f"use one of {', '.join(HTTP_METHODS)}")
        if self.endpoint is not None and not isinstance(self.endpoint, str):
            raise TypeError(f"HttpOperator endpoint must be a string, got {type(self.endpoint).__name__}")
        url = self.endpoint or ""
        request = {"method": method, "url": url}
        if self.headers:
            if not isinstance(self.headers, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in self.headers.items()
            ):
                raise TypeError(f"HttpOperator headers of task '{self.task_id}' must map strings to strings")
            request["headers"] = dict(self.headers)
        if self.data is not None:
            try:
                request["body"] = to_json(self.data)
            except NotJSON as err:
                raise TypeError(f"HttpOperator data of task '{self.task_id}' must be JSON: {err}") from None
        timeout = self.extra_options.get("timeout") if isinstance(self.extra_options, dict) else None
        if timeout is not None:
            request["timeout_seconds"] = to_seconds(timeout, "extra_options['timeout']")
        conn_id = self.http_conn_id
        if conn_id is NOTSET:
            # Airflow's default connection; only needed when the endpoint is relative to a host.
            if not url.startswith(("http://", "https://")):
                request["http_conn_id"] = "http_default"
        elif conn_id is not None:
            request["http_conn_id"] = conn_id
        return {"type": "http_api", "http_request": request}


class SimpleHttpOperator(HttpOperator):
    """Deprecated alias of HttpOperator kept by older DAGs."""

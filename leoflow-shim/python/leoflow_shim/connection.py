"""Airflow Connections and BaseHook: readable inside running tasks (from AIRFLOW_CONN_<ID>), never at compile time."""

from __future__ import annotations

import json
import os
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from . import scope
from .errors import UnsupportedFeature
from .task_context import is_task_running


class Connection:
    """Connection information: conn_type, host, login, password, schema, port and extra."""

    def __init__(
        self,
        conn_id=None,
        conn_type=None,
        description=None,
        host=None,
        login=None,
        password=None,
        schema=None,
        port=None,
        extra=None,
        uri=None,
    ):
        self.conn_id = conn_id
        self.conn_type = conn_type
        self.description = description
        self.host = host
        self.login = login
        self.password = password
        self.schema = schema
        self.port = port
        self.extra = extra
        if uri:
            self._parse_uri(uri)

    def _parse_uri(self, uri: str) -> None:
        parts = urlsplit(uri)
        self.conn_type = parts.scheme.replace("-", "_")
        self.host = unquote(parts.hostname) if parts.hostname else None
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        self.schema = unquote(path) if path else None
        self.login = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.port = parts.port
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if "__extra__" in query:
            self.extra = query["__extra__"]
        elif query:
            self.extra = json.dumps(query)

    @property
    def extra_dejson(self) -> dict:
        if not self.extra:
            return {}
        try:
            return json.loads(self.extra)
        except ValueError:
            return {}

    def get_uri(self) -> str:
        uri = f"{(self.conn_type or '').replace('_', '-')}://"
        if self.login or self.password:
            uri += quote(self.login or "", safe="")
            if self.password:
                uri += ":" + quote(self.password, safe="")
            uri += "@"
        uri += self.host or ""
        if self.port:
            uri += f":{self.port}"
        if self.schema:
            uri += "/" + quote(self.schema, safe="")
        return uri

    @classmethod
    def get(cls, conn_id: str) -> Connection:
        if scope.current().mode == "compile" and not is_task_running():
            raise UnsupportedFeature(
                f"reading Connection {conn_id!r} while the DAG file is parsed",
                "Connections are only readable inside tasks at run time; move the lookup into the task function",
            )
        raw = os.environ.get("AIRFLOW_CONN_" + conn_id.upper())
        if raw is None:
            from .exceptions import AirflowNotFoundException

            raise AirflowNotFoundException(f"The conn_id `{conn_id}` isn't defined")
        if raw.lstrip().startswith("{"):
            data = json.loads(raw)
            extra = data.get("extra")
            if isinstance(extra, dict):
                data["extra"] = json.dumps(extra)
            return cls(conn_id=conn_id, **data)
        return cls(conn_id=conn_id, uri=raw)

    def __repr__(self) -> str:
        return f"Connection({self.conn_id!r})"


class BaseHook:
    """Base for hooks; get_connection() reads a Connection at run time."""

    def __init__(self, logger_name=None):
        self.logger_name = logger_name

    @classmethod
    def get_connection(cls, conn_id: str) -> Connection:
        return Connection.get(conn_id)

    def get_conn(self):
        raise NotImplementedError

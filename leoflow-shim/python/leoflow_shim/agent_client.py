"""The task runtime's call to the leoflow-agent API: reading an upstream task's XCom (`GET /agent/v1/xcom`).

The agent passes its URL and the attempt's bearer token in `LEOFLOW_AGENT_URL` and `LEOFLOW_AGENT_TOKEN`. The
runtime reads both once and removes the token from `os.environ`, so user code and the processes it starts do not
inherit the credential by accident. Requests never go through an HTTP proxy: the agent is local.
"""

from __future__ import annotations

import json
import os

from .exceptions import AirflowException

URL_VARIABLE = "LEOFLOW_AGENT_URL"
TOKEN_VARIABLE = "LEOFLOW_AGENT_TOKEN"
TIMEOUT_SECONDS = 30.0


class XComForbidden(AirflowException):
    """The agent refused the read: the task does not declare the other task as an upstream (no retry helps)."""


def _problem_detail(body: bytes) -> str:
    """The `detail` (or `title`) of an RFC 7807 problem body, else the body's first line."""
    try:
        problem = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        text = body.decode("utf-8", "replace").strip()
        return text.splitlines()[0][:300] if text else ""
    if isinstance(problem, dict):
        return str(problem.get("detail") or problem.get("title") or "")
    return ""


class AgentClient:
    """Reads XComs from the agent with this attempt's token."""

    def __init__(self, url, token):
        self.url = url.rstrip("/") if url else None
        self.token = token
        self._opener = None

    @classmethod
    def from_environment(cls) -> AgentClient:
        """The client for LEOFLOW_AGENT_URL / LEOFLOW_AGENT_TOKEN; the token leaves os.environ."""
        return cls(os.environ.get(URL_VARIABLE), os.environ.pop(TOKEN_VARIABLE, None))

    def _open(self, request):
        if self._opener is None:
            import urllib.request

            self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        return self._opener.open(request, timeout=TIMEOUT_SECONDS)

    def get_xcom(self, task_id: str, key: str, map_index=None, reader: str = "this task"):
        """The value `task_id` pushed under `key` in this run (one map instance's when map_index is given).

        For a mapped upstream without map_index, the list of its instances' values; None when nothing was pushed.
        """
        import urllib.error
        import urllib.parse
        import urllib.request

        what = f"xcom_pull(task_ids={task_id!r}, key={key!r}" + (
            f", map_indexes={map_index})" if map_index is not None else ")"
        )
        if not self.url:
            raise AirflowException(
                f"{what} needs the Leoflow agent, but {URL_VARIABLE} is not set; pass the upstream's output to the "
                "task as an argument instead (the agent then delivers it with the task)"
            )
        query = {"task_id": task_id, "key": key}
        if map_index is not None:
            query["map_index"] = str(map_index)
        request = urllib.request.Request(
            f"{self.url}/agent/v1/xcom?{urllib.parse.urlencode(query)}", headers={"Accept": "application/json"}
        )
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with self._open(request) as response:
                body = response.read()
        except urllib.error.HTTPError as err:
            detail = _problem_detail(err.read() or b"")
            suffix = f" ({detail})" if detail else ""
            if err.code == 403:
                raise XComForbidden(
                    f"{what} was refused: {reader} may only read the XComs of its declared upstreams. Declare "
                    f"'{task_id}' as an upstream: pass its output to the task as an argument, or set "
                    f"`{task_id} >> <this task>` in the DAG{suffix}"
                ) from None
            if err.code == 401:
                raise AirflowException(f"{what}: the agent refused this attempt's token (HTTP 401){suffix}") from None
            raise AirflowException(f"{what} failed: HTTP {err.code}{suffix}") from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise AirflowException(f"{what}: cannot reach the Leoflow agent at {self.url}: {reason}") from None
        try:
            document = json.loads(body.decode("utf-8"))
        except ValueError:
            raise AirflowException(f"{what}: the agent answered with invalid JSON") from None
        if not isinstance(document, dict) or "value" not in document:
            raise AirflowException(f"{what}: the agent's answer has no `value`")
        return document["value"]

"""Test helpers for the task runtime: a project dir with a DAG file, hand-written context.json documents, running
`python -m leoflow_shim run <workdir>` the way the agent does, and a fake agent answering `GET /agent/v1/xcom`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from support import PYTHON_ROOT

TOKEN = "test-attempt-token"


class Ran:
    """What one `leoflow_shim run` produced."""

    def __init__(self, proc, workdir):
        self.proc = proc
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.result = None
        self.xcoms = []
        result = os.path.join(workdir, "result.json")
        if os.path.exists(result):
            with open(result) as fh:
                self.result = json.load(fh)
        xcoms = os.path.join(workdir, "xcom.jsonl")
        if os.path.exists(xcoms):
            with open(xcoms) as fh:
                self.xcoms = [json.loads(line) for line in fh]

    @property
    def status(self):
        return self.result["status"]

    @property
    def value(self):
        assert self.result["status"] == "success", (self.result, self.stderr)
        return self.result["return_value"]


class Project:
    """A project dir (cwd of the runtime) holding DAG files, plus one work dir per attempt."""

    def __init__(self, root):
        self.root = str(root)
        os.makedirs(os.path.join(self.root, "work"), exist_ok=True)
        self.count = 0

    def write(self, source: str, name: str = "dag.py") -> str:
        path = os.path.join(self.root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(source)
        return path

    def attempt(
        self,
        task_id,
        *,
        dag_id="t",
        fileloc="dag.py",
        spec=None,
        inputs=None,
        call_args=None,
        mapped_kwargs=None,
        params=None,
        conf=None,
        map_index=-1,
        try_number=1,
        logical_date="2024-03-05T10:00:00Z",
        run_after="2024-03-05T10:00:00Z",
        entrypoint=None,
    ) -> str:
        """Write a context.json (the agent's start response) for one attempt and return its work dir."""
        self.count += 1
        workdir = os.path.join(self.root, "work", f"{task_id}-{self.count}")
        os.makedirs(workdir)
        task = {"task_id": task_id, "type": "python", "entrypoint": entrypoint or f"{fileloc}:{task_id}"}
        task.update(spec or {})
        document = {
            "attempt": {
                "dag_id": dag_id,
                "run_id": "manual__2024-03-05",
                "task_id": task_id,
                "map_index": map_index,
                "try_number": try_number,
            },
            "task": task,
            "dag": {
                "dag_id": dag_id,
                "fileloc": fileloc,
                "dag_version": "dev",
                "version_number": 1,
                "params": dict(params or {}),
            },
            "run": {
                "run_id": "manual__2024-03-05",
                "run_type": "manual",
                "logical_date": logical_date,
                "data_interval_start": logical_date,
                "data_interval_end": logical_date,
                "run_after": run_after,
                "conf": dict(conf or {}),
            },
            "inputs": dict(inputs or {}),
            "call_args": dict(call_args or {}),
            "mapped_kwargs": dict(mapped_kwargs or {}),
            "params": {**(params or {}), **(conf or {})},
            "heartbeat_interval_seconds": 10,
            "timeout_seconds": None,
        }
        with open(os.path.join(workdir, "context.json"), "w") as fh:
            json.dump(document, fh)
        return workdir

    def env(self, extra=None) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "LEOFLOW_"))}
        env["PYTHONPATH"] = os.pathsep.join([PYTHON_ROOT, self.root])
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra or {})
        return env

    def run(self, workdir, env=None, timeout=60) -> Ran:
        """Run `python -m leoflow_shim run <workdir>` in the project dir, as the agent does."""
        proc = subprocess.run(
            [sys.executable, "-m", "leoflow_shim", "run", workdir],
            cwd=self.root,
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Ran(proc, workdir)


class FakeAgent:
    """A tiny agent API on 127.0.0.1: `GET /agent/v1/xcom` answers from `values`, 403 for `forbidden` task ids."""

    def __init__(self, values=None, forbidden=()):
        self.values = dict(values or {})  # (task_id, key, map_index or None) -> value
        self.forbidden = set(forbidden)
        self.requests: list = []
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status, body, content_type="application/json"):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                agent.requests.append((url.path, query, self.headers.get("Authorization")))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._reply(401, {"title": "Unauthorized", "status": 401}, "application/problem+json")
                    return
                if url.path != "/agent/v1/xcom":
                    self._reply(404, {"title": "Not Found", "status": 404}, "application/problem+json")
                    return
                task_id = query["task_id"]
                if task_id in agent.forbidden:
                    detail = f"task may not read the XComs of {task_id!r}: it is not one of its declared upstreams"
                    self._reply(
                        403, {"title": "Forbidden", "status": 403, "detail": detail}, "application/problem+json"
                    )
                    return
                index = int(query["map_index"]) if "map_index" in query else None
                key = query.get("key", "return_value")
                self._reply(200, {"value": agent.values.get((task_id, key, index))})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def env(self) -> dict:
        return {"LEOFLOW_AGENT_URL": self.url, "LEOFLOW_AGENT_TOKEN": TOKEN}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

"""The warm fork server as the agent uses it: a real `leoflow_shim serve` process, attempts sent over its Unix socket
with real pipes as stdin/stdout/stderr, exit statuses, process groups, kills, re-import freshness and no zombies."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
from attempts import Project

from leoflow_shim.forkserver import ForkServerError, ping, start_attempt
from support import PYTHON_ROOT, compile_paths

BENCH_DIR = os.path.normpath(os.path.join(PYTHON_ROOT, "..", "..", "..", "shared", "bench", "airflow", "dags"))

pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork") or sys.platform == "win32", reason="needs fork and Unix sockets"
)

DAG = """
import os
import subprocess
import sys
import time
from datetime import datetime

from airflow.sdk import DAG, Variable, task

VERSION = 1

with DAG(dag_id="fs", start_date=datetime(2024, 1, 1), schedule=None) as dag:

    @task
    def who(n):
        print(f"out {n}")
        print(f"err {n}", file=sys.stderr)
        return {
            "n": n,
            "pid": os.getpid(),
            "pgid": os.getpgid(0),
            "sid": os.getsid(0),
            "version": VERSION,
            "color": Variable.get("color", default_var=None),
            "server_only": os.environ.get("SERVER_ONLY"),
            "cwd": os.getcwd(),
        }

    @task
    def sleeper():
        child = subprocess.Popen(["sleep", "60"])
        print(f"started {child.pid}", flush=True)
        time.sleep(60)

    who(0) >> sleeper()
"""


class Server:
    def __init__(self, project, socket_path, proc, pid, log):
        self.project = project
        self.socket = socket_path
        self.proc = proc
        self.pid = pid
        self.log = log

    def start(self, workdir, env=None, cwd=None, dag_file=None):
        """Start an attempt with fresh pipes; returns (attempt, stdout reader fd, stderr reader fd)."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            attempt = start_attempt(
                self.socket, workdir, null, out_w, err_w, env=self.project.env(env), cwd=cwd, dag_file=dag_file
            )
        finally:
            for fd in (out_w, err_w, null):
                os.close(fd)
        return attempt, out_r, err_r

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            self.proc.stdout.close()
            self.log.close()


def _read_all(fd) -> str:
    with os.fdopen(fd, "rb") as fh:
        return fh.read().decode()


def _children_of(pid) -> list:
    """(pid, state) of the live or zombie processes whose parent is `pid`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append((int(name), fields[0]))
    return found


def _gone(pid) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"  # a zombie waiting for init is dead too


def _start_server(project, socket_path, preload=("dag.py",), extra_env=None):
    env = project.env({"SERVER_ONLY": "server-secret", **(extra_env or {})})
    args = [sys.executable, "-m", "leoflow_shim", "serve", "--socket", socket_path, "--root", project.root]
    if preload:
        args += ["--preload", *preload]
    log = open(os.path.join(project.root, "serve.log"), "w")
    proc = subprocess.Popen(args, cwd=project.root, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    line = proc.stdout.readline()
    assert line, open(log.name).read()
    ready = json.loads(line)
    assert ready["ready"] is True and ready["socket"] == socket_path
    return Server(project, socket_path, proc, ready["pid"], log)


@pytest.fixture
def short_dir():
    # AF_UNIX paths are limited to ~107 bytes; pytest's tmp_path can be longer.
    path = tempfile.mkdtemp(prefix="lf-fs-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def server(tmp_path, short_dir):
    project = Project(tmp_path)
    project.write(DAG)
    running = _start_server(project, os.path.join(short_dir, "s.sock"))
    yield running
    assert running.stop() == 0
    assert not os.path.exists(running.socket)


def test_twenty_attempts_each_in_its_own_process_group(server):
    project = server.project
    started = []
    for n in range(20):
        workdir = project.attempt("who", dag_id="fs", call_args={"n": n})
        attempt, out, err = server.start(workdir, env={"AIRFLOW_VAR_COLOR": f"c{n}"})
        started.append((n, workdir, attempt, out, err))
    pids = set()
    for n, workdir, attempt, out, err in started:
        stdout, stderr = _read_all(out), _read_all(err)
        assert attempt.wait(timeout=60) == 0, stderr
        assert stdout == f"out {n}\n" and stderr == f"err {n}\n"
        with open(os.path.join(workdir, "result.json")) as fh:
            result = json.load(fh)
        assert result["status"] == "success", result
        value = result["return_value"]
        assert value["n"] == n and value["color"] == f"c{n}"
        assert value["pid"] == attempt.pid == value["pgid"] == value["sid"]
        assert value["pid"] != server.pid
        assert value["server_only"] is None  # the request's env replaces the server's
        assert value["cwd"] == project.root
        pids.add(value["pid"])
    assert len(pids) == 20
    time.sleep(0.2)
    assert _children_of(server.pid) == []  # all reaped: no zombie


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_killing_the_process_group_ends_the_whole_attempt(server, signum):
    workdir = server.project.attempt("sleeper", dag_id="fs")
    attempt, out, err = server.start(workdir)
    with os.fdopen(out, "rb") as stdout:
        line = stdout.readline().decode()
        assert line.startswith("started "), _read_all(err)
        grandchild = int(line.split()[1])
        os.killpg(attempt.pid, signum)
        assert attempt.wait(timeout=30) == -signum
        assert stdout.read() == b""  # EOF: the server holds no copy of the pipe
    os.close(err)
    deadline = time.monotonic() + 5
    while not _gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(grandchild)
    assert not os.path.exists(os.path.join(workdir, "result.json"))
    time.sleep(0.2)
    assert _children_of(server.pid) == []


def test_edited_dag_files_and_helpers_take_effect_in_the_next_attempt(server):
    project = server.project

    def version():
        workdir = project.attempt("who", dag_id="fs", call_args={"n": 1})
        attempt, out, err = server.start(workdir)
        _read_all(out), _read_all(err)
        assert attempt.wait(timeout=60) == 0
        with open(os.path.join(workdir, "result.json")) as fh:
            return json.load(fh)["return_value"]["version"]

    assert version() == 1
    project.write(DAG.replace("VERSION = 1", "VERSION = 2"))
    assert version() == 2
    project.write("VERSION = 3\n", name="fresh_helper.py")  # a sibling module that did not exist before
    project.write(DAG.replace("VERSION = 1", "from fresh_helper import VERSION"))
    assert version() == 3
    # (a different size: CPython trusts a .pyc whose source has the same mtime second and size)
    project.write("VERSION = 4  # edited\n", name="fresh_helper.py")
    assert version() == 4


def test_bad_requests_are_refused_and_nothing_starts(server):
    null = os.open(os.devnull, os.O_RDWR)
    try:
        with pytest.raises(ForkServerError, match="is not a directory"):
            start_attempt(server.socket, "/nonexistent/workdir", null, null, null)
    finally:
        os.close(null)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(server.socket)
    sock.sendall(json.dumps({"workdir": server.project.root}).encode() + b"\n")  # no descriptors
    reply = json.loads(sock.makefile("rb").readline())
    sock.close()
    assert "expected 3 file descriptors" in reply["error"]
    answer = ping(server.socket)
    assert answer["ok"] is True and answer["pid"] == server.pid
    assert _children_of(server.pid) == []


def test_the_same_run_code_path_as_a_cold_start(server):
    """A forked child writes the same result.json as `python -m leoflow_shim run`."""
    project = server.project
    forked = project.attempt("who", dag_id="fs", call_args={"n": 5})
    attempt, out, err = server.start(forked)
    _read_all(out), _read_all(err)
    assert attempt.wait(timeout=60) == 0
    cold = project.run(project.attempt("who", dag_id="fs", call_args={"n": 5}))
    with open(os.path.join(forked, "result.json")) as fh:
        warm = json.load(fh)["return_value"]
    for key in ("pid", "pgid", "sid"):
        warm.pop(key), cold.value.pop(key)
    assert warm == cold.value


def test_a_stopped_or_crashed_server_fails_fast(tmp_path, short_dir):
    project = Project(tmp_path)
    project.write(DAG)
    socket_path = os.path.join(short_dir, "s.sock")
    workdir = project.attempt("who", dag_id="fs", call_args={"n": 1})
    null = os.open(os.devnull, os.O_RDWR)
    try:
        stopped = _start_server(project, socket_path, preload=())
        assert stopped.stop() == 0
        began = time.monotonic()
        with pytest.raises(ForkServerError, match="cannot connect"):
            start_attempt(socket_path, workdir, null, null, null)
        assert time.monotonic() - began < 1

        crashed = _start_server(project, socket_path, preload=())
        crashed.proc.kill()
        crashed.stop()
        assert os.path.exists(socket_path)  # left behind by the crash
        began = time.monotonic()
        with pytest.raises(ForkServerError, match="cannot connect"):
            start_attempt(socket_path, workdir, null, null, null)
        assert time.monotonic() - began < 1

        again = _start_server(project, socket_path, preload=())  # replaces the stale socket
        assert ping(socket_path)["pid"] == again.pid
        assert again.stop() == 0
    finally:
        os.close(null)


def test_stopping_waits_for_running_attempts_and_reports_them(server):
    workdir = server.project.attempt("sleeper", dag_id="fs")
    attempt, out, err = server.start(workdir)
    with os.fdopen(out, "rb") as stdout:
        assert stdout.readline().startswith(b"started ")
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert server.proc.poll() is None  # still draining
        assert not os.path.exists(server.socket)  # no new attempts
        os.killpg(attempt.pid, signal.SIGKILL)
        assert attempt.wait(timeout=30) == -signal.SIGKILL
    os.close(err)
    assert server.proc.wait(timeout=30) == 0


def test_the_benchmark_dags_run_through_the_fork_server(tmp_path, short_dir):
    """Every task of bench_40 and fanout_100 (../shared/bench), compiled, then run from its dag.json object."""
    project = Project(tmp_path)
    files = ["bench_40.py", "fanout_100.py"]
    for name in files:
        shutil.copy(os.path.join(BENCH_DIR, name), os.path.join(project.root, name))
    document = compile_paths([os.path.join(project.root, name) for name in files], project.root)
    assert document["errors"] == []
    running = _start_server(project, os.path.join(short_dir, "s.sock"), preload=files)
    try:
        started = []
        for spec in document["dags"]:
            for task in spec["tasks"]:
                workdir = project.attempt(task["task_id"], dag_id=spec["dag_id"], fileloc=spec["fileloc"], spec=task)
                started.append((workdir, *running.start(workdir)))
        assert len(started) == 142
        for workdir, attempt, out, err in started:
            _read_all(out), _read_all(err)
            assert attempt.wait(timeout=120) == 0
            with open(os.path.join(workdir, "result.json")) as fh:
                assert json.load(fh) == {"status": "success", "return_value": 55}  # fibo(10)
        time.sleep(0.2)
        assert _children_of(running.pid) == []
    finally:
        assert running.stop() == 0


# -- the warm DAG cache ----------------------------------------------------------------------------------------------

COUNTED_DAG = """
import os
from datetime import datetime

from airflow.sdk import DAG, task

from helper import LABEL

with open(os.path.join(os.path.dirname(__file__), "imports.log"), "a") as log:
    log.write(f"{os.getpid()}\\n")

with DAG(dag_id="counted", start_date=datetime(2024, 1, 1), schedule=None) as dag:

    @task
    def label():
        import helper  # the same module object the DAG file imported

        return {"label": LABEL, "same_module": helper.LABEL == LABEL, "pid": os.getpid()}

    label()
"""


def _label(server, project, cwd=None, dag_file="dag.py"):
    workdir = project.attempt("label", dag_id="counted")
    attempt, out, err = server.start(workdir, cwd=cwd, dag_file=dag_file)
    stderr = (_read_all(out), _read_all(err))[1]
    assert attempt.wait(timeout=60) == 0, stderr
    with open(os.path.join(workdir, "result.json")) as fh:
        result = json.load(fh)
    assert result["status"] == "success", result
    return result["return_value"]


def _imports(project, sub=""):
    with open(os.path.join(project.root, sub, "imports.log")) as fh:
        return [int(line) for line in fh.read().split()]


def test_a_named_dag_file_is_imported_once_per_version_in_the_server(tmp_path, short_dir):
    project = Project(tmp_path)
    project.write(COUNTED_DAG)
    project.write('LABEL = "one"\n', name="helper.py")
    server = _start_server(project, os.path.join(short_dir, "s.sock"), preload=())
    try:
        values = [_label(server, project) for _ in range(5)]
        assert [v["label"] for v in values] == ["one"] * 5
        assert all(v["same_module"] for v in values)
        assert len({v["pid"] for v in values}) == 5  # still one process per attempt
        assert _imports(project) == [server.pid]  # the file's top level ran once, in the server
        # An edited helper module is a new version: imported again, once.
        project.write('LABEL = "two, edited"\n', name="helper.py")
        assert [_label(server, project)["label"] for _ in range(3)] == ["two, edited"] * 3
        assert _imports(project) == [server.pid, server.pid]
        # So is an edited DAG file.
        project.write(COUNTED_DAG.replace('{"label": LABEL,', '{"label": LABEL + "!",'))
        assert _label(server, project)["label"] == "two, edited!"
        assert _imports(project) == [server.pid] * 3
    finally:
        assert server.stop() == 0


def test_the_dag_cache_can_be_turned_off(tmp_path, short_dir):
    project = Project(tmp_path)
    project.write(COUNTED_DAG)
    project.write('LABEL = "one"\n', name="helper.py")
    server = _start_server(
        project, os.path.join(short_dir, "s.sock"), preload=(), extra_env={"LEOFLOW_WARM_DAG_CACHE": "0"}
    )
    try:
        pids = [_label(server, project)["pid"] for _ in range(3)]
        assert _imports(project) == pids  # each attempt imported the file itself
    finally:
        assert server.stop() == 0


def test_same_named_helpers_of_two_projects_do_not_mix(tmp_path, short_dir):
    """A workspace: one server for two projects whose DAG files both import a module called `helper`."""
    workspace = Project(tmp_path)
    for name in ("a", "b"):
        workspace.write(COUNTED_DAG, name=f"{name}/dag.py")
        workspace.write(f'LABEL = "{name}"\n', name=f"{name}/helper.py")
    server = _start_server(workspace, os.path.join(short_dir, "s.sock"), preload=())
    try:
        seen = [_label(server, workspace, cwd=name)["label"] for name in ("a", "b", "a", "b")]
        assert seen == ["a", "b", "a", "b"]
        assert _imports(workspace, "a") == [server.pid] and _imports(workspace, "b") == [server.pid]
    finally:
        assert server.stop() == 0


def test_a_broken_dag_file_is_not_cached_and_the_attempt_reports_it(tmp_path, short_dir):
    project = Project(tmp_path)
    project.write(COUNTED_DAG.replace("with DAG(", "raise RuntimeError('boom at import')\nwith DAG("))
    project.write('LABEL = "one"\n', name="helper.py")
    server = _start_server(project, os.path.join(short_dir, "s.sock"), preload=())
    try:
        workdir = project.attempt("label", dag_id="counted")
        attempt, out, err = server.start(workdir, dag_file="dag.py")
        _read_all(out), _read_all(err)
        assert attempt.wait(timeout=60) == 0
        with open(os.path.join(workdir, "result.json")) as fh:
            result = json.load(fh)
        assert result["status"] == "failed" and "boom at import" in result["error"], result
        project.write(COUNTED_DAG)  # fixed: the next attempt runs
        assert _label(server, project)["label"] == "one"
        assert ping(server.socket)["pid"] == server.pid
    finally:
        assert server.stop() == 0

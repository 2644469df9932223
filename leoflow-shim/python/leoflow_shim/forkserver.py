"""Warm fork server: `python3 -m leoflow_shim serve --socket PATH --root PROJECT_DIR [--preload dag.py ...]`.

One long-lived process per project (or DAG version) imports the shim, the runtime, jinja2 and the preloaded DAG files'
third-party imports once, then forks one child per attempt. The child runs exactly what `leoflow_shim run <workdir>`
runs, so each attempt is still its own process (its own pid, session and process group), but without the
interpreter start and the imports.

Wire protocol (Unix stream socket, one connection per attempt, newline-delimited JSON; README.md has the details):

1. The client connects and sends ONE line, `{"workdir": "...", "env": {...}, "cwd": "...", "dag_file": "..."}` +
   `\\n`, with exactly three file descriptors attached by SCM_RIGHTS to the same sendmsg (stdin, stdout, stderr, in
   that order). `env` (optional) replaces the child's whole environment; `cwd` (optional) defaults to --root;
   `dag_file` (optional) is the attempt's DAG file, relative to `cwd`, for the warm DAG cache below.
2. The server forks, waits until the child has called setsid(), and answers `{"pid": N}` + `\\n`. The child's
   pid is also its process group id and session id, so `kill(-N, sig)` reaches the whole task tree.
3. When the child ends, the server answers `{"exit": code}` + `\\n` (the exit code, or -signal) and closes. A child
   that ends normally closes its standard streams and tells the server its exit code just before it exits, so the
   answer does not wait for the kernel to tear the process down; a killed child is reported when it is reaped.

A refused request gets `{"error": "..."}` + `\\n` and the connection closes; nothing was started. `{"ping": true}`
(no descriptors) answers `{"ok": true, "pid": <server pid>, "version": ...}`. A stopped or crashed server refuses
connections at once (ENOENT or ECONNREFUSED), so the client falls back to a cold `leoflow_shim run`.

The server reaps every child (SIGCHLD + waitpid), so no zombie is left. SIGTERM, SIGINT or SIGHUP stop it: it stops
accepting, removes the socket, reports the running children's exits, then exits 0 (a second stop signal exits at
once).

A request may name its DAG file (`"dag_file"`, relative to `cwd`): the server then imports that file once, before
forking, and keeps it while the file and the project modules it imported are unchanged on disk (stat checked per
request), so each child finds the DAG in memory instead of importing it again — for a 1,000-task DAG file that is
~130 ms per attempt saved. The file's top-level code therefore runs once per file version in the server, not once per
attempt (ADR 0010); `LEOFLOW_WARM_DAG_CACHE=0` in the server's environment turns this off, and each child then imports
its DAG file itself. An edit between two attempts takes effect in the next one either way. --preload warms DAG files
the same way at start.
"""

from __future__ import annotations

import importlib
import io
import json
import linecache
import os
import selectors
import signal
import socket
import stat
import sys
import time
import traceback

FDS_PER_REQUEST = 3
MAX_REQUEST_BYTES = 8 * 1024 * 1024
RECV_BYTES = 65536
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
SEND_TIMEOUT_SECONDS = 5.0

# Shim modules a DAG file commonly imports; the server imports them once.
_WARM_MODULES = (
    "airflow",
    "airflow.sdk",
    "airflow.decorators",
    "airflow.models",
    "airflow.exceptions",
    "airflow.macros",
    "airflow.operators.bash",
    "airflow.operators.empty",
    "airflow.operators.python",
    "airflow.providers.standard.operators.bash",
    "airflow.providers.standard.operators.empty",
    "airflow.providers.standard.operators.python",
    "airflow.providers.standard.sensors.python",
    "airflow.utils.trigger_rule",
)


class ForkServerError(Exception):
    """The fork server refused a request or could not be reached (the client should start the attempt cold)."""


def warm_imports() -> None:
    """Import everything an attempt needs, so forked children find it in memory."""
    import hashlib  # noqa: F401
    import inspect  # noqa: F401
    import subprocess  # noqa: F401
    import tempfile  # noqa: F401
    import urllib.error  # noqa: F401
    import urllib.parse  # noqa: F401
    import urllib.request  # noqa: F401

    from . import (  # noqa: F401
        agent_client,
        macros,
        mapping,
        run_context,
        runtime,
        task_arguments,
        task_context,
        task_instance,
        templating,
    )
    from .loader import prepare_interpreter
    from .operators import trigger_dagrun  # noqa: F401

    prepare_interpreter()
    import pendulum  # noqa: F401 - the real one or the stand-in

    templating._jinja2()
    for name in _WARM_MODULES:
        try:
            importlib.import_module(name)
        except Exception as err:  # noqa: BLE001 - a warm-up failure only costs speed
            print(f"leoflow_shim serve: could not pre-import {name}: {err}", file=sys.stderr)


def _settle_modules() -> None:
    """Check the imported modules once more in the server, so each child's `prepare_interpreter` finds nothing new to
    check: the walk over every module would also copy the pages of the forked memory it touches."""
    from .loader import prepare_interpreter

    prepare_interpreter()


def _ensure_standard_fds() -> None:
    """Open /dev/null on any closed fd 0-2, so received descriptors never land there."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def _close_fds_from(lowest: int, keep: int = -1) -> None:
    """Close every descriptor >= lowest but `keep` (the listener, other connections, other requests' pipes)."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        limit = soft if soft != resource.RLIM_INFINITY else 65536
        if lowest <= keep < limit:
            os.closerange(lowest, keep)
            os.closerange(keep + 1, limit)
        else:
            os.closerange(lowest, limit)
        return
    for fd in fds:
        if fd >= lowest and fd != keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _announce_exit(note_w: int, code: int) -> None:
    """Close the standard streams (the agent sees EOF now, not after the kernel has torn the process down) and tell the
    server the exit code."""
    for fd in (0, 1, 2):
        try:
            os.close(fd)
        except OSError:
            pass
    try:
        os.write(note_w, str(code).encode("ascii"))
    except OSError:
        pass


def _reset_stdio() -> None:
    """Point sys.std* at the new fds 0-2, writing line by line as `python -u` would.

    New stream objects are needed: the server's were set up for whatever its own fds were (a file is seekable, a
    pipe is not). The old objects are kept alive, so collecting them cannot close the new fds.
    """
    for name, fd in (("stdin", 0), ("stdout", 1), ("stderr", 2)):
        raw = io.FileIO(fd, "r" if fd == 0 else "w", closefd=False)
        if fd == 0:
            replacement = io.TextIOWrapper(io.BufferedReader(raw), encoding="utf-8", errors="strict")
        else:
            replacement = io.TextIOWrapper(
                io.BufferedWriter(raw),
                encoding="utf-8",
                errors="backslashreplace",
                line_buffering=True,
                write_through=True,
            )
        _KEEP_ALIVE.append(getattr(sys, name, None))
        _KEEP_ALIVE.append(getattr(sys, f"__{name}__", None))
        setattr(sys, name, replacement)
        setattr(sys, f"__{name}__", replacement)


_KEEP_ALIVE: list = []


class _stdout_to_stderr:
    """While importing DAG files in the server: their prints go to stderr, stdout stays for the ready line."""

    def __enter__(self):
        sys.stdout.flush()
        self.saved = os.dup(1)
        os.dup2(2, 1)
        return self

    def __exit__(self, *exc):
        sys.stdout.flush()
        os.dup2(self.saved, 1)
        os.close(self.saved)


class _Client:
    """One connection: the request being read, the descriptors it carried, and the child it started."""

    __slots__ = ("sock", "buffer", "fds", "pid", "exit_note")

    def __init__(self, sock):
        self.sock = sock
        self.buffer = bytearray()
        self.fds: list = []
        self.pid = None
        self.exit_note = None  # the read end of the pipe on which the child announces its exit code

    def close_fds(self) -> None:
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []


class _ExitNote:
    """Selector data of a child's exit-note pipe."""

    __slots__ = ("client",)

    def __init__(self, client: _Client):
        self.client = client


class ForkServer:
    """Accepts attempt requests on a Unix socket and forks one child per attempt."""

    def __init__(self, socket_path: str, root: str, preload=()):
        self.socket_path = os.path.abspath(socket_path)
        self.root = os.path.abspath(root)
        self.preload = list(preload)
        cache = os.environ.get("LEOFLOW_WARM_DAG_CACHE", "1").strip().lower()
        self.cache_dags = cache not in ("0", "false", "no", "off")
        self._listener = None
        self._selector = None
        self._wake = None
        self._children: dict = {}
        self._stopping = False

    # -- start-up ---------------------------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Warm the interpreter: imports, then each --preload DAG file (into the warm DAG cache)."""
        _ensure_standard_fds()
        os.chdir(self.root)
        if self.root not in sys.path:
            sys.path.insert(1, self.root)
        warm_imports()
        if self.preload:
            self._preload()
        _settle_modules()
        import gc

        gc.collect()
        if hasattr(gc, "freeze"):
            gc.freeze()  # keep the warm objects out of the children's collections (copy-on-write stays shared)

    def _preload(self) -> None:
        from .loader import load_file, warm_dag

        with _stdout_to_stderr():
            for path in self.preload:
                full = path if os.path.isabs(path) else os.path.join(self.root, path)
                try:
                    if self.cache_dags and warm_dag(full, self.root):
                        continue
                    result = load_file(full, self.root, mode="run")
                except Exception as err:  # noqa: BLE001 - a broken DAG file must not stop the server
                    print(f"leoflow_shim serve: preloading {path} failed: {err}", file=sys.stderr)
                    continue
                for error in result.errors:
                    print(f"leoflow_shim serve: preloading {path}: {error!r}", file=sys.stderr)

    def _warm_dag(self, request: dict) -> None:
        """Bring the request's DAG file into the warm cache (see the module comment); failures are the child's."""
        dag_file = request.get("dag_file")
        if not self.cache_dags or not isinstance(dag_file, str) or not dag_file.endswith(".py"):
            return
        from .loader import warm_dag

        path = os.path.join(self.root, request.get("cwd") or "", dag_file)
        try:
            with _stdout_to_stderr():
                cached = warm_dag(path, self.root)
        except Exception as err:  # noqa: BLE001 - the child imports the file itself and reports the error
            print(f"leoflow_shim serve: warming {dag_file} failed: {err}", file=sys.stderr)
            return
        if cached:
            _settle_modules()
            import gc

            gc.collect()
            if hasattr(gc, "freeze"):
                gc.freeze()

    def listen(self) -> None:
        """Bind the socket (replacing a stale one) and listen."""
        try:
            mode = os.lstat(self.socket_path).st_mode
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISSOCK(mode):
                raise ForkServerError(f"{self.socket_path} exists and is not a socket")
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(self.socket_path)
            except OSError:
                os.unlink(self.socket_path)  # stale: its server is gone
            else:
                raise ForkServerError(f"another fork server is already listening on {self.socket_path}")
            finally:
                probe.close()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        previous = os.umask(0o177)
        try:
            listener.bind(self.socket_path)
        finally:
            os.umask(previous)
        listener.listen(128)
        listener.setblocking(False)
        self._listener = listener

    # -- the event loop ---------------------------------------------------------------------------------------------

    def serve_forever(self, on_ready=None) -> None:
        """Serve until a stop signal, then wait for the running children and return.

        `on_ready` is called once the signal handlers are in place, just before the first request is read.
        """
        self._selector = selectors.DefaultSelector()
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        self._wake = (wake_r, wake_w)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, self._on_child)
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_stop)
        self._selector.register(self._listener, selectors.EVENT_READ, "listen")
        self._selector.register(wake_r, selectors.EVENT_READ, "wake")
        try:
            if on_ready is not None:
                on_ready()
            while True:
                if self._stopping and self._listener is not None:
                    self._close_listener()
                if self._stopping and not self._children:
                    break
                for key, _ in self._selector.select(timeout=1.0):
                    if key.data == "listen":
                        self._accept()
                    elif key.data == "wake":
                        self._drain_wake()
                    elif isinstance(key.data, _ExitNote):
                        self._read_exit_note(key.data.client)
                    else:
                        self._read(key.data)
                self._reap()
        finally:
            self._close_listener()
            signal.set_wakeup_fd(-1)

    def _on_child(self, signum, frame) -> None:
        """SIGCHLD: the wakeup fd wakes the loop, which reaps."""

    def _on_stop(self, signum, frame) -> None:
        if self._stopping:
            # A second stop signal: leave now; running children keep going on their own (init reaps them).
            raise SystemExit(0)
        self._stopping = True

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake[0], 512):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _close_listener(self) -> None:
        if self._listener is None:
            return
        try:
            self._selector.unregister(self._listener)
        except (KeyError, ValueError, AttributeError):
            pass
        self._listener.close()
        self._listener = None
        try:
            os.unlink(self.socket_path)
        except OSError:
            pass

    def _accept(self) -> None:
        while self._listener is not None:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:
                print(f"leoflow_shim serve: accept failed: {err}", file=sys.stderr)
                return
            sock.setblocking(False)
            client = _Client(sock)
            self._selector.register(sock, selectors.EVENT_READ, client)

    def _read(self, client: _Client) -> None:
        try:
            data, fds, flags, _ = socket.recv_fds(client.sock, RECV_BYTES, FDS_PER_REQUEST + 1)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._forget(client)
            return
        client.fds.extend(fds)
        if client.pid is not None:
            # Nothing may follow the request; EOF means the client went away (the child keeps running).
            client.close_fds()
            if not data:
                self._forget(client)
            return
        if flags & getattr(socket, "MSG_CTRUNC", 0) or len(client.fds) > FDS_PER_REQUEST:
            self._refuse(client, f"send exactly {FDS_PER_REQUEST} file descriptors (stdin, stdout, stderr)")
            return
        if not data:
            self._forget(client)
            return
        client.buffer += data
        end = client.buffer.find(b"\n")
        if end < 0:
            if len(client.buffer) > MAX_REQUEST_BYTES:
                self._refuse(client, f"the request is longer than {MAX_REQUEST_BYTES} bytes")
            return
        self._handle(client, bytes(client.buffer[:end]))

    def _handle(self, client: _Client, line: bytes) -> None:
        try:
            request = json.loads(line.decode("utf-8"))
        except ValueError as err:
            self._refuse(client, f"the request is not a JSON line: {err}")
            return
        if isinstance(request, dict) and request.get("ping"):
            from . import __version__

            client.close_fds()
            self._send(client, {"ok": True, "pid": os.getpid(), "version": __version__})
            self._forget(client)
            return
        problem = self._problem(request, client.fds)
        if problem:
            self._refuse(client, problem)
            return
        self._warm_dag(request)
        try:
            note_r, note_w = os.pipe()
        except OSError as err:
            client.close_fds()
            self._refuse(client, f"could not create a pipe: {err}")
            return
        try:
            pid = self._fork(request, client.fds, note_w)
        except OSError as err:
            os.close(note_r)
            self._refuse(client, f"fork failed: {err}")
            return
        finally:
            os.close(note_w)
            client.close_fds()  # the child has its copies; the client must see EOF when the child ends
        client.exit_note = note_r
        self._selector.register(note_r, selectors.EVENT_READ, _ExitNote(client))
        client.pid = pid
        self._children[pid] = client
        self._send(client, {"pid": pid})

    def _problem(self, request, fds):
        """Why `request` cannot be run, or None."""
        if not isinstance(request, dict):
            return "the request must be a JSON object"
        workdir = request.get("workdir")
        if not isinstance(workdir, str) or not workdir:
            return "`workdir` must be a non-empty string"
        env = request.get("env")
        if env is not None and not (
            isinstance(env, dict)
            and all(
                isinstance(k, str) and k and "=" not in k and "\0" not in k and isinstance(v, str) and "\0" not in v
                for k, v in env.items()
            )
        ):
            return "`env` must be an object mapping variable names to strings"
        cwd = request.get("cwd")
        if cwd is not None and (not isinstance(cwd, str) or not os.path.isdir(os.path.join(self.root, cwd))):
            return f"`cwd` {cwd!r} is not a directory"
        if not os.path.isdir(os.path.join(self.root, cwd or "", workdir)):
            return f"`workdir` {workdir!r} is not a directory"
        if len(fds) != FDS_PER_REQUEST:
            return (
                f"expected {FDS_PER_REQUEST} file descriptors (stdin, stdout, stderr) with the request, got {len(fds)}"
            )
        return None

    def _fork(self, request: dict, fds: list, note_w: int) -> int:
        sync_r, sync_w = os.pipe()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        # Block the server's signals across fork(): the child unblocks them once its handlers are reset, so a
        # stop signal arriving now can never run the server's handler in the child.
        previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD, *STOP_SIGNALS})
        try:
            pid = os.fork()
        except OSError:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
            os.close(sync_r)
            os.close(sync_w)
            raise
        if pid == 0:
            try:
                os.close(sync_r)
                self._child(request, fds, sync_w, note_w)
            finally:
                os._exit(70)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
        os.close(sync_w)
        try:
            os.read(sync_r, 1)  # returns once the child has its own session (or died)
        finally:
            os.close(sync_r)
        return pid

    def _child(self, request: dict, fds: list, sync_w: int, note_w: int) -> None:
        """In the forked child: become an attempt process and run `leoflow_shim run <workdir>`; never returns."""
        code = 70
        try:
            os.setsid()
            os.write(sync_w, b"1")
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGCHLD, *STOP_SIGNALS):
                signal.signal(signum, signal.SIG_DFL)
            # What a fresh interpreter has: SIGINT raises KeyboardInterrupt, SIGPIPE and SIGXFSZ are ignored.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGPIPE, signal.SIG_IGN)
            if hasattr(signal, "SIGXFSZ"):
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
            _close_fds_from(3, keep=note_w)
            _reset_stdio()
            env = request.get("env")
            if env is not None:
                os.environ.clear()
                os.environ.update(env)
                for entry in reversed([p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]):
                    if entry not in sys.path:
                        sys.path.insert(0, entry)
            if hasattr(time, "tzset"):
                time.tzset()  # a TZ in the request applies, as it would at a cold start
            importlib.invalidate_caches()  # modules added to the project since the server started are found
            linecache.clearcache()
            cwd = os.path.join(self.root, request.get("cwd") or "")
            os.chdir(cwd)
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            workdir = request["workdir"]
            sys.argv = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "__main__.py"), "run", workdir]
            from .runtime import run

            code = run(workdir)
        except BaseException:  # noqa: BLE001 - the child must end here, whatever happens
            try:
                traceback.print_exc()
            except BaseException:  # noqa: BLE001
                pass
            code = 70
        finally:
            try:
                import atexit

                atexit._run_exitfuncs()
            except BaseException:  # noqa: BLE001
                pass
            # The server's old stream objects write to fds 1 and 2 too (a logging handler may hold one): flush them.
            for stream in (sys.stdout, sys.stderr, *_KEEP_ALIVE):
                try:
                    if stream is not None:
                        stream.flush()
                except BaseException:  # noqa: BLE001
                    pass
            _announce_exit(note_w, code)
            os._exit(code)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            client = self._children.pop(pid, None)
            if client is None:
                continue
            self._close_exit_note(client)
            self._report_exit(client, os.waitstatus_to_exitcode(status))

    def _read_exit_note(self, client: _Client) -> None:
        """The child announced its exit code (or died without, leaving EOF): report it now; the reap comes later."""
        try:
            note = os.read(client.exit_note, 64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            note = b""
        self._close_exit_note(client)
        try:
            code = int(note.decode("ascii"))
        except ValueError:
            return  # no note: the child was killed; `_reap` reports how it ended
        self._report_exit(client, code)

    def _report_exit(self, client: _Client, code: int) -> None:
        """Answer the attempt's exit code (once: the connection is closed after it)."""
        if client.sock is not None:
            self._send(client, {"exit": code})
            self._forget(client)

    def _close_exit_note(self, client: _Client) -> None:
        if client.exit_note is None:
            return
        self._unwatch(client.exit_note)
        os.close(client.exit_note)
        client.exit_note = None

    # -- replies ----------------------------------------------------------------------------------------------------

    def _send(self, client: _Client, message: dict) -> None:
        if client.sock is None:
            return
        try:
            client.sock.settimeout(SEND_TIMEOUT_SECONDS)
            client.sock.sendall((json.dumps(message) + "\n").encode("utf-8"))
            client.sock.setblocking(False)
        except OSError:
            self._forget(client)

    def _refuse(self, client: _Client, message: str) -> None:
        client.close_fds()
        self._send(client, {"error": message})
        self._forget(client)

    def _unwatch(self, fileobj) -> None:
        try:
            self._selector.unregister(fileobj)
        except (KeyError, ValueError):
            pass

    def _forget(self, client: _Client) -> None:
        """Close the connection; a running child stays registered so it is still reaped."""
        client.close_fds()
        if client.sock is None:
            return
        self._unwatch(client.sock)
        client.sock.close()
        client.sock = None


def serve(socket_path: str, root: str, preload=()) -> int:
    """`leoflow_shim serve`: warm up, listen, print the ready line on stdout, serve until stopped."""
    server = ForkServer(socket_path, root, preload)
    try:
        server.prepare()
        server.listen()
    except ForkServerError as err:
        print(f"leoflow_shim serve: {err}", file=sys.stderr)
        return 1

    def announce():
        print(json.dumps({"ready": True, "socket": server.socket_path, "pid": os.getpid()}), flush=True)

    server.serve_forever(on_ready=announce)
    return 0


# -- a reference client (tests and benchmarks use it; the Rust agent implements the same steps) ----------------------


class ForkedAttempt:
    """An attempt the fork server started: its pid (= process group id), and wait() for its exit status."""

    def __init__(self, sock, reader, pid: int):
        self.sock = sock
        self.reader = reader
        self.pid = pid

    def wait(self, timeout=None) -> int:
        """The child's exit code, or -signal when a signal ended it."""
        self.sock.settimeout(timeout)
        try:
            line = self.reader.readline()
        finally:
            self.close()
        if not line:
            raise ForkServerError("the fork server closed the connection without reporting the exit status")
        reply = json.loads(line)
        if "exit" not in reply:
            raise ForkServerError(f"unexpected reply from the fork server: {reply}")
        return int(reply["exit"])

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def _connect(socket_path: str, timeout: float):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(socket_path)
    except OSError as err:
        sock.close()
        raise ForkServerError(f"cannot connect to the fork server at {socket_path}: {err}") from None
    return sock


def start_attempt(
    socket_path, workdir, stdin, stdout, stderr, env=None, cwd=None, dag_file=None, timeout=5.0
) -> ForkedAttempt:
    """Ask the fork server at `socket_path` to run the attempt in `workdir` with these three descriptors."""
    request = {"workdir": workdir}
    if env is not None:
        request["env"] = dict(env)
    if cwd is not None:
        request["cwd"] = cwd
    if dag_file is not None:
        request["dag_file"] = dag_file
    payload = (json.dumps(request) + "\n").encode("utf-8")
    sock = _connect(socket_path, timeout)
    try:
        sent = socket.send_fds(sock, [payload], [stdin, stdout, stderr])
        if sent < len(payload):
            sock.sendall(payload[sent:])
        reader = sock.makefile("rb")
        line = reader.readline()
    except OSError as err:
        sock.close()
        raise ForkServerError(f"the fork server did not answer: {err}") from None
    if not line:
        reader.close()
        sock.close()
        raise ForkServerError("the fork server closed the connection without answering")
    reply = json.loads(line)
    if "pid" not in reply:
        reader.close()
        sock.close()
        raise ForkServerError(reply.get("error") or f"unexpected reply from the fork server: {reply}")
    return ForkedAttempt(sock, reader, int(reply["pid"]))


def ping(socket_path: str, timeout: float = 5.0) -> dict:
    """The server's answer to `{"ping": true}`."""
    sock = _connect(socket_path, timeout)
    try:
        sock.sendall(b'{"ping": true}\n')
        with sock.makefile("rb") as reader:
            line = reader.readline()
    finally:
        sock.close()
    if not line:
        raise ForkServerError("the fork server closed the connection without answering")
    return json.loads(line)

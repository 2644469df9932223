"""A walk through the unmodified Airflow 3.2.1 web UI served by Leoflow, in headless Chromium.

Run by tests/tests/ui.rs, which starts the server (sample DAGs `hello` and `etl`, one
finished `etl` run) and passes LEOFLOW_UI_URL, LEOFLOW_UI_USER, LEOFLOW_UI_PASSWORD,
LEOFLOW_CHROMIUM (Debian's chromium; Playwright never downloads a browser) and
LEOFLOW_UI_SCREENSHOTS. The walk fails on any uncaught JavaScript error and on any 4xx/5xx
answer from /api or /ui once logged in.
"""
import json
import os
import re
import time
import urllib.parse

import pytest
from playwright.sync_api import expect, sync_playwright

BASE = os.environ.get("LEOFLOW_UI_URL", "http://127.0.0.1:8080")
USER = os.environ.get("LEOFLOW_UI_USER", "admin")
PASSWORD = os.environ.get("LEOFLOW_UI_PASSWORD", "")
CHROMIUM = os.environ.get("LEOFLOW_CHROMIUM", "/usr/bin/chromium")
SHOTS = os.environ.get("LEOFLOW_UI_SCREENSHOTS", "target/ui-screenshots")
TIMEOUT_MS = 30_000


class Watch:
    """Uncaught page errors and failed API calls, from the moment `arm` is called."""

    def __init__(self, page):
        self.armed = False
        self.problems = []
        page.on("pageerror", lambda e: self.problems.append(f"uncaught JS error: {e}"))
        page.on("response", self._response)
        self.failed_loads = []
        page.on("requestfailed", lambda r: self.failed_loads.append(f"{r.url}: {r.failure}"))
        page.on("console", lambda m: m.type == "error" and self.failed_loads.append(f"console: {m.text}"))

    def _response(self, res):
        path = urllib.parse.urlparse(res.url).path
        if self.armed and res.status >= 400 and path.startswith(("/api/", "/ui/")):
            try:
                body = res.text()[:300]
            except Exception:  # noqa: BLE001 - the body may be gone; the status is the news.
                body = ""
            self.problems.append(f"{res.request.method} {res.url} -> {res.status} {body}")

    def arm(self):
        self.armed = True

    def check(self, step):
        # FIXME: the trigger form's JSON editor (Monaco) loads from cdn.jsdelivr.net, which
        # this machine cannot reach; its loader then rejects with a bare `Event`. Only that
        # exact pairing is forgiven (the form still works without the editor).
        monaco_offline = any("cdn.jsdelivr.net/npm/monaco-editor" in f for f in self.failed_loads)
        if monaco_offline:
            self.problems = [p for p in self.problems if p != "uncaught JS error: Event"]
        # FIXME: the bundle cancels its own in-flight polls (AbortController.abort() with no
        # reason) when a page unmounts or a poll is superseded, and now and then lets that
        # rejection escape; it carries no server answer, so it alone is not a failure.
        self.problems = [
            p for p in self.problems if p != "uncaught JS error: signal is aborted without reason"
        ]
        context = "\n".join(["requests that failed to load and console errors:"] + self.failed_loads)
        assert not self.problems, f"after {step}:\n" + "\n".join(self.problems) + "\n" + context


@pytest.fixture()
def page():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        yield page
        context.close()
        browser.close()


def shot(page, name):
    os.makedirs(SHOTS, exist_ok=True)
    page.screenshot(path=os.path.join(SHOTS, f"{name}.png"))


def api(page, path):
    """GET an API path with the browser's cookie."""
    res = page.request.get(BASE + path)
    assert res.ok, f"{path} -> {res.status} {res.text()[:300]}"
    return res.json()


def wait_for_run(page, dag_id, run_id, timeout=120):
    quoted = urllib.parse.quote(run_id, safe="")
    end = time.time() + timeout
    while time.time() < end:
        run = api(page, f"/api/v2/dags/{dag_id}/dagRuns/{quoted}")
        if run["state"] in ("success", "failed"):
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} of {dag_id} did not finish in {timeout}s")


def test_walk(page):
    watch = Watch(page)

    # Logging in: the SPA sends an anonymous visitor to the login page.
    page.goto(BASE + "/dags")
    page.wait_for_url(re.compile(r".*/api/v2/auth/login.*"))
    page.fill("#u", USER)
    page.fill("#p", PASSWORD)
    shot(page, "01-login")
    page.click("button")
    page.wait_for_url(lambda url: "/auth/login" not in url)
    # Back where the SPA sent us from.
    assert urllib.parse.urlparse(page.url).path == "/dags", page.url
    watch.arm()

    # The home page: the dashboard's numbers and the broken DAG file's import error.
    page.goto(BASE + "/")
    expect(page.get_by_text(re.compile("Dag Import Error")).first).to_be_visible()
    page.wait_for_load_state("networkidle")
    shot(page, "02-home")
    watch.check("the home page")

    # The DAG list shows the sample DAGs.
    page.goto(BASE + "/dags")
    expect(page.get_by_role("link", name="hello", exact=True).first).to_be_visible()
    expect(page.get_by_role("link", name="etl", exact=True).first).to_be_visible()
    shot(page, "02b-dag-list")
    watch.check("the DAG list")

    # The grid of the finished etl run, with its task group (timed: issue #9 wants the
    # grid interactive within 2 s; the figure is recorded, not asserted).
    t0 = time.monotonic()
    page.goto(BASE + "/dags/etl")
    expect(page.get_by_text("report").first).to_be_visible()
    with open(os.path.join(SHOTS, "timings.txt"), "w") as f:
        f.write(f"etl grid visible after {time.monotonic() - t0:.2f} s\n")
    expect(page.get_by_text("etl", exact=True).first).to_be_visible()
    # Expanding the task group shows its tasks, by their labels.
    page.get_by_role("button", name="Expand all task groups").first.click()
    expect(page.get_by_text("extract", exact=True).first).to_be_visible()
    expect(page.get_by_text("load", exact=True).first).to_be_visible()
    page.wait_for_load_state("networkidle")
    shot(page, "03-etl-grid")
    watch.check("the etl grid")

    # The graph view.
    page.get_by_role("button", name=re.compile("graph", re.I)).first.click()
    expect(page.locator(".react-flow").first).to_be_visible()
    expect(page.get_by_text("start", exact=True).first).to_be_visible()
    page.wait_for_load_state("networkidle")
    shot(page, "04-etl-graph")
    watch.check("the etl graph")

    # Trigger hello from its page with another greeting, and watch the run succeed.
    page.goto(BASE + "/dags/hello")
    before = {r["dag_run_id"] for r in api(page, "/api/v2/dags/hello/dagRuns")["dag_runs"]}
    page.get_by_role("button", name=re.compile("^trigger", re.I)).first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    greeting = dialog.locator("input[value='hello']").first
    greeting.fill("bonjour")
    shot(page, "05-trigger-form")
    dialog.get_by_role("button", name=re.compile("^trigger", re.I)).last.click()
    end = time.time() + 30
    new = set()
    while not new and time.time() < end:
        runs = api(page, "/api/v2/dags/hello/dagRuns")["dag_runs"]
        new = {r["dag_run_id"] for r in runs} - before
        time.sleep(0.3)
    assert new, "the trigger form created no run"
    run_id = new.pop()
    run = wait_for_run(page, "hello", run_id)
    assert run["state"] == "success", json.dumps(run)
    page.goto(BASE + "/dags/hello")
    page.wait_for_load_state("networkidle")
    shot(page, "06-hello-grid-after-run")
    watch.check("triggering hello")

    assert run["conf"] == {"greeting": "bonjour"}, json.dumps(run)

    # The log of the first task shows its output, with the param from the form.
    quoted = urllib.parse.quote(run_id, safe="")
    page.goto(f"{BASE}/dags/hello/runs/{quoted}/tasks/say_hello")
    expect(page.get_by_text("bonjour from Leoflow").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    shot(page, "07-task-log")
    watch.check("the task log")

    # Clearing a task re-runs it: a second try, which succeeds.
    page.goto(f"{BASE}/dags/hello/runs/{quoted}/tasks/say_goodbye")
    expect(page.get_by_text("goodbye").first).to_be_visible()
    page.get_by_role("button", name=re.compile("clear", re.I)).first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    shot(page, "07b-clear-dialog")
    dialog.get_by_role("button", name=re.compile("confirm", re.I)).last.click()
    ti_path = f"/api/v2/dags/hello/dagRuns/{quoted}/taskInstances/say_goodbye"
    end = time.time() + 60
    ti = api(page, ti_path)
    while not (ti["try_number"] >= 2 and ti["state"] == "success") and time.time() < end:
        time.sleep(0.5)
        ti = api(page, ti_path)
    assert ti["try_number"] >= 2 and ti["state"] == "success", json.dumps(ti)
    watch.check("clearing say_goodbye")

    # The grid view of the finished run (the README's screenshot).
    page.goto(f"{BASE}/dags/hello/runs/{quoted}")
    page.wait_for_load_state("networkidle")
    shot(page, "08-run-grid")
    watch.check("the run page")

    # A running task's log grows on screen while it runs (the UI polls every
    # auto_refresh_interval, 1 s); how fast it follows is recorded, not asserted.
    res = page.request.post(BASE + "/api/v2/dags/ticker/dagRuns", data={"logical_date": None})
    assert res.ok, res.text()
    tick_run = urllib.parse.quote(res.json()["dag_run_id"], safe="")
    ti_path = f"/api/v2/dags/ticker/dagRuns/{tick_run}/taskInstances/tick"
    end = time.time() + 30
    while api(page, ti_path)["state"] != "running" and time.time() < end:
        time.sleep(0.2)
    page.goto(f"{BASE}/dags/ticker/runs/{tick_run}/tasks/tick")
    expect(page.get_by_text("tick 2", exact=True).first).to_be_visible()
    lags = []
    for n in (3, 4, 5):
        t_seen = time.monotonic()
        expect(page.get_by_text(f"tick {n}", exact=True).first).to_be_visible()
        lags.append(time.monotonic() - t_seen)
    assert api(page, ti_path)["state"] == "running", "the log did not grow while the task ran"
    shot(page, "09-live-log")
    with open(os.path.join(SHOTS, "timings.txt"), "a") as f:
        f.write(
            "a running task's log lines, printed 1 s apart, appeared "
            + ", ".join(f"{x:.2f}" for x in lags)
            + " s apart on screen\n"
        )
    watch.check("the live log")

    # The browse and admin pages render on Leoflow's data (or empty lists).
    for name, path in [
        ("10-runs", "/dag_runs"),
        ("11-task-instances", "/task_instances"),
        ("12-audit-log", "/events"),
        ("13-variables", "/variables"),
        ("14-connections", "/connections"),
        ("15-pools", "/pools"),
        ("16-dag-code", "/dags/hello/code"),
        ("17-calendar", "/dags/hello/calendar"),
    ]:
        page.goto(BASE + path)
        page.wait_for_load_state("networkidle")
        shot(page, name)
        watch.check(f"the page {path}")

    # Logging out sends the user back to the login page; so does a bad token.
    page.goto(BASE + "/api/v2/auth/logout")
    page.wait_for_url(re.compile(r".*/api/v2/auth/login.*"))
    watch.armed = False
    page.context.add_cookies([{"name": "_token", "value": "expired", "url": BASE}])
    page.goto(BASE + "/dags")
    page.wait_for_url(re.compile(r".*/api/v2/auth/login.*"))

"""Checks of leoflow-pro/Dockerfile without Docker: hadolint ($LEOFLOW_HADOLINT, else
`hadolint` on PATH; .ci/run fetches a checksum-pinned one), structural rules hadolint does
not know (stage names, non-root numeric users, exec-form entrypoints, pinned bases, the
build context), and the build step that installs the Airflow UI bundle
(leoflow-pro/docker/ui-assets.py), run here on a real or a tampered wheel.
"""

import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "leoflow-pro" / "Dockerfile"
UI_SCRIPT = ROOT / "leoflow-pro" / "docker" / "ui-assets.py"
PINS = ROOT / "leoflow-adapters" / "http" / "src" / "ui_assets" / "install.rs"


def stages():
    """[(name, base, lines)] of the Dockerfile's stages, in order."""
    out = []
    for line in DOCKERFILE.read_text().splitlines():
        m = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?\s*$", line, re.I)
        if m:
            out.append((m.group(2), m.group(1), []))
        elif out and line and not line.startswith("#"):
            out[-1][2].append(line)
    return out


def test_hadolint_is_clean():
    hadolint = os.environ.get("LEOFLOW_HADOLINT") or shutil.which("hadolint")
    if not hadolint:
        pytest.fail("no hadolint binary: set LEOFLOW_HADOLINT or run .ci/run, which fetches a pinned one")
    out = subprocess.run([hadolint, "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_stages_and_their_order():
    names = [n for n, _, _ in stages()]
    assert names == ["builder", "ui", "agent", "server"], names


def test_shipped_stages_run_as_a_numeric_non_root_user_with_an_exec_entrypoint():
    for name, base, lines in stages():
        if name not in ("agent", "server"):
            continue
        users = [l.split()[1] for l in lines if l.startswith("USER ")]
        assert users, name
        uid = users[-1].split(":")[0]
        assert uid.isdigit() and int(uid) != 0, f"{name}: USER {users[-1]}"
        (entry,) = [l for l in lines if l.startswith("ENTRYPOINT ")]
        assert re.fullmatch(r'ENTRYPOINT \["/[^"]+"\]', entry), entry
        assert not any(l.startswith("RUN ") for l in lines), f"{name} needs no shell at build time"


def test_bases_are_pinned_and_the_server_has_no_shell():
    for name, base, _ in stages():
        assert ":" in base or "@" in base, f"{name}: {base} has no tag"
        assert not base.endswith(":latest"), base
    server = dict((n, b) for n, b, _ in stages())["server"]
    assert server.startswith("gcr.io/distroless/"), server
    text = DOCKERFILE.read_text()
    assert not re.search(r"^ADD\s+https?://", text, re.M), "download in a RUN step with a checksum instead"


def test_the_build_context_excludes_build_output_and_git():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "target/" in ignored and ".git/" in ignored


def fake_wheel(tmp_path, entries):
    path = tmp_path / "fake.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, body in entries.items():
            z.writestr(name, body)
    return path


def run_ui_script(wheel, out):
    return subprocess.run(
        [sys.executable, str(UI_SCRIPT), "--pins", str(PINS), "--out", str(out), "--wheel", str(wheel)],
        capture_output=True,
        text=True,
    )


def test_ui_assets_refuse_a_wheel_that_is_not_the_pinned_one(tmp_path):
    wheel = fake_wheel(tmp_path, {"airflow/ui/dist/index.html": "<html>"})
    out = run_ui_script(wheel, tmp_path / "ui")
    assert out.returncode != 0
    assert "is pinned to" in out.stderr, out.stderr
    assert not (tmp_path / "ui").exists()


def test_ui_assets_from_the_pinned_wheel(tmp_path):
    wheels = glob.glob(str(ROOT / "target" / "airflow-wheel" / "apache_airflow_core-3.2.1-*.whl"))
    if not wheels:
        if os.environ.get("LEOFLOW_REQUIRE_AIRFLOW_TOOLS") == "1":
            pytest.fail("target/airflow-wheel has no apache-airflow-core 3.2.1 wheel (.ci/run downloads it)")
        pytest.skip("no downloaded apache-airflow-core wheel (run .ci/run)")
    pinned = re.search(r'WHEEL_SHA256: &str = "([0-9a-f]{64})"', PINS.read_text()).group(1)
    assert hashlib.sha256(Path(wheels[0]).read_bytes()).hexdigest() == pinned
    out = run_ui_script(wheels[0], tmp_path / "ui")
    assert out.returncode == 0, out.stderr
    ui = tmp_path / "ui"
    assert (ui / "VERSION").read_text() == "3.2.1\n"
    assert (ui / "index.html").is_file() and (ui / "LICENSE").is_file()
    assert not (ui / "airflow").exists(), "only airflow/ui/dist is unpacked, at the root"

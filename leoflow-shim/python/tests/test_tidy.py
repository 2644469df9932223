"""House rules for the Python tree: module docstrings, Python 3.9 syntax, future annotations, no grab-bag modules."""

from __future__ import annotations

import ast
import os
import sys

import pytest

from support import PYTHON_ROOT

TREES = ("leoflow_shim", "airflow", "tests", "benchmarks")
GRAB_BAGS = {"utils.py", "helpers.py", "common.py", "misc.py"}


def _modules():
    for tree in TREES:
        for folder, _, files in os.walk(os.path.join(PYTHON_ROOT, tree)):
            for name in files:
                if name.endswith(".py"):
                    yield os.path.relpath(os.path.join(folder, name), PYTHON_ROOT)


MODULES = sorted(_modules())


def _parse(path, **kwargs):
    with open(os.path.join(PYTHON_ROOT, path), encoding="utf-8") as fh:
        return ast.parse(fh.read(), filename=path, **kwargs)


@pytest.mark.parametrize("path", MODULES)
def test_module_has_a_docstring(path):
    assert ast.get_docstring(_parse(path)), f"{path} must start with a docstring saying what it is for"


@pytest.mark.skipif(sys.version_info < (3, 10), reason="feature_version checks need a newer parser")
@pytest.mark.parametrize("path", MODULES)
def test_module_parses_as_python_3_9(path):
    _parse(path, feature_version=(3, 9))


@pytest.mark.parametrize("path", [m for m in MODULES if m.startswith(("leoflow_shim", "airflow"))])
def test_shim_modules_use_future_annotations(path):
    tree = _parse(path)
    body = tree.body[1:]  # after the docstring
    if not body:
        return
    first = body[0]
    assert isinstance(first, ast.ImportFrom) and first.module == "__future__", path


def test_no_grab_bag_modules_in_the_shim_package():
    names = {os.path.basename(m) for m in MODULES if m.startswith("leoflow_shim")}
    assert not names & GRAB_BAGS

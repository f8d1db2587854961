"""Lint is part of the test suite, so the README's test command covers it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize("argv", [
    ["ruff", "check", "."],
    ["yamllint", "--strict", "."],
    ["ansible-lint", "--profile", "production", "--offline", "--nocolor"],
], ids=["ruff", "yamllint", "ansible-lint"])
def test_lint_clean(argv):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "NO_COLOR": "1"}
    proc = subprocess.run([str(BIN / argv[0]), *argv[1:]], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, f"{argv[0]} found problems:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"


def test_collection_builds_offline(tmp_path):
    proc = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path),
                           str(ROOT)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (artifact,) = tmp_path.glob("fleetcare-ops-*.tar.gz")
    import tarfile

    with tarfile.open(artifact) as tar:
        names = set(tar.getnames())
    assert "plugins/modules/health_inspect.py" in names
    assert "roles/health/meta/argument_specs.yml" in names
    assert not any(n.startswith((".venv", ".collections", "fleetcare/")) for n in names)

"""`fleetcare lab up/status/down` from the command line, and the inventory it
prints taken as it is by `fleetcare inspect -i`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]


def test_lab_commands_round_trip(tmp_path):
    env = {**os.environ, "FLEETCARE_LAB_DIR": str(tmp_path / "lab"), "XDG_DATA_HOME": str(tmp_path / "data")}

    def fleetcare(*argv):
        return subprocess.run([sys.executable, str(ROOT / "runner.py"), *argv], capture_output=True, text=True,
                              env=env, timeout=600)

    try:
        up = fleetcare("lab", "up", "--hosts", "1")
        assert up.returncode == 0, up.stderr
        inventory = Path(up.stdout.strip().splitlines()[-1])
        assert inventory.is_file()
        status = fleetcare("lab", "status")
        assert status.returncode == 0 and "running" in status.stdout and "127.0.0.1" in status.stdout
        inspect = fleetcare("inspect", "-i", str(inventory), "--fail-on", "critical")
        assert inspect.returncode in (0, 1), inspect.stdout + inspect.stderr
        assert "1 hosts done" in inspect.stdout
    finally:
        down = fleetcare("lab", "down")
    assert down.returncode == 0, down.stderr
    assert fleetcare("lab", "status").stdout.strip() == "no lab hosts"
    assert not inventory.exists()

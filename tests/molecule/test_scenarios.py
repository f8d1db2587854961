"""Every Molecule scenario under molecule/ passes `molecule test`.

Each directory of molecule/ holding a molecule.yml is one scenario and one
test case here; Molecule creates, verifies and destroys its own containers
from the local lab images (never pulled). Needs root and podman.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import fleetcare_lab as lab

pytestmark = [
    pytest.mark.lab,
]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SCENARIOS = sorted(path.parent.name for path in (ROOT / "molecule").glob("*/molecule.yml"))
TIMEOUT = 1500  # hardening took 700 s on a fast CI machine and over 900 s on a slower one
TAIL_LINES = 150


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "CONTAINERS_CONF": str(lab.CONTAINERS_CONF),
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "NO_COLOR": "1",
        "ANSIBLE_NOCOLOR": "1",
        "PY_COLORS": "0",
    }


def _molecule(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "molecule"), *args],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )


def _tail(text: str) -> str:
    return "\n".join(text.splitlines()[-TAIL_LINES:])


@pytest.fixture(scope="session")
def lab_images() -> list[str]:
    """The local Debian 11/12/13 systemd images the scenarios start (built if missing)."""
    return lab.build_images(progress=lambda _line: None)


def test_scenarios_are_found():
    assert "health" in SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario_passes(scenario: str, lab_images: list[str]) -> None:
    try:
        proc = _molecule("test", "-s", scenario, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        # molecule test destroys its instances itself, also when a step fails,
        # but not when it is killed.
        _molecule("destroy", "-s", scenario, timeout=300)
        output = exc.output if isinstance(exc.output, str) else (exc.output or b"").decode(errors="replace")
        pytest.fail(f"molecule test -s {scenario} took over {TIMEOUT} s; last lines:\n{_tail(output)}")
    assert proc.returncode == 0, (
        f"molecule test -s {scenario} exited {proc.returncode}; last lines:\n{_tail(proc.stdout)}"
    )

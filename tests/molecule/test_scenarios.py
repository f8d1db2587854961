"""Every Molecule scenario under molecule/ passes `molecule test`.

Each directory of molecule/ holding a molecule.yml is one scenario and one
test case here; Molecule creates, verifies and destroys its own containers
from the local lab images (never pulled). Needs root and podman.

The scenarios run two at a time (FLEETCARE_MOLECULE_LANES, 1 for one after
the other), the longest first: hardening alone takes about as long as the
other four together, and one Molecule run leaves part of a 2-core machine idle
while it waits on containers (two kept one such machine 98% busy and ran all
five in 31 min; one after the other, an earlier CI run on a machine as slow had
spent over 35 min and not finished hardening). Each scenario
has its own instance names and Molecule directory, so two never touch each
other's containers. Every scenario is started when the first of these tests
runs; each test then waits for its own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

import fleetcare_lab as lab

pytestmark = [
    pytest.mark.lab,
]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SCENARIOS = sorted(path.parent.name for path in (ROOT / "molecule").glob("*/molecule.yml"))
# seconds each took in a clean CI run, alone: the order they are started in, longest first
USUAL_SECONDS = {"hardening": 700, "backup": 415, "health": 136, "patching": 118, "drift": 60}
TIMEOUT = 1800  # hardening took 700 s alone on a fast CI machine and over 900 s on a slower one
TAIL_LINES = 150


def _lanes() -> int:
    raw = os.environ.get("FLEETCARE_MOLECULE_LANES", "2")
    try:
        lanes = int(raw)
    except ValueError:
        raise pytest.UsageError(f"FLEETCARE_MOLECULE_LANES={raw!r}: give a whole number of scenarios at once") \
            from None
    if lanes < 1:
        raise pytest.UsageError(f"FLEETCARE_MOLECULE_LANES={raw!r}: at least 1")
    return lanes


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


class Scenarios:
    """The scenarios' `molecule test` runs, a pool of lanes, each killed at TIMEOUT."""

    def __init__(self, lanes: int, wanted: set[str]) -> None:
        self._pool = ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="molecule")
        self._procs: set[subprocess.Popen[str]] = set()
        self._lock = threading.Lock()
        self._stopping = False
        # an unknown one early
        order = sorted(wanted & set(SCENARIOS), key=lambda s: (-USUAL_SECONDS.get(s, 1000), s))
        self.runs: dict[str, Future[tuple[str, str]]] = {s: self._pool.submit(self._test, s) for s in order}

    def _molecule(self, *args: str, timeout: float, cleanup: bool = False) -> tuple[int | None, str]:
        """Exit code (None when killed at the timeout) and the output."""
        with self._lock:
            if self._stopping and not cleanup:
                return -1, "not started: the session is ending"
            proc = subprocess.Popen([str(BIN / "molecule"), *args], cwd=ROOT, env=_env(), text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
            self._procs.add(proc)
        try:
            try:
                out, _ = proc.communicate(timeout=timeout)
                return proc.returncode, out
            except subprocess.TimeoutExpired:
                _kill(proc)
                out, _ = proc.communicate()
                return None, out
        finally:
            with self._lock:
                self._procs.discard(proc)

    def _test(self, scenario: str) -> tuple[str, str]:
        """("ok" | "failed" | "timeout", what to tell) for one scenario."""
        start = time.monotonic()
        code, out = self._molecule("test", "-s", scenario, timeout=TIMEOUT)
        took = time.monotonic() - start
        if code is None or self._stopping:
            # molecule test destroys its instances itself, also when a step fails, but not when killed
            self._molecule("destroy", "-s", scenario, timeout=300, cleanup=True)
        if code is None:
            return "timeout", f"molecule test -s {scenario} took over {TIMEOUT} s; last lines:\n{_tail(out)}"
        if code != 0:
            return "failed", f"molecule test -s {scenario} exited {code} after {took:.0f} s; last lines:\n{_tail(out)}"
        return "ok", f"molecule test -s {scenario} passed in {took:.0f} s"

    def close(self) -> None:
        """Nothing left running: the queued scenarios are not started, the running ones are killed."""
        with self._lock:
            self._stopping = True
            procs = list(self._procs)
        self._pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            _kill(proc)
        self._pool.shutdown(wait=True)  # a killed run destroys its instances before its thread ends


def _kill(proc: subprocess.Popen[str]) -> None:
    """Molecule and the ansible-playbook and podman processes under it (its own session)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _tail(text: str) -> str:
    return "\n".join(text.splitlines()[-TAIL_LINES:])


@pytest.fixture(scope="session")
def lab_images() -> list[str]:
    """The local Debian 11/12/13 systemd images the scenarios start (built if missing)."""
    return lab.build_images(progress=lambda _line: None)


def _selected(items: list[pytest.Item]) -> set[str]:
    """The scenarios whose tests this session runs (``-k health`` starts health alone)."""
    return {item.callspec.params["scenario"] for item in items
            if getattr(item, "originalname", None) == "test_molecule_scenario_passes" and hasattr(item, "callspec")}


@pytest.fixture(scope="module")
def scenarios(request: pytest.FixtureRequest, lab_images: list[str]) -> Iterator[Scenarios]:
    runs = Scenarios(_lanes(), _selected(request.session.items))
    try:
        yield runs
    finally:
        runs.close()


def test_scenarios_are_found():
    assert "health" in SCENARIOS
    assert set(USUAL_SECONDS) <= set(SCENARIOS), "a scenario named in USUAL_SECONDS is gone"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario_passes(scenario: str, scenarios: Scenarios) -> None:
    outcome, text = scenarios.runs[scenario].result()
    assert outcome == "ok", text

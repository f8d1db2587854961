"""Fixtures for the health scenario's testinfra tests.

The role only reads, so what it must get right is its findings. They are
measured values that change from run to run, so they are not written to the
hosts (that would break the idempotence step): the session fixture
``findings`` runs ``verify.yml`` (the role, in check mode) once through the
``ansible.posix.json`` callback against Molecule's inventory and keeps each
host's ``fleetcare`` result. The tests then hold the findings against the
faults that ``prepare.yml`` injected and against the hosts themselves (reached
with testinfra's podman backend).

Which instance carries the faults is a host variable of the inventory
(``fc_inject_faults``); the fixtures ``faulty_host`` and ``clean_host`` are
parametrized with those names, so a test about the broken instance runs on it
only, without skips.
"""

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCENARIO_DIR = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
TIMEOUT = 300


def _tool(name: str) -> str:
    """An Ansible command from the interpreter's own environment, else from PATH."""
    candidate = VENV_BIN / name
    return str(candidate) if candidate.exists() else name


def _inventory_file() -> str:
    path = os.environ.get("MOLECULE_INVENTORY_FILE")
    if not path:
        pytest.fail("MOLECULE_INVENTORY_FILE is not set: run these tests through `molecule verify -s health`")
    return path


def _run(argv: list[str], **env: str) -> str:
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, **env},
        cwd=SCENARIO_DIR,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"{' '.join(argv)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n"
            f"--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc.stdout


@functools.cache
def hostvars() -> dict[str, dict]:
    """Every instance's variables, merged by Ansible as a play would see them."""
    out = _run([_tool("ansible-inventory"), "-i", _inventory_file(), "--list"])
    return json.loads(out)["_meta"]["hostvars"]


def faulty_names() -> list[str]:
    return sorted(name for name, hv in hostvars().items() if hv.get("fc_inject_faults"))


def clean_names() -> list[str]:
    return sorted(name for name, hv in hostvars().items() if not hv.get("fc_inject_faults"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "faulty_host" in metafunc.fixturenames:
        metafunc.parametrize("faulty_host", faulty_names())
    if "clean_host" in metafunc.fixturenames:
        metafunc.parametrize("clean_host", clean_names())


@pytest.fixture(scope="session")
def inspection() -> dict[str, dict]:
    """{host: its `fleetcare` result} from one run of verify.yml."""
    out = _run(
        [_tool("ansible-playbook"), "-i", _inventory_file(), str(SCENARIO_DIR / "verify.yml")],
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        # Replaces profile_tasks and timer, whose tables would land in the JSON on
        # stdout; naming the stdout callback itself enables nothing more (an empty
        # list is refused by ansible-core).
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json",
    )
    payloads: dict[str, list[dict]] = {}
    for play in json.loads(out)["plays"]:
        for task in play["tasks"]:
            for name, result in task["hosts"].items():
                if "fleetcare" in result:
                    payloads.setdefault(name, []).append(result["fleetcare"])
    assert sorted(payloads) == sorted(hostvars()), "every instance must return findings"
    for name, results in payloads.items():
        assert len(results) == 1, f"{name}: the role must inspect in one module call, not {len(results)}"
    return {name: results[0] for name, results in payloads.items()}


@pytest.fixture(scope="session")
def findings(inspection: dict[str, dict]) -> dict[str, dict[str, dict]]:
    """{host: {finding id: finding}}."""
    return {name: {f["id"]: f for f in payload["findings"]} for name, payload in inspection.items()}


@pytest.fixture
def host_name(host) -> str:
    return host.backend.get_hostname()


@pytest.fixture
def is_faulty(host_name: str) -> bool:
    return bool(hostvars()[host_name].get("fc_inject_faults"))

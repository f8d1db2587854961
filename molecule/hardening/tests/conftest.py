"""Fixtures for the hardening scenario's testinfra tests.

The tests judge the hosts themselves (reached with testinfra's podman
backend), not the role's report. The audit is judged separately: the session
fixture ``audit`` runs ``verify.yml`` (playbooks/audit.yml) once, in check
mode, through the ``ansible.posix.json`` callback against Molecule's
inventory, and keeps each host's ``fleetcare`` result.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

SCENARIO_DIR = Path(__file__).resolve().parent.parent
ROOT = SCENARIO_DIR.parent.parent
VENV_BIN = Path(sys.executable).parent
TIMEOUT = 300


def _tool(name: str) -> str:
    candidate = VENV_BIN / name
    return str(candidate) if candidate.exists() else name


def _inventory_file() -> str:
    path = os.environ.get("MOLECULE_INVENTORY_FILE")
    if not path:
        pytest.fail("MOLECULE_INVENTORY_FILE is not set: run these tests through `molecule verify -s hardening`")
    return path


@pytest.fixture(scope="session")
def catalog() -> dict[str, dict]:
    """{id: record} of the catalog the role enforced."""
    doc = yaml.safe_load((ROOT / "roles" / "hardening" / "vars" / "catalog.yml").read_text(encoding="utf-8"))
    return {record["id"]: record for record in doc["__hardening_catalog"]}


@pytest.fixture(scope="session")
def audit() -> dict[str, dict]:
    """{host: its `fleetcare` result} from one check-mode run of verify.yml."""
    proc = subprocess.run(
        [_tool("ansible-playbook"), "--check", "-i", _inventory_file(), str(SCENARIO_DIR / "verify.yml")],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=SCENARIO_DIR,
        check=False,
        # profile_tasks and timer would print their tables into the JSON on stdout.
        env={**os.environ, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
             "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.json"},
    )
    if proc.returncode != 0:
        pytest.fail(f"verify.yml exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    payloads: dict[str, list[dict]] = {}
    for play in json.loads(proc.stdout)["plays"]:
        for task in play["tasks"]:
            for name, result in task["hosts"].items():
                if "fleetcare" in result:
                    payloads.setdefault(name, []).append(result["fleetcare"])
    for name, results in payloads.items():
        assert len(results) == 1, f"{name}: the audit must be one module call, not {len(results)}"
    return {name: results[0] for name, results in payloads.items()}


@pytest.fixture
def host_name(host) -> str:
    return host.backend.get_hostname()

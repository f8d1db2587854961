"""The hardening role over real SSH on a lab fleet: no lock-outs.

Two Debian 12 lab hosts. One is hardened connected as root with a key, the
other connected as the sudo user ``fleetcare`` with become; both users can
still log in to both afterwards, over NEW SSH connections (no ControlPersist
master is reused). Enabling the disruptive ``PermitRootLogin no`` while
connected as root stops the run with the lock-out message before anything is
written: sshd's configuration stays byte for byte as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import fleetcare_lab as lab

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SSHD_FILES = ["/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d/00-fleetcare.conf"]
ROOT_LOGIN_OFF = "HARD-SSH-001"  # PermitRootLogin no, disruptive


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """Two fresh Debian 12 hosts; removed when the module's tests end, whatever happens."""
    state = tmp_path_factory.mktemp("lab")
    control = tmp_path_factory.mktemp("cp")
    try:
        inventory = lab.up(2, "12", state_dir=state)
        hosts = {h["host"]: h for h in lab.status(state)}
        yield state, inventory, hosts, control
    finally:
        for socket in control.iterdir():
            subprocess.run(["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "lab"], capture_output=True,
                           check=False, timeout=10)
        lab.down(state)
        assert not lab.status(state)


def _env(control: Path, data: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control),
           "ANSIBLE_NOCOLOR": "1", "ANSIBLE_DEPRECATION_WARNINGS": "false"}
    if data is not None:
        env["XDG_DATA_HOME"] = str(data)
    return env


def harden(control: Path, inventory: Path, *argv: str, data: Path | None = None) -> subprocess.CompletedProcess:
    """`fleetcare harden` (runner.py), the way an operator runs it."""
    return subprocess.run([sys.executable, str(ROOT / "runner.py"), "harden", "-i", str(inventory), *argv],
                          cwd=ROOT, env=_env(control, data), capture_output=True, text=True, timeout=600)


def playbook(control: Path, inventory: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), "playbooks/harden.yml", *argv],
                          cwd=ROOT, env=_env(control), capture_output=True, text=True, timeout=600)


def can_log_in(state: Path, port: int, user: str) -> bool:
    """A brand-new SSH connection (no multiplexing) as ``user`` with the lab key, and sudo for the non-root."""
    command = "id -un" if user == "root" else "id -un && sudo -n true"
    proc = subprocess.run([*lab.ssh_command(state / lab.KEY_NAME, port, user), "-o", "ControlMaster=no",
                           "-o", "ControlPath=none", command], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL, check=False)
    return proc.returncode == 0 and proc.stdout.split()[0] == user


def sshd_fingerprint(host: str, state: Path) -> dict[str, str]:
    out = {}
    for path in SSHD_FILES:
        proc = lab.exec_in(host, ["cat", path], state_dir=state)
        out[path] = hashlib.sha256(proc.stdout.encode()).hexdigest() if proc.returncode == 0 else "absent"
    return out


def as_sudo_user(tmp_path: Path, inventory: Path, host: str) -> Path:
    """A copy of the lab inventory where ``host`` is reached as fleetcare with become."""
    doc = yaml.safe_load(inventory.read_text())
    hostvars = doc["all"]["children"]["lab"]["hosts"][host]
    hostvars.update(ansible_user="fleetcare", ansible_become=True)
    out = tmp_path / "sudo-inventory.yml"
    out.write_text(yaml.safe_dump(doc))
    return out


def test_root_login_off_while_connected_as_root_is_refused(fleet, tmp_path):
    state, inventory, hosts, control = fleet
    host = "debian12-1"
    before = sshd_fingerprint(host, state)
    proc = playbook(control, inventory, "--limit", host, "-e",
                    json.dumps({"hardening_controls_enable_disruptive": [ROOT_LOGIN_OFF]}))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "Lock-out refused" in out and "PermitRootLogin no" in out and ROOT_LOGIN_OFF in out, out[-3000:]
    # One failed task (the lock-out check), before any change.
    recap = [line for line in proc.stdout.splitlines() if line.startswith(host) and "failed=" in line]
    assert recap and "failed=1" in recap[-1] and "changed=0" in recap[-1], recap
    assert sshd_fingerprint(host, state) == before, "the refused run changed sshd's configuration"
    assert can_log_in(state, hosts[host]["port"], "root")


def test_harden_connected_as_root_with_a_key(fleet, tmp_path):
    state, inventory, hosts, control = fleet
    host = "debian12-1"
    proc = harden(control, inventory, "--limit", host, data=tmp_path / "data")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    dropin = lab.exec_in(host, ["cat", SSHD_FILES[1]], state_dir=state).stdout
    assert "X11Forwarding" in dropin or "x11forwarding" in dropin
    for user in ("root", "fleetcare"):
        assert can_log_in(state, hosts[host]["port"], user), f"{user} cannot log in to {host} after hardening"


def test_harden_connected_as_the_sudo_user(fleet, tmp_path):
    state, inventory, hosts, control = fleet
    host = "debian12-2"
    sudo_inventory = as_sudo_user(tmp_path, inventory, host)
    proc = harden(control, sudo_inventory, "--limit", host, data=tmp_path / "data")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert lab.exec_in(host, ["test", "-s", SSHD_FILES[1]], state_dir=state).returncode == 0
    for user in ("fleetcare", "root"):
        assert can_log_in(state, hosts[host]["port"], user), f"{user} cannot log in to {host} after hardening"


def test_second_run_changes_nothing_over_ssh(fleet):
    _state, inventory, _hosts, control = fleet
    proc = playbook(control, inventory, "--limit", "debian12-1")
    assert proc.returncode == 0, proc.stdout[-3000:]
    recap = [line for line in proc.stdout.splitlines() if line.startswith("debian12-1") and "changed=" in line]
    assert recap and "changed=0" in recap[-1], recap


def test_allow_groups_that_leave_out_the_sudo_user_is_refused(fleet, tmp_path):
    state, inventory, hosts, control = fleet
    host = "debian12-2"
    sudo_inventory = as_sudo_user(tmp_path, inventory, host)
    before = sshd_fingerprint(host, state)
    # HARD-SSH-034: AllowGroups root sudo; the lab's fleetcare user is in neither group.
    proc = playbook(control, sudo_inventory, "--limit", host, "-e",
                    '{"hardening_controls_enable_disruptive": ["HARD-SSH-034"]}')
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Lock-out refused" in out and "AllowGroups" in out, out[-3000:]
    assert sshd_fingerprint(host, state) == before
    assert can_log_in(state, hosts[host]["port"], "fleetcare")

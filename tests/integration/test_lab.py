"""The podman lab: a 2-host Debian 12 fleet reached by Ansible over loopback SSH.

Needs root, podman and the lab images (built on first use, about 50 s).
Every container started here is removed by the fixture's finalizer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import fleetcare_lab as lab

pytestmark = [
    pytest.mark.lab,
]

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Lab:
    state_dir: Path
    inventory: Path
    control_dir: Path

    def ansible(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the `ansible` ad-hoc command of this venv against the lab."""
        env = dict(os.environ)
        env.update(
            ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
            # Own ControlPersist sockets, so the finalizer can close the masters.
            ANSIBLE_SSH_CONTROL_PATH_DIR=str(self.control_dir),
            ANSIBLE_DEPRECATION_WARNINGS="false",
        )
        ansible = Path(sys.executable).with_name("ansible")
        return subprocess.run(
            [str(ansible), "-i", str(self.inventory), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )


def _close_ssh_masters(control_dir: Path) -> None:
    for socket in control_dir.iterdir():
        subprocess.run(
            ["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "lab"],
            capture_output=True,
            check=False,
            timeout=10,
        )


@pytest.fixture(scope="module")
def two_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    state_dir = tmp_path_factory.mktemp("lab") / "state"
    control_dir = tmp_path_factory.mktemp("cp")
    try:
        inventory = lab.up(2, "12", state_dir)
        yield Lab(state_dir, inventory, control_dir)
    finally:
        _close_ssh_masters(control_dir)
        lab.down(state_dir)
    assert lab.status(state_dir) == [], "down left lab containers behind"
    assert not state_dir.exists(), "down left the key or the inventory behind"


def test_inventory_lists_both_hosts(two_hosts: Lab) -> None:
    result = two_hosts.ansible("lab", "--list-hosts")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["debian12-1", "debian12-2"]


def test_ping_as_root(two_hosts: Lab) -> None:
    result = two_hosts.ansible("all", "-m", "ansible.builtin.ping")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == 2


@pytest.mark.parametrize(("become", "user"), [(False, "fleetcare"), (True, "root")])
def test_fleetcare_user_with_and_without_become(two_hosts: Lab, become: bool, user: str) -> None:
    # The inventory sets ansible_user per host, which outranks `-u`; an extra
    # var is the way to log in as the sudo user instead.
    args = ["all", "-e", "ansible_user=fleetcare", "-m", "ansible.builtin.command", "-a", "id -un"]
    result = two_hosts.ansible(*args, *(["--become"] if become else []))
    assert result.returncode == 0, result.stdout + result.stderr
    outputs = [line for line in result.stdout.splitlines() if line and "|" not in line]
    assert outputs == [user, user]


def test_hosts_are_system_containers(two_hosts: Lab) -> None:
    """Root inside is an unprivileged uid outside; the network stack is the host's own, the kernel is not."""
    script = (
        "awk '$1 == 0 {print $2}' /proc/self/uid_map; "
        "systemctl is-system-running; "
        "sysctl -qw net.ipv4.conf.all.log_martians=1 && sysctl -n net.ipv4.conf.all.log_martians; "
        "stat -c %u /proc/sys/kernel/kptr_restrict; "
        "test -w /proc/sys/kernel/kptr_restrict && echo kernel-writable || echo kernel-read-only"
    )
    before = Path("/proc/sys/net/ipv4/conf/all/log_martians").read_text()
    proc = lab.exec_in("debian12-1", ["sh", "-c", script], state_dir=two_hosts.state_dir)
    assert proc.returncode == 0, proc.stderr
    uid, state, martians, kernel_owner, kernel = proc.stdout.split()
    assert uid != "0" and int(uid) >= 65536, "container root must not be this machine's root"
    assert state == "running"
    assert martians == "1", "the container must own its network sysctls"
    assert kernel_owner == "65534" and kernel == "kernel-read-only", "kernel-wide sysctls must stay the host's"
    assert Path("/proc/sys/net/ipv4/conf/all/log_martians").read_text() == before


def test_second_up_reuses_the_containers(two_hosts: Lab) -> None:
    before = lab.status(two_hosts.state_dir)
    inventory = lab.up(2, "12", two_hosts.state_dir)
    after = lab.status(two_hosts.state_dir)
    assert inventory == two_hosts.inventory
    assert [(h["name"], h["port"]) for h in after] == [(h["name"], h["port"]) for h in before]
    assert all(h["state"] == "running" for h in after)


def test_each_host_has_its_own_host_key(two_hosts: Lab) -> None:
    keys = set()
    for host in lab.status(two_hosts.state_dir):
        scan = subprocess.run(
            ["ssh-keyscan", "-t", "ed25519", "-p", str(host["port"]), "127.0.0.1"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        keys.add(scan.stdout.split()[-1])
    assert len(keys) == 2


def test_key_is_private(two_hosts: Lab) -> None:
    assert (two_hosts.state_dir / "id_ed25519").stat().st_mode & 0o777 == 0o600


def test_stopped_host_comes_back_on_its_port(two_hosts: Lab) -> None:
    name = "debian12-2"
    port = next(h["port"] for h in lab.status(two_hosts.state_dir) if h["host"] == name)
    lab.stop_host(name, two_hosts.state_dir)
    assert two_hosts.ansible(name, "-m", "ansible.builtin.ping").returncode != 0
    lab.start_host(name, two_hosts.state_dir)
    host = next(h for h in lab.status(two_hosts.state_dir) if h["host"] == name)
    assert (host["state"], host["port"]) == ("running", port)


def test_a_stopped_host_whose_address_leaked_still_comes_back(two_hosts: Lab) -> None:
    """The leak CI met under load (a stopped container's CNI reservation left behind, so its
    next start is refused with "duplicate allocation"), made for real: the reservation is
    written back into CNI's own store after the stop, in the format CNI writes."""
    name = "debian12-2"
    host = next(h for h in lab.status(two_hosts.state_dir) if h["host"] == name)
    info = json.loads(lab._podman("container", "inspect", host["name"]).stdout)[0]
    container, address = info["Id"], info["NetworkSettings"]["IPAddress"]
    (reservation,) = lab.CNI_RESERVATIONS.glob(f"*/{address}")
    lab.stop_host(name, two_hosts.state_dir)
    assert not reservation.exists()
    reservation.write_text(f"{container}\r\neth0")
    refused = lab._podman("start", host["name"], check=False)  # what a plain start meets
    assert refused.returncode != 0 and lab._own_duplicate(refused.stderr) == container, refused.stderr
    reservation.write_text(f"{container}\r\neth0")  # podman's failed start released it: leak it again
    lab.start_host(name, two_hosts.state_dir)
    after = next(h for h in lab.status(two_hosts.state_dir) if h["host"] == name)
    assert (after["state"], after["port"]) == ("running", host["port"])
    assert two_hosts.ansible(name, "-m", "ansible.builtin.ping").returncode == 0


def test_down_removes_only_its_own_lab(two_hosts: Lab, tmp_path: Path) -> None:
    other = tmp_path / "other"
    lab.up(1, "12", other)
    assert len(lab.status(other)) == 1
    lab.down(other)
    assert lab.status(other) == []
    assert not other.exists()
    assert len(lab.status(two_hosts.state_dir)) == 2

"""A host built from a container image: its apt lists emptied, no D-Bus, no syslog daemon.

Images often end with ``rm -rf /var/lib/apt/lists/*``: the directory is then NEW, so a cache
age check (``cache_valid_time``) skips the update and the first install fails with "No package
matching". Every role that installs packages goes through ``fleetcare.ops.apt_lists``, which
refreshes missing or empty lists whatever the age says. The lab image has no D-Bus and no
syslog daemon, as such images do; the first ``fleetcare harden`` must still succeed, and the
second change nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import fleetcare_lab as lab

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HOST = "debian12-1"


@pytest.fixture(scope="module")
def image_host(tmp_path_factory):
    state = tmp_path_factory.mktemp("lab")
    try:
        inventory = lab.up(1, "12", state_dir=state)
        yield state, inventory
    finally:
        lab.down(state)
        assert not lab.status(state)


def sh(state: Path, script: str) -> subprocess.CompletedProcess:
    return lab.exec_in(HOST, ["sh", "-c", script], state_dir=state)


def test_first_harden_on_emptied_apt_lists_installs_its_packages(image_host, tmp_path):
    state, inventory = image_host
    assert sh(state, "rm -rf /var/lib/apt/lists/* && ls /var/lib/apt/lists | wc -l").stdout.strip() == "0"
    # what such an image lacks: no D-Bus, no syslog daemon, and the package the report named
    absent = sh(state, "for p in dbus rsyslog libpam-pwquality; do dpkg-query -W -f='${db:Status-Abbrev}' $p "
                       "2>/dev/null | grep -q '^ii' || echo $p; done").stdout.split()
    assert absent == ["dbus", "rsyslog", "libpam-pwquality"], absent
    assert sh(state, "ls /run/dbus/system_bus_socket").returncode != 0

    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "XDG_DATA_HOME": str(tmp_path / "data"),
           "ANSIBLE_NOCOLOR": "1"}
    proc = subprocess.run([str(BIN / "fleetcare"), "harden", "-i", str(inventory), "-q"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=2400)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "No package matching" not in proc.stdout + proc.stderr
    installed = sh(state, "dpkg-query -W -f='${db:Status-Abbrev}' libpam-pwquality rsyslog").stdout
    assert installed.split() == ["ii", "ii"], installed
    assert sh(state, "ls /var/lib/apt/lists/*_Packages* | wc -l").stdout.strip() != "0"

    # the lists are there now: the second run refreshes nothing and changes nothing
    again = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), "playbooks/harden.yml"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=2400)
    assert again.returncode == 0, again.stdout[-3000:]
    recap = [line for line in again.stdout.splitlines() if line.startswith(HOST) and "changed=" in line]
    assert recap and "changed=0" in recap[-1], again.stdout[-3000:]

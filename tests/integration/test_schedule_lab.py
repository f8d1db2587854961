"""A schedule for real, inside a lab host with systemd as PID 1: fleetcare installed there from
the controller's wheelhouse (no index), 'schedule add' writes a service and a timer that
systemd loads (systemctl list-timers shows it), the service started once runs the inspection,
whose run is then in that host's own history database and whose output is in its journal;
'schedule list' shows the exit code, and 'schedule remove' leaves no unit behind."""

from __future__ import annotations

import json
import subprocess

import pytest

import fleetcare_lab as lab
from fleetcare import wheelhouse

pytestmark = pytest.mark.lab
VENV = "/opt/fleetcare"


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    state = tmp_path_factory.mktemp("lab-sched")
    try:
        lab.up(1, "12", state_dir=state)
        (entry,) = lab.status(state)
        yield entry["name"]
    finally:
        lab.down(state)


def sh(name: str, script: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", "exec", "-i", name, "sh", "-c", script], capture_output=True, text=True,
                          timeout=timeout, env=lab._env(), check=False)


def ok(name: str, script: str, timeout: float = 600) -> str:
    proc = sh(name, script, timeout)
    assert proc.returncode == 0, f"{script}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_schedule_on_a_systemd_host(host, tmp_path):
    wheels = wheelhouse.build(tmp_path / "wheelhouse")
    # podman cp into the system container fails ("value too large"); a tar stream does not
    tar = subprocess.run(["tar", "-C", str(wheels), "-c", "."], capture_output=True, check=True).stdout
    put = subprocess.run(["podman", "exec", "-i", host, "sh", "-c", "mkdir -p /root/wheelhouse && "
                          "tar -C /root/wheelhouse -x"], input=tar, capture_output=True, env=lab._env(), check=False)
    assert put.returncode == 0, put.stderr
    ok(host, wheelhouse.install_script("/root/wheelhouse", VENV), timeout=900)
    fc = f"{VENV}/bin/fleetcare"
    assert ok(host, "readlink /proc/1/exe").strip().endswith("systemd")

    ok(host, "mkdir -p /srv/fc")
    # the lab image has a unit of its own named fleetcare-*: schedules must leave it alone
    units = "find /etc/systemd/system -printf '%p %s\\n' | sort; md5sum /etc/systemd/system/fleetcare-hostkeys.service"
    before = ok(host, units)
    assert "fleetcare-hostkeys.service" in before
    bad = sh(host, f"cd /srv/fc && {fc} schedule add inspect --on-calendar 'Mon..Fri 25:00'")
    assert bad.returncode == 2 and "systemd-analyze refuses it" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    assert ok(host, units) == before
    assert "no schedules" in ok(host, f"{fc} schedule list")
    theirs = sh(host, f"{fc} schedule remove hostkeys")
    assert theirs.returncode == 2 and "no schedule 'hostkeys' written by fleetcare" in theirs.stderr

    out = ok(host, f"cd /srv/fc && {fc} schedule add inspect -q -e health_disk_warn_pct=85 "
                   "--on-calendar '*-*-* 03:15' --random-delay 10min --name nightly")
    assert "fleetcare-nightly.timer" in out and "as root" in out
    timers = ok(host, "systemctl list-timers --all --no-pager fleetcare-nightly.timer")
    assert "fleetcare-nightly.timer" in timers and "fleetcare-nightly.service" in timers
    assert ok(host, "systemctl is-enabled fleetcare-nightly.timer").strip() == "enabled"
    unit = ok(host, "systemctl cat fleetcare-nightly.service")
    assert "Environment" not in unit and "health_disk_warn_pct=85" in unit

    ok(host, "systemctl start fleetcare-nightly.service", timeout=600)  # oneshot: returns when the run ends
    status = ok(host, "systemctl show fleetcare-nightly.service -p ExecMainStatus -p Result")
    assert "Result=success" in status, status
    code = int(status.split("ExecMainStatus=")[1].split()[0])
    assert code in (0, 1)  # clean, or findings on this container

    history = ok(host, f"{fc} history")
    assert " inspect " in history and f"exit {code}" in history, history
    db = "/root/.local/share/fleetcare/history.db"
    rows = ok(host, f"{VENV}/bin/python -c \"import json,sqlite3; c=sqlite3.connect('{db}'); "
                    "print(json.dumps(c.execute('select command, exit_code from runs').fetchall()))\"")
    assert json.loads(rows) == [["inspect", code]]
    journal = ok(host, "journalctl --no-pager -t fleetcare-nightly")
    assert "reports:" in journal and f"exit {code}" in journal, journal
    listed = ok(host, f"{fc} schedule list")
    assert listed.startswith("nightly  systemd  *-*-* 03:15:00  as root: inspect -q") and f"exit {code}" in listed

    removed = ok(host, f"{fc} schedule remove nightly")
    assert "fleetcare-nightly.timer" in removed and "fleetcare-nightly.service" in removed
    assert ok(host, units) == before  # nothing left behind, nothing of theirs touched
    left = ok(host, "systemctl list-units --all --no-legend --no-pager 'fleetcare-*'; "
                    "systemctl list-timers --all --no-legend --no-pager")
    assert "fleetcare-nightly" not in left
    assert "no schedules" in ok(host, f"{fc} schedule list")

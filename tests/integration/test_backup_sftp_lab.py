"""Backups over SFTP to a backup server of the lab, for real (issue 11, items 1 and 6).

Four Debian 12 lab hosts: one is given the backup server's part of the role by inventory
variables (a backup user whose authorized_keys the clients fill, each key restricted to the SFTP
server), three are clients backing up to ``sftp:fcbackup@SERVER:/srv/fleetcare-backup/HOST``
through their own key and the server's host key, checked strictly. ``fleetcare backup`` enforces
the role on all four; the clients' backup services run; one client's repository is deleted on the
server and the services run again: that client's findings fail (the run, the repository), the
others' pass; ``fleetcare inspect`` then shows the backup age of every client. The repository
password is looked for in every artifact, report and the history database of the runs, the
status records and journals on the hosts, and the process list sampled while a backup ran.
"""

from __future__ import annotations

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
STATE = Path(os.environ.get("FLEETCARE_LAB_DIR", "/tmp/lab-backup3"))
PASSWORD = "Sftp-restic-pw-8c21d5"
SERVICE = "fleetcare-backup-data.service"
# runs the backup service (systemctl start waits for the oneshot to finish) while the process
# list is sampled every 20 ms
SAMPLE_PS = f"""
rm -f /tmp/fc-sampled
( for i in $(seq 6000); do ps -eww -o args; [ -e /tmp/fc-sampled ] && break; sleep 0.02; done ) > /tmp/fc-ps &
systemctl start {SERVICE}
touch /tmp/fc-sampled
wait
cat /tmp/fc-ps
"""


def _fleetcare(data: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_DATA_HOME": str(data)}
    return subprocess.run([sys.executable, str(ROOT / "runner.py"), *argv], capture_output=True, text=True,
                          env=env, timeout=600)


def _report(data: Path, before: set[Path]) -> dict:
    (run_dir,) = set((data / "fleetcare" / "runs").glob("*")) - before
    return json.loads((run_dir / "report.json").read_text())


def _runs(data: Path) -> set[Path]:
    runs = data / "fleetcare" / "runs"
    return set(runs.glob("*")) if runs.exists() else set()


def _found(report: dict, check: str) -> dict[str, dict]:
    return {f["host"]: f for f in report["findings"] if f["id"] == check}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("backup-sftp")
    try:
        inventory = lab.up(4, "12", state_dir=STATE)
        hosts = sorted(yaml.safe_load(inventory.read_text())["all"]["children"]["lab"]["hosts"].items())
        (server, server_vars), clients = hosts[-1], dict(hosts[:-1])
        address = lab.exec_in(server, ["hostname", "-I"], check=True, state_dir=STATE).stdout.split()[0]
        for name in clients:
            lab.exec_in(name, ["sh", "-c", "mkdir -p /srv/data && for i in $(seq 200); do "
                               "head -c 4096 /dev/urandom > /srv/data/f$i; done"], check=True, state_dir=STATE)
        doc = {"all": {"children": {
            "backup_servers": {"hosts": {server: server_vars}, "vars": {"backup_server": True}},
            "backup_clients": {"hosts": clients, "vars": {
                "backup_password": PASSWORD, "backup_init": True,
                "backup_repository": f"sftp:fcbackup@{address}:/srv/fleetcare-backup/{{{{ inventory_hostname }}}}",
                "backup_sftp_server": server,
                "backup_sets": [{"name": "data", "paths": ["/srv/data"], "on_calendar": "yearly"}]}}}}}
        (tmp / "inventory.yml").write_text(yaml.safe_dump(doc))
        yield tmp, tmp / "inventory.yml", server, sorted(clients)
    finally:
        lab.down(STATE)


def test_backups_over_sftp_fail_only_for_the_deleted_repository(fleet):
    tmp, inventory, server, clients = fleet
    data = tmp / "data"
    enforce = _fleetcare(data, "backup", "-i", str(inventory))
    outputs = [enforce.stdout, enforce.stderr]
    assert enforce.returncode in (0, 1), enforce.stdout[-3000:] + enforce.stderr[-3000:]

    # the server: one restricted entry per client key, each repository initialised by its client
    keys = lab.exec_in(server, ["cat", "/srv/fleetcare-backup/.ssh/authorized_keys"], check=True,
                       state_dir=STATE).stdout.splitlines()
    assert len(keys) == 3 and all(k.startswith('restrict,command="/usr/lib/openssh/sftp-server" ssh-ed25519 ')
                                  for k in keys), keys
    listed = lab.exec_in(server, ["ls", "/srv/fleetcare-backup"], check=True, state_dir=STATE).stdout.split()
    assert listed == clients
    # the key gives no shell, and a host key other than the known one is refused
    first = clients[0]
    shell = lab.exec_in(first, ["ssh", "-i", "/etc/fleetcare/backup/ssh/id_ed25519", "-o", "BatchMode=yes",
                                "-o", "UserKnownHostsFile=/etc/fleetcare/backup/ssh/known_hosts",
                                f"fcbackup@{_address(server)}", "echo", "shell-reached"], state_dir=STATE)
    assert "shell-reached" not in shell.stdout
    known = lab.exec_in(first, ["cat", "/etc/fleetcare/backup/ssh/known_hosts"], check=True, state_dir=STATE).stdout
    assert known.split()[0] == _address(server) and "ssh-ed25519" in known

    sampled = lab.exec_in(first, ["sh", "-c", SAMPLE_PS], check=True, state_dir=STATE).stdout
    assert "sftp.command=ssh -i /etc/fleetcare/backup/ssh/id_ed25519" in sampled  # restic was caught running
    outputs.append(sampled)
    for name in clients[1:]:
        lab.exec_in(name, ["systemctl", "start", SERVICE], check=True, state_dir=STATE)
    for name in clients:
        assert _state(name) == "success", name

    lab.exec_in(server, ["rm", "-rf", f"/srv/fleetcare-backup/{first}"], check=True, state_dir=STATE)
    for name in clients:
        lab.exec_in(name, ["systemctl", "start", SERVICE], state_dir=STATE)
    before = _runs(data)
    audit = _fleetcare(data, "backup", "-i", str(inventory), "-e", "backup_init=false")
    outputs += [audit.stdout, audit.stderr]
    assert audit.returncode == 1, audit.stdout[-3000:] + audit.stderr[-3000:]
    report = _report(data, before)
    repo, run, age = (_found(report, c) for c in ("BKUP-REPO-001", "BKUP-RUN-001", "BKUP-AGE-001"))
    assert repo[first]["status"] == "fail" and repo[first]["evidence"]["problem"] == "repository does not exist"
    assert run[first]["status"] == "fail" and run[first]["evidence"]["failed"] == ["data"]
    for name in clients[1:]:
        assert (repo[name]["status"], run[name]["status"], age[name]["status"]) == ("pass",) * 3, name
    # the last success stands: the repository's loss is the run's and the repository's finding
    assert age[first]["status"] == "pass"
    # never initialised again, as backup_init was false
    assert first not in lab.exec_in(server, ["ls", "/srv/fleetcare-backup"], state_dir=STATE).stdout.split()
    assert age[server]["status"] == "not_applicable"  # the server backs nothing up

    before = _runs(data)
    prom = tmp / "prom"
    prom.mkdir()
    inspect = _fleetcare(data, "inspect", "-i", str(inventory), "--prometheus-dir", str(prom))
    outputs += [inspect.stdout, inspect.stderr]
    assert inspect.returncode in (0, 1), inspect.stdout[-3000:] + inspect.stderr[-3000:]
    health = _found(_report(data, before), "HLTH-BKUP-001")
    for name in clients:
        assert health[name]["status"] == "pass", health[name]
        assert 0 <= health[name]["evidence"]["age_hours"]["data"] < 1
    assert health[server]["status"] == "not_applicable"
    # and as the textfile for node_exporter gives it: when each client's set last succeeded
    series = [line for line in (prom / "fleetcare_inspect.prom").read_text().splitlines()
              if line.startswith("fleetcare_backup_last_success_timestamp_seconds{")]
    assert sorted(h for h in [*clients, server] for line in series
                  if f'host="{h}"' in line and 'set="data"' in line) == clients

    # the password: in no artifact, report or history, record, journal or process seen
    for name in clients:
        outputs.append(lab.exec_in(name, ["sh", "-c", "cat /var/lib/fleetcare/backup/*.json; "
                                          f"journalctl -u {SERVICE} --no-pager"], state_dir=STATE).stdout)
    files = [p for p in data.rglob("*") if p.is_file()]
    assert any(p.name == "history.db" for p in files) and any(p.suffix == ".html" for p in files)
    assert [str(p) for p in files if PASSWORD.encode() in p.read_bytes()] == []
    assert [text[:200] for text in outputs if PASSWORD in text] == []
    # and the scan can fail: the password file on a client holds it
    held = lab.exec_in(first, ["cat", "/etc/fleetcare/backup/password"], check=True, state_dir=STATE).stdout
    assert PASSWORD in held


def _address(name: str) -> str:
    return lab.exec_in(name, ["hostname", "-I"], check=True, state_dir=STATE).stdout.split()[0]


def _state(name: str) -> str:
    return lab.exec_in(name, ["systemctl", "show", "-p", "Result", "--value", SERVICE], check=True,
                       state_dir=STATE).stdout.strip()

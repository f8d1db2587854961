"""The wrapper against a lab fleet over SSH on 127.0.0.1, with failures injected:
a host stopped mid-run, sshd broken, a bad inventory, SIGTERM mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import fleetcare_lab as lab
from fleetcare.collection import health_checks
from fleetcare.history import History
from fleetcare.results import validate

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
CHECKS = len(health_checks.CHECKS) + 1  # the module\'s checks and HLTH-CAP-001, judged on the controller


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """Three Debian 12 hosts; removed when the module's tests end, whatever happens."""
    state = tmp_path_factory.mktemp("lab")
    try:
        inventory = lab.up(3, "12", state_dir=state)
        hosts = [h["host"] for h in lab.status(state)]
        yield state, inventory, hosts
    finally:
        lab.down(state)
        assert not lab.status(state)


@pytest.fixture
def data(tmp_path):
    return tmp_path / "data"


def env_for(data: Path) -> dict[str, str]:
    return {**os.environ, "XDG_DATA_HOME": str(data)}


def fleetcare(data: Path, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "runner.py"), *argv], capture_output=True, text=True,
                          env=env_for(data), timeout=timeout)


def slow_inventory(tmp_path: Path, inventory: Path, slow: dict[str, float]) -> Path:
    """A copy of the lab inventory where some hosts take longer to inspect
    (a longer sampling window), so a test can act while they are mid-run."""
    doc = yaml.safe_load(inventory.read_text())
    for group in _groups(doc):
        for name, hostvars in (group.get("hosts") or {}).items():
            if name in slow:
                group["hosts"][name] = {**(hostvars or {}), "health_sample_seconds": slow[name]}
    out = tmp_path / "slow.yml"
    out.write_text(yaml.safe_dump(doc))
    return out


def _groups(doc):
    stack = list(doc.values())
    while stack:
        group = stack.pop()
        if isinstance(group, dict):
            yield group
            stack.extend((group.get("children") or {}).values())


def wait_for_event(data: Path, kind: str, host: str, timeout: float = 120, findings: bool = False) -> None:
    """Wait until Ansible wrote an event of ``kind`` for ``host`` (with
    ``findings``: a module result carrying the fleetcare key)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in data.glob("fleetcare/runs/*/runner/artifacts/*/job_events/*.json"):
            try:
                event = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            data_ = event.get("event_data", {})
            if event.get("event") == kind and data_.get("host") == host and (
                    not findings or "fleetcare" in (data_.get("res") or {})):
                return
        time.sleep(0.1)
    raise AssertionError(f"no {kind} event for {host} within {timeout} s")


def only_run(data: Path) -> tuple[Path, dict]:
    (run_dir,) = (data / "fleetcare" / "runs").iterdir()
    return run_dir, json.loads((run_dir / "report.json").read_text())


def test_full_inspection_of_the_fleet(fleet, data):
    _, inventory, hosts = fleet
    proc = fleetcare(data, "inspect", "-i", str(inventory), "--fail-on", "critical")
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    run_dir, report = only_run(data)
    validate(report)
    assert sorted(h["name"] for h in report["hosts"]) == sorted(hosts)
    assert all(h["status"] == "ok" for h in report["hosts"])
    for host in hosts:
        mine = [f for f in report["findings"] if f["host"] == host]
        assert len(mine) == CHECKS and len({f["id"] for f in mine}) == CHECKS
        # systemd runs as PID 1 in the lab: the unit check really ran there
        (units,) = [f for f in mine if f["id"] == "HLTH-UNIT-001"]
        assert units["status"] in ("pass", "fail"), units
    for fmt in ("html", "md"):
        text = (run_dir / f"report.{fmt}").read_text()
        assert all(h in text for h in hosts)
    with History(data / "fleetcare" / "history.db") as h:
        assert h.load("latest").summary()["hosts_ok"] == 3


def test_limit_inspects_only_the_matching_host(fleet, data):
    _, inventory, hosts = fleet
    proc = fleetcare(data, "inspect", "-i", str(inventory), "--limit", hosts[0], "--fail-on", "critical")
    assert proc.returncode in (0, 1), proc.stderr
    _, report = only_run(data)
    assert [h["name"] for h in report["hosts"]] == [hosts[0]]


def test_host_stopped_mid_run(fleet, data, tmp_path):
    state, inventory, hosts = fleet
    victim = hosts[1]
    inv = slow_inventory(tmp_path, inventory, {victim: 5.0})
    proc = subprocess.Popen([sys.executable, str(ROOT / "runner.py"), "inspect", "-i", str(inv)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_for(data))
    try:
        wait_for_event(data, "runner_on_start", victim)
        time.sleep(1.0)  # the module is now sampling on the victim
        lab.stop_host(victim, state_dir=state)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
        lab.start_host(victim, state_dir=state)
    assert proc.returncode == 3, out + err
    _, report = only_run(data)
    status = {h["name"]: h for h in report["hosts"]}
    assert status[victim]["status"] == "unreachable", status[victim]
    for host in hosts:
        if host != victim:
            assert status[host]["status"] == "ok"
            assert len([f for f in report["findings"] if f["host"] == host]) == CHECKS
    assert f"unreachable {victim}" in out


def test_broken_sshd_on_one_host(fleet, data):
    state, inventory, hosts = fleet
    victim = hosts[2]
    # the restart fails on the bad option; pkill also ends connections kept open
    # by earlier runs (ControlPersist), so nothing reaches this host any more
    lab.exec_in(victim, ["sh", "-c", "echo 'NoSuchOption yes' >> /etc/ssh/sshd_config; "
                         "systemctl restart ssh; pkill -x sshd; true"], state_dir=state)
    try:
        proc = fleetcare(data, "inspect", "-i", str(inventory), "--fail-on", "critical")
    finally:
        # reset-failed: the failed restarts above count against systemd's start limit
        lab.exec_in(victim, ["sh", "-c", "sed -i '/NoSuchOption/d' /etc/ssh/sshd_config && "
                             "systemctl reset-failed ssh; systemctl restart ssh"], check=True, state_dir=state)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    _, report = only_run(data)
    status = {h["name"]: h for h in report["hosts"]}
    assert status[victim]["status"] == "unreachable"
    assert status[victim]["message"]
    assert sum(1 for f in report["findings"] if f["host"] != victim) == 2 * CHECKS


def test_bad_inventory(fleet, data, tmp_path):
    _, inventory, _ = fleet
    broken = tmp_path / "broken.yml"
    broken.write_text(inventory.read_text().replace("hosts:", "hosts: [", 1))
    proc = fleetcare(data, "inspect", "-i", str(broken))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "broken.yml" in proc.stderr and "Traceback" not in proc.stderr
    assert not (data / "fleetcare" / "runs").exists()


def test_sigterm_mid_run_keeps_partial_results(fleet, data, tmp_path):
    _, inventory, hosts = fleet
    fast, slow = hosts[0], hosts[1:]
    inv = slow_inventory(tmp_path, inventory, dict.fromkeys(slow, 5.0))
    proc = subprocess.Popen([sys.executable, str(ROOT / "runner.py"), "inspect", "-i", str(inv)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_for(data))
    try:
        wait_for_event(data, "runner_on_ok", fast, findings=True)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 4, out + err
    assert "interrupted" in out
    _, report = only_run(data)
    assert report["run"]["status"] == "interrupted"
    assert {f["host"] for f in report["findings"]} == {fast}
    with History(data / "fleetcare" / "history.db") as h:
        run = h.load("latest")
    assert run.status == "interrupted" and run.exit_code == 4
    # the module's findings; an interrupted run is not judged on the controller (no HLTH-CAP-001)
    assert len(list(run.findings())) == CHECKS - 1
    # the wrapper left no ansible-playbook behind
    left = subprocess.run(["pgrep", "-af", f"ansible-playbook.*{inv}"], capture_output=True, text=True)
    assert left.stdout.strip() == ""


def test_inspection_as_an_unprivileged_user(fleet, data):
    """Connected as the lab's non-root user, without become: every check still
    answers, and those that need root say so instead of crashing."""
    _, inventory, hosts = fleet
    proc = fleetcare(data, "inspect", "-i", str(inventory), "-e", "ansible_user=fleetcare",
                     "--fail-on", "critical")
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    _, report = only_run(data)
    assert all(h["status"] == "ok" for h in report["hosts"])
    assert len(report["findings"]) == CHECKS * len(hosts)
    for f in report["findings"]:
        if f["status"] in ("error", "not_applicable"):
            assert f["evidence"].get("reason"), f
    (log,) = [f for f in report["findings"] if f["host"] == hosts[0] and f["id"] == "HLTH-LOG-001"]
    assert log["status"] == "error" and "journal" in log["evidence"]["reason"]

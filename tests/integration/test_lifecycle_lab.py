"""The life of one finding on a real lab host, through the real CLI with the clock pinned
(FLEETCARE_NOW): inspect (clean), a failed systemd unit injected, inspect (new), waived,
inspect (waived, expiring soon), the waiver expires, inspect (fails again, overdue, the lapsed
waiver reported), the fault fixed, inspect (resolved). Every state is asserted in the JSON
report and in the HTML report as headless Chromium renders it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fleetcare_lab as lab
from fleetcare.results import SEVERITIES, validate

from ..unit.test_report_browser import _dump_dom, _parse

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
CHECK = "HLTH-UNIT-001"  # failed systemd units, major
UNIT = "fc-lifecycle-fault"

T0 = "2026-12-01T08:00:00+00:00"  # clean
T1 = "2026-12-02T08:00:00+00:00"  # the fault is first seen
T_WAIVE = "2026-12-02T09:00:00+00:00"
EXPIRES = "2026-12-06"  # within the 14 days warning: reported as expiring at T2
T2 = "2026-12-03T08:00:00+00:00"  # waived
T3 = "2026-12-10T08:00:00+00:00"  # waiver expired; major resolve-by (7 d from T1) passed
T4 = "2026-12-11T08:00:00+00:00"  # fixed


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    state = tmp_path_factory.mktemp("lab")
    try:
        inventory = lab.up(1, "12", state_dir=state)
        (entry,) = lab.status(state)
        yield state, inventory, entry["host"]
    finally:
        lab.down(state)


def _fleetcare(data: Path, now: str, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_DATA_HOME": str(data), "FLEETCARE_NOW": now}
    return subprocess.run([sys.executable, str(ROOT / "runner.py"), *argv], capture_output=True, text=True,
                          env=env, timeout=600)


def _inspect(data: Path, now: str, inventory: Path, *extra: str) -> tuple[int, dict, Path]:
    before = set((data / "fleetcare" / "runs").glob("*")) if (data / "fleetcare" / "runs").exists() else set()
    proc = _fleetcare(data, now, "inspect", "-i", str(inventory), *extra)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    (run_dir,) = set((data / "fleetcare" / "runs").glob("*")) - before
    report = json.loads((run_dir / "report.json").read_text())
    validate(report)
    assert report["run"]["started"] == now
    return proc.returncode, report, run_dir


def _finding(report: dict, name: str) -> dict:
    (f,) = [f for f in report["findings"] if f["id"] == CHECK and f["host"] == name]
    return f


def _entry(report: dict, name: str) -> dict | None:
    found = [e for e in report["comparison"]["findings"] if e["id"] == CHECK and e["host"] == name]
    return found[0] if found else None


def _expected_exit(report: dict) -> int:
    """What --fail-on major must give: 1 when a failing finding is major or worse, else 0."""
    limit = SEVERITIES.index("major")
    return int(any(f["status"] == "fail" and SEVERITIES.index(f["severity"]) <= limit
                   for f in report["findings"]))


def _page_text(tmp_path: Path, run_dir: Path) -> str:
    dom = _parse(_dump_dom(tmp_path, run_dir / "report.html"))
    return " ".join(" ".join(dom.texts).split())


def test_a_finding_lives_through_new_waived_expired_overdue_and_resolved(host, tmp_path):
    state, inventory, name = host
    data = tmp_path / "data"
    lab.exec_in(name, ["systemctl", "reset-failed"], state_dir=state)

    code, report, _ = _inspect(data, T0, inventory)
    assert _finding(report, name)["status"] == "pass", _finding(report, name)
    assert code == _expected_exit(report)

    # the fault: a unit that fails as it starts
    lab.exec_in(name, ["systemd-run", f"--unit={UNIT}", "/bin/false"], check=True, state_dir=state)
    code, report, run_dir = _inspect(data, T1, inventory)
    f = _finding(report, name)
    assert f["status"] == "fail" and f"{UNIT}.service" in json.dumps(f["evidence"]), f
    assert code == 1 == _expected_exit(report)
    assert _entry(report, name) == {**_entry(report, name), "state": "new", "first_seen": T1}
    due = [e for e in report["service_levels"]["findings"] if e["id"] == CHECK and e["host"] == name]
    assert due and due[0]["resolve_by"].startswith("2026-12-09T08:00") and not due[0]["overdue"], due
    assert CHECK in _page_text(tmp_path, run_dir)

    waive = _fleetcare(data, T_WAIVE, "waive", CHECK, "--host", name, "--reason", "vendor unit, fix scheduled",
                       "--owner", "ops-oncall", "--expires", EXPIRES)
    assert waive.returncode == 0, waive.stdout + waive.stderr

    code, report, run_dir = _inspect(data, T2, inventory)
    f = _finding(report, name)
    assert f["status"] == "waived", f
    assert f["waiver"]["reason"] == "vendor unit, fix scheduled" and f["waiver"]["owner"] == "ops-oncall"
    assert f["waiver"]["expires"].startswith("2026-12-06")
    assert code == _expected_exit(report)  # the waived finding no longer counts for --fail-on
    assert report["waivers"]["waived"] >= 1 and report["waivers"]["expiring"] >= 1
    assert _entry(report, name)["state"] == "still_open" and _entry(report, name)["first_seen"] == T1
    text = _page_text(tmp_path, run_dir)
    assert "vendor unit, fix scheduled" in text and "ops-oncall" in text and "Waived findings" in text

    code, report, run_dir = _inspect(data, T3, inventory, "--fail-on-overdue")
    f = _finding(report, name)
    assert f["status"] == "fail" and "waiver" not in f, f  # the waiver expired: it fails again
    assert code == 1  # overdue: resolve-by was 2026-12-09
    assert _entry(report, name)["first_seen"] == T1
    due = [e for e in report["service_levels"]["findings"] if e["id"] == CHECK and e["host"] == name]
    assert due and due[0]["overdue"], due
    assert any(w["finding"] == CHECK and w["state"] == "expired" for w in report["waivers"]["lapsed"])
    text = _page_text(tmp_path, run_dir)
    assert "Lapsed: their findings fail again" in text and "overdue" in text

    lab.exec_in(name, ["systemctl", "reset-failed", f"{UNIT}.service"], check=True, state_dir=state)
    code, report, run_dir = _inspect(data, T4, inventory)
    assert _finding(report, name)["status"] == "pass"
    assert _entry(report, name)["state"] == "resolved"
    assert code == _expected_exit(report)
    text = _page_text(tmp_path, run_dir)
    assert "resolved" in text and CHECK in text

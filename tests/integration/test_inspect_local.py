"""`fleetcare inspect` for real on this machine, through ansible-runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fleetcare import app
from fleetcare.history import History
from fleetcare.results import validate

ROOT = Path(__file__).resolve().parents[2]
CHECKS = {"HLTH-LOAD-001", "HLTH-CPU-001", "HLTH-CPU-002", "HLTH-MEM-001", "HLTH-SWAP-001",
          "HLTH-DISK-001", "HLTH-DISK-002", "HLTH-DISK-003", "HLTH-NET-001", "HLTH-UNIT-001",
          "HLTH-TIME-001", "HLTH-CERT-001", "HLTH-REBOOT-001", "HLTH-OOM-001", "HLTH-LOG-001",
          "HLTH-BKUP-001", "HLTH-CERT-002", "HLTH-RAID-001", "HLTH-SMART-001", "HLTH-EDAC-001",
          "HLTH-KERN-001", "HLTH-FD-001", "HLTH-CONN-001", "HLTH-PROC-001", "HLTH-SSH-001",
          "HLTH-SVC-001", "HLTH-SVC-002", "HLTH-SVC-003", "HLTH-SVC-004", "HLTH-SVC-005",
          "HLTH-PORT-001", "HLTH-DB-001", "HLTH-DB-002", "HLTH-DB-003",
          "HLTH-CAP-001"}  # the last judged on the controller from history


def fleetcare(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    return subprocess.run([sys.executable, str(ROOT / "runner.py"), *argv], capture_output=True, text=True,
                          env=env, timeout=300)


def latest_report(tmp_path: Path) -> tuple[Path, dict]:
    (run_dir,) = (tmp_path / "data" / "fleetcare" / "runs").iterdir()
    return run_dir, json.loads((run_dir / "report.json").read_text())


def test_inspect_this_machine_for_real(tmp_path):
    proc = fleetcare(tmp_path, "inspect", "--fail-on", "critical")
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    run_dir, report = latest_report(tmp_path)
    validate(report)
    assert f"reports: {run_dir}/report.{{html,json,md}}" in proc.stdout
    assert report["run"]["status"] == "complete"
    assert [h["name"] for h in report["hosts"]] == ["localhost"]
    assert report["hosts"][0]["status"] == "ok"
    findings = report["findings"]
    assert {f["id"] for f in findings} == CHECKS and len(findings) == len(CHECKS)
    for f in findings:
        assert f["host"] == "localhost" and f["role"] == "health"
        if f["status"] in ("error", "not_applicable"):
            assert f["evidence"].get("reason"), f
    # metrics are kept beside findings, e.g. the root filesystem's use
    assert any(m["name"].startswith("disk") and m["labels"].get("mount") == "/" for m in report["metrics"])
    # the run's own artifacts are kept under the run directory
    assert list(run_dir.glob("runner/artifacts/*/job_events/*.json"))
    html = (run_dir / "report.html").read_text()
    assert "HLTH-DISK-001" in html and "https://" not in html
    with History(tmp_path / "data" / "fleetcare" / "history.db") as h:
        # history keeps the run; its lifecycle and trends are derived from history again, as
        # `fleetcare report` does
        rebuilt = json.loads(app.rebuild_report(h, report["run"]["id"], "json"))
        assert rebuilt == report


def test_threshold_override_fails_the_check_and_the_exit_code(tmp_path):
    """A threshold set on the command line reaches the host: disk use above 0% fails."""
    proc = fleetcare(tmp_path, "inspect", "-e", "health_disk_warn_pct=0", "-e", "health_disk_critical_pct=99",
                     "--fail-on", "major")
    _, report = latest_report(tmp_path)
    (disk,) = [f for f in report["findings"] if f["id"] == "HLTH-DISK-001"]
    assert disk["status"] == "fail", disk
    assert proc.returncode == 1, proc.stdout


@pytest.mark.parametrize("value", ["lots", "-5"])
def test_bad_threshold_stops_before_ansible_runs(tmp_path, value):
    proc = fleetcare(tmp_path, "inspect", "-e", f"health_disk_warn_pct={value}")
    assert proc.returncode == 2
    assert "health_disk_warn_pct" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "data" / "fleetcare" / "runs").exists()

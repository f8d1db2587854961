"""The textfile series of patching, backup, drift and the capacity forecast: named by what they
mean, in base units, bounded labels; `promtool check metrics` passes on a file holding them all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fleetcare import drift, lifecycle, trends
from fleetcare.history import History
from fleetcare.reports import prometheus
from fleetcare.results import CONTRACT_VERSION, Run

from . import promstack
from .test_prometheus import promtool_check
from .test_trends import GB, T0, _current, _feed

STARTED = "2026-12-01T06:00:00+00:00"


def _finding(fid: str, status: str, evidence: dict, severity: str = "major") -> dict:
    return {"id": fid, "title": fid, "severity": severity, "status": status, "evidence": evidence}


def _patch_run(run_id: str, started: str, pending_security: int) -> Run:
    run = Run(id=run_id, command="patch", started=started)
    for host, sec in (("web-1", pending_security), ("web-2", 0)):
        run.add_payload(host, {"contract": CONTRACT_VERSION, "role": "patching", "findings": [
            _finding("PTCH-SEC-001", "fail" if sec else "pass", {"count": sec}),
            _finding("PTCH-REBOOT-001", "fail" if host == "web-1" else "pass", {})], "metrics": [
            {"name": "patching_pending_security", "value": sec}, {"name": "patching_pending_other", "value": 5},
            {"name": "patching_reboot_required", "value": 1 if host == "web-1" else 0}]})
        run.set_status(host, "ok")
    return run


def test_patching_series_and_pending_since(tmp_path):
    with History(tmp_path / "h.db") as history:
        first = _patch_run("20261128-060000-aaaa", "2026-11-28T06:00:00+00:00", 2)
        first.finish()
        lifecycle.annotate(first, history)
        history.save(first)
        run = _patch_run("20261201-060000-bbbb", STARTED, 3)
        run.finish()
        lifecycle.annotate(run, history)
    text = prometheus.render(run)
    find = promstack.find
    assert find(text, "fleetcare_patching_pending_updates", host="web-1", kind="security") == [3]
    assert find(text, "fleetcare_patching_pending_updates", host="web-1", kind="other") == [5]
    assert find(text, "fleetcare_patching_pending_updates", host="web-2", kind="security") == [0]
    assert find(text, "fleetcare_patching_reboot_required", host="web-1") == [1]
    # pending since the first run of the stretch, three days before this one; none where nothing waits
    since = datetime(2026, 11, 28, 6, tzinfo=UTC).timestamp()
    assert find(text, "fleetcare_patching_security_pending_since_timestamp_seconds", host="web-1") == [since]
    assert find(text, "fleetcare_patching_security_pending_since_timestamp_seconds", host="web-2") == []
    path = tmp_path / "patch.prom"
    path.write_text(text)
    checked = promtool_check(path)
    assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout + checked.stderr


def test_backup_drift_and_capacity_series_pass_promtool(tmp_path):
    run = Run(id="20261201-060000-cccc", command="backup", started=STARTED)
    run.add_payload("db-1", {"contract": CONTRACT_VERSION, "role": "backup", "findings": [
        _finding("BKUP-AGE-001", "fail", {"threshold_hours": 26, "age_hours": {"pg": 30.0, "etc": 2.0}})],
        "metrics": [{"name": "backup_last_success_age_hours", "value": 30.0, "unit": "hours", "labels": {"set": "pg"}},
                    {"name": "backup_last_success_age_hours", "value": 2.0, "unit": "hours",
                     "labels": {"set": "etc"}}]})
    run.set_status("db-1", "ok")
    drift_findings = drift.drift_findings(
        {"files": {"/etc/a": {"sha256": "x"}, "/etc/b": {"sha256": "y"}}, "packages": {"curl": "1"}},
        {"files": {"/etc/a": {"sha256": "z"}, "/etc/c": {"sha256": "w"}}, "packages": {"curl": "1"}}, 3)
    run.add_payload("db-1", {"contract": CONTRACT_VERSION, "role": "drift", "findings": drift_findings})
    text = prometheus.render(run)
    find = promstack.find
    at = datetime.fromisoformat(STARTED).timestamp()
    assert find(text, "fleetcare_backup_last_success_timestamp_seconds", host="db-1", set="pg") == [at - 30 * 3600]
    assert find(text, "fleetcare_backup_last_success_timestamp_seconds", set="etc") == [at - 2 * 3600]
    assert find(text, "fleetcare_backup_rpo_seconds", host="db-1") == [26 * 3600]
    assert find(text, "fleetcare_host_backup_last_success_age_seconds", set="pg") == [30 * 3600]
    assert find(text, "fleetcare_drift_items", host="db-1", category="files") == [3]  # changed, added, removed
    assert find(text, "fleetcare_drift_items", host="db-1", category="packages") == [0]
    assert not find(text, "fleetcare_drift_items", category="services")  # not in the snapshot: not judged
    # evidence (file names, package versions) never becomes a label value
    labels = {v for _, ls, _ in promstack.samples(text) for v in ls.values()}
    assert not labels & {"/etc/a", "/etc/b", "/etc/c", "curl", "pg-dump"}
    path = tmp_path / "backup.prom"
    path.write_text(text)
    checked = promtool_check(path)
    assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout + checked.stderr


@pytest.mark.parametrize(("capacity_days", "status"), [(None, "fail"), (5.0, "pass")])
def test_capacity_forecast_series(tmp_path, capacity_days, status):
    # 1 GB a day, 10 GB left: full in 10 days, within the default 14, beyond a host's 5
    days = list(range(10))
    with History(tmp_path / "h.db") as history:
        _feed(history, {"db-1": [(20 - d) * GB for d in days]}, days)
        run = _current({"db-1": 10 * GB}, 10, capacity_days=capacity_days)
        trends.judge(history, run)
    run.finish()
    path = prometheus.write(run, tmp_path)
    text = path.read_text()
    full = (T0 + timedelta(days=20)).timestamp()
    assert promstack.find(text, "fleetcare_filesystem_full_timestamp_seconds", host="db-1", mount="/") == [
        pytest.approx(full, abs=60)]
    assert promstack.find(text, "fleetcare_capacity_threshold_seconds", host="db-1") == [
        (capacity_days or 14.0) * 86400]
    assert promstack.find(text, "fleetcare_check_status", host="db-1", id="HLTH-CAP-001",
                          status=status) == [1]
    checked = promtool_check(path)
    assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout + checked.stderr

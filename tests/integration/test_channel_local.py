"""Findings get through whatever their size (issue 18, defect 1), for real on this machine.

ansible-runner replaces a module result longer than its event size limit
(``MAX_EVENT_RES``, 700,000 characters) with ``{}``. A 400 KB certificate path
makes the health module's result (its arguments echoed, the path again in the
evidence) cross that limit; the findings must still arrive, through the
``fleetcare.ops.findings`` callback, and when they cannot the host fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fleetcare import app, execute, jobs
from fleetcare.collection import health_checks
from fleetcare.history import History
from fleetcare.results import EXIT_HOSTS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
HEALTH_CHECKS = len(health_checks.CHECKS) + 1  # the module\'s checks and HLTH-CAP-001, judged on the controller
BIG_PATH = "/x/" + "A" * 400_000


@pytest.fixture
def big_vars(tmp_path: Path) -> Path:
    path = tmp_path / "big.yml"
    path.write_text(yaml.safe_dump({"health_cert_paths": [BIG_PATH]}))
    return path


def module_events(run_dir: Path) -> list[dict]:
    events = [json.loads(p.read_text()) for p in run_dir.glob("runner/artifacts/*/job_events/*.json")]
    return [e for e in events if e["event"] == "runner_on_ok"
            and e["event_data"].get("resolved_action") == "fleetcare.ops.health_inspect"]


def test_findings_over_the_event_size_limit_arrive_through_the_channel(tmp_path, big_vars):
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    proc = subprocess.run([sys.executable, str(ROOT / "runner.py"), "inspect", "--vars-file", str(big_vars),
                           "--fail-on", "critical"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    (run_dir,) = (tmp_path / "data" / "fleetcare" / "runs").iterdir()
    # the runner really dropped the result from its event ...
    (event,) = module_events(run_dir)
    assert event["event_data"]["res"] == {}
    # ... and every check still reached the report, the certificate check with the long path
    report = json.loads((run_dir / "report.json").read_text())
    assert report["hosts"][0]["status"] == "ok"
    assert len(report["findings"]) == HEALTH_CHECKS
    (cert,) = [f for f in report["findings"] if f["id"] == "HLTH-CERT-001"]
    assert BIG_PATH in json.dumps(cert["evidence"])
    (line,) = (run_dir / "runner" / "artifacts").glob(f"*/{execute.FINDINGS_FILE}")
    record = json.loads(line.read_text())
    assert record["task_uuid"] == event["event_data"]["task_uuid"] and record["host"] == "localhost"


def test_a_module_result_lost_on_the_way_fails_the_host(tmp_path, big_vars, monkeypatch):
    """The channel broken (its file cannot be created) and the event over the
    limit: the module ran, nothing arrived; that is a failed host, never clean."""
    monkeypatch.setattr(execute, "FINDINGS_FILE", "no-such-dir/findings.jsonl")
    job = jobs.build("inspect", vars_files=(str(big_vars),))
    with History(tmp_path / "history.db") as history:
        outcome = app.run_job(job, history, tmp_path / "runs", progress_stream=None)
    assert module_events(outcome.run_dir)[0]["event_data"]["res"] == {}
    host = outcome.run.hosts["localhost"]
    assert host.status == "failed"
    assert "findings never arrived" in host.message
    assert outcome.run.exit_code == EXIT_HOSTS
    assert list(outcome.run.findings()) == []

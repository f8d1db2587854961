"""A wrapper that dies mid-run, for real: `fleetcare inspect` of this machine
killed with SIGKILL while Ansible works, and one whose stdout was closed. The
run each leaves `running` in history is marked `abandoned` by the next
`fleetcare history`, because its process is gone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fleetcare.history import History

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data(tmp_path):
    """The data directory of the runs; afterwards, every process still carrying
    it in its environment (Ansible's, orphaned by the kill) is ended by pid."""
    path = tmp_path / "data"
    yield path
    mark = f"XDG_DATA_HOME={path}".encode()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if mark in environ.read_bytes().split(b"\0"):
                os.kill(int(environ.parent.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


def fleetcare(data: Path, *argv: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "XDG_DATA_HOME": str(data)}
    return subprocess.Popen([sys.executable, str(ROOT / "runner.py"), *argv], env=env, text=True, **kw)


def history_of(data: Path) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    proc = fleetcare(data, "history", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err, err
    with History(data / "fleetcare" / "history.db") as h:
        return out, {r["id"]: r["status"] for r in h.runs()}


def test_a_run_killed_with_sigkill_is_marked_abandoned(data):
    # a 4 s sampling window keeps the host busy, so the kill lands mid-run
    proc = fleetcare(data, "inspect", "-q", "-e", "health_sample_seconds=4",
                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    started = []
    while not started and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        started = [p for p in data.glob("fleetcare/runs/*/runner/artifacts/*/job_events/*.json")
                   if '"runner_on_start"' in p.read_text(errors="replace")]
    assert started and proc.poll() is None, proc.stderr.read() if proc.poll() is not None else "no events"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    (run_dir,) = (data / "fleetcare" / "runs").iterdir()
    assert not (run_dir / "report.json").exists()

    with History(data / "fleetcare" / "history.db") as h:
        assert h.load(run_dir.name).status == "running"  # what the killed wrapper left
    out, status = history_of(data)
    assert status == {run_dir.name: "abandoned"}
    assert run_dir.name in out and "abandoned" in out
    assert history_of(data)[1] == status  # once marked, it stays so
    report = fleetcare(data, "report", run_dir.name, "--format", "json", stdout=subprocess.PIPE)
    assert json.loads(report.communicate(timeout=60)[0])["run"]["status"] == "abandoned"


def test_a_run_whose_stdout_was_closed_is_marked_abandoned(data):
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = fleetcare(data, "inspect", stdout=write_end, stderr=subprocess.PIPE)
    finally:
        os.close(write_end)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141 and "Traceback" not in err, err
    _, status = history_of(data)
    assert list(status.values()) == ["abandoned"]

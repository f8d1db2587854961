"""fleetcare.ops.findings: the callback side of the findings channel, loaded the
way Ansible loads it (by collection name, options from its DOCUMENTATION), in a
fresh interpreter so no other test's plugin loader set-up is in the way."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

from fleetcare.results import Run

ROOT = Path(__file__).resolve().parents[3]
DRIVE = textwrap.dedent("""
    import json, sys
    from types import SimpleNamespace
    from ansible.plugins.loader import callback_loader, init_plugin_loader
    init_plugin_loader([sys.argv[1]])
    cb = callback_loader.get("fleetcare.ops.findings")
    cb.set_options(direct={"path": sys.argv[2]} if len(sys.argv) > 2 else None)
    for res in json.loads(sys.stdin.read()):
        cb.v2_runner_on_ok(SimpleNamespace(_result=res, _host=SimpleNamespace(get_name=lambda: "web-1"),
                                           _task=SimpleNamespace(_uuid="task-7")))
    cb.v2_playbook_on_stats(None)
""")


def drive(results: list[dict], *argv: str, cwd: Path) -> None:
    subprocess.run([sys.executable, "-c", DRIVE, str(ROOT / ".collections"), *argv], input=json.dumps(results),
                   text=True, check=True, cwd=cwd, timeout=60)


def test_each_payload_is_one_private_json_line_that_the_run_takes(tmp_path):
    out = tmp_path / "findings.jsonl"
    payload = {"contract": 1, "role": "health", "findings": [
        {"id": "HLTH-DISK-001", "title": "t", "severity": "major", "status": "pass"}], "expected": 1}
    # the second result is not a fleetcare one: nothing is written for it
    drive([{"changed": False, "fleetcare": payload}, {"changed": False}], str(out), cwd=tmp_path)
    (line,) = out.read_text().splitlines()
    record = json.loads(line)
    assert record == {"host": "web-1", "task_uuid": "task-7", "payload": payload}
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    run = Run(id="x", command="inspect")
    run.feed({"event": "fleetcare_payload", "event_data": record})
    assert [f.id for f in run.findings()] == ["HLTH-DISK-001"]


def test_without_a_path_the_callback_does_nothing(tmp_path):
    drive([{"fleetcare": {"contract": 1}}], cwd=tmp_path)
    assert list(tmp_path.iterdir()) == []

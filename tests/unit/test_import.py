"""`fleetcare import PATH`: a run made without the wrapper, read back into history and reports
(fleetcare/ingest.py). The end-to-end proof with a real ansible-playbook is
tests/integration/test_installed.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleetcare import cli
from fleetcare.history import History
from fleetcare.ingest import RESULTS_FILE

from .conftest import finding, load_events


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_artifacts(base: Path, events: list[dict], ident: str = "abc") -> Path:
    job_events = base / "artifacts" / ident / "job_events"
    job_events.mkdir(parents=True)
    for n, event in enumerate(events, 1):
        event = {**event, "counter": n, "uuid": event.get("uuid") or f"u{n}"}
        (job_events / f"{n}-{event['uuid']}.json").write_text(json.dumps(event))
    return job_events.parent


def test_a_runner_private_data_dir_is_read_back(capsys, tmp_path):
    write_artifacts(tmp_path / "pdd", load_events("local_inspect_events"))
    code, out, _ = run_cli(capsys, "import", str(tmp_path / "pdd"), "--fail-on", "critical")
    assert code == 0, out
    assert out.splitlines()[0].startswith(f"inspect · imported {tmp_path / 'pdd'} · run ")
    assert out.splitlines()[-1].startswith("exit 0: clean")
    with History() as h:
        run = h.load("latest")
    assert run.command == "inspect"  # named after the playbook the events name
    # the module's 16 and HLTH-CAP-001, judged on the controller as for a run of the wrapper
    assert len({f.id for f in run.findings()}) == len(list(run.findings())) == 17
    assert run.hosts["localhost"].findings[-1].id == "HLTH-CAP-001"
    assert run.hosts["localhost"].status == "ok"
    run_dir = Path(out.split("reports: ")[1].split("report.")[0])
    assert {p.name for p in run_dir.iterdir()} == {"report.json", "report.html", "report.md"}


def test_partial_events_count_once(capsys, tmp_path):
    artifacts = write_artifacts(tmp_path, load_events("local_inspect_events"))
    finished = sorted((artifacts / "job_events").glob("*.json"), key=lambda p: int(p.name.split("-")[0]))
    ok = next(p for p in finished if "fleetcare" in json.loads(p.read_text())["event_data"].get("res", {}))
    event = json.loads(ok.read_text())
    # the same event twice (processed and still partial), and one only partial: a run cut short
    (artifacts / "job_events" / f"{event['uuid']}-partial.json").write_text(ok.read_text())
    code, _, _ = run_cli(capsys, "import", str(artifacts), "--fail-on", "critical", "-q")
    with History() as h:
        assert len(list(h.load("latest").findings())) == 17  # 16 from the module, HLTH-CAP-001
    assert code == 0


def test_payloads_come_from_the_results_file_when_there_is_one(capsys, tmp_path):
    events = [
        {"event": "playbook_on_start", "event_data": {"playbook": "fleetcare.ops.audit"}},
        # the runner cut the payload short: only the results file has it whole
        {"event": "runner_on_ok", "event_data": {"host": "web-1", "task": "Audit", "res": {
            "changed": False, "fleetcare": {"contract": 1, "role": "hardening", "findings": [
                finding("HARD-SSH-001", status="pass")]}}}},
        {"event": "playbook_on_stats", "event_data": {"ok": {"web-1": 1}}},
    ]
    artifacts = write_artifacts(tmp_path, events)
    payload = {"contract": 1, "role": "hardening",
               "findings": [finding("HARD-SSH-001"), finding("HARD-SSH-002", status="pass")]}
    (artifacts / RESULTS_FILE).write_text(json.dumps({"host": "web-1", "payload": payload}) + "\n")
    code, _, _ = run_cli(capsys, "import", str(artifacts), "-q")
    assert code == 1
    with History() as h:
        run = h.load("latest")
    assert run.command == "audit"
    assert sorted((f.id, f.status) for f in run.findings()) == [("HARD-SSH-001", "fail"), ("HARD-SSH-002", "pass")]


def json_callback_doc(playbook: str = "/x/ansible_collections/fleetcare/ops/playbooks/inspect.yml") -> dict:
    res = {"changed": False, "action": "fleetcare.ops.health_inspect",
           "fleetcare": {"contract": 1, "role": "health", "findings": [finding(severity="critical")],
                         "metrics": [{"name": "load1", "value": 0.5}]}}
    return {"plays": [{"play": {"name": "Inspect host health", "path": f"{playbook}:4"}, "tasks": [
        {"task": {"name": "Inspect host health and report findings"}, "hosts": {
            "db-1": res,
            "db-2": {"unreachable": True, "msg": "ssh: connect to host db-2 port 22: Connection refused"}}}]}],
            "stats": {"db-1": {"ok": 1, "failures": 0, "unreachable": 0},
                      "db-2": {"ok": 0, "failures": 0, "unreachable": 1}}}


def test_the_ansible_posix_json_callback_output_is_read_back(capsys, tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(json_callback_doc()))
    code, out, _ = run_cli(capsys, "import", str(path))
    assert code == 3
    assert "unreachable db-2: ssh: connect to host db-2" in out
    with History() as h:
        run = h.load("latest")
    assert run.command == "inspect" and run.hosts["db-1"].status == "ok"
    assert [(f.host, f.id, f.severity) for f in run.findings()] == [("db-1", "HLTH-DISK-001", "critical")]
    assert [m.name for m in run.metrics()] == ["load1"]


def test_a_playbook_that_is_no_command_imports_as_import(capsys, tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(json_callback_doc("/srv/site.yml")))
    run_cli(capsys, "import", str(path), "-q")
    with History() as h:
        assert h.load("latest").command == "import"


@pytest.mark.parametrize(("make", "needles"), [
    (lambda d: d / "nope", ("nope", "not found")),
    (lambda d: d, ("no ansible-runner artifacts",)),
    (lambda d: (d / "x.json").write_text("{not json") and d / "x.json", ("x.json", "not JSON")),
    (lambda d: (d / "x.json").write_text("[1]") and d / "x.json", ("x.json", "ansible.posix.json")),
])
def test_bad_input_is_one_line(capsys, tmp_path, make, needles):
    code, _, err = run_cli(capsys, "import", str(make(tmp_path)))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    for needle in needles:
        assert needle in err


def test_a_bad_results_file_line_is_named(capsys, tmp_path):
    artifacts = write_artifacts(tmp_path, [{"event": "playbook_on_stats", "event_data": {}}])
    (artifacts / RESULTS_FILE).write_text('{"host": "a", "payload": {}}\n{"hostname": "b"}\n')
    code, _, err = run_cli(capsys, "import", str(tmp_path))
    assert code == 2 and f"{RESULTS_FILE}: line 2" in err


def test_two_runs_in_one_directory_must_be_told_apart(capsys, tmp_path):
    events = load_events("local_inspect_events")
    write_artifacts(tmp_path, events, "one")
    write_artifacts(tmp_path, events, "two")
    code, _, err = run_cli(capsys, "import", str(tmp_path))
    assert code == 2 and "holds 2 runs" in err
    code, _, _ = run_cli(capsys, "import", str(tmp_path / "artifacts" / "two"), "--fail-on", "critical", "-q")
    assert code == 0

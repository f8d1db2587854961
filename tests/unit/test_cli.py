"""The command line: exit codes, one-line errors for bad input, run
directories, history and report rebuilds. Ansible is replaced by a fake that
replays runner events (tests/unit/conftest.py); test_inspect_local runs it for real."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from fleetcare import app, cli
from fleetcare.history import History

from .conftest import finding, ok_event, stats_event, unreachable_event


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "fleet.yml"
    path.write_text("all:\n  children:\n    web:\n      hosts:\n        web-1:\n        web-2:\n"
                    "    db:\n      hosts:\n        db-1:\n")
    return path


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *needles):
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


# -- bad input: one line, the file and the key, exit 2 --------------------------------
def test_missing_inventory(capsys, tmp_path):
    code, _, err = run_cli(capsys, "inspect", "-i", str(tmp_path / "nope.yml"))
    assert_one_line_error(code, err, "nope.yml", "inventory not found")


def test_inventory_with_a_yaml_error(capsys, tmp_path):
    bad = tmp_path / "broken.yml"
    bad.write_text("all:\n  hosts:\n    web-1: [\n")
    code, _, err = run_cli(capsys, "inspect", "-i", str(bad))
    assert_one_line_error(code, err, "broken.yml", "line", "YAML error")


def test_inventory_with_a_misspelt_key(capsys, tmp_path):
    bad = tmp_path / "typo.yml"
    bad.write_text("all:\n  hostz:\n    web-1:\n")
    code, _, err = run_cli(capsys, "inspect", "-i", str(bad))
    assert_one_line_error(code, err, "typo.yml", "hostz")


def test_limit_matching_nothing(capsys, inventory):
    code, _, err = run_cli(capsys, "inspect", "-i", str(inventory), "--limit", "mail")
    assert_one_line_error(code, err, "--limit", "mail")


def test_unknown_role_variable_names_the_key_and_suggests(capsys):
    code, _, err = run_cli(capsys, "inspect", "-e", "health_disk_wran_pct=80")
    assert_one_line_error(code, err, "-e", "health_disk_wran_pct", "did you mean")


def test_mistyped_role_variable_in_a_vars_file(capsys, tmp_path):
    from fleetcare.jobs import argument_spec

    spec = argument_spec("health")
    key = next(k for k, v in spec.items() if v.get("type") in ("int", "float"))
    varsfile = tmp_path / "vars.yml"
    varsfile.write_text(f"{key}: lots\n")
    code, _, err = run_cli(capsys, "inspect", "--vars-file", str(varsfile))
    assert_one_line_error(code, err, "vars.yml", key)


def test_vars_file_with_a_yaml_error(capsys, tmp_path):
    varsfile = tmp_path / "vars.yml"
    varsfile.write_text("health_cert_paths: [a, b\n")
    code, _, err = run_cli(capsys, "inspect", "--vars-file", str(varsfile))
    assert_one_line_error(code, err, "vars.yml", "YAML error")


def test_bad_fail_on(capsys):
    code, _, err = run_cli_exit(capsys, "inspect", "--fail-on", "urgent")
    assert_one_line_error(code, err, "--fail-on", "urgent")


def test_unknown_command(capsys):
    code, _, err = run_cli_exit(capsys, "inspekt")
    assert_one_line_error(code, err, "inspekt")


def test_unwritable_output_directory(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = run_cli(capsys, "inspect", "--output-dir", str(blocker / "runs"))
    assert_one_line_error(code, err, "a-file/runs", "not writable")


def test_corrupt_history_database(capsys, tmp_path):
    db = tmp_path / "history.db"
    db.write_bytes(b"\x00garbage" * 512)
    code, _, err = run_cli(capsys, "history", "--db", str(db))
    assert_one_line_error(code, err, "history.db", "not a usable")
    code, _, err = run_cli(capsys, "inspect", "--db", str(db))
    assert_one_line_error(code, err, "history.db")


def test_report_of_an_unknown_run(capsys):
    code, _, err = run_cli(capsys, "report", "20991231")
    assert_one_line_error(code, err, "20991231")


def run_cli_exit(capsys, *argv):
    """argparse errors leave through SystemExit; the exit code is what counts."""
    with pytest.raises(SystemExit) as exc:
        cli.main(list(argv))
    _, err = capsys.readouterr()
    return exc.value.code, "", err


# -- runs with the fake runner --------------------------------------------------------
def fleet_events():
    return [
        ok_event("web-1", [finding(), finding("HLTH-MEM-001", status="pass")]),
        ok_event("web-2", [finding(status="pass"), finding("HLTH-MEM-001", status="pass")]),
        ok_event("db-1", [finding(severity="critical", used_pct=99.0), finding("HLTH-MEM-001", "pass")]),
        stats_event(["web-1", "web-2", "db-1"]),
    ]


def test_inspect_writes_reports_history_and_exits_1(capsys, fake_runner, inventory, data_home):
    fake = fake_runner(fleet_events())
    code, out, _ = run_cli(capsys, "inspect", "-i", str(inventory))
    assert code == 1
    assert fake.jobs[0].hosts == ("web-1", "web-2", "db-1")
    assert "critical HLTH-DISK-001" in out and "db-1" in out
    assert out.strip().splitlines()[-1].startswith("exit 1: findings at or above major")
    run_dirs = list((data_home / "fleetcare" / "runs").iterdir())
    assert len(run_dirs) == 1
    run_dir = run_dirs[0]
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    assert {p.name for p in run_dir.iterdir()} >= {"report.json", "report.html", "report.md", "runner"}
    report = json.loads((run_dir / "report.json").read_text())
    assert report["run"]["exit_code"] == 1 and report["run"]["status"] == "complete"
    with History() as h:
        # the comparison is computed from history, so a rebuilt report carries the same one
        assert json.loads(app.rebuild_report(h, "latest", "json")) == report


def test_fail_on_critical_passes_a_major_failure(capsys, fake_runner, inventory):
    fake_runner([*fleet_events()[:2], stats_event(["web-1", "web-2"])])
    code, out, _ = run_cli(capsys, "inspect", "-i", str(inventory), "--limit", "web", "--fail-on", "critical")
    assert code == 0, out


def test_unreachable_host_exits_3_and_keeps_the_others(capsys, fake_runner, inventory):
    events = fleet_events()
    events[2] = unreachable_event("db-1", "ssh: connect to host 127.0.0.1 port 2222: Connection refused")
    events[3] = stats_event(["web-1", "web-2"], dark=["db-1"])
    fake_runner(events)
    code, out, _ = run_cli(capsys, "inspect", "-i", str(inventory))
    assert code == 3
    assert "unreachable db-1: ssh: connect to host" in out
    with History() as h:
        run = h.load("latest")
    assert {f.host for f in run.findings()} == {"web-1", "web-2"}


def test_sigterm_mid_run_exits_4_and_keeps_partial_results(capsys, fake_runner, inventory):
    fake_runner(fleet_events(), term_after=1)
    code, out, _ = run_cli(capsys, "inspect", "-i", str(inventory))
    assert code == 4
    assert "interrupted" in out.splitlines()[-1]
    with History() as h:
        run = h.load("latest")
    assert run.status == "interrupted" and run.exit_code == 4
    assert [f.host for f in run.findings()] == ["web-1", "web-1"]
    assert run.hosts["db-1"].status == "pending"


def test_report_rebuilds_every_format_from_history(capsys, fake_runner, inventory, tmp_path):
    fake_runner(fleet_events())
    run_cli(capsys, "inspect", "-i", str(inventory), "-q")
    with History() as h:
        run_id = h.resolve("latest")
    for fmt in ("json", "md", "html"):
        code, out, _ = run_cli(capsys, "report", run_id[:17], "--format", fmt)
        assert code == 0 and "db-1" in out
    code, out, _ = run_cli(capsys, "report", "latest", "--format", "json", "-o", str(tmp_path / "r.json"))
    assert json.loads((tmp_path / "r.json").read_text())["run"]["id"] == run_id
    code, _, err = run_cli(capsys, "report", "latest", "--format", "pdf")
    assert_one_line_error(code, err, "--format", "pdf")


def test_history_lists_runs(capsys, fake_runner, inventory):
    fake_runner(fleet_events())
    run_cli(capsys, "inspect", "-i", str(inventory), "-q")
    code, out, _ = run_cli(capsys, "history")
    assert code == 0 and "inspect" in out and "3 hosts" in out and "2 failing" in out


def test_progress_is_quiet_when_not_a_tty(capsys, fake_runner, inventory):
    fake_runner(fleet_events())
    _, _, err = run_cli(capsys, "inspect", "-i", str(inventory))
    assert "hosts" not in err


def test_progress_on_a_terminal(fake_runner, inventory, tmp_path):
    import io

    from fleetcare import app, jobs

    class Tty(io.StringIO):
        def isatty(self):
            return True

    fake_runner(fleet_events())
    stream = Tty()
    job = jobs.build("inspect", inventory=str(inventory))
    with History(tmp_path / "h.db") as h:
        app.run_job(job, h, tmp_path / "runs", progress_stream=stream)
    text = stream.getvalue()
    assert "1/3 hosts" in text and "3/3 hosts" in text and "1 failing" in text


# -- help and docs -----------------------------------------------------------------------
def _commands(parser):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                for child, subsub in _commands(sub):
                    yield f"{name} {child}", subsub


def test_every_command_has_help_and_is_in_the_readme():
    from fleetcare import commands
    from fleetcare.jobs import ROOT

    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("<!-- BEGIN COMMANDS -->"):readme.index("<!-- END COMMANDS -->")]
    parser = cli.build_parser()
    found = list(_commands(parser))
    assert [name for name, _ in found if " " not in name] == list(commands.COMMANDS)  # the registry, in order
    for name, _sub in found:
        assert f"fleetcare {name}" in readme, f"README does not mention 'fleetcare {name}'"
        if " " not in name:
            entry = commands.get(name)
            assert entry.help.strip(), f"{name} has no help text"
            assert entry.help in " ".join(parser.format_help().split()), name
            assert f"| `fleetcare {name}" in table and entry.help in table, f"README command table lacks {name}"


def test_runner_py_is_the_same_entry_point():
    import subprocess

    from fleetcare.jobs import ROOT

    out = subprocess.run([sys.executable, str(ROOT / "runner.py"), "--version"], capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONPATH": ""})
    assert out.stdout.startswith("fleetcare ")


def test_replay_of_a_recorded_local_inspection(capsys, fake_runner):
    """Events recorded from a real `fleetcare inspect` of a machine (fixtures/)."""
    from .conftest import load_events

    fake_runner(load_events("local_inspect_events"))
    code, out, _ = run_cli(capsys, "inspect", "--fail-on", "critical")
    with History() as h:
        run = h.load("latest")
    ids = sorted(f.id for f in run.findings())
    assert len(ids) == len(set(ids)) == 17  # one finding per check, and the controller's capacity forecast
    (cap,) = [f for f in run.findings() if f.id == "HLTH-CAP-001"]
    assert cap.status == "not_applicable" and "1 point, need 4" in cap.evidence["reason"]  # a first run
    assert {"HLTH-DISK-001", "HLTH-UNIT-001", "HLTH-BKUP-001"} <= set(ids)
    assert run.hosts["localhost"].status == "ok"
    assert code == 0 and out.splitlines()[-1].startswith("exit 0: clean")


# -- hardening commands --------------------------------------------------------------------
def test_explain_prints_the_record(capsys):
    code, out, _ = run_cli(capsys, "explain", "HARD-SSH-001")
    assert code == 0
    for needle in ("HARD-SSH-001", "severity", "Why", "How to fix", "References"):
        assert needle in out


def test_a_reader_that_left_ends_quietly(tmp_path):
    # `fleetcare explain ID | head -1`: the pipe is closed before the first write.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "fleetcare.cli", "explain", "HARD-SSH-001"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, check=False, timeout=60)
    finally:
        os.close(write_end)
    assert proc.returncode == 141
    assert proc.stderr == ""


def test_explain_unknown_control_suggests(capsys):
    code, _, err = run_cli(capsys, "explain", "HARD-SSH-1")
    assert_one_line_error(code, err, "HARD-SSH-1", "did you mean")


@pytest.mark.parametrize("option", ["--controls", "--skip"])
def test_control_pattern_matching_nothing(capsys, option):
    code, _, err = run_cli(capsys, "harden", option, "HARD-NOPE-*")
    assert_one_line_error(code, err, option, "HARD-NOPE-*")


def test_harden_maps_switches_and_check_mode_onto_the_job(capsys, fake_runner, inventory):
    fake = fake_runner([ok_event("web-1", [finding("HARD-SSH-002", status="pass")], role="hardening"),
                        {"event": "runner_on_ok", "event_data": {"host": "web-1", "task": "Apply sysctl", "res": {
                            "changed": True, "results": [{"changed": True, "item": {"id": "HARD-KERN-001"}}]}}},
                        stats_event(["web-1"])])
    code, out, _ = run_cli(capsys, "harden", "-i", str(inventory), "--limit", "web-1", "--check",
                           "--controls", "HARD-SSH-*", "--skip", "HARD-SSH-001")
    job = fake.jobs[0]
    assert job.check and job.playbook.name == "harden.yml"
    assert job.extravars["hardening_controls_only"] == ["HARD-SSH-*"]
    assert job.extravars["hardening_controls_skip"] == ["HARD-SSH-001"]
    assert code == 0
    assert "check mode" in out.splitlines()[0]
    assert "would change web-1: Apply sysctl: HARD-KERN-001" in out
    with History() as h:
        run = h.load("latest")
    assert run.check and run.command == "harden"


def test_audit_runs_the_audit_playbook(capsys, fake_runner):
    fake = fake_runner([ok_event("localhost", [finding("HARD-SSH-002")], role="hardening"),
                        stats_event(["localhost"])])
    code, _, _ = run_cli(capsys, "audit")
    assert fake.jobs[0].playbook.name == "audit.yml" and not fake.jobs[0].check
    assert code == 1


def test_backup_drill_is_the_backup_run_with_the_drill_before_the_audit(capsys, fake_runner, inventory):
    fake = fake_runner([stats_event(["web-1", "web-2", "db-1"])])
    run_cli(capsys, "backup", "drill", "-i", str(inventory), "-e", "backup_drill_files=5")
    job = fake.jobs[0]
    assert job.command == "backup" and job.playbook.name == "backup.yml"
    assert job.extravars["backup_drill_run"] is True and job.extravars["backup_drill_files"] == 5
    fake = fake_runner([stats_event(["web-1", "web-2", "db-1"])])
    run_cli(capsys, "backup", "-i", str(inventory))
    assert "backup_drill_run" not in fake.jobs[0].extravars


@pytest.mark.parametrize(("argv", "needle"), [
    (("backup", "restore"), "unknown action 'restore'"),
    (("backup", "drill", "--check"), "--check"),
])
def test_backup_bad_actions_are_one_line(capsys, fake_runner, inventory, argv, needle):
    fake = fake_runner([])
    code, _, err = run_cli(capsys, *argv, "-i", str(inventory))
    assert_one_line_error(code, err, needle)
    assert fake.jobs == []

"""Faults around history through the command line: a save that fails after the
run (a real SQLite lock), re-importing the run, files that are not a fleetcare
history, and the modes of what the user owns. Ansible is the replaying fake of
conftest.py; the real runs are in tests/integration/test_history_faults.py."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat

import pytest

from fleetcare import app, history, reports
from fleetcare.history import History

from .conftest import FakeRunner, finding, ok_event, stats_event
from .test_cli import assert_one_line_error, run_cli
from .test_history import FOREIGN, _damaged, _foreign, _run


def events():
    return [ok_event("web-1", [finding(), finding("HLTH-MEM-001", status="pass")]),
            ok_event("db-1", [finding(status="pass")]), stats_event(["web-1", "db-1"])]


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "fleet.yml"
    path.write_text("all:\n  hosts:\n    web-1:\n    db-1:\n")
    return path


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- the save fails after the run: reports first, exit 5, import later ----------------------
class LockedAtTheEnd(FakeRunner):
    """Replays the run, then another process takes the database's write lock
    and keeps it (a second real SQLite connection): the final save times out."""

    def __init__(self, db_path):
        super().__init__(events())
        self.db_path, self.locker = db_path, None

    def __call__(self, *args):
        status = super().__call__(*args)
        self.locker = sqlite3.connect(self.db_path, isolation_level=None)
        self.locker.execute("BEGIN EXCLUSIVE")
        return status


def test_a_locked_history_at_the_end_loses_no_run(capsys, monkeypatch, tmp_path, inventory, data_home):
    db = tmp_path / "h.db"
    monkeypatch.setattr(history, "BUSY_TIMEOUT", 0.2)
    fake = LockedAtTheEnd(db)
    monkeypatch.setattr(app, "execute", fake)
    code, out, err = run_cli(capsys, "inspect", "-i", str(inventory), "--db", str(db))
    fake.locker.rollback()
    fake.locker.close()

    assert code == app.EXIT_HISTORY == 5
    (run_dir,) = (data_home / "fleetcare" / "runs").iterdir()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "locked" in lines[0] and f"fleetcare import {run_dir}" in lines[0] and "h.db" in lines[0]
    assert out.strip().splitlines()[-1].startswith("exit 1: findings at or above major")
    report = json.loads((run_dir / "report.json").read_text())
    assert report["run"]["exit_code"] == 1 and report["run"]["status"] == "complete"
    assert {p.name for p in run_dir.iterdir()} >= {"report.json", "report.html", "report.md"}
    with History(db) as h:  # only its start is recorded, by a process still alive: left running
        assert h.load(report["run"]["id"]).status == "running"

    for _ in range(2):  # importing is idempotent
        code, out, _ = run_cli(capsys, "import", str(run_dir), "--db", str(db))
        assert code == 0 and report["run"]["id"] in out
    with History(db) as h:
        assert [r["id"] for r in h.runs()] == [report["run"]["id"]]
        assert json.loads(app.rebuild_report(h, "latest", "json")) == report


def test_import_reads_only_a_valid_report(capsys, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    code, _, err = run_cli(capsys, "import", str(run_dir))
    assert_one_line_error(code, err, "run/report.json", "no such file")
    (run_dir / "report.json").write_text("{not json")
    code, _, err = run_cli(capsys, "import", str(run_dir))
    assert_one_line_error(code, err, "report.json", "not a JSON report")
    (run_dir / "report.json").write_text(json.dumps({"schema_version": 1, "run": {}}))
    code, _, err = run_cli(capsys, "import", str(run_dir))
    assert_one_line_error(code, err, "report.json", "report schema")
    (run_dir / "report.json").write_bytes(b"\xff\xfe{}")
    code, _, err = run_cli(capsys, "import", str(run_dir))
    assert_one_line_error(code, err, "report.json", "UTF-8")


def test_import_refuses_a_report_holding_nan(capsys, tmp_path, fake_runner, inventory, data_home):
    fake_runner(events())
    run_cli(capsys, "inspect", "-i", str(inventory), "-q", "--db", str(tmp_path / "first.db"))
    (run_dir,) = (data_home / "fleetcare" / "runs").iterdir()
    text = (run_dir / "report.json").read_text()
    (run_dir / "report.json").write_text(text.replace('"used_pct":97.1', '"used_pct":NaN'))
    code, _, err = run_cli(capsys, "import", str(run_dir), "--db", str(tmp_path / "second.db"))
    assert_one_line_error(code, err, "report.json", "NaN")
    with History(tmp_path / "second.db") as h:
        assert h.runs() == []


# -- files that are not a fleetcare history: one line, exit 2, untouched ------------------
@pytest.mark.parametrize("kind", [*FOREIGN, "a damaged page"])
def test_every_command_refuses_a_foreign_or_damaged_database(capsys, tmp_path, kind, inventory, monkeypatch,
                                                             data_home):
    db = _damaged(tmp_path) if kind == "a damaged page" else _foreign(tmp_path, kind)
    before = _sha(db)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "report.json").write_text(reports.render(_run("20261126-000000-ffff"), "json"))
    fake = FakeRunner(events())
    monkeypatch.setattr(app, "execute", fake)
    for argv in (["history"], ["report", "latest"], ["inspect", "-i", str(inventory)],
                 ["import", str(tmp_path / "run")]):
        code, _, err = run_cli(capsys, *argv, "--db", str(db))
        assert_one_line_error(code, err, db.name, "not a usable fleetcare history database")
    assert fake.jobs == []  # no host was contacted
    assert not list((data_home / "fleetcare" / "runs").iterdir())  # and no run directory left behind
    assert _sha(db) == before


# -- modes of what the user owns -------------------------------------------------------------
def test_output_dir_keeps_its_mode_and_the_run_directory_is_0700(capsys, fake_runner, inventory, tmp_path):
    shared = tmp_path / "shared-runs"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o755)
    os.chmod(target, 0o755)
    (tmp_path / "link").symlink_to(target)
    for out_dir, mode in ((shared, 0o1777), (tmp_path / "link", 0o755)):
        fake_runner(events())
        run_cli(capsys, "inspect", "-i", str(inventory), "-q", "--output-dir", str(out_dir))
        assert stat.S_IMODE(out_dir.stat().st_mode) == mode
        (run_dir,) = out_dir.iterdir()
        assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    new = tmp_path / "new-runs"
    fake_runner(events())
    run_cli(capsys, "inspect", "-i", str(inventory), "-q", "--output-dir", str(new))
    assert stat.S_IMODE(new.stat().st_mode) == 0o700  # created by fleetcare


def test_report_output_file_is_created_0600_and_an_existing_one_keeps_its_mode(capsys, fake_runner, inventory,
                                                                                 tmp_path):
    fake_runner(events())
    run_cli(capsys, "inspect", "-i", str(inventory), "-q")
    new, existing = tmp_path / "new.md", tmp_path / "existing.md"
    existing.write_text("old")
    os.chmod(existing, 0o644)
    for path in (new, existing):
        code, out, _ = run_cli(capsys, "report", "latest", "-o", str(path))
        assert code == 0 and out.strip() == str(path)
        assert "web-1" in path.read_text()
    assert stat.S_IMODE(new.stat().st_mode) == 0o600
    assert stat.S_IMODE(existing.stat().st_mode) == 0o644


def test_db_option_expands_the_home_directory(capsys, fake_runner, inventory, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    fake_runner(events())
    code, _, _ = run_cli(capsys, "inspect", "-i", str(inventory), "-q", "--db", "~/fc/h.db")
    assert code == 1
    assert (tmp_path / "fc" / "h.db").is_file() and not (tmp_path / "~").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_a_database_owned_by_another_user_is_used_as_it_is(capsys):
    """A shared history (root's, writable by all) opened by another user: no
    chmod is tried, so no traceback, and its mode and owner are kept. The
    command runs in this process with the effective uid of 'nobody'."""
    import pwd
    import tempfile

    nobody = pwd.getpwnam("nobody")
    with tempfile.TemporaryDirectory() as top:  # pytest's tmp_path is private to root
        os.chmod(top, 0o755)
        shared = os.path.join(top, "shared")
        os.mkdir(shared)
        os.chmod(shared, 0o1777)
        db = os.path.join(shared, "history.db")
        with History(db) as h:
            h.save(_run())
        os.chmod(db, 0o666)
        os.setegid(nobody.pw_gid)
        os.seteuid(nobody.pw_uid)
        try:
            code, out, err = run_cli(capsys, "history", "--db", db)
        finally:
            os.seteuid(0)
            os.setegid(0)
        assert "Traceback" not in err and code == 0, err
        assert _run().id in out
        assert stat.S_IMODE(os.stat(db).st_mode) == 0o666 and os.stat(db).st_uid == 0

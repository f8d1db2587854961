"""History in a real SQLite file: round trip, lookup by prefix, corruption, upgrades
from earlier schemas, files that are not ours, modes, runs whose wrapper died."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys

import pytest

from fleetcare.history import APPLICATION_ID, SCHEMA_VERSION, History, HistoryError, default_path
from fleetcare.results import validate

from .conftest import FIXTURES, build_run, finding, ok_event, stats_event, unreachable_event


def _run(run_id="20261125-092000-abcd"):
    run = build_run([ok_event("a", [finding(), finding("HLTH-UNIT-001", status="pass", units=["x<y>"])],
                              [{"name": "load_per_core", "value": 0.25, "unit": "", "labels": {}}]),
                     unreachable_event("b"), stats_event(["a"], dark=["b"])], hosts=("a", "b"))
    run.id = run_id
    run.finish()
    return run


def test_round_trip_keeps_everything(tmp_path):
    run = _run()
    with History(tmp_path / "h.db") as h:
        h.save(run)
    with History(tmp_path / "h.db") as h:
        again = h.load(run.id)
    assert again.to_report() == run.to_report()


def test_a_fail_on_overdue_run_is_one_when_read_back_and_its_report_says_so(tmp_path):
    from fleetcare.reports import html

    run = _run()
    run.fail_on_overdue, run.exit_code = True, 0
    with History(tmp_path / "h.db") as h:
        h.save(run)
        h.save(_run("20261125-093000-eeee"))  # and one without, beside it
    with History(tmp_path / "h.db") as h:
        again, other = h.load(run.id), h.load("20261125-093000-eeee")
        outlined = h.outline(run.id)
    assert again.fail_on_overdue and outlined.fail_on_overdue and not other.fail_on_overdue
    assert again.to_report()["run"]["fail_on_overdue"] is True
    # exit 0 here means no finding is overdue, not that nothing failed: the rebuilt report says which
    assert "0 (clean: no finding overdue)" in html.render(again)
    assert "no finding overdue" not in html.render(other)


def test_equal_evidence_on_many_hosts_is_stored_as_its_own_json_each_time(tmp_path):
    # save reuses the text of a check's last evidence when the next is equal: values equal in
    # Python but not in JSON (1, true, 1.0; 0.0, -0.0; keys in another order) keep their own text
    evidences = [{"a": 1}, {"a": True}, {"a": 1.0}, {"a": -0.0}, {"a": 0.0}, {"b": 1, "a": 1},
                 {"a": 1, "b": 1}, {"a": 1, "b": 1}, {"a": None}, {"a": "x"}, {"a": "x"}, {"a": [1]},
                 {"a": [True]}, {"a": 0}, {"a": False}]
    hosts = [f"h{i:02d}" for i in range(len(evidences))]
    run = build_run([ok_event(h, [finding("HARD-SSH-001", status="pass", **ev)], role="hardening")
                     for h, ev in zip(hosts, evidences, strict=True)] + [stats_event(hosts)], hosts=tuple(hosts))
    run.finish()
    with History(tmp_path / "h.db") as h:
        h.save(run)
        stored = [text for (text,) in h._db.execute("SELECT evidence FROM findings ORDER BY rowid")]
        again = h.load(run.id)
    assert stored == [json.dumps(ev) for ev in evidences]
    assert again.to_report() == run.to_report()


def test_outline_holds_what_the_comparison_reads(tmp_path):
    run = _run()
    with History(tmp_path / "h.db") as h:
        h.save(run)
        light, full = h.outline(run.id[:8]), h.load(run.id)
    assert (light.id, light.command, light.started, list(light.hosts)) == (full.id, full.command, full.started,
                                                                          list(full.hosts))
    assert [(f.id, f.host, f.severity, f.status, f.open) for f in light.findings()] == \
        [(f.id, f.host, f.severity, f.status, f.open) for f in full.findings()]
    assert not any(f.evidence or f.title for f in light.findings()) and not list(light.metrics())


def test_default_path_follows_xdg_data_home(data_home):
    assert default_path() == data_home / "fleetcare" / "history.db"
    with History() as h:
        h.save(_run())
    assert (data_home / "fleetcare" / "history.db").stat().st_mode & 0o077 == 0


def test_save_replaces_an_earlier_save_of_the_same_run(tmp_path):
    run = _run()
    with History(tmp_path / "h.db") as h:
        h.begin(run)
        h.save(run)
        h.save(run)
        assert len(h.runs()) == 1
        assert len(list(h.load(run.id).findings())) == 2


def test_resolve_latest_and_prefix(tmp_path):
    with History(tmp_path / "h.db") as h:
        first, second = _run("20261125-090000-aaaa"), _run("20261125-100000-bbbb")
        first.started, second.started = "2026-11-25T09:00:00+00:00", "2026-11-25T10:00:00+00:00"
        h.save(first)
        h.save(second)
        assert h.resolve("latest") == second.id
        assert h.resolve("20261125-09") == first.id
        with pytest.raises(HistoryError, match="matches 2 runs"):
            h.resolve("20261125")
        with pytest.raises(HistoryError, match="no run"):
            h.resolve("1999")
        listed = h.runs()
        assert [r["id"] for r in listed] == [second.id, first.id]
        assert listed[0]["failing"] == 1 and listed[0]["hosts"] == 2


def test_metric_series_for_trends(tmp_path):
    with History(tmp_path / "h.db") as h:
        h.save(_run("r1"))
        h.save(_run("r2"))
        series = h.metric_series("a", "load_per_core")
    assert [v for _, v, _ in series] == [0.25, 0.25]


def test_corrupt_database_is_one_clear_error(tmp_path):
    bad = tmp_path / "h.db"
    bad.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(HistoryError, match=r"h\.db: not a usable fleetcare history database"):
        History(bad)


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "h.db"
    History(path).close()
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        db.execute("CREATE TABLE baselines (host TEXT)")  # a newer fleetcare may have more tables
    db.close()
    before = path.read_bytes()
    with pytest.raises(HistoryError, match=r"h\.db: history schema 99 is newer than this fleetcare understands"):
        History(path)
    assert path.read_bytes() == before


# -- upgrading a database written by an earlier fleetcare ---------------------------------
V1 = FIXTURES / "history" / "history-v1.db"


def _v1_copy(tmp_path):
    path = tmp_path / "history.db"
    shutil.copyfile(V1, path)
    return path


def test_a_schema_1_database_is_upgraded_in_place_keeping_every_run(tmp_path):
    """history-v1.db was written by fleetcare at 1ed302b (make_v1.py beside it); the
    runs as that code read them back are in history-v1-runs.json."""
    path = _v1_copy(tmp_path)
    expected = json.loads((FIXTURES / "history" / "history-v1-runs.json").read_text())
    with History(path) as h:
        # every stored value as that code read it; only the report's schema version moved on
        assert [{**h.load(r["id"]).to_report(), "schema_version": 1} for r in h.runs()] == expected
        assert h.metric_series("web-1", "disk_used_pct")[0][1] == 97.5
        h.save(_run("20261201-000000-dddd"))  # and it takes new runs
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    assert db.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
    columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
    assert {"host", "pid", "pid_start"} <= columns
    assert "first_seen" in {row[1] for row in db.execute("PRAGMA table_info(findings)")}
    assert db.execute("PRAGMA quick_check").fetchone() == ("ok",)
    db.close()
    with History(path) as h:  # opening again: nothing left to do, nothing lost
        assert len(h.runs()) == len(expected) + 1


def test_a_new_database_goes_through_the_same_steps(tmp_path):
    """Created fresh or upgraded from schema 1: the same tables and columns."""
    fresh, upgraded = tmp_path / "fresh.db", _v1_copy(tmp_path)
    History(fresh).close()
    History(upgraded).close()

    def shape(path):
        db = sqlite3.connect(path)
        tables = {name: [row[1:] for row in db.execute(f"PRAGMA table_info({name})")] for (name,) in
                  db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        db.close()
        return tables

    assert shape(fresh) == shape(upgraded)


def test_a_failing_step_leaves_the_database_as_it_was(tmp_path, monkeypatch):
    from fleetcare import history

    path = _v1_copy(tmp_path)
    before = path.read_bytes()
    broken = (*history.MIGRATIONS[2][:1], "ALTER TABLE no_such_table ADD COLUMN x TEXT")
    monkeypatch.setitem(history.MIGRATIONS, 2, broken)
    with pytest.raises(HistoryError, match="no_such_table"):
        History(path)
    db = sqlite3.connect(path)
    assert "host" not in {row[1] for row in db.execute("PRAGMA table_info(runs)")}
    assert db.execute("SELECT value FROM meta").fetchone() == ("1",)
    db.close()
    assert path.read_bytes() == before


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _foreign(tmp_path, kind):
    path = tmp_path / "other.db"
    if kind == "another application":
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT)")
        db.execute("INSERT INTO accounts VALUES (1, 'alice')")
    elif kind == "an application id":
        db = sqlite3.connect(path)
        db.execute("PRAGMA application_id = 1598903374")  # a GeoPackage, say
        db.execute("CREATE TABLE runs (id TEXT)")
    elif kind == "an empty sqlite database":
        db = sqlite3.connect(path)
        db.execute("PRAGMA user_version = 7")
    else:  # fleetcare's tables and one more
        History(path).close()
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE scratchpad (text TEXT)")
    db.commit()
    db.close()
    return path


FOREIGN = ("another application", "an application id", "an empty sqlite database", "an extra table")


@pytest.mark.parametrize("kind", FOREIGN)
def test_a_database_of_another_application_is_refused_and_left_alone(tmp_path, kind):
    path = _foreign(tmp_path, kind)
    before = _sha(path)
    with pytest.raises(HistoryError, match=r"other\.db: not a usable fleetcare history database"):
        History(path)
    assert _sha(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


def _damaged(tmp_path):
    """A fleetcare history whose findings table has its root page overwritten."""
    path = tmp_path / "history.db"
    with History(path) as h:
        for n in range(30):
            h.save(_run(f"20261125-0920{n:02d}-abcd"))
    db = sqlite3.connect(path)
    (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'findings'").fetchone()
    (size,) = db.execute("PRAGMA page_size").fetchone()
    db.close()
    with open(path, "r+b") as fh:
        fh.seek((root - 1) * size)
        fh.write(b"\xa5" * size)
    return path


def test_a_damaged_page_is_one_clear_error_and_nothing_is_written(tmp_path):
    path = _damaged(tmp_path)
    before = _sha(path)
    with History(path) as h:  # opening reads only the schema, which is intact
        with pytest.raises(HistoryError, match=r"history\.db: not a usable fleetcare history database"):
            h.runs()
        with pytest.raises(HistoryError, match="damaged"):
            h.begin(_run("20261126-000000-eeee"))
    assert _sha(path) == before


# -- modes: fleetcare sets modes only on what it creates ----------------------------------
def test_a_new_database_is_created_0600(tmp_path):
    path = tmp_path / "new" / "h.db"
    History(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o640, 0o660, 0o644, 0o400], ids=oct)
def test_an_existing_database_keeps_its_mode(tmp_path, mode):
    path = tmp_path / "h.db"
    History(path).close()
    os.chmod(path, mode)
    with History(path) as h:
        h.save(_run())
        h.runs()
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_db_path_expands_the_home_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with History("~/fc/h.db") as h:
        h.save(_run())
    assert (tmp_path / "fc" / "h.db").is_file()
    assert not (tmp_path / "~").exists()


# -- runs whose wrapper is gone ------------------------------------------------------------
def test_a_running_run_of_a_dead_process_is_marked_abandoned(tmp_path):
    path = tmp_path / "h.db"
    with History(path) as h:
        live, dead, reused, elsewhere = (_run(f"2026112{n}-000000-abcd") for n in range(4))
        for run in (live, dead, reused, elsewhere):
            run.status, run.finished, run.exit_code = "running", None, None
            h.begin(run)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # a process that existed and has gone: its pid is free
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE runs SET pid = ? WHERE id = ?", (proc.pid, dead.id))
        # our own pid, but recorded with another start: the pid was reused
        db.execute("UPDATE runs SET pid_start = 'another-boot/1' WHERE id = ?", (reused.id,))
        db.execute("UPDATE runs SET host = 'another-controller', pid = ? WHERE id = ?", (proc.pid, elsewhere.id))
    db.close()
    with History(path) as h:
        assert sorted(h.mark_abandoned()) == sorted([dead.id, reused.id])
        status = {r["id"]: r["status"] for r in h.runs()}
        assert h.mark_abandoned() == []
        report = h.load(dead.id).to_report()
    assert status == {live.id: "running", dead.id: "abandoned", reused.id: "abandoned", elsewhere.id: "running"}
    validate(report)  # an abandoned run still makes a valid report


def test_runs_from_before_schema_2_are_never_guessed_abandoned(tmp_path):
    with History(_v1_copy(tmp_path)) as h:
        assert h.mark_abandoned() == []
        assert h.load("20261122-080000-cccc").status == "running"


def test_an_empty_file_the_user_made_becomes_a_history_and_keeps_its_mode(tmp_path):
    path = tmp_path / "h.db"
    path.touch(mode=0o640)
    os.chmod(path, 0o640)
    with History(path) as h:
        h.save(_run())
    with History(path) as h:
        assert len(h.runs()) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_run_with_repeated_checks_and_evidence_loads_back_as_saved(tmp_path):
    """A check's texts and references are stored once however many hosts repeat them, and equal
    evidence is parsed once: what comes back must still be each finding's own, as it was saved."""
    from fleetcare.results import Finding, HostResult, Run

    run = Run(id="20261201-080000-same", command="audit", started="2026-12-01T08:00:00+00:00")
    waiver = {"finding": "HARD-SSH-001", "host": "*", "reason": "r", "owner": "o",
              "expires": "2027-01-01T00:00:00+00:00", "source": "file", "ref": "w.yml#1"}
    for n in range(4):
        name = f"h{n}"
        run.hosts[name] = HostResult(name, status="ok")
        run.hosts[name].findings += [
            Finding("HARD-SSH-001", "t", "major", "waived" if n % 2 else "pass", name, "hardening",
                    {"option": "X", "actual": "no", "n": 1}, "fix", ["CIS 1.1", "STIG V-1"],
                    dict(waiver) if n % 2 else None),
            Finding("HARD-SSH-002", "t2", "minor", "fail", name, "hardening",
                    {"units": ["a.service"], "deep": {"k": n % 2}}, "fix", ["CIS 1.2"]),
            # references that are equal in Python but not as JSON: two checks, not one
            Finding("HARD-SSH-003", "t3", "minor", "pass", name, "hardening", {"v": 1.0 if n % 2 else 1},
                    "fix", [1] if n % 2 else [True]),
        ]
    run.finish()
    db = tmp_path / "history.db"
    with History(db) as h:
        h.save(run)
        loaded = h.load(run.id)
    assert loaded.to_report() == run.to_report()
    assert [json.dumps(f.evidence) for f in loaded.findings()] == [json.dumps(f.evidence) for f in run.findings()]
    assert [f.references for f in loaded.findings() if f.id == "HARD-SSH-003"] == [[True], [1], [True], [1]]
    assert [type(f.references[0]) for f in loaded.findings() if f.id == "HARD-SSH-003"] == [bool, int, bool, int]
    first, second = (f for f in loaded.findings() if f.id == "HARD-SSH-001" and f.host in ("h0", "h2"))
    assert first.evidence == second.evidence and first.evidence is not second.evidence
    first.evidence["actual"] = "changed"
    assert second.evidence["actual"] == "no", "two findings share one evidence dict"
    nested = [f.evidence for f in loaded.findings() if f.id == "HARD-SSH-002"]
    nested[0]["units"].append("b.service")
    assert nested[2]["units"] == ["a.service"], "two findings share one nested list"
    one, other = (f.waiver for f in loaded.findings() if f.waiver)
    assert one == other == waiver and one is not other
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*) FROM checks").fetchone()[0] == 4

"""The knowledge base: notes (cause and fix) recorded and listed from the real CLI, `explain` with a
finding's history from a real SQLite history, recurring findings marked in every report format,
and a schema-4 history (written by fleetcare at 8061055) upgraded with everything kept."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fleetcare import app, cli, knowledge, lifecycle, reports
from fleetcare.history import SCHEMA_VERSION, History
from fleetcare.results import Finding, HostResult, Run, validate

from .conftest import FIXTURES, finding, ok_event, stats_event

DISK, UNIT = "HLTH-DISK-001", "HLTH-UNIT-001"
NOW = "2026-12-01T12:00:00+00:00"


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, *needles):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0]


def _run(day: int, statuses: dict[tuple[str, str], str], command: str = "inspect", month: int = 11) -> Run:
    started = f"2026-{month:02d}-{day:02d}T08:00:00+00:00"
    run = Run(id=f"2026{month:02d}{day:02d}-080000-{day:04x}", command=command, started=started)
    for (fid, host), status in statuses.items():
        run.hosts.setdefault(host, HostResult(host, status="ok")).findings.append(
            Finding(fid, f"Check {fid}", "major", status, host, "health", {}, "", []))
    run.finish()
    return run


def _store(db: Path, plan: list[tuple[int, dict]], month: int = 11) -> list[Run]:
    """Each run compared, annotated and saved as the wrapper does; the runs as reported."""
    out = []
    with History(db) as h:
        for day, statuses in plan:
            run = lifecycle.annotate(_run(day, statuses, month=month), h)
            validate(run.to_report())
            h.save(run)
            out.append(run)
    return out


def _entry(run: Run, fid: str, host: str) -> dict:
    return next(e for e in run.comparison["findings"] if (e["id"], e["host"]) == (fid, host))


# -- fleetcare note / notes -------------------------------------------------------------------
def test_note_is_recorded_and_listed_newest_first(capsys, tmp_path, monkeypatch):
    db = tmp_path / "h.db"
    monkeypatch.setenv("FLEETCARE_NOW", "2026-11-20T09:00:00+00:00")
    code, out, err = run_cli(capsys, "note", "hlth-disk-001", "--cause", "logrotate was disabled",
                             "--fix", "re-enabled logrotate.timer", "--db", db)
    assert (code, err) == (0, "")
    assert out.startswith("note #1 on HLTH-DISK-001 (hosts *) recorded by ")
    monkeypatch.setenv("FLEETCARE_NOW", "2026-11-21T09:00:00+00:00")
    assert run_cli(capsys, "note", UNIT, "--host", "web-*", "--cause", "a unit crashed", "--fix", "restarted",
                   "--by", "alice", "--db", db)[0] == 0
    code, out, _ = run_cli(capsys, "notes", "--db", db)
    lines = out.splitlines()
    assert code == 0
    assert lines[0] == "#2  2026-11-21T09:00:00+00:00  HLTH-UNIT-001  hosts web-*  by alice"
    assert lines[3].startswith("#1  2026-11-20T09:00:00+00:00  HLTH-DISK-001  hosts *  by ")
    assert "    fix:   re-enabled logrotate.timer" in lines
    code, out, _ = run_cli(capsys, "notes", DISK, "--db", db)
    assert code == 0 and "HLTH-UNIT-001" not in out and "logrotate was disabled" in out
    with History(db) as h:  # the author is the login name unless --by says otherwise
        from fleetcare.drift import default_by
        assert [n["author"] for n in h.notes()] == ["alice", default_by()]


@pytest.mark.parametrize(("argv", "needles"), [
    (("note", "HLTH-DISK-01", "--cause", "c", "--fix", "f"), ("unknown finding ID", "did you mean HLTH-DISK-001")),
    (("note", DISK, "--cause", "  ", "--fix", "f"), ("--cause", "empty")),
    (("note", DISK, "--cause", "c"), ("--fix", "empty")),
    (("note", DISK, "--cause", "c", "--fix", "f", "--host", ""), ("--host",)),
    (("note", DISK, "--cause", "c", "--fix", "f", "--by", " "), ("--by", "empty")),
    (("notes", "HARD-SSH-1"), ("unknown finding ID", "did you mean")),
])
def test_bad_notes_are_one_line_and_create_no_database(capsys, tmp_path, argv, needles):
    db = tmp_path / "h.db"
    code, _, err = run_cli(capsys, *argv, "--db", db)
    one_line_error(code, err, *needles)
    assert not db.exists()


def test_a_bad_note_writes_nothing_to_an_existing_history(capsys, tmp_path):
    db = tmp_path / "h.db"
    _store(db, [(1, {(DISK, "web-1"): "fail"})])
    code, _, err = run_cli(capsys, "note", "HLTH-NOPE-001", "--cause", "c", "--fix", "f", "--db", db)
    one_line_error(code, err, "HLTH-NOPE-001")
    with History(db) as h:
        assert h.notes() == []


def test_notes_without_a_history_say_so_and_create_none(capsys, data_home):
    code, out, err = run_cli(capsys, "notes")
    assert (code, err) == (0, "") and out.startswith("no notes yet")
    assert not (data_home / "fleetcare" / "history.db").exists()


# -- fleetcare explain ID with its history --------------------------------------------------
# web-1: fail, pass, fail, pass, fail (2 recurrences); db-1 fails throughout (none); app-1 passes
HISTORY = [(day, {(DISK, "web-1"): web, (DISK, "db-1"): "fail", (DISK, "app-1"): "pass", (UNIT, "web-1"): "pass"})
           for day, web in zip(range(1, 6), ("fail", "pass", "fail", "pass", "fail"), strict=True)]


def test_explain_prints_the_check_then_its_history_and_notes(capsys, tmp_path, monkeypatch):
    db = tmp_path / "h.db"
    _store(db, HISTORY)
    monkeypatch.setenv("FLEETCARE_NOW", "2026-11-10T00:00:00+00:00")
    assert run_cli(capsys, "note", DISK, "--cause", "old cause", "--fix", "old fix", "--by", "bob", "--db", db)[0] == 0
    monkeypatch.setenv("FLEETCARE_NOW", "2026-11-12T00:00:00+00:00")
    assert run_cli(capsys, "note", DISK, "--host", "web-*", "--cause", "journald filled /var",
                   "--fix", "SystemMaxUse=500M", "--by", "alice", "--db", db)[0] == 0
    code, out, err = run_cli(capsys, "explain", DISK, "--db", db)
    assert (code, err) == (0, "")
    # what it prints today comes first
    assert out.index("How to fix") < out.index("References") < out.index("History")
    assert ("failed on 2 hosts (2 failing at their latest result); first seen 2026-11-01T08:00:00+00:00, "
            "last seen 2026-11-05T08:00:00+00:00") in out
    rows = {ln.split()[0]: ln.split() for ln in out.splitlines() if ln.startswith(("  web-1", "  db-1"))}
    # host, first failed, last failed, failed runs, recurred, in 30 days, latest
    assert rows["web-1"] == ["web-1", "2026-11-01T08:00:00+00:00", "2026-11-05T08:00:00+00:00", "3", "2", "2",
                             "fail"]
    assert rows["db-1"] == ["db-1", "2026-11-01T08:00:00+00:00", "2026-11-05T08:00:00+00:00", "5", "0", "0",
                            "fail"]
    assert "app-1" not in out  # never failed there
    assert out.index("  web-1") < out.index("  db-1")  # most recurrences first
    notes = out[out.index("Notes (2, newest first)"):]
    assert notes.index("#2  2026-11-12T00:00:00+00:00  by alice  hosts web-*") < notes.index(
        "#1  2026-11-10T00:00:00+00:00  by bob  hosts *")
    assert "cause: journald filled /var" in notes and "fix: SystemMaxUse=500M" in notes
    # 40 days on, the same recurrences are no longer recent
    monkeypatch.setenv("FLEETCARE_NOW", "2026-12-20T00:00:00+00:00")
    out = run_cli(capsys, "explain", DISK, "--db", db, "--hosts", "1")[1]
    web = next(ln for ln in out.splitlines() if ln.startswith("  web-1")).split()
    assert web[4:6] == ["2", "0"]
    assert "... and 1 more hosts (--hosts 0 lists all)" in out


def test_explain_marks_a_host_where_it_recurs(capsys, tmp_path, monkeypatch):
    db = tmp_path / "h.db"
    _store(db, [*HISTORY, (6, {(DISK, "web-1"): "pass"}), (7, {(DISK, "web-1"): "fail"})])
    monkeypatch.setenv("FLEETCARE_NOW", "2026-11-08T00:00:00+00:00")
    out = run_cli(capsys, "explain", DISK, "--db", db)[1]
    assert "recurring on 1 host (3 or more recurrences in 30 days): look for the root cause" in out
    assert next(ln for ln in out.splitlines() if ln.startswith("  web-1")).endswith("fail  recurring")


def test_explain_without_history_says_so_in_one_line(capsys, tmp_path, data_home):
    code, out, err = run_cli(capsys, "explain", DISK)
    assert (code, err) == (0, "")
    history = out[out.index("History"):].splitlines()
    assert len(history) == 2 and history[1].startswith("  no history database at ")
    assert not (data_home / "fleetcare" / "history.db").exists()
    db = tmp_path / "h.db"
    History(db).close()  # a database without runs
    code, out, _ = run_cli(capsys, "explain", DISK, "--db", db)
    assert code == 0 and f"  no runs recorded yet in {db}" in out
    _store(db, [(1, {(UNIT, "web-1"): "fail"})])
    assert "  never failed: no stored run checked it" in run_cli(capsys, "explain", DISK, "--db", db)[1]


def test_explain_unknown_id_still_suggests_with_a_history(capsys, tmp_path):
    db = tmp_path / "h.db"
    _store(db, HISTORY)
    code, _, err = run_cli(capsys, "explain", "HLTH-DISK-01", "--db", db)
    one_line_error(code, err, "unknown finding ID", "did you mean HLTH-DISK-001")


def test_explain_with_history_into_a_closed_pipe_ends_quietly(tmp_path):
    db = tmp_path / "h.db"
    _store(db, HISTORY)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "fleetcare.cli", "explain", DISK, "--db", str(db)],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, check=False, timeout=60)
    finally:
        os.close(write_end)
    assert (proc.returncode, proc.stderr) == (141, "")


# -- recurrence in reports ----------------------------------------------------------------
def _alternating(stretches: int, start_day: int = 1) -> list[tuple[int, dict]]:
    """web-1 fails `stretches` times after passing (fail, pass, fail, ...); db-1 fails throughout."""
    statuses = ["fail"] + ["pass", "fail"] * stretches
    return [(start_day + i, {(DISK, "web-1"): s, (DISK, "db-1"): "fail"}) for i, s in enumerate(statuses)]


def test_n_minus_one_recurrences_are_not_recurring(tmp_path):
    last = _store(tmp_path / "h.db", _alternating(knowledge.RECURRING_TIMES - 1))[-1]
    assert "recurring" not in _entry(last, DISK, "web-1")
    assert "recurring" not in _entry(last, DISK, "db-1")
    assert last.comparison["recurring_rule"] == {"times": knowledge.RECURRING_TIMES, "days": knowledge.RECURRING_DAYS}
    assert knowledge.recurring(last) == []
    assert "Recurring findings" not in reports.render(last, "md")


def test_n_recurrences_are_recurring_in_every_report(tmp_path):
    db = tmp_path / "h.db"
    runs = _store(db, _alternating(knowledge.RECURRING_TIMES))
    last = runs[-1]
    assert _entry(last, DISK, "web-1") | {"recurring": True, "recurrences": 3} == _entry(last, DISK, "web-1")
    assert _entry(last, DISK, "web-1")["recurring"] is True
    assert "recurring" not in _entry(last, DISK, "db-1")  # failing all along is no recurrence
    assert "recurring" not in _entry(runs[-2], DISK, "web-1")  # only from the third comeback
    doc = json.loads(reports.render(last, "json"))
    assert [(e["host"], e.get("recurrences")) for e in doc["comparison"]["findings"]] == [
        ("web-1", 3), ("db-1", None)]
    md = reports.render(last, "md")
    assert md.index("## What changed since the last run") < md.index("## Recurring findings: look for the root cause")
    assert "| major | HLTH-DISK-001 | web-1 | 3 | - |" in md
    html = reports.render(last, "html")
    assert 'id="recurring"' in html and "recurring on 1 host: look for the root cause" in html
    # rebuilt from history later, the saved run counts the same (itself from memory, not twice)
    with History(db) as h:
        again = json.loads(app.rebuild_report(h, last.id, "json"))
    assert again["comparison"] == doc["comparison"]


def test_recurrences_outside_the_window_do_not_count(tmp_path):
    # the first two comebacks are more than 30 days before the last run; the last one alone is recent
    plan = [(day, {(DISK, "web-1"): status}) for day, status in enumerate(("fail", "pass") * 3, start=1)]
    db = tmp_path / "h.db"
    _store(db, plan, month=10)
    last = _store(db, [(8, {(DISK, "web-1"): "pass"}), (9, {(DISK, "web-1"): "fail"})], month=11)[-1]
    assert "recurring" not in _entry(last, DISK, "web-1")
    with History(db) as h:
        assert h.recurrences(last, knowledge.window_start(last.started, 30)) == {(DISK, "web-1"): 1}
        assert h.recurrences(last, knowledge.window_start(last.started, 60)) == {(DISK, "web-1"): 3}
    assert "recurring" in _entry(knowledge.annotate(last, History(db), days=60), DISK, "web-1")


def test_runs_saved_out_of_order_count_by_when_they_started(tmp_path):
    # imported late or saved by concurrent runs: the order of the runs' starts is what counts
    statuses = dict(enumerate(("fail", "pass") * 3, start=1))  # days 1..6; three comebacks with day 7
    with History(tmp_path / "h.db") as h:
        for day in (4, 1, 6, 3, 5, 2):
            h.save(_run(day, {(DISK, "web-1"): statuses[day]}))
        h.save(_run(9, {(DISK, "web-1"): "pass"}))  # after the run: never counted for it
        assert h.recurrences(_run(7, {(DISK, "web-1"): "fail"}), "2026-10-01T00:00:00+00:00") == {(DISK, "web-1"): 3}
        # a window that starts on day 4 keeps pass(4), fail(5), pass(6) and the run's fail(7)
        assert h.recurrences(_run(7, {(DISK, "web-1"): "fail"}), "2026-11-04T00:00:00+00:00") == {(DISK, "web-1"): 2}
        assert h.recurrences(_run(7, {(DISK, "web-1"): "fail"}), "2026-11-07T00:00:00+00:00") == {}


def test_errors_and_missing_results_neither_end_nor_start_a_failure(tmp_path):
    # fail, error, fail, (host not reported), fail, not_applicable, fail: one stretch, no recurrence
    statuses = ["fail", "error", "fail", None, "fail", "not_applicable", "fail"]
    plan = [(i + 1, {(DISK, "web-1"): s} if s else {(UNIT, "web-1"): "pass"}) for i, s in enumerate(statuses)]
    with History(tmp_path / "h.db") as h:
        for day, statuses_ in plan:
            h.save(_run(day, statuses_))
        last = _run(8, {(DISK, "web-1"): "fail"})
        assert h.recurrences(last, "2026-10-01T00:00:00+00:00") == {}


def test_recurrence_counts_across_commands(tmp_path):
    # audit fails, harden fixes it, audit fails again, three times over: the same check on the same host
    ssh = ("HARD-SSH-001", "web-1")
    with History(tmp_path / "h.db") as h:
        for day in range(1, 7):
            h.save(_run(day, {ssh: "fail" if day % 2 else "pass"}, command="audit" if day % 2 else "harden"))
        assert h.recurrences(_run(7, {ssh: "fail"}, command="audit"), "2026-10-01T00:00:00+00:00") == {ssh: 3}


def test_notes_show_beside_the_failing_finding(tmp_path):
    db = tmp_path / "h.db"
    with History(db) as h:
        knowledge.add_note(h, DISK, "journald filled /var", "SystemMaxUse=500M", "web-*", "alice")
        knowledge.add_note(h, DISK, "a backup left its dump", "moved dumps to /srv", "db-9", "bob")  # no failing host
        knowledge.add_note(h, UNIT, "unrelated", "unrelated", "*", "carol")  # UNIT passes
    run = _store(db, [(1, {(DISK, "web-1"): "fail", (DISK, "web-2"): "fail", (DISK, "db-1"): "fail",
                           (UNIT, "web-1"): "pass"})])[0]
    assert [(n["finding"], n["author"], n["failing_hosts"]) for n in run.notes] == [(DISK, "alice", 2)]
    doc = json.loads(reports.render(run, "json"))
    assert doc["notes"][0]["cause"] == "journald filled /var"
    assert Run.from_report(doc).notes == run.notes
    md = reports.render(run, "md")
    block = md[md.index("### major · HLTH-DISK-001"):]
    assert ("> **Known cause** (note 1, alice, " in block and "hosts web-\\*, 2 failing here): journald filled /var"
            in block)
    assert "> **Fix:** SystemMaxUse=500M" in block and "unrelated" not in md and "backup" not in md
    html = reports.render(run, "html")
    article = html[html.index('id="f-HLTH-DISK-001"'):]
    assert article.index('class="kb-note"') < article.index("</article>")
    assert "<b>Known cause.</b> journald filled /var" in article


def test_a_run_through_the_wrapper_carries_recurrence_and_notes(capsys, fake_runner, tmp_path, data_home):
    """Three comebacks stored over the last days, then a real `fleetcare inspect` (fake runner)."""
    db = data_home / "fleetcare" / "history.db"
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=7)
    with History(db) as h:
        for i, status in enumerate(("fail", "pass", "fail", "pass", "fail", "pass")):
            run = Run(id=f"2026000{i}-000000-aaaa", command="inspect",
                      started=(base + timedelta(days=i)).isoformat(timespec="seconds"))
            run.hosts["web-1"] = HostResult("web-1", "ok", findings=[
                Finding(DISK, "Filesystem space", "major", status, "web-1", "health")])
            run.finish()
            h.save(run)
        knowledge.add_note(h, DISK, "journald filled /var", "SystemMaxUse=500M", "*", "alice")
    inventory = tmp_path / "fleet.yml"
    inventory.write_text("all:\n  hosts:\n    web-1:\n")
    fake_runner([ok_event("web-1", [finding(DISK)]), stats_event(["web-1"])])
    assert cli.main(["inspect", "-i", str(inventory), "-q"]) == 1
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("reports: "))
    stem = line.split(" ", 1)[1].split("{")[0]
    doc = json.loads(Path(stem + "json").read_text())
    assert doc["schema_version"] == 3
    assert doc["comparison"]["findings"][0] | {"state": "regressed", "recurring": True, "recurrences": 3} == \
        doc["comparison"]["findings"][0]
    assert doc["notes"][0]["fix"] == "SystemMaxUse=500M"
    assert "Recurring findings: look for the root cause" in Path(stem + "md").read_text()
    assert "<b>Fix.</b> SystemMaxUse=500M" in Path(stem + "html").read_text()


# -- a history written by fleetcare at schema 4 ----------------------------------------------
V4 = FIXTURES / "history" / "history-v4.db"


def test_a_schema_4_history_is_upgraded_keeping_everything(tmp_path, capsys, monkeypatch):
    path = tmp_path / "history.db"
    shutil.copyfile(V4, path)
    expected = json.loads((FIXTURES / "history" / "history-v4-runs.json").read_text())
    with History(path) as h:
        ids = [r["run"]["id"] for r in expected["runs"]]
        assert sorted(r["id"] for r in h.runs()) == sorted(ids)
        for run_id, report in zip(ids, expected["runs"], strict=True):
            assert {**h.load(run_id).to_report(), "schema_version": report["schema_version"]} == report
            assert {f"{k[0]} {k[1]}": v for k, v in sorted(h.first_seen(run_id).items())} == \
                expected["first_seen"][run_id]
        assert h.notes() == []
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    assert {"waivers", "notes"} <= {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert db.execute("SELECT COUNT(*) FROM findings WHERE waiver IS NOT NULL").fetchone() == (0,)
    assert db.execute("PRAGMA quick_check").fetchone() == ("ok",)
    db.close()
    # the knowledge base works on the upgraded file: its history, a note, and the next comeback
    monkeypatch.setenv("FLEETCARE_NOW", "2026-11-10T00:00:00+00:00")
    assert run_cli(capsys, "note", DISK, "--cause", "c", "--fix", "f", "--by", "alice", "--db", path)[0] == 0
    out = run_cli(capsys, "explain", DISK, "--db", path)[1]
    web = next(ln for ln in out.splitlines() if ln.startswith("  web-1")).split()
    assert web[3:7] == ["3", "2", "2", "fail"] and "#1  2026-11-10T00:00:00+00:00  by alice  hosts *" in out
    runs = _store(path, [(7, {(DISK, "web-1"): "pass", (DISK, "db-1"): "fail"}),
                         (8, {(DISK, "web-1"): "fail", (DISK, "db-1"): "fail"})])
    assert _entry(runs[-1], DISK, "web-1")["recurrences"] == 3
    assert runs[-1].notes[0]["failing_hosts"] == 2


def test_recurring_and_notes_in_a_real_browser(tmp_path):
    """The HTML report in headless chromium: the recurring section and the note beside the finding
    are there as elements, and a hostile note stays text (notes are typed by people, shown to customers)."""
    from .test_report_browser import _dump_dom, _parse

    hostile = '<img src=x onerror="document.title=\'PWNED\'">'
    db = tmp_path / "h.db"
    with History(db) as h:
        knowledge.add_note(h, DISK, f"cause {hostile}", "SystemMaxUse=500M", "web-*", "alice")
    last = _store(db, _alternating(knowledge.RECURRING_TIMES))[-1]
    page = tmp_path / "report.html"
    page.write_text(reports.render(last, "html"), encoding="utf-8")
    dom = _parse(_dump_dom(tmp_path, page))
    assert dom.title.startswith("Inspection report")
    assert not [t for t, _ in dom.elements if t in ("img", "script")]
    ids = {a.get("id") for _, a in dom.elements}
    classes = [a.get("class") for _, a in dom.elements]
    assert "recurring" in ids and "kb-note" in classes and "kb-mark" in classes
    assert "Recurring findings: look for the root cause" in dom.texts
    assert f" cause {hostile}" in dom.texts


def test_a_finding_only_history_knows_can_be_explained_and_noted(capsys, tmp_path):
    """A check an older fleetcare ran (since renamed or removed) is still in history."""
    old = ("HLTH-OLD-001", "web-1")
    db = tmp_path / "h.db"
    _store(db, [(1, {old: "fail"}), (2, {old: "pass"}), (3, {old: "fail"})])
    code, out, err = run_cli(capsys, "note", "hlth-old-001", "--cause", "c", "--fix", "f", "--db", db)
    assert (code, err) == (0, "") and "note #1 on HLTH-OLD-001" in out
    code, out, err = run_cli(capsys, "explain", "HLTH-OLD-001", "--db", db)
    assert (code, err) == (0, "")
    assert out.startswith("HLTH-OLD-001\n\n  not a check of this fleetcare version")
    assert next(ln for ln in out.splitlines() if ln.startswith("  web-1")).split()[3:5] == ["2", "1"]
    assert "Notes (1, newest first)" in out
    # without that history it is unknown, as before
    code, _, err = run_cli(capsys, "explain", "HLTH-OLD-001", "--db", tmp_path / "other.db")
    one_line_error(code, err, "unknown finding ID")
    assert not (tmp_path / "other.db").exists()

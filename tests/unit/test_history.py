"""History in a real SQLite file: round trip, lookup by prefix, corruption."""

from __future__ import annotations

import sqlite3

import pytest

from fleetcare.history import History, HistoryError, default_path

from .conftest import build_run, finding, ok_event, stats_event, unreachable_event


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
    db.close()
    with pytest.raises(HistoryError, match="newer"):
        History(path)

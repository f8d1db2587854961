"""Trends and capacity forecasts (fleetcare.trends) from a real SQLite history."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta

import pytest

from fleetcare import catalog, reports, trends
from fleetcare.history import History
from fleetcare.results import CONTRACT_VERSION, Run, validate

GB = 1024 ** 3
T0 = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)


def _run(i: int, when: datetime, hosts: dict[str, dict[str, float]], mem: float = 50.0,
         capacity_days: float | None = None) -> Run:
    """An inspect run at ``when``: every host gets one filesystem / with the given avail bytes."""
    run = Run(id=f"20261101-{i:06d}-aaaa", command="inspect", started=when.isoformat(timespec="seconds"))
    for host, fs in hosts.items():
        metrics = []
        for mount, avail in fs.items():
            size = 100 * GB
            metrics += [{"name": "disk_avail_bytes", "value": avail, "unit": "bytes", "labels": {"mount": mount}},
                        {"name": "disk_size_bytes", "value": size, "unit": "bytes", "labels": {"mount": mount}},
                        {"name": "disk_used_pct", "value": 100 * (size - avail) / size, "unit": "percent",
                         "labels": {"mount": mount}}]
        metrics += [{"name": "mem_used_pct", "value": mem, "unit": "percent", "labels": {}},
                    {"name": "load5", "value": 0.5, "unit": "", "labels": {}}]
        payload = {"contract": CONTRACT_VERSION, "role": "health", "metrics": metrics,
                   "findings": [{"id": "HLTH-DISK-001", "title": "Filesystem space", "severity": "major",
                                 "status": "pass", "evidence": {}}]}
        if capacity_days is not None:
            payload["data"] = {"capacity_days": capacity_days}
        run.add_payload(host, payload)
        run.set_status(host, "ok")
    return run


def _feed(history: History, series: dict[str, list[float]], days: list[float]) -> None:
    """Past runs at T0 + days[i], host -> avail bytes per run."""
    for i, d in enumerate(days):
        run = _run(i, T0 + timedelta(days=d), {h: {"/": v[i]} for h, v in series.items()}, mem=40 + i)
        run.finish()
        history.save(run)


def _current(series: dict[str, float], day: float, **kw) -> Run:
    return _run(999, T0 + timedelta(days=day), {h: {"/": v} for h, v in series.items()}, **kw)


def test_known_linear_growth_gives_days_until_full(tmp_path):
    # 2 GB a day off 60 GB free, one run a day for 9 days, then now (day 9: 42 GB free): 21 days left
    days = list(range(9))
    with History(tmp_path / "h.db") as history:
        _feed(history, {"db-1": [60 * GB - 2 * GB * d for d in days]}, days)
        run = _current({"db-1": 42 * GB}, 9, mem=49.0)
        trends.judge(history, run)
    fs = run.trends["filesystems"][0]
    assert fs["status"] == "forecast" and fs["points"] == 10
    assert fs["days_until_full"] == pytest.approx(21.0, abs=0.01)
    assert fs["slope_bytes_per_day"] == pytest.approx(-2 * GB, rel=1e-6)
    assert fs["r2"] == pytest.approx(1.0)
    assert fs["full_at"].startswith((T0 + timedelta(days=30)).date().isoformat())
    cap = [f for f in run.hosts["db-1"].findings if f.id == "HLTH-CAP-001"]
    assert [f.status for f in cap] == ["pass"]  # 21 days is beyond the default 14
    mem = next(r for r in run.trends["resources"] if r["metric"] == "mem_used_pct")
    assert mem["slope_per_day"] == pytest.approx(1.0, abs=1e-6) and mem["last"] == 49.0
    validate(run.to_report())


def test_noisy_growth_says_so_and_a_few_points_say_how_many(tmp_path):
    rnd = random.Random(7)
    days = list(range(12))
    with History(tmp_path / "h.db") as history:
        _feed(history, {"noisy": [50 * GB + rnd.uniform(-10, 10) * GB - 0.05 * GB * d for d in days],
                        "young": [50 * GB] * len(days)}, days)
        run = _current({"noisy": 50 * GB, "young": 49 * GB}, 12)
        # a third host with history only from this run
        run.add_payload("new-1", {"contract": CONTRACT_VERSION, "role": "health", "findings": [
            {"id": "HLTH-DISK-001", "title": "t", "severity": "major", "status": "pass", "evidence": {}}],
            "metrics": [{"name": "disk_avail_bytes", "value": 10 * GB, "labels": {"mount": "/"}}]})
        trends.judge(history, run)
    by_host = {fs["host"]: fs for fs in run.trends["filesystems"]}
    noisy = by_host["noisy"]
    if noisy["status"] == "unsteady":
        assert noisy["reason"].startswith("no steady growth, R^2 0.") and noisy["days_until_full"] is None
    else:  # the noise happened to rise: then it is not filling at all
        assert noisy["status"] == "not_filling"
    assert by_host["new-1"]["reason"] == "1 point, need 4" and by_host["new-1"]["status"] == "insufficient"
    cap = {f.host: f for f in run.findings() if f.id == "HLTH-CAP-001"}
    assert cap["new-1"].status == "not_applicable" and "1 point, need 4" in cap["new-1"].evidence["reason"]
    validate(run.to_report())


def test_few_points_and_short_span(tmp_path):
    with History(tmp_path / "h.db") as history:
        _feed(history, {"a": [50 * GB, 49 * GB]}, [0, 1])
        run = _current({"a": 48 * GB}, 2)
        trends.judge(history, run)
        assert run.trends["filesystems"][0]["reason"] == "3 points, need 4"
        _feed(history, {"a": [50 * GB, 49 * GB, 48 * GB, 47 * GB]}, [0.0, 0.1, 0.2, 0.3])
    with History(tmp_path / "h.db") as history:
        run = _current({"a": 46 * GB}, 0.4)
        trends.judge(history, run)
    assert run.trends["filesystems"][0]["reason"] == "5 points over 0.40 days, need 1"


@pytest.mark.parametrize(("left", "status"), [(14.0, "fail"), (13.0, "fail"), (14.5, "pass")])
def test_the_finding_appears_at_the_threshold_and_not_above(tmp_path, left, status):
    # 1 GB a day; now (day 10) `left` GB free
    days = list(range(10))
    with History(tmp_path / "h.db") as history:
        _feed(history, {"h": [(left + 10 - d) * GB for d in days]}, days)
        run = _current({"h": left * GB}, 10)
        trends.judge(history, run)
    (cap,) = [f for f in run.findings() if f.id == "HLTH-CAP-001"]
    assert cap.status == status
    assert cap.evidence["threshold_days"] == 14.0
    if status == "fail":
        assert cap.evidence["mount"] == "/" and cap.evidence["days_until_full"] == pytest.approx(left, abs=0.01)
        assert cap.severity == "major"
        assert run.finish() == 1  # a failing major finding gates the exit code like any other


def test_the_host_threshold_comes_from_the_role_variable(tmp_path):
    days = list(range(10))
    with History(tmp_path / "h.db") as history:
        _feed(history, {"h": [(30 + 10 - d) * GB for d in days]}, days)
        run = _current({"h": 30 * GB}, 10, capacity_days=45)
        trends.judge(history, run)
    (cap,) = [f for f in run.findings() if f.id == "HLTH-CAP-001"]
    assert cap.status == "fail" and cap.evidence["threshold_days"] == 45


def test_a_grown_filesystem_starts_a_new_series(tmp_path):
    with History(tmp_path / "h.db") as history:
        for i in range(6):
            run = _run(i, T0 + timedelta(days=i), {"h": {"/": (20 - 2 * i) * GB}})
            if i >= 4:  # grown to 200 GB on day 4
                for m in run.hosts["h"].metrics:
                    if m.name == "disk_size_bytes":
                        m.value = 200 * GB
            run.finish()
            history.save(run)
        now = _run(99, T0 + timedelta(days=6), {"h": {"/": 100 * GB}})
        for m in now.hosts["h"].metrics:
            if m.name == "disk_size_bytes":
                m.value = 200 * GB
        trends.annotate(now, history)
    fs = now.trends["filesystems"][0]
    assert fs["resized"] and fs["points"] == 3
    assert fs["reason"] == "3 points, need 4 since the filesystem changed size"


def test_explain_knows_the_capacity_check():
    assert "HLTH-CAP-001" in catalog.finding_ids()
    text = catalog.explain("HLTH-CAP-001")
    assert "health_capacity_days" in text and "R^2" in text


def test_rebuilt_report_carries_the_same_trends(tmp_path):
    days = list(range(6))
    with History(tmp_path / "h.db") as history:
        _feed(history, {"h": [(30 - d) * GB for d in days]}, days)
        run = _current({"h": 24 * GB}, 6)
        trends.judge(history, run)
        run.finish()
        history.save(run)
        from fleetcare import app
        doc = json.loads(app.rebuild_report(history, run.id, "json"))
    assert doc["schema_version"] == 3
    assert doc["trends"]["filesystems"] == run.trends["filesystems"]


def test_a_thousand_hosts_are_read_quickly(tmp_path):
    hosts = [f"h{i:04d}" for i in range(1000)]
    with History(tmp_path / "h.db") as history:
        for i in range(15):
            run = _run(i, T0 + timedelta(days=i), {h: {"/": (90 - i) * GB, "/var": (50 - i) * GB} for h in hosts})
            run.finish()
            history.save(run)
        now = _run(99, T0 + timedelta(days=15), {h: {"/": 75 * GB, "/var": 35 * GB} for h in hosts})
        t = time.process_time()  # CPU time (SQLite runs in this process): other helpers' load does not count
        trends.judge(history, now)
        took = time.process_time() - t
    assert len(now.trends["filesystems"]) == 2000
    assert all(fs["status"] == "forecast" for fs in now.trends["filesystems"])
    assert took < 5, took  # measured 0.6 s with 3 filesystems a host; 1 s with 30 runs
    html = reports.render(now, "html")
    assert len(html) < 15_000_000


def test_runs_are_spread_over_the_window():
    runs = [(f"r{i}", f"t{i}") for i in range(100)]
    picked = trends._pick(runs, 10)
    assert len(picked) == 10 and picked[0] == runs[0] and picked[-1] == runs[-1]
    assert trends._pick(runs, 1) == [runs[-1]] and trends._pick(runs, 0) == []
    assert trends._pick(runs[:5], 10) == runs[:5]

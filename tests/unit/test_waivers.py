"""Waivers and service levels: matched by ID, pattern and host; active, expiring, expired (a fixed
clock, FLEETCARE_NOW), revoked; from history and from a YAML file, each refused entry one line and
exit 2 before any host is contacted; waived findings outside --fail-on and in every report; due
times from first_seen per severity, overdue marked and sorted, --fail-on-overdue; two processes
writing one database while a waiver is added. Real SQLite, the real CLI, the fake runner."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import junitparser
import pytest
import xmlschema

from fleetcare import app, cli, policy, reports, waivers
from fleetcare.history import History
from fleetcare.results import Finding, HostResult, Run, validate

from .conftest import finding, ok_event, stats_event, unreachable_event
from .test_bad_input import nothing_ran, one_line, trap  # noqa: F401 - trap is a fixture
from .test_junit import XSD
from .test_packaging import CONFIG, shipped

T0 = "2026-12-01T08:00:00+00:00"
DAY = 86400


def at(days: float) -> str:
    """T0 plus a number of days, as FLEETCARE_NOW takes it."""
    from datetime import datetime, timedelta

    return (datetime.fromisoformat(T0) + timedelta(days=days)).isoformat()


@pytest.fixture
def fleet(tmp_path) -> Path:
    path = tmp_path / "fleet.yml"
    path.write_text("all:\n  hosts:\n    web-1:\n    web-2:\n    db-1:\n")
    return path


def events(disk: str = "fail", down: str | None = None) -> list[dict]:
    """web-1 and web-2 fail the major disk check (web-2 also the minor unit check), db-1 the
    critical one; every other check passes."""
    out = [ok_event("web-1", [finding(status=disk), finding("HLTH-MEM-001", status="pass")]),
           ok_event("web-2", [finding(status=disk), finding("HLTH-UNIT-001", severity="minor")]),
           ok_event("db-1", [finding(severity="critical", status=disk)])]
    if down:
        out = [e for e in out if e["event_data"]["host"] != down] + [unreachable_event(down)]
    return [*out, stats_event([h for h in ("web-1", "web-2", "db-1") if h != down], dark=[down] if down else [])]


def inspect(capsys, fake_runner, fleet, *extra, evs=None):
    """One inspect through the CLI: (exit code, stdout, stderr, report.json)."""
    fake_runner(evs if evs is not None else events())
    code = cli.main(["inspect", "-i", str(fleet), *extra])
    out, err = capsys.readouterr()
    line = next((ln for ln in out.splitlines() if ln.startswith("reports: ")), None)
    doc = json.loads(Path(line.split(" ", 1)[1].split("{")[0] + "json").read_text()) if line else None
    return code, out, err, doc


def statuses(doc) -> dict[tuple[str, str], str]:
    return {(f["id"], f["host"]): f["status"] for f in doc["findings"]}


def waive(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(["waive", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- matching ------------------------------------------------------------------------------------
def _run(statuses_: dict[tuple[str, str], tuple[str, str]], started: str = T0, run_id: str = "20261201-080000-aaaa",
         fail_on: str = "major") -> Run:
    run = Run(id=run_id, command="inspect", started=started, fail_on=fail_on)
    for (fid, host), (severity, status) in statuses_.items():
        run.hosts.setdefault(host, HostResult(host, status="ok")).findings.append(
            Finding(fid, f"Check {fid}", severity, status, host, "hardening", {}, "", []))
    run.finish()
    return run


def _waiver(fid: str, host: str = "*", expires: str = "2026-12-20", ref: str = "1", reason: str = "accepted",
            source: str = "history") -> waivers.Waiver:
    return waivers.check({"id": fid, "host": host, "reason": reason, "owner": "alice", "expires": expires},
                         "test", policy.defaults(), waivers.parse_time(T0, "t"), source, ref)


def test_a_waiver_matches_by_exact_id_by_pattern_and_by_host_pattern():
    run = _run({("HARD-SSH-001", "web-1"): ("major", "fail"), ("HARD-SSH-002", "web-1"): ("major", "fail"),
                ("HARD-SSH-001", "db-1"): ("major", "fail"), ("HLTH-DISK-001", "db-1"): ("major", "fail"),
                ("HLTH-DISK-001", "web-1"): ("major", "pass")})
    assert run.exit_code == 1
    waivers.apply(run, [_waiver("hard-ssh-*", "web-*", ref="1"), _waiver("HLTH-DISK-001", "db-1", ref="2")],
                  policy.defaults())
    run.rejudge()
    got = {(f.id, f.host): (f.status, (f.waiver or {}).get("ref")) for f in run.findings()}
    assert got == {("HARD-SSH-001", "web-1"): ("waived", "1"), ("HARD-SSH-002", "web-1"): ("waived", "1"),
                   ("HARD-SSH-001", "db-1"): ("fail", None), ("HLTH-DISK-001", "db-1"): ("waived", "2"),
                   ("HLTH-DISK-001", "web-1"): ("pass", None)}
    w = next(f for f in run.findings() if f.host == "db-1" and f.status == "waived").waiver
    assert w == {"finding": "HLTH-DISK-001", "host": "db-1", "reason": "accepted", "owner": "alice",
                 "expires": "2026-12-20T00:00:00+00:00", "source": "history", "ref": "2"}
    assert run.exit_code == 1  # HARD-SSH-001 on db-1 still fails
    assert run.waivers["waived"] == 3
    assert sorted((u["ref"], u["findings"]) for u in run.waivers["used"]) == [("1", 2), ("2", 1)]
    validate(run.to_report())


def test_the_longest_lasting_waiver_wins_and_only_failing_findings_are_waived():
    run = _run({("HARD-SSH-001", "web-1"): ("major", "fail"), ("HARD-SSH-002", "web-1"): ("major", "error")})
    waivers.apply(run, [_waiver("HARD-SSH-*", expires="2026-12-05", ref="1"),
                        _waiver("HARD-SSH-001", "web-1", expires="2026-12-25", ref="2", source="file")],
                  policy.defaults())
    ssh1, ssh2 = run.hosts["web-1"].findings
    assert ssh1.waiver["ref"] == "2" and ssh2.status == "error" and ssh2.waiver is None
    run.rejudge()
    assert run.exit_code == 0


def test_a_waiver_revoked_or_expired_at_the_runs_start_waives_nothing():
    run = _run({("HARD-SSH-001", "web-1"): ("major", "fail"), ("HARD-SSH-002", "web-1"): ("major", "fail")})
    revoked = waivers.Waiver("HARD-SSH-001", "*", "r", "o", waivers.parse_time("2026-12-30", "t"), "history", "1",
                             T0, revoked=at(-1))
    later = waivers.Waiver("HARD-SSH-002", "*", "r", "o", waivers.parse_time("2026-12-30", "t"), "history", "2",
                           T0, revoked=at(1))  # revoked after this run began: it still held for the run
    expired = _waiver("HARD-SSH-001", expires="2026-12-01", ref="3")
    waivers.apply(run, [revoked, later, expired], policy.defaults())
    assert [f.status for f in run.findings()] == ["fail", "waived"]
    # the lapsed waiver named is the one that would have lasted longest
    assert [(w["ref"], w["state"], w["findings"]) for w in run.waivers["lapsed"]] == [("1", "revoked", 1)]


# -- the whole life through the CLI, on a fixed clock -------------------------------------------
def test_waived_then_expiring_then_expired_fails_again(capsys, fake_runner, fleet, monkeypatch, data_home):
    db = fleet.parent / "h.db"
    monkeypatch.setenv("FLEETCARE_NOW", T0)
    code, out, err = waive(capsys, "HLTH-DISK-001", "--reason", "new disks ordered (CHG-7)", "--owner", "alice",
                           "--expires", at(20)[:10], "--db", str(db))
    assert code == 0 and out.startswith("waiver 1: HLTH-DISK-001 until 2026-12-21T00:00:00+00:00"), out + err

    code, out, _, first = inspect(capsys, fake_runner, fleet, "--db", str(db), "--prometheus-dir", str(fleet.parent))
    # every major and critical failure is waived: exit 0, the minor unit check still fails below major
    assert code == 0 and out.strip().splitlines()[-1].startswith("exit 0: clean")
    assert statuses(first)[("HLTH-DISK-001", "db-1")] == "waived"
    assert statuses(first)[("HLTH-UNIT-001", "web-2")] == "fail"
    assert first["summary"]["findings_by_status"]["waived"] == 3
    assert " waived      3 findings under 1 waivers" in out and " expiring " not in out
    prom = (fleet.parent / "fleetcare_inspect.prom").read_text()
    assert ('fleetcare_check_status{command="inspect",host="db-1",id="HLTH-DISK-001",role="health",'
            'severity="critical",status="waived"} 1') in prom
    assert ('fleetcare_findings_failing{command="inspect",host="db-1",role="health",severity="critical"} 0'
            in prom)
    waived = next(f for f in first["findings"] if f["host"] == "db-1")
    assert waived["waiver"]["reason"] == "new disks ordered (CHG-7)" and waived["waiver"]["owner"] == "alice"
    with History(db) as h:  # the waiver a finding ran under is kept with it
        assert h.load(first["run"]["id"]).hosts["db-1"].findings[0].waiver == waived["waiver"]

    monkeypatch.setenv("FLEETCARE_NOW", at(10))  # 9.7 days left: within warn_days (14)
    code, out, _, second = inspect(capsys, fake_runner, fleet, "--db", str(db))
    assert code == 0
    assert " expiring    1 waivers within 14 days: HLTH-DISK-001 (2026-12-21)" in out
    assert second["waivers"]["expiring"] == 1 and second["waivers"]["used"][0]["days_left"] == 9.7
    # a waived finding is not resolved: still open, first seen carried on from the first run
    states = {(e["id"], e["host"]): (e["state"], e["status"], e["first_seen"])
              for e in second["comparison"]["findings"]}
    assert states[("HLTH-DISK-001", "db-1")] == ("still_open", "waived", T0)
    run_dir = data_home / "fleetcare" / "runs" / second["run"]["id"]
    md = (run_dir / "report.md").read_text()
    assert "## Waivers" in md and "### Waivers expiring within 14 days" in md
    assert "| HLTH-DISK-001 | \\* | alice | 2026-12-21T00:00:00+00:00 | expiring | 3 |" in md
    html = (run_dir / "report.html").read_text()
    assert 'id="waivers"' in html and "new disks ordered (CHG-7)" in html and "Expiring within 14 days" in html
    assert "No finding at or above major; 1 below it. Findings 3 waived: see below." in html

    monkeypatch.setenv("FLEETCARE_NOW", at(21))  # the waiver ended at 00:00 that morning
    code, out, _, third = inspect(capsys, fake_runner, fleet, "--db", str(db))
    assert code == 1 and statuses(third)[("HLTH-DISK-001", "db-1")] == "fail"
    assert " lapsed      1 waivers no longer cover failing findings: HLTH-DISK-001 (expired)" in out
    assert third["waivers"]["lapsed"][0]["findings"] == 3
    states = {(e["id"], e["host"]): (e["state"], e["first_seen"]) for e in third["comparison"]["findings"]}
    assert states[("HLTH-DISK-001", "db-1")] == ("still_open", T0)
    # due from the first failure: the critical one (resolve 1d) is long overdue
    due = {(e["id"], e["host"]): e for e in third["service_levels"]["findings"]}
    assert due[("HLTH-DISK-001", "db-1")]["resolve_by"] == at(1) and due[("HLTH-DISK-001", "db-1")]["overdue"]

    code, out, _ = run_cli(capsys, "waivers", "--db", str(db))
    assert code == 0 and out.startswith("1    expired")


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_unwaive_revokes_and_keeps_the_waiver(capsys, fake_runner, fleet, monkeypatch):
    db = fleet.parent / "h.db"
    monkeypatch.setenv("FLEETCARE_NOW", T0)
    base = ["--reason", "r", "--owner", "o", "--expires", "2026-12-10", "--db", str(db)]
    assert waive(capsys, "HLTH-DISK-001", "--host", "web-*", *base)[0] == 0
    assert waive(capsys, "HLTH-DISK-001", "--host", "db-1", *base)[0] == 0
    assert waive(capsys, "HLTH-UNIT-*", *base)[0] == 0
    code, out, _, doc = inspect(capsys, fake_runner, fleet, "--db", str(db), "--fail-on", "info")
    assert code == 0 and doc["summary"]["findings_by_status"]["waived"] == 4

    code, out, _ = run_cli(capsys, "unwaive", "1", "--db", str(db))
    assert code == 0 and out == "waiver 1 revoked: HLTH-DISK-001 on web-*\n"
    code, out, _ = run_cli(capsys, "unwaive", "hlth-disk-001", "--host", "db-1", "--db", str(db))
    assert code == 0 and out == "waiver 2 revoked: HLTH-DISK-001 on db-1\n"
    code, _, err = run_cli(capsys, "unwaive", "1", "--db", str(db))
    assert code == 2 and one_line(err) == "fleetcare: unwaive: no active waiver 1 (see 'fleetcare waivers')"

    monkeypatch.setenv("FLEETCARE_NOW", at(1))
    code, _, _, doc = inspect(capsys, fake_runner, fleet, "--db", str(db), "--fail-on", "info")
    assert code == 1 and statuses(doc)[("HLTH-DISK-001", "web-1")] == "fail"
    assert statuses(doc)[("HLTH-UNIT-001", "web-2")] == "waived"
    with sqlite3.connect(db) as conn:  # never deleted: revoked, with when
        rows = conn.execute("SELECT id, revoked FROM waivers ORDER BY id").fetchall()
    assert rows == [(1, T0), (2, T0), (3, None)]
    code, out, _ = run_cli(capsys, "waivers", "--db", str(db))
    assert [ln.split()[1] for ln in out.splitlines()] == ["expiring", "revoked", "revoked"]


def test_a_waivers_file_is_applied_listed_and_gated_by_fail_on(capsys, fake_runner, fleet, monkeypatch, tmp_path):
    monkeypatch.setenv("FLEETCARE_NOW", T0)
    path = tmp_path / "waivers.yml"
    path.write_text("---\nwaivers:\n  - id: HLTH-DISK-*\n    host: web-?\n    reason: scratch disks\n"
                    "    owner: ops team\n    expires: 2027-01-31\n"
                    "  - id: HLTH-DISK-001\n    host: db-1\n    reason: old\n    owner: bob\n    expires: 2026-11-01\n")
    code, out, _, doc = inspect(capsys, fake_runner, fleet, "--waivers", str(path))
    assert code == 1  # db-1's critical failure: its waiver in the file has expired
    assert statuses(doc)[("HLTH-DISK-001", "web-1")] == "waived"
    assert statuses(doc)[("HLTH-DISK-001", "db-1")] == "fail"
    web = next(f for f in doc["findings"] if f["host"] == "web-2" and f["status"] == "waived")
    assert web["waiver"]["source"] == "file" and web["waiver"]["ref"] == f"{path}#1"
    assert doc["waivers"]["lapsed"][0]["ref"] == f"{path}#2"

    code, out, _ = run_cli(capsys, "waivers", "--waivers", str(path))
    assert code == 0 and [ln.split()[2] for ln in out.splitlines()] == ["active", "expired"]

    # fail-on info: the minor unit check on web-2 counts; waived findings never do
    fake = events()
    fake[2] = ok_event("db-1", [finding(severity="critical", status="pass")])
    code, *_ = inspect(capsys, fake_runner, fleet, "--waivers", str(path), "--fail-on", "minor", evs=fake)
    assert code == 1
    fake[1] = ok_event("web-2", [finding()])
    code, out, _, doc = inspect(capsys, fake_runner, fleet, "--waivers", str(path), "--fail-on", "info", evs=fake)
    assert code == 0 and doc["summary"]["failing_by_severity"] == {"critical": 0, "major": 0, "minor": 0, "info": 0}

    # the report of a past run takes the file too
    with History() as h:
        first = h.runs(10)[-1]["id"]
    code, out, _ = run_cli(capsys, "report", first, "--format", "json")
    assert json.loads(out)["waivers"]["waived"] == 2


# -- refusals: one line, exit 2, nothing contacted -------------------------------------------------
ENTRY = {"id": "HLTH-DISK-001", "host": "web-1", "reason": "r", "owner": "o", "expires": "2026-12-31"}


def _entry(**change) -> str:
    entry = {k: v for k, v in {**ENTRY, **change}.items() if v is not None}
    return "waivers:\n  - " + "\n    ".join(f"{k}: {json.dumps(v) if isinstance(v, str) else v}"
                                           for k, v in entry.items()) + "\n"


BAD_FILES = {
    "no-reason": (_entry(reason=None), ("entry 1 (HLTH-DISK-001)", "reason: missing")),
    "blank-owner": (_entry(owner="  "), ("entry 1", "owner: missing")),
    "no-expiry": (_entry(expires=None), ("entry 1", "expires: missing")),
    "bad-date": (_entry(expires="2026-13-45"), ("entry 1", "expires", "'2026-13-45' is not a date")),
    "too-far": (_entry(expires="2028-01-01"), ("entry 1", "expires", "more than 365 days away", "max_days")),
    "unknown-id": (_entry(id="HLTH-DSIK-001"), ("entry 1", "unknown finding ID", "did you mean HLTH-DISK-001?")),
    "unknown-pattern": (_entry(id="HARD-SHH-*"), ("entry 1", "no finding ID matches", "did you mean HARD-SSH-*?")),
    "unknown-key": (_entry(until="2026-12-31"), ("entry 1", "until: unknown key")),
    "not-a-list": ("waivers: {id: HLTH-DISK-001}\n", ("waivers: must be a list",)),
    "top-key": ("waiver:\n  - id: x\n", ("waiver: unknown key",)),
    "second-entry": (_entry() + "  - id: HLTH-DISK-001\n    reason: r\n    owner: o\n",
                     ("entry 2 (HLTH-DISK-001)", "expires: missing")),
    "yaml-error": ("waivers: [\n", ("YAML error",)),
    "impossible-date": ("waivers:\n  - id: HLTH-DISK-001\n    reason: r\n    owner: o\n    expires: 2026-13-45\n",
                        ("line 5, column 14", "month must be in 1..12")),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_waivers_file_is_one_line_before_any_host(capsys, trap, fleet, tmp_path, data_home, monkeypatch,  # noqa: F811
                                                         case):
    monkeypatch.setenv("FLEETCARE_NOW", T0)
    content, needles = BAD_FILES[case]
    path = tmp_path / "w.yml"
    path.write_text(content)
    for argv in (["inspect", "-i", str(fleet)], ["audit", "-i", str(fleet)], ["report", "latest"]):
        code = cli.main([*argv, "--waivers", str(path)])
        line = one_line(capsys.readouterr().err)
        assert code == 2 and str(path) in line, line
        for needle in needles:
            assert needle in line, line
    assert trap.calls == 0
    nothing_ran(data_home)


@pytest.mark.parametrize(("argv", "needles"), [
    (["HLTH-DISK-001", "--owner", "o", "--expires", "2026-12-05"], ("waive: reason: missing",)),
    (["HLTH-DISK-001", "--reason", "r", "--expires", "2026-12-05"], ("owner: missing",)),
    (["HLTH-DISK-001", "--reason", "r", "--owner", "o"], ("expires: missing",)),
    (["HLTH-DISK-001", "--reason", "r", "--owner", "o", "--expires", "soon"], ("'soon' is not a date",)),
    (["HLTH-DISK-001", "--reason", "r", "--owner", "o", "--expires", "2026-11-30"], ("has already passed",)),
    (["HLTH-DISK-001", "--reason", "r", "--owner", "o", "--expires", "2027-12-02"], ("more than 365 days",)),
    (["HARD-SSH-0001", "--reason", "r", "--owner", "o", "--expires", "2026-12-05"],
     ("unknown finding ID 'HARD-SSH-0001'; did you mean HARD-SSH-001?",)),
])
def test_waive_refuses_what_a_file_is_refused_for(capsys, tmp_path, monkeypatch, argv, needles):
    monkeypatch.setenv("FLEETCARE_NOW", T0)
    db = tmp_path / "h.db"
    code, _, err = waive(capsys, *argv, "--db", str(db))
    line = one_line(err)
    assert code == 2 and all(n in line for n in needles), line
    if db.exists():
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT COUNT(*) FROM waivers").fetchone()[0] == 0


BAD_POLICIES = {
    "unknown-top": ("deadlines: {}\n", ("deadlines: unknown key",)),
    "unknown-severity": ("service_levels:\n  urgent: {respond: 1h}\n", ("service_levels.urgent: unknown key",)),
    "unknown-level-key": ("service_levels:\n  major: {answer: 1h}\n", ("service_levels.major.answer: unknown key",)),
    "bad-duration": ("service_levels:\n  major: {resolve: 3 days}\n",
                     ("service_levels.major.resolve", "'3 days' is not a duration")),
    "zero-duration": ("service_levels:\n  major: {resolve: 0d}\n", ("service_levels.major.resolve",)),
    "number": ("service_levels:\n  major: {resolve: 7}\n", ("service_levels.major.resolve", "7 is not a duration")),
    "respond-after-resolve": ("service_levels:\n  minor: {respond: 40d}\n", ("service_levels.minor", "later than")),
    "max-days": ("waivers: {max_days: 0}\n", ("waivers.max_days", "at least 1")),
    "warn-above-max": ("waivers: {max_days: 10, warn_days: 20}\n", ("waivers.warn_days",)),
    "recurring": ("recurring: {times: many}\n", ("recurring.times",)),
    "not-a-mapping": ("- 1\n", ("must be a mapping",)),
}


@pytest.mark.parametrize("case", sorted(BAD_POLICIES))
def test_a_bad_policy_is_one_line_before_any_host(capsys, trap, fleet, tmp_path, data_home, case):  # noqa: F811
    content, needles = BAD_POLICIES[case]
    path = tmp_path / "policy.yml"
    path.write_text(content)
    code = cli.main(["inspect", "-i", str(fleet), "--policy", str(path)])
    line = one_line(capsys.readouterr().err)
    assert code == 2 and f"--policy {path}" in line and all(n in line for n in needles), line
    assert trap.calls == 0
    nothing_ran(data_home)


@pytest.mark.parametrize("argv", [["inspect"], ["waivers"], ["history"]])
def test_a_bad_clock_is_one_line(capsys, trap, monkeypatch, data_home, argv):  # noqa: F811
    monkeypatch.setenv("FLEETCARE_NOW", "yesterday")
    code = cli.main(argv)
    line = one_line(capsys.readouterr().err)
    assert code == 2 and line.startswith("fleetcare: FLEETCARE_NOW='yesterday': not an ISO 8601 time")
    assert trap.calls == 0
    nothing_ran(data_home)


def test_the_policy_ships_with_the_package_and_exposes_recurrence():
    assert "fleetcare.data" in CONFIG["packages"] and "policy.yml" in shipped("fleetcare.data")
    shipped_policy = policy.defaults()
    assert (shipped_policy.recurring.times, shipped_policy.recurring.days) == (3, 30)
    assert (shipped_policy.waivers.max_days, shipped_policy.waivers.warn_days) == (365, 14)
    assert shipped_policy.describe()["info"] == {"respond": "none", "resolve": "none"}


# -- service levels ------------------------------------------------------------------------------------
SEV = {("HLTH-DISK-001", "db-1"): "critical", ("HLTH-DISK-001", "web-1"): "major",
       ("HLTH-UNIT-001", "web-1"): "minor", ("HLTH-MEM-001", "web-1"): "info"}


def _sl_runs(db: Path, plan: list[tuple[str, dict[tuple[str, str], str]]], rules=None) -> list[Run]:
    out = []
    with History(db) as h:
        for n, (started, status) in enumerate(plan):
            run = _run({k: (SEV[k], s) for k, s in status.items()}, started=started,
                       run_id=f"2026120{n + 1}-080000-aaa{n}")
            app.judge_lifecycle(run, h, rules)
            validate(run.to_report())
            h.save(run)
            out.append(run)
    return out


def test_due_times_per_severity_from_first_seen_sorted_and_overdue(tmp_path):
    fail = dict.fromkeys(SEV, "fail")
    later = {**fail, ("HLTH-DISK-001", "web-1"): "pass"}
    # web-1's major disk failure is fixed in the second run and fails again in the third: a new stretch
    first, second, third = _sl_runs(tmp_path / "h.db", [(T0, fail), (at(0.5), later), (at(2), fail)])
    due = {(e["id"], e["host"]): e for e in first.service_levels["findings"]}
    assert set(due) == set(SEV) - {("HLTH-MEM-001", "web-1")}  # info: no promise, no due time
    assert (due[("HLTH-DISK-001", "db-1")]["respond_by"], due[("HLTH-DISK-001", "db-1")]["resolve_by"]) == (
        "2026-12-01T12:00:00+00:00", at(1))
    assert (due[("HLTH-DISK-001", "web-1")]["respond_by"], due[("HLTH-DISK-001", "web-1")]["resolve_by"]) == (
        at(1), at(7))
    assert due[("HLTH-UNIT-001", "web-1")]["resolve_by"] == at(30)
    assert first.service_levels["counts"] == {"open": 4, "due": 3, "overdue": 0, "respond_late": 0}

    # half a day on: the critical one is past its respond-by (4h), not yet overdue
    [crit] = [e for e in second.service_levels["findings"] if e["severity"] == "critical"]
    assert crit["respond_late"] and not crit["overdue"] and crit["first_seen"] == T0

    rows = third.service_levels["findings"]
    assert [(e["id"], e["host"]) for e in rows] == [("HLTH-DISK-001", "db-1"), ("HLTH-DISK-001", "web-1"),
                                                   ("HLTH-UNIT-001", "web-1")]  # soonest due first
    assert [e["overdue"] for e in rows] == [True, False, False]
    assert rows[1]["first_seen"] == at(2) and rows[1]["resolve_by"] == at(9)  # regressed: counted anew
    assert rows[2]["first_seen"] == T0 and not rows[2]["respond_late"]  # minor: respond within 3d
    md = reports.render(third, "md")
    assert md.index("## Service levels") < md.index("## Hosts")
    assert f"| **overdue** | critical | HLTH-DISK-001 | db-1 | {T0} |" in md
    html = reports.render(third, "html")
    assert '<tr class="overdue"><td class="mark">overdue</td>' in html
    assert html.index('id="service-levels"') < html.index("<h2>Run</h2>")


def test_a_customer_policy_overrides_some_keys_and_keeps_the_rest(tmp_path):
    path = tmp_path / "policy.yml"
    path.write_text("service_levels:\n  major: {resolve: 2d}\n  info: {respond: 1w, resolve: 2w}\n")
    rules = app.Rules.load(path)
    assert rules.policy.describe()["major"] == {"respond": "1d", "resolve": "2d"}
    assert rules.policy.describe()["critical"] == {"respond": "4h", "resolve": "1d"}
    [run] = _sl_runs(tmp_path / "h.db", [(T0, dict.fromkeys(SEV, "fail"))], rules)
    due = {(e["id"], e["host"]): e["resolve_by"] for e in run.service_levels["findings"]}
    assert due[("HLTH-DISK-001", "web-1")] == at(2) and due[("HLTH-MEM-001", "web-1")] == at(14)
    assert run.service_levels["source"] == str(path)


def test_fail_on_overdue_exits_on_overdue_findings_only(capsys, fake_runner, fleet, monkeypatch):
    monkeypatch.setenv("FLEETCARE_NOW", T0)
    code, out, _, doc = inspect(capsys, fake_runner, fleet, "--fail-on-overdue")
    assert code == 0 and doc["run"]["fail_on_overdue"] is True  # failing, but no promise broken yet
    assert out.strip().splitlines()[-1].startswith("exit 0: clean: no finding overdue")
    code, *_ = inspect(capsys, fake_runner, fleet)
    assert code == 1  # without the option the same findings fail the run

    monkeypatch.setenv("FLEETCARE_NOW", at(2))  # the critical one (resolve 1d) is overdue now
    code, out, _, doc = inspect(capsys, fake_runner, fleet, "--fail-on-overdue")
    assert code == 1 and out.strip().splitlines()[-1].startswith("exit 1: overdue findings (--fail-on-overdue)")
    assert " overdue     1 findings past their resolve-by time (first: HLTH-DISK-001 on db-1" in out
    assert doc["service_levels"]["counts"]["overdue"] == 1

    # a waiver takes the overdue finding out of the service levels
    assert waive(capsys, "HLTH-DISK-001", "--host", "db-1", "--reason", "r", "--owner", "o",
                 "--expires", "2026-12-10")[0] == 0
    code, *_ = inspect(capsys, fake_runner, fleet, "--fail-on-overdue")
    assert code == 0

    # hosts that did not answer still exit 3
    code, *_ = inspect(capsys, fake_runner, fleet, "--fail-on-overdue", evs=events(down="web-2"))
    assert code == 3


def test_junit_skips_a_waived_finding_with_its_waiver(capsys, fake_runner, fleet, monkeypatch, tmp_path):
    monkeypatch.setenv("FLEETCARE_NOW", T0)
    assert waive(capsys, "HLTH-DISK-001", "--host", "db-1", "--reason", "vendor fix due <Jan>", "--owner",
                 "alice & bob", "--expires", "2026-12-10")[0] == 0
    target = tmp_path / "junit.xml"
    code, *_ = inspect(capsys, fake_runner, fleet, "--junit", str(target))
    assert code == 1
    xmlschema.XMLSchema(str(XSD)).validate(str(target))
    suites = {s.name: s for s in junitparser.JUnitXml.fromfile(str(target))}
    [case] = [c for c in suites["db-1"] if c.name.startswith("HLTH-DISK-001")]
    [skipped] = case.result
    assert isinstance(skipped, junitparser.Skipped)
    assert skipped.message == ("waived: vendor fix due <Jan> (owner alice & bob, expires "
                               "2026-12-10T00:00:00+00:00)")
    assert suites["db-1"].skipped == 1 and suites["db-1"].failures == 0
    assert suites["web-1"].failures == 1


# -- two processes, one database ------------------------------------------------------------------------
WORKER = """
import json, pathlib, sys, time
from fleetcare import app, cli

events = json.loads(pathlib.Path(sys.argv[1]).read_text())
ready, gate = pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])

def execute(job, run_dir, ident, on_event, cancelled):
    (run_dir / "runner" / "artifacts" / ident).mkdir(parents=True)
    ready.touch()  # the run has begun: its start is in history
    deadline = time.monotonic() + 60
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    for event in events:
        on_event(event)
    return "successful"

app.execute = execute
sys.exit(cli.main(sys.argv[4:]))
"""


def test_two_runs_at_once_are_both_stored_and_both_see_a_waiver_added_meanwhile(tmp_path, fleet, data_home):
    db = tmp_path / "shared.db"
    evs = tmp_path / "events.json"
    evs.write_text(json.dumps(events()))
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    gate = tmp_path / "gate"
    env = {**os.environ, "XDG_DATA_HOME": str(data_home), "FLEETCARE_NOW": T0}
    workers = [subprocess.Popen([sys.executable, str(script), str(evs), str(tmp_path / f"ready{n}"), str(gate),
                                 "inspect", "-i", str(fleet), "--db", str(db), "-q"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for n in range(2)]
    try:
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"ready{n}").exists() for n in range(2)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert all((tmp_path / f"ready{n}").exists() for n in range(2)), "the runs did not start"
        # both runs are under way: a waiver is added from a third process
        added = subprocess.run([sys.executable, "-m", "fleetcare.cli", "waive", "HLTH-DISK-*", "--reason",
                                "added mid-run", "--owner", "ops", "--expires", "2026-12-15", "--db", str(db)],
                               env=env, capture_output=True, text=True, timeout=60)
        assert added.returncode == 0, added.stderr
        gate.touch()
        results = [w.communicate(timeout=120) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    for w, (out, err) in zip(workers, results, strict=True):
        assert w.returncode == 0, out + err  # every major and critical failure waived
    with History(db) as h:
        runs = h.runs(10)
        assert len(runs) == 2 and {r["status"] for r in runs} == {"complete"}
        for r in runs:
            run = h.load(r["id"])
            waived = {(f.id, f.host) for f in run.findings() if f.status == "waived"}
            assert waived == {("HLTH-DISK-001", "web-1"), ("HLTH-DISK-001", "web-2"), ("HLTH-DISK-001", "db-1")}
            assert {f.waiver["reason"] for f in run.findings() if f.waiver} == {"added mid-run"}


def test_the_html_duties_render_in_a_real_browser_as_text(tmp_path):
    """Waivers and service levels in headless chromium: the overdue row and the waiver's hostile
    reason and owner are there as text, and nothing they hold became an element."""
    from .test_report_browser import TITLE_PAYLOAD, _dump_dom, _parse

    hostile = "<img src=x onerror=alert(1)>"
    plan = {("HLTH-DISK-001", "db-1"): "fail", ("HLTH-DISK-001", "web-1"): "fail"}
    _, second = _sl_runs(tmp_path / "h.db", [(T0, plan), (at(2), plan)])
    waivers.apply(second, [waivers.check({"id": "HLTH-DISK-001", "host": "web-1", "reason": TITLE_PAYLOAD,
                                          "owner": hostile, "expires": at(5)}, "t", policy.defaults(),
                                         waivers.parse_time(at(2), "t"), "file", "w.yml#1")], policy.defaults())
    from fleetcare import service_levels

    service_levels.annotate(second, policy.defaults())
    page = tmp_path / "report.html"
    page.write_text(reports.render(second, "html"), encoding="utf-8")
    dom = _parse(_dump_dom(tmp_path, page))
    tags = [tag for tag, _ in dom.elements]
    assert dom.title.startswith("Inspection report") and "script" not in tags and "img" not in tags
    ids = [a.get("id") for _, a in dom.elements]
    assert ids.index("service-levels") < ids.index("waivers")
    assert ("tr", {"class": "overdue"}) in dom.elements and "overdue" in dom.texts
    assert TITLE_PAYLOAD in dom.texts and hostile in dom.texts
    assert "Expiring within 14 days" in dom.texts and "Waived findings" in dom.texts


def test_every_run_command_import_and_report_take_the_lifecycle_options():
    parser = cli.build_parser()
    for argv in (["inspect"], ["audit"], ["harden"], ["drift"], ["patch"], ["backup"], ["import", "x"]):
        args = parser.parse_args([*argv, "--waivers", "w.yml", "--policy", "p.yml", "--fail-on-overdue"])
        assert (args.waivers, args.policy, args.fail_on_overdue) == (Path("w.yml"), Path("p.yml"), True), argv
    args = parser.parse_args(["report", "latest", "--waivers", "w.yml", "--policy", "p.yml"])
    assert (args.waivers, args.policy) == (Path("w.yml"), Path("p.yml"))


def test_a_date_yaml_cannot_build_is_one_line_in_any_yaml_file(capsys, trap, tmp_path, data_home):  # noqa: F811
    """PyYAML raises a bare ValueError for 2026-13-45; the loader turns it into the file's line."""
    path = tmp_path / "v.yml"
    path.write_text("health_units_ignore: []\nwhen: 2026-02-30\n")
    code = cli.main(["inspect", "--vars-file", str(path)])
    line = one_line(capsys.readouterr().err)
    assert code == 2 and f"{path}: line 2, column 7" in line and "day is out of range" in line, line
    assert trap.calls == 0
    nothing_ran(data_home)


def test_a_finding_its_role_reported_waived_is_shown_without_a_fleetcare_waiver(capsys, fake_runner, fleet,
                                                                                data_home):
    evs = events()
    evs[0] = ok_event("web-1", [finding(status="waived", reason="site exception EX-12")])
    code, _, _, doc = inspect(capsys, fake_runner, fleet, evs=evs)
    assert code == 1 and statuses(doc)[("HLTH-DISK-001", "web-1")] == "waived"
    assert doc["waivers"]["waived"] == 1 and doc["waivers"]["used"] == []
    run_dir = data_home / "fleetcare" / "runs" / doc["run"]["id"]
    assert "| major | HLTH-DISK-001 | web-1 | - | - | site exception EX-12 | role health |" in (
        run_dir / "report.md").read_text()
    assert "site exception EX-12" in (run_dir / "report.html").read_text()

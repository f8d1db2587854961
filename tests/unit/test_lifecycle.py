"""The comparison with the previous run: new, still open, regressed, resolved, first seen;
carried in every report format, stored in history, and `report RUN --against OTHER`."""

from __future__ import annotations

import json
from pathlib import Path

from fleetcare import app, cli, lifecycle, reports
from fleetcare.history import History
from fleetcare.results import Finding, HostResult, Run, validate


def _run(run_id: str, started: str, statuses: dict[tuple[str, str], str], command: str = "inspect") -> Run:
    run = Run(id=run_id, command=command, started=started)
    for (fid, host), status in statuses.items():
        run.hosts.setdefault(host, HostResult(host, status="ok")).findings.append(
            Finding(fid, f"Check {fid}", "major", status, host, "health", {}, "", []))
    run.finish()
    return run


def _states(run: Run) -> dict[tuple[str, str], tuple[str, str]]:
    return {(e["id"], e["host"]): (e["state"], e["first_seen"]) for e in run.comparison["findings"]}


T1, T2, T3 = "2026-11-01T08:00:00+00:00", "2026-11-02T08:00:00+00:00", "2026-11-03T08:00:00+00:00"
A, B, C = ("HLTH-DISK-001", "db-1"), ("HLTH-UNIT-001", "db-1"), ("HLTH-DISK-001", "web-1")


def _three_runs(db) -> list[Run]:
    """A fails throughout; B fails, passes, fails again; C fails then is fixed."""
    plan = [("20261101-080000-aaaa", T1, {A: "fail", B: "fail", C: "fail"}),
            ("20261102-080000-bbbb", T2, {A: "fail", B: "pass", C: "fail"}),
            ("20261103-080000-cccc", T3, {A: "fail", B: "fail", C: "pass"})]
    out = []
    with History(db) as h:
        for run_id, started, statuses in plan:
            run = lifecycle.annotate(_run(run_id, started, statuses), h)
            validate(run.to_report())
            h.save(run)
            out.append(run)
    return out


def test_each_failing_finding_is_new_still_open_regressed_or_resolved(tmp_path):
    first, second, third = _three_runs(tmp_path / "h.db")
    assert first.comparison["against"] is None
    assert _states(first) == {A: ("new", T1), B: ("new", T1), C: ("new", T1)}
    assert second.comparison["against"] == first.id
    assert _states(second) == {A: ("still_open", T1), B: ("resolved", T1), C: ("still_open", T1)}
    assert third.comparison["against"] == second.id
    # first seen: carried from the first run for A; a regression starts a new stretch
    assert _states(third) == {A: ("still_open", T1), B: ("regressed", T3), C: ("resolved", T1)}
    assert third.comparison["counts"] == {"new": 0, "regressed": 1, "still_open": 1, "resolved": 1}


def test_only_runs_of_the_same_command_over_the_same_hosts_are_compared(tmp_path):
    db = tmp_path / "h.db"
    _three_runs(db)
    with History(db) as h:
        other_hosts = lifecycle.annotate(_run("20261104-080000-dddd", "2026-11-04T08:00:00+00:00",
                                              {A: "fail"}), h)
        other_command = lifecycle.annotate(_run("20261104-090000-eeee", "2026-11-04T09:00:00+00:00",
                                                {A: "fail", B: "fail", C: "fail"}, command="audit"), h)
    assert other_hosts.comparison["against"] is None and _states(other_hosts) == {A: ("new", other_hosts.started)}
    assert other_command.comparison["against"] is None


def test_a_host_that_did_not_answer_is_not_resolved(tmp_path):
    with History(tmp_path / "h.db") as h:
        before = lifecycle.annotate(_run("20261101-080000-aaaa", T1, {A: "fail", C: "fail"}), h)
        h.save(before)
        now = _run("20261102-080000-bbbb", T2, {A: "fail"})
        now.hosts["web-1"] = HostResult("web-1", status="unreachable")
        now = lifecycle.compare(now, before, set(), lifecycle.first_seen_of(before))
    assert {e["id"] + "@" + e["host"]: e["state"] for e in now["findings"]} == {"HLTH-DISK-001@db-1": "still_open"}


def test_every_report_format_shows_what_changed_first(tmp_path):
    third = _three_runs(tmp_path / "h.db")[2]
    md = reports.render(third, "md")
    assert md.index("## What changed since the last run") < md.index("## Hosts")
    assert "| regressed | major | HLTH-UNIT-001 | db-1 | 2026-11-03T08:00:00+00:00 |" in md
    assert "| resolved | major | HLTH-DISK-001 | web-1 |" in md
    html = reports.render(third, "html")
    assert html.index('id="changes"') < html.index("<h2>Run</h2>")
    assert '<tr class="regressed"><td>regressed</td>' in html
    doc = json.loads(reports.render(third, "json"))
    assert doc["schema_version"] == 3 and doc["comparison"]["against"] == "20261102-080000-bbbb"


def test_report_against_any_run_from_the_cli(tmp_path, capsys):
    db = tmp_path / "h.db"
    first, _, third = _three_runs(db)
    assert cli.main(["report", third.id, "--format", "json", "--db", str(db), "--against", first.id]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["comparison"]["against"] == first.id
    # B failed in the first run too: against it, B is still open, not regressed
    states = {(e["id"], e["host"]): e["state"] for e in doc["comparison"]["findings"]}
    assert states == {A: "still_open", B: "still_open", C: "resolved"}
    with History(db) as h:
        default = json.loads(app.rebuild_report(h, third.id, "json"))
    assert default["comparison"] == third.comparison


def test_two_runs_through_the_wrapper_compare_in_report_json(capsys, fake_runner, tmp_path, data_home):
    """inspect, fix the fault on web-1, inspect again: the second report says resolved."""
    from .conftest import finding, ok_event, stats_event

    inventory = tmp_path / "fleet.yml"
    inventory.write_text("all:\n  hosts:\n    web-1:\n    db-1:\n")

    def events(web_status: str) -> list[dict]:
        return [ok_event("web-1", [finding(status=web_status)]), ok_event("db-1", [finding()]),
                stats_event(["web-1", "db-1"])]

    docs = []
    for web_status in ("fail", "pass"):
        fake_runner(events(web_status))
        assert cli.main(["inspect", "-i", str(inventory), "-q"]) in (0, 1)
        line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("reports: "))
        docs.append(json.loads(Path(line.split(" ", 1)[1].split("{")[0] + "json").read_text()))
    first, second = docs
    assert first["comparison"]["counts"] == {"new": 2, "regressed": 0, "still_open": 0, "resolved": 0}
    assert second["comparison"]["against"] == first["run"]["id"]
    assert {(e["host"], e["state"]) for e in second["comparison"]["findings"]} == {
        ("db-1", "still_open"), ("web-1", "resolved")}

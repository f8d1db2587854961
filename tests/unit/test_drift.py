"""fleetcare.drift on a real SQLite history: baseline versions, judging, accept and log."""

from __future__ import annotations

import pytest

from fleetcare import drift
from fleetcare.errors import InputError
from fleetcare.history import History
from fleetcare.results import Run

BASE = {"packages": {"curl:amd64": {"version": "1", "arch": "amd64", "hold": False}},
        "ports": {"tcp/0.0.0.0:22": {"process": "sshd"}}, "services": {"ssh.service": {"enabled": "enabled",
                                                                                        "active": "active"}}}


def run_with(snapshots: dict[str, dict | None], run_id: str) -> Run:
    run = Run(id=run_id, command="drift", fail_on="major")
    for host, snap in snapshots.items():
        found = [{"id": "DRFT-SNAP-001", "title": "t", "severity": "major", "status": "pass", "evidence": {}}]
        payload = {"contract": 1, "role": "drift", "findings": found}
        if snap is not None:
            payload["data"] = snap
        run.add_payload(host, payload)
        run.set_status(host, "ok")
    return run


def failing(run: Run, host: str) -> dict[str, str]:
    return {f.evidence["item"]: f.id for f in run.hosts[host].findings if f.failing and "item" in f.evidence}


def test_judge_accept_log_against_a_real_history(tmp_path):
    history = History(tmp_path / "h.db")
    drift.take_baseline(history, run_with({"web1": BASE, "web2": None}, "r1"), by="alice")
    assert drift.latest(history, "web1")[0] == 1 and drift.latest(history, "web2") is None

    now = {"packages": {"curl:amd64": {"version": "2", "arch": "amd64", "hold": False},
                        "nc:amd64": {"version": "1", "arch": "amd64", "hold": False}},
           "ports": {}}  # services not recorded this time: not judged
    run = run_with({"web1": now, "web3": now}, "r2")
    drift.judge(history, run)
    assert failing(run, "web1") == {"packages:curl:amd64": "DRFT-PKG-001", "packages:nc:amd64": "DRFT-PKG-001",
                                    "ports:tcp/0.0.0.0:22": "DRFT-PORT-001"}
    assert [f.id for f in run.hosts["web3"].findings if f.failing] == ["DRFT-BASE-001"]
    assert run.finish() == 1

    with pytest.raises(InputError, match="needs a reason"):
        drift.accept(history, "web1", [], " ")
    with pytest.raises(InputError, match="not a drifted item"):
        drift.accept(history, "web1", ["services:ssh.service"], "why")
    version, items = drift.accept(history, "web1", ["ports:tcp/0.0.0.0:22", "packages:nc:amd64"], "ticket 7",
                                  by="bob")
    assert version == 2 and items == ["ports:tcp/0.0.0.0:22", "packages:nc:amd64"]

    run = run_with({"web1": now}, "r3")
    drift.judge(history, run)
    assert failing(run, "web1") == {"packages:curl:amd64": "DRFT-PKG-001"}  # the rest was accepted
    assert {f.id for f in run.hosts["web1"].findings if f.status == "pass"} >= {"DRFT-PORT-001"}

    log = drift.log(history, "web1")
    assert [(r["version"], r["kind"], r["by"], r["reason"]) for r in log] == [
        (1, "snapshot", "alice", "baseline taken"), (2, "accept", "bob", "ticket 7")]
    history.close()
    with History(tmp_path / "h.db") as again:  # a history holding drift tables opens again
        assert drift.latest(again, "web1")[0] == 2


def test_severity_per_category_comes_with_the_snapshot_and_applies_to_its_findings():
    from fleetcare.collection import module_utils

    now = {**BASE, "packages": {}, "settings": {"severity": {"packages": "critical", "ports": "info"}}}
    found = {f["id"]: f for f in drift.drift_findings(BASE, now, 1)}
    assert found["DRFT-PKG-001"]["severity"] == "critical" and found["DRFT-PKG-001"]["status"] == "fail"
    assert found["DRFT-PORT-001"]["severity"] == "info"  # a passing category keeps its setting too
    assert found["DRFT-SVC-001"]["severity"] == "major"  # unnamed: its own (fleetcare explain)
    problems = module_utils("validation").drift_problems
    assert problems({"severity": {"packages": "minor"}, "baseline_from": {"sysctl": "web-1"}}) == []
    (bad,) = problems({"severity": {"pkgs": "minor"}})
    assert "severity (drift_severity): unknown category 'pkgs'" in bad[1]


def test_the_settings_of_a_run_are_not_stored_in_the_baseline(tmp_path):
    with History(tmp_path / "h.db") as history:
        drift.take_baseline(history, run_with({"web1": {**BASE, "settings": {"severity": {"files": "minor"}}}}, "r1"))
        assert "settings" not in drift.latest(history, "web1")[1]


def test_categories_held_against_a_golden_host_or_a_group_baseline(tmp_path):
    golden = {"packages": {"curl:amd64": {"version": "1"}}, "sysctl": {"net.ipv4.ip_forward": "0"}}
    mine = {"packages": {"curl:amd64": {"version": "1"}, "nc:amd64": {"version": "1"}},
            "sysctl": {"net.ipv4.ip_forward": "1"}, "ports": {"tcp/0.0.0.0:22": {"process": "sshd"}}}
    with History(tmp_path / "h.db") as history:
        drift.take_baseline(history, run_with({"web-1": golden, "web-2": mine}, "r1"), by="alice")
        drift.take_baseline(history, run_with({"web-1": golden}, "r2"), by="alice", as_name="group:web")
        now = {**mine, "ports": {}, "settings": {"baseline_from": {"packages": "web-1", "sysctl": "group:web"}}}
        run = run_with({"web-2": now}, "r3")
        drift.judge(history, run)
        found = {f.evidence["item"]: f.evidence for f in run.hosts["web-2"].findings if f.failing}
        # nc is in web-2's own baseline, not in web-1's: drift against the golden host
        assert found["packages:nc:amd64"]["baseline"] == "web-1" and found["packages:nc:amd64"]["change"] == "added"
        assert found["sysctl:net.ipv4.ip_forward"]["baseline"] == "group:web"
        assert found["ports:tcp/0.0.0.0:22"]["baseline"] == "own"

        # accept: own categories only; a golden category is refused in one line
        with pytest.raises(InputError, match="held against the baseline 'web-1'"):
            drift.accept(history, "web-2", ["packages:nc:amd64"], "why")
        version, items = drift.accept(history, "web-2", [], "port closed on purpose", by="bob")
        assert items == ["ports:tcp/0.0.0.0:22"] and version == 2  # all own drift, and nothing golden

        # a golden host without a baseline: the host says which one is missing
        lost = {**mine, "settings": {"baseline_from": {"sysctl": "db-9"}}}
        run = run_with({"web-2": lost}, "r4")
        drift.judge(history, run)
        (base,) = [f for f in run.hosts["web-2"].findings if f.id == "DRFT-BASE-001"]
        assert base.failing and "no baseline 'db-9' to hold sysctl" in base.evidence["reason"]
        assert [r["reason"] for r in drift.log(history, "group:web")] == ["declared from web-1"]


def test_a_declared_baseline_is_named_group_and_takes_one_host():
    drift.check_baseline_name("group:web", ("web-1",))
    with pytest.raises(InputError, match="group:NAME"):
        drift.check_baseline_name("web", ("web-1",))
    with pytest.raises(InputError, match="one host, this run covers 2"):
        drift.check_baseline_name("group:web", ("web-1", "web-2"))


def test_no_sql_and_no_history_internals_outside_history_py():
    import re
    from pathlib import Path

    package = Path(drift.__file__).parent
    pattern = re.compile(r"\b(SELECT|INSERT INTO|DELETE FROM)\b|\._db\b|\._tx\(|\._errors\(")
    offenders = [f"{p.relative_to(package)}:{n}" for p in package.rglob("*.py") if p.name != "history.py"
                 for n, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []


def test_the_html_report_shows_each_diff_escaped():
    from fleetcare.reports import html

    run = run_with({"web1": None}, "r1")
    diff = "--- baseline/etc/a\n+++ now/etc/a\n@@ -1 +1 @@\n-x = 1\n+x = <script>2</script>\n"
    drift._add(run, "web1", [drift._finding("DRFT-FILE-001", "fail", {
        "item": "files:/etc/a", "change": "changed", "diff": diff, "baseline": "own", "baseline_version": 3})])
    run.finish()
    page = html.render(run)
    assert "File diffs against the baseline (1)" in page and "baseline own v3" in page
    assert "+x = &lt;script&gt;2&lt;/script&gt;" in page and "<script>2" not in page


def test_the_golden_host_itself_is_held_against_its_own_baseline(tmp_path):
    snap = {"packages": {"curl:amd64": {"version": "1"}}}
    with History(tmp_path / "h.db") as history:
        drift.take_baseline(history, run_with({"web-1": snap}, "r1"))
        now = {"packages": {}, "settings": {"baseline_from": {"packages": "web-1"}}}  # group_vars name it too
        run = run_with({"web-1": now}, "r2")
        drift.judge(history, run)
        (f,) = [f for f in run.hosts["web-1"].findings if f.failing]
        assert f.evidence["baseline"] == "own"
        assert drift.accept(history, "web-1", ["packages:curl:amd64"], "removed on purpose")[0] == 2


# -- desired-state drift (drift_desired): the hardening audit's verdict, judged on the controller ---
def recorded_audit() -> dict:
    """The findings of a real `fleetcare audit` of a Debian host (pass, fail, not_applicable and
    error mixed), as the drift role hands them to drift_snapshot: {controls, findings}."""
    import json
    from pathlib import Path

    path = Path(__file__).parent / "fixtures" / "drift" / "hardening_audit_findings.json"
    found = json.loads(path.read_text())
    return {"controls": len(found), "findings": found}


def test_desired_state_drift_is_one_finding_per_failing_control_beside_the_baseline(tmp_path):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("ds_desired", Path(drift.__file__).parents[1]
                                                  / "plugins/modules/drift_snapshot.py")
    ds = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ds)
    audit = recorded_audit()
    statuses = {f["status"] for f in audit["findings"]}
    assert {"pass", "fail", "not_applicable"} <= statuses  # the recording really is a mix
    carried = ds.desired_state(audit)  # what the module sends back: only what is not quiet, trimmed
    assert carried["controls"] == len(audit["findings"])
    assert {f["status"] for f in carried["findings"]} <= {"fail", "error"}

    history = History(tmp_path / "h.db")
    drift.take_baseline(history, run_with({"web1": {**BASE, "desired": carried}}, "r1"))
    assert "desired" not in drift.latest(history, "web1")[1]  # the verdict is never part of a baseline

    now = {**BASE, "ports": {}, "desired": carried}
    run = run_with({"web1": now, "web2": now}, "r2")
    drift.judge(history, run)
    failing_controls = {f["id"]: f for f in audit["findings"] if f["status"] == "fail"}
    found = {f.evidence["item"]: f for f in run.hosts["web1"].findings if f.id == "DRFT-DESIRED-001"
             and f.status == "fail"}
    assert set(found) == {f"desired:{c}" for c in failing_controls}
    for item, f in found.items():
        control = failing_controls[item.split(":", 1)[1]]
        assert f.evidence["title"] == control["title"] and f.severity == control["severity"]
        assert f.evidence["current"] == control["evidence"].get("actual")
        assert f.evidence["desired"] == control["evidence"].get("expected")
    errors = [f for f in run.hosts["web1"].findings if f.id == "DRFT-DESIRED-001" and f.status == "error"]
    assert len(errors) == sum(1 for f in audit["findings"] if f["status"] == "error")
    assert all(f.evidence["reason"] for f in errors)
    quiet = {f"desired:{f['id']}" for f in audit["findings"] if f["status"] in ("pass", "not_applicable")}
    assert not quiet & {f.evidence.get("item") for f in run.hosts["web1"].findings}
    # beside drift from the baseline, in the same run; a host without a baseline still gets it
    assert failing(run, "web1")["ports:tcp/0.0.0.0:22"] == "DRFT-PORT-001"
    assert {f.evidence["item"] for f in run.hosts["web2"].findings if f.id == "DRFT-DESIRED-001"} == set(found)
    assert [f.id for f in run.hosts["web2"].findings if f.failing and f.id != "DRFT-DESIRED-001"] == \
        ["DRFT-BASE-001"]

    with pytest.raises(InputError, match="desired state"):
        drift.accept(history, "web1", [next(iter(found))], "why")


def test_a_hardened_host_has_no_desired_state_drift_and_without_the_audit_none_is_judged():
    hardened = {"controls": 3, "findings": [
        {"id": "HARD-SSH-001", "title": "t", "severity": "major", "status": "pass", "evidence": {}},
        {"id": "HARD-KRN-001", "title": "t", "severity": "major", "status": "not_applicable",
         "evidence": {"reason": "in a container"}}]}
    (only,) = drift.desired_findings(hardened)
    assert (only["id"], only["status"], only["evidence"]) == ("DRFT-DESIRED-001", "pass", {"controls": 3})
    assert drift.desired_findings(None) == []
    broken = {"controls": 1, "findings": [{"id": "HARD-X-001", "title": "x", "severity": "minor", "status": "fail",
                                           "evidence": {"option": "permitrootlogin", "expected": "no",
                                                        "actual": "yes"}}]}
    (f,) = drift.desired_findings(broken)
    assert f["evidence"] == {"item": "desired:HARD-X-001", "control": "HARD-X-001", "title": "x", "current": "yes",
                             "desired": "no", "details": {"option": "permitrootlogin"}}
    assert f["severity"] == "minor"

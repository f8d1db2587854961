"""The results model: findings are read from the 'fleetcare' key of module
results in the event stream, and nothing else decides a host's fate."""

from __future__ import annotations

import pytest

from fleetcare.results import (
    EXIT_FINDINGS,
    EXIT_HOSTS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Finding,
    HostResult,
    MalformedResult,
    Metric,
    Run,
    SchemaError,
    validate,
)

from .conftest import build_run, finding, ok_event, stats_event, unreachable_event


def test_findings_come_from_the_result_key_with_host_and_role_added():
    run = build_run([ok_event("web-1", [finding()], [{"name": "disk_used_pct", "value": 97.1,
                                                      "unit": "percent", "labels": {"mount": "/var"}}]),
                     stats_event(["web-1"])])
    (f,) = run.findings()
    assert (f.host, f.role, f.id, f.status) == ("web-1", "health", "HLTH-DISK-001", "fail")
    (m,) = run.metrics()
    assert (m.host, m.name, m.value, m.labels) == ("web-1", "disk_used_pct", 97.1, {"mount": "/var"})
    assert run.hosts["web-1"].status == "ok"


def test_results_without_the_key_are_ignored():
    event = {"event": "runner_on_ok", "event_data": {"host": "a", "res": {"changed": False, "findings": [
        finding()]}}}
    run = build_run([event, stats_event(["a"])])
    assert list(run.findings()) == []


def test_a_module_breaking_the_contract_is_refused():
    bad = ok_event("a", [finding(severity="urgent")])
    with pytest.raises(MalformedResult, match="bad severity"):
        build_run([bad])
    wrong_version = ok_event("a", [finding()])
    wrong_version["event_data"]["res"]["fleetcare"]["contract"] = 99
    with pytest.raises(MalformedResult, match="contract"):
        build_run([wrong_version])


@pytest.mark.parametrize(("events", "fail_on", "interrupted", "code"), [
    ([ok_event("a", [finding(status="pass")]), stats_event(["a"])], "major", False, EXIT_OK),
    ([ok_event("a", [finding(severity="minor")]), stats_event(["a"])], "major", False, EXIT_OK),
    ([ok_event("a", [finding(severity="minor")]), stats_event(["a"])], "minor", False, EXIT_FINDINGS),
    ([ok_event("a", [finding(severity="critical")]), stats_event(["a"])], "major", False, EXIT_FINDINGS),
    # errors and not-applicable checks are not failures of the host
    ([ok_event("a", [finding(status="error", severity="critical")]), stats_event(["a"])], "info", False,
     EXIT_OK),
    ([ok_event("a", [finding()]), unreachable_event("b"), stats_event(["a"], dark=["b"])], "major", False,
     EXIT_HOSTS),
    ([ok_event("a", [finding()])], "major", True, EXIT_INTERRUPTED),
])
def test_exit_codes(events, fail_on, interrupted, code):
    run = build_run(events, hosts=("a",), fail_on=fail_on)
    assert run.finish(interrupted=interrupted) == code
    assert run.status == ("interrupted" if interrupted else "complete")


def test_a_host_that_never_answered_is_failed_not_silently_ok():
    run = build_run([ok_event("a", [finding(status="pass")]), stats_event(["a"])], hosts=("a", "b"))
    assert run.finish() == EXIT_HOSTS
    assert run.hosts["b"].status == "failed"
    assert "no result" in run.hosts["b"].message


def test_interrupted_run_keeps_pending_hosts_pending_and_findings_kept():
    run = build_run([ok_event("a", [finding()])], hosts=("a", "b"))
    run.finish(interrupted=True)
    assert run.hosts["b"].status == "pending"
    assert [f.host for f in run.findings()] == ["a"]
    validate(run.to_report())


def test_failed_task_message_names_the_task():
    event = {"event": "runner_on_failed", "event_data": {
        "host": "a", "task": "Validating arguments against arg spec main",
        "res": {"msg": "argument 'health_disk_warn_pct' is of type str"}}}
    run = build_run([event, stats_event([], failures=["a"])], hosts=("a",))
    assert run.hosts["a"].status == "failed"
    assert "health_disk_warn_pct" in run.hosts["a"].message
    assert run.finish() == EXIT_HOSTS


def test_failed_task_with_ignore_errors_does_not_fail_the_host():
    event = {"event": "runner_on_failed", "event_data": {"host": "a", "ignore_errors": True, "res": {}}}
    run = build_run([event, ok_event("a", [finding(status="pass")]), stats_event(["a"])], hosts=("a",))
    assert run.finish() == EXIT_OK


def test_report_validates_and_round_trips():
    run = build_run([ok_event("a", [finding(), finding("HLTH-UNIT-001", status="pass")]), stats_event(["a"])])
    run.finish()
    report = run.to_report()
    validate(report)
    again = Run.from_report(report)
    assert again.to_report() == report


@pytest.mark.parametrize(("path", "value", "message"), [
    (("findings", 0, "severity"), "urgent", "severity"),
    (("findings", 0, "id"), "disk-1", "id"),
    (("hosts", 0, "status"), "fine", "status"),
    (("schema_version",), 99, "schema_version"),
])
def test_schema_refuses_broken_reports(path, value, message):
    run = build_run([ok_event("a", [finding()]), stats_event(["a"])])
    run.finish()
    report = run.to_report()
    node = report
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(SchemaError, match=message):
        validate(report)


def test_summary_counts():
    run = build_run([ok_event("a", [finding(), finding("HLTH-MEM-001", status="pass")]),
                     ok_event("b", [finding(severity="critical")]), unreachable_event("c"),
                     stats_event(["a", "b"], dark=["c"])])
    s = run.summary()
    assert (s["hosts_total"], s["hosts_ok"], s["hosts_unreachable"]) == (3, 2, 1)
    assert s["findings_by_status"]["fail"] == 2 and s["findings_by_status"]["pass"] == 1
    assert s["failing_by_severity"] == {"critical": 1, "major": 1, "minor": 0, "info": 0}
    assert [f.severity for f in run.failing()] == ["critical", "major"]


def test_result_key_matches_the_module_side_of_the_contract():
    import importlib.util
    from pathlib import Path

    from fleetcare import results

    path = Path(results.__file__).parents[1] / "plugins" / "module_utils" / "findings.py"
    spec = importlib.util.spec_from_file_location("fc_findings", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.RESULT_KEY == results.RESULT_KEY
    assert module.CONTRACT_VERSION == results.CONTRACT_VERSION
    assert tuple(module.SEVERITIES) == results.SEVERITIES and tuple(module.STATUSES) == results.STATUSES
    made = module.payload("health", [module.finding("HLTH-DISK-001", "t", "major", "fail", {"a": 1})])
    run = Run(id="x", command="inspect")
    run.add_payload("h", made[results.RESULT_KEY])
    assert next(run.findings()).to_dict()["evidence"] == {"a": 1}


def test_changes_are_recorded_per_task_and_per_loop_item():
    plain = {"event": "runner_on_ok", "event_data": {"host": "a", "task": "Write sshd drop-in",
                                                     "res": {"changed": True}}}
    loop = {"event": "runner_on_ok", "event_data": {"host": "a", "task": "Set sysctl", "res": {
        "changed": True, "results": [
            {"changed": True, "item": {"id": "HARD-KERN-001", "params": {}}},
            {"changed": False, "item": {"id": "HARD-KERN-002"}},
            {"changed": True, "_ansible_item_label": "HARD-KERN-003"}]}}}
    unchanged = {"event": "runner_on_ok", "event_data": {"host": "a", "task": "Read", "res": {"changed": False}}}
    run = build_run([plain, loop, unchanged, stats_event(["a"])])
    assert run.hosts["a"].changes == ["Write sshd drop-in", "Set sysctl: HARD-KERN-001",
                                      "Set sysctl: HARD-KERN-003"]
    run.finish()
    report = run.to_report()
    validate(report)
    assert report["summary"]["changes"] == 3
    assert Run.from_report(report).hosts["a"].changes == run.hosts["a"].changes


# -- the findings channel and owed payloads (issue 18, defect 1) -----------------------
def module_ok(host: str, res: dict, task_uuid: str = "t-1") -> dict:
    return {"event": "runner_on_ok", "event_data": {
        "host": host, "task": "Inspect host health", "task_uuid": task_uuid,
        "resolved_action": "fleetcare.ops.health_inspect", "res": res}}


def channel_line(host: str, payload: dict, task_uuid: str = "t-1") -> dict:
    return {"event": "fleetcare_payload", "event_data": {"host": host, "task_uuid": task_uuid,
                                                         "payload": payload}}


def payload(findings: list[dict], expected: int | None = None) -> dict:
    out = {"contract": 1, "role": "health", "findings": findings, "metrics": []}
    if expected is not None:
        out["expected"] = expected
    return out


def test_a_result_dropped_by_the_runner_fails_the_host_when_the_channel_has_nothing():
    run = build_run([module_ok("a", {}), stats_event(["a"])], hosts=("a",))
    assert run.finish() == EXIT_HOSTS
    assert run.hosts["a"].status == "failed"
    assert "findings never arrived" in run.hosts["a"].message


@pytest.mark.parametrize("channel_first", [True, False])
def test_the_channel_delivers_a_dropped_result_in_either_order(channel_first):
    line = channel_line("a", payload([finding(status="pass")], expected=1))
    events = [line, module_ok("a", {})] if channel_first else [module_ok("a", {}), line]
    run = build_run([*events, stats_event(["a"])], hosts=("a",))
    assert run.finish() == EXIT_OK
    assert [f.id for f in run.findings()] == ["HLTH-DISK-001"]


def test_a_payload_in_the_event_and_in_the_channel_is_taken_once():
    p = payload([finding()], expected=1)
    run = build_run([module_ok("a", {"fleetcare": p}), channel_line("a", p), stats_event(["a"])])
    assert len(list(run.findings())) == 1


def test_fewer_findings_than_the_module_ran_fail_the_host():
    run = build_run([channel_line("a", payload([finding(status="pass")], expected=16)), stats_event(["a"])])
    assert run.finish() == EXIT_HOSTS
    assert "16 checks but only 1" in run.hosts["a"].message


def test_a_payload_without_findings_is_not_a_pass():
    run = build_run([channel_line("a", payload([], expected=0)), stats_event(["a"])])
    assert run.finish() == EXIT_HOSTS
    assert "no checks" in run.hosts["a"].message


def test_tallies_follow_the_hosts_as_summary_counts_them():
    run = build_run([ok_event("a", [finding(), finding("HLTH-UNIT-001", status="pass")]),
                     unreachable_event("b"), module_ok("c", {}),
                     ok_event("d", [finding(severity="critical"), finding("HLTH-CPU-001")])],
                    hosts=("a", "b", "c", "d", "e"))
    assert run.tally() == (3, 1, 3)  # c is still owed its payload: not done yet
    run.feed(stats_event(["a", "c", "d"], dark=["b"]))
    run.finish()
    s = run.summary()
    failing = sum(s["failing_by_severity"].values())
    done = sum(1 for h in run.hosts.values() if h.done)
    assert run.tally() == (done, s["hosts_unreachable"] + s["hosts_failed"], failing) == (4, 2, 3)


def test_a_no_log_fleetcare_task_owes_no_payload():
    """harden asks the audit module which controls to change, with no_log: its
    findings are withheld on purpose and the host is not failed for it."""
    censored = module_ok("a", {"changed": False, "censored": "the output has been hidden due to the fact "
                                                             "that 'no_log: true' was specified for this result"})
    audit = ok_event("a", [finding(status="pass")])  # the audit that ends every harden run
    run = build_run([censored, audit, stats_event(["a"])], hosts=("a",))
    assert run.finish() == EXIT_OK
    assert run.hosts["a"].status == "ok"


def test_a_host_that_answered_with_no_finding_at_all_is_not_clean():
    run = build_run([module_ok("a", {"changed": False, "in_container": {"container": False}}),
                     stats_event(["a"])], hosts=("a",))
    assert run.finish() == EXIT_HOSTS
    assert run.hosts["a"].status == "failed" and "no finding arrived" in run.hosts["a"].message


def test_a_large_report_is_checked_by_the_schemas_own_finding_definition():
    """From FAST_FINDINGS findings on, the findings are checked by plain Python built from the
    schema's `finding` definition: it must refuse what the compiled validator refuses."""
    import copy

    import fastjsonschema

    from fleetcare import results

    assert results._finding_check() is not None, "the finding definition uses a keyword the fast path lacks"
    run = Run(id="20261201-080000-fast", command="audit", started="2026-12-01T08:00:00+00:00")
    run.hosts["h"] = HostResult("h", status="ok")
    run.hosts["h"].findings += [Finding(f"HARD-SSH-{i % 1000:03d}", "t", "major", "pass", "h", "hardening")
                                for i in range(results.FAST_FINDINGS)]
    run.finish()
    doc = run.to_report()
    validate(doc)
    good = doc["findings"][3]
    waiver = {"finding": "HARD-*", "host": "*", "reason": "r", "owner": "o", "expires": "2027-01-01T00:00:00+00:00",
              "source": "file", "ref": "w.yml#1"}
    bad = [{"severity": "bad"}, {"title": ""}, {"id": "x"}, {"extra": 1}, {"references": [1]}, {"evidence": []},
           {"status": "open"}, {"waiver": {"finding": "x"}}, {"host": 3},
           {"id": "HARD-SSH-001\n"}]  # the pattern's $ ends the text, as the compiled validator reads it
    for change in bad:
        finding = {**copy.deepcopy(good), **change}
        broken = {**doc, "findings": [*doc["findings"][:7], finding, *doc["findings"][8:]]}
        with pytest.raises(fastjsonschema.JsonSchemaValueException):
            results._validator("report")(broken)  # the compiled validator refuses it ...
        with pytest.raises(SchemaError, match=r"findings\[7\]"):
            validate(broken)  # ... and so does the fast path, naming the finding
    missing = {k: v for k, v in good.items() if k != "title"}
    with pytest.raises(SchemaError, match=r"findings\[7\] must contain \['title'\]"):
        validate({**doc, "findings": [*doc["findings"][:7], missing, *doc["findings"][8:]]})
    validate({**doc, "findings": [*doc["findings"][:7], {**good, "status": "waived", "waiver": waiver},
                                  *doc["findings"][8:]]})


def _lifecycle_report(n: int) -> dict:
    """A report whose every array the column checks take holds ``n`` valid entries."""
    run = Run(id="20261201-080000-cols", command="inspect", started="2026-12-01T08:00:00+00:00")
    run.hosts["h"] = HostResult("h", status="ok", changes=["task: item"])
    waiver = {"finding": "HARD-SSH-*", "host": "*", "reason": "r", "owner": "o",
              "expires": "2027-01-01T00:00:00+00:00", "source": "file", "ref": "w.yml#1"}
    run.hosts["h"].findings += [
        Finding(f"HARD-SSH-{i:03d}", f"title {i % 7}", "major", ("pass", "fail", "waived")[i % 3], "h", "hardening",
                {"option": "X", "n": i}, "fix it", ["CIS 1.1"], waiver if i % 3 == 2 else None) for i in range(n)]
    run.hosts["h"].metrics += [Metric("h", "disk_used_pct", float(i), "percent", {"mount": f"/m{i}"}) for i in range(n)]
    run.finish()
    doc = run.to_report()
    doc["hosts"] += [{"name": f"h{i}", "status": "ok", "message": "", "changes": ["task"]} for i in range(n)]
    doc["comparison"] = {"against": "x", "against_started": "2026-11-30T08:00:00+00:00",
                         "counts": {"new": n}, "recurring_rule": {"times": 3, "days": 30}, "findings": [
                             {"id": f"HARD-SSH-{i:03d}", "host": "h", "severity": "major", "title": "t",
                              "status": "fail", "state": "new", "first_seen": "2026-12-01T08:00:00+00:00",
                              **({"recurring": True, "recurrences": 3} if i % 5 == 0 else {})} for i in range(n)]}
    doc["waivers"] = {"as_of": "2026-12-01T08:00:00+00:00", "warn_days": 14, "waived": n, "expiring": 0,
                      "used": [{**waiver, "ref": f"w.yml#{i}", "findings": 1, "state": "active", "days_left": 31.0}
                               for i in range(n)],
                      "lapsed": [{**waiver, "ref": f"w.yml#{i}", "findings": 2, "state": "expired"} for i in range(n)]}
    doc["notes"] = [{"id": i, "finding": "HARD-SSH-001", "host": "*", "cause": "c", "fix": "f", "author": "a",
                     "created": "2026-11-30T08:00:00+00:00", "failing_hosts": 1} for i in range(n)]
    doc["service_levels"] = {"as_of": "2026-12-01T08:00:00+00:00", "policy": {}, "source": "defaults",
                             "counts": {"open": n}, "findings": [
                                 {"id": f"HARD-SSH-{i:03d}", "host": "h", "severity": "major",
                                  "first_seen": "2026-12-01T08:00:00+00:00", "respond_by": None,
                                  "resolve_by": "2026-12-31T08:00:00+00:00", "overdue": False,
                                  "respond_late": False} for i in range(n)]}
    return doc


def test_the_column_checks_pass_and_refuse_exactly_what_the_slow_way_does(monkeypatch):
    """The large arrays of a report (findings, metrics, comparison, service levels, waivers) are
    checked a column at a time; for any change to any property of an entry, validate() must pass
    or fail as the compiled validator and the per-finding checks do, with the same message."""
    import copy

    from fleetcare import results

    monkeypatch.setattr(results, "FAST_FINDINGS", 12)  # the same code, on arrays small enough to try often
    doc = _lifecycle_report(12)
    validate(doc)
    paths = [path for path, _ in results._array_checks("report")]
    assert {("findings",), ("metrics",), ("hosts",), ("comparison", "findings"), ("service_levels", "findings"),
            ("waivers", "used"), ("waivers", "lapsed"), ("notes",)} <= set(paths), \
        "an array of the report lost its column checks"

    def outcome(check, document):
        try:
            check(document)
        except SchemaError as exc:
            return str(exc)
        return None

    def variants(value):
        # wrong types, values the schema may or may not take, and types only the slow way decides on
        yield from (None, True, 1, 1.0, -1, 2.5, "", "x", [], ["a"], ("a",), {}, {"a": 1}, {"a": "b"})
        if isinstance(value, str):
            yield value + "\n"  # a pattern's $ is the end of the text, not the place before a newline
            yield value.lower()
        if isinstance(value, list):
            yield [*value, 1]
            yield tuple(value)

    tried = 0
    for path in paths:
        parent = doc if len(path) == 1 else doc[path[0]]
        entries = parent[path[-1]]
        if len(entries) < results.FAST_FINDINGS:
            continue
        index = 7
        for key in [*sorted(entries[index]), "extra"]:
            changes = [*variants(entries[index].get(key)), KeyError]
            for value in changes:
                # a copy of what leads to the entry changed; the rest is shared
                broken = {**doc}
                holder = broken
                if len(path) == 2:
                    holder = broken[path[0]] = {**doc[path[0]]}
                holder[path[-1]] = [*entries]
                target = holder[path[-1]][index] = copy.deepcopy(entries[index])
                if value is KeyError:
                    target.pop(key, None)
                else:
                    target[key] = value
                assert outcome(validate, broken) == outcome(results.validate_slowly, broken), (path, key, value)
                tried += 1
    assert tried > 500

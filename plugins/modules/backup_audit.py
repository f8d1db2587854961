#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: backup_audit
short_description: Audit the fleetcare backup sets of a host in one call and return findings
description:
  - Reads the status records the backup role's job writes (C(/var/lib/fleetcare/backup)), the
    systemd state of the backup services and timers, and opens the restic repository read-only
    (C(restic --no-lock cat config)), in one module call.
  - One finding per check (C(BKUP-*)); per-set checks name the worst set and list every set in
    their evidence, with metrics per set.
  - Reads only. It never changes the host, so RV(ignore:changed) is always V(false).
version_added: "0.2.0"
author:
  - fleetcare engineers
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only reads.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  sets:
    description: Names of the backup sets configured on the host.
    type: list
    elements: str
    default: []
  rpo_hours:
    description: Age of a set's last successful snapshot above which C(BKUP-AGE-001) fails.
    type: int
    default: 26
  repository:
    description: The restic repository.
    type: str
    default: /var/backups/restic
  password_file:
    description: The file restic reads the repository password from.
    type: str
    default: /etc/fleetcare/backup/password
  sftp_command:
    description:
      - The command restic reaches an SFTP repository with (restic's C(sftp.command) option), as the
        role writes it; empty for other repositories.
    type: str
    default: ""
  audit_repository:
    description: Whether to open the repository for C(BKUP-REPO-001).
    type: bool
    default: true
  keep_last:
    description: The keep-last policy, reported with C(BKUP-PRUNE-001).
    type: int
    default: 7
  keep_daily:
    description: The keep-daily policy, reported with C(BKUP-PRUNE-001).
    type: int
    default: 7
  keep_weekly:
    description: The keep-weekly policy, reported with C(BKUP-PRUNE-001).
    type: int
    default: 4
  keep_monthly:
    description: The keep-monthly policy, reported with C(BKUP-PRUNE-001).
    type: int
    default: 6
  stale_lock_minutes:
    description: Age above which a lock without a process is removed by the jobs, reported with C(BKUP-LOCK-001).
    type: int
    default: 60
  check_subset_total:
    description: The t of the check's rotating C(--read-data-subset=n/t), reported with C(BKUP-CHECK-001).
    type: int
    default: 10
  drill_max_age_days:
    description: Age of the last restore drill above which C(BKUP-DRILL-001) fails.
    type: int
    default: 35
  drill_files:
    description: Random files a drill restores per set without drill paths, reported with C(BKUP-DRILL-001).
    type: int
    default: 20
  drill_timer:
    description: Whether the drill has its own timer, which C(BKUP-TIMER-001) then checks too.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Audit the backups
  fleetcare.ops.backup_audit:
    sets: [etc, home]
    rpo_hours: 26
"""

RETURN = r"""
fleetcare:
  description: The findings payload (contract version, role, findings, metrics, expected).
  returned: always
  type: dict
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fleetcare.ops.plugins.module_utils.backup_status import read_record, success_age_hours
from ansible_collections.fleetcare.ops.plugins.module_utils.backup_checks import CHECKS as CHECK_RECORDS
from ansible_collections.fleetcare.ops.plugins.module_utils.findings import (
    CheckError,
    NotApplicable,
    metric,
    payload,
)
from ansible_collections.fleetcare.ops.plugins.module_utils.findings import run_check as run_finding
from ansible_collections.fleetcare.ops.plugins.module_utils.host import parse_properties, probe, run_cmd

ROLE = "backup"
UNIT_PROPERTIES = "Id,LoadState,ActiveState,UnitFileState,Result,ExecMainStatus,NextElapseUSecRealtime,LastTriggerUSec"


def set_unit(name, kind):
    return "fleetcare-backup-%s.%s" % (name, kind)


class Context(object):
    def __init__(self, params, root="/", runner=run_cmd, now=None):
        self.p = params
        self.root = root
        self.runner = runner
        self.now = time.time() if now is None else now
        self._units = None

    def record(self, name):
        return read_record(name, self.root)

    def jobs(self):
        """The names of the jobs with a service and a timer: the sets, forget, the drill's own."""
        return self.p["sets"] + ["forget"] + (["drill"] if self.p["drill_timer"] else [])

    def units(self):
        """{unit: systemctl show properties} for every backup unit, from one systemctl call."""
        if self._units is None:
            names = []
            for name in self.jobs():
                names += [set_unit(name, "service"), set_unit(name, "timer")]
            rc, out, err = self.runner(["systemctl", "show", "-p", UNIT_PROPERTIES, "--"] + names)
            if rc != 0 and not out.strip():
                # some systemd releases exit non-zero while still showing every unit
                raise CheckError("systemctl show failed: %s" % (err.strip() or rc))
            blocks = [parse_properties(b) for b in out.strip().split("\n\n")]
            # not zip(..., strict=False): the keyword is Python 3.10's, and Debian 11's Python is
            # 3.9, where it raised TypeError and turned BKUP-TIMER-001 and BKUP-UNIT-001 into errors
            self._units = dict((name, blocks[i] if i < len(blocks) else {}) for i, name in enumerate(names))
        return self._units


def _need_sets(ctx):
    if not ctx.p["sets"]:
        raise NotApplicable("no backup set is configured")


def check_age(ctx):
    _need_sets(ctx)
    threshold = ctx.p["rpo_hours"]
    sets, metrics = {}, []
    for name in ctx.p["sets"]:
        age = success_age_hours(ctx.record(name), ctx.now)
        sets[name] = None if age is None else round(age, 2)
        if age is not None:
            metrics.append(metric("backup_last_success_age_hours", age, "hours", set=name))
    never = sorted(n for n, a in sets.items() if a is None)
    worst = never[0] if never else max(sets, key=lambda n: sets[n])
    evidence = {"threshold_hours": threshold, "age_hours": sets, "set": worst}
    if never:
        evidence["never_succeeded"] = never
        return "fail", "major", evidence, metrics
    late = sorted(n for n, a in sets.items() if a > threshold)
    evidence["over_threshold"] = late
    return ("fail" if late else "pass"), "major", evidence, metrics


def _run_summary(record):
    keys = ("exit_code", "meaning", "ok", "start", "end", "duration", "snapshot_id", "last_snapshot_id",
            "files_new", "files_changed", "data_added", "restic_version")
    out = dict((k, record.get(k)) for k in keys if k in record)
    hook = record.get("hook")
    if hook and hook.get("exit_code"):
        out["pre_hook_exit_code"] = hook["exit_code"]
        out["pre_hook_output"] = hook.get("output_tail", "")[-500:]
    post = record.get("post_hook")
    if post and post.get("exit_code"):
        out["post_hook_exit_code"] = post["exit_code"]
        out["post_hook_output"] = post.get("output_tail", "")[-500:]
    if record.get("unreadable"):
        out["unreadable"] = record["unreadable"]
    if record.get("subset"):
        out["subset"] = record["subset"]
    if not record.get("ok") and record.get("stderr_tail"):
        out["stderr"] = record["stderr_tail"][-500:]
    return out


def check_run(ctx):
    _need_sets(ctx)
    runs, metrics, failed, partial, never, post = {}, [], [], [], [], []
    for name in ctx.p["sets"]:
        record = ctx.record(name)
        if record is None:
            never.append(name)
            continue
        runs[name] = _run_summary(record)
        code = record.get("exit_code")
        metrics.append(metric("backup_last_exit_code", code if isinstance(code, int) else -1, "", set=name))
        if isinstance(record.get("duration"), (int, float)):
            metrics.append(metric("backup_last_duration_seconds", record["duration"], "seconds", set=name))
        if code == 3:
            partial.append(name)
        elif code != 0:
            failed.append(name)
        if (record.get("post_hook") or {}).get("exit_code"):
            post.append(name)
    evidence = {"runs": runs, "never_ran": never}
    if post:
        evidence["post_hook_failed"] = post
    if failed:
        return "fail", "major", dict(evidence, failed=failed, partial=partial, set=failed[0]), metrics
    if partial:
        unreadable = dict((n, runs[n].get("unreadable", [])) for n in partial)
        return "fail", "minor", dict(evidence, partial=partial, unreadable=unreadable, set=partial[0]), metrics
    if post:
        return "fail", "minor", dict(evidence, set=post[0]), metrics
    if never and not runs:
        raise NotApplicable("no backup set has run yet", evidence)
    return "pass", "major", evidence, metrics


def check_timers(ctx):
    _need_sets(ctx)
    units = ctx.units()
    timers, bad = {}, []
    for name in ctx.jobs():
        unit = set_unit(name, "timer")
        props = units.get(unit, {})
        timers[unit] = {"active": props.get("ActiveState", ""), "enabled": props.get("UnitFileState", ""),
                        "next_run": props.get("NextElapseUSecRealtime", ""),
                        "last_trigger": props.get("LastTriggerUSec", "")}
        if props.get("ActiveState") != "active" or props.get("UnitFileState") != "enabled":
            bad.append(unit)
    return ("fail" if bad else "pass"), "major", {"timers": timers, "inactive": bad}, []


def check_units(ctx):
    _need_sets(ctx)
    units = ctx.units()
    services, bad = {}, []
    for name in ctx.jobs():
        unit = set_unit(name, "service")
        props = units.get(unit, {})
        services[unit] = {"result": props.get("Result", ""), "exit_status": props.get("ExecMainStatus", ""),
                          "active": props.get("ActiveState", "")}
        if props.get("Result", "success") != "success" or props.get("ActiveState") == "failed":
            bad.append(unit)
    return ("fail" if bad else "pass"), "major", {"services": services, "failed": bad}, []


def check_repository(ctx):
    if not ctx.p["audit_repository"]:
        raise NotApplicable("backup_audit_repository is false")
    _need_sets(ctx)
    evidence = {"repository": ctx.p["repository"]}
    env = {"RESTIC_REPOSITORY": ctx.p["repository"], "RESTIC_PASSWORD_FILE": ctx.p["password_file"]}
    options = ["-o", "sftp.command=" + ctx.p["sftp_command"]] if ctx.p.get("sftp_command") else []
    rc, _out, err = ctx.runner(["restic"] + options + ["--no-lock", "cat", "config"], env=env)
    if rc == 0:
        return "pass", "critical", evidence, [metric("backup_repository_reachable", 1)]
    text = err.strip()
    lowered = text.lower()
    if rc == 12 or "wrong password" in lowered:
        reason = "wrong password"
    elif rc == 10 or "does not exist" in lowered or "unable to open config file" in lowered:
        reason = "repository does not exist"
    elif "host key verification failed" in lowered:
        reason = "the SFTP server's host key is not the known one"
    elif "ssh command exited" in lowered or "permission denied" in lowered or "connection refused" in lowered:
        reason = "cannot reach the SFTP server"
    elif "no such file" in lowered and ctx.p["password_file"] in text:
        reason = "password file missing"
    else:
        reason = "cannot open the repository"
    evidence.update(exit_code=rc, problem=reason, stderr=text[-500:])
    return "fail", "critical", evidence, [metric("backup_repository_reachable", 0)]


def _job_check(ctx, name, what):
    _need_sets(ctx)
    record = ctx.record(name)
    if record is None:
        raise NotApplicable("%s has not run yet" % what)
    evidence = _run_summary(record)
    return ("pass" if record.get("ok") else "fail"), "major", evidence, [
        metric("backup_%s_exit_code" % name.strip("_"), record.get("exit_code", -1) or 0)]


def check_prune(ctx):
    status, severity, evidence, metrics = _job_check(ctx, "_forget", "forget/prune")
    evidence["policy"] = dict((k, ctx.p[k]) for k in ("keep_last", "keep_daily", "keep_weekly", "keep_monthly"))
    return status, severity, evidence, metrics


def check_check(ctx):
    status, severity, evidence, metrics = _job_check(ctx, "_check", "restic check")
    evidence["subset_total"] = ctx.p["check_subset_total"]
    return status, severity, evidence, metrics


def _lock_text(lock):
    return "%s (host %s, pid %s, %s)" % (lock.get("id"), lock.get("hostname"), lock.get("pid"), lock.get("time"))


def check_locks(ctx):
    _need_sets(ctx)
    sweep = ctx.record("_locks")
    wedged = {}
    for name in ctx.p["sets"] + ["_forget", "_check", "_drill"]:
        record = ctx.record(name)
        if record and not record.get("ok") and record.get("meaning") == "failed to lock the repository":
            wedged[name.lstrip("_")] = (record.get("stderr_tail") or "")[-300:]
    if sweep is None and not wedged:
        raise NotApplicable("no job has looked at the repository's locks yet")
    sweep = sweep or {}
    recent = sweep.get("removed_recently") or []
    evidence = {"bound_minutes": ctx.p["stale_lock_minutes"], "last_sweep_job": sweep.get("job"),
                "live": [_lock_text(x) for x in sweep.get("live") or []],
                "young": [_lock_text(x) for x in sweep.get("young") or []],
                "removed_recently": [_lock_text(x) for x in recent],
                "kept_stale": [_lock_text(x) for x in sweep.get("kept") or []]}
    metrics = [metric("backup_stale_locks_removed_7d", len(recent))]
    if wedged:
        evidence["wedged_jobs"] = wedged
    if sweep.get("error"):
        # a repository that cannot be opened is BKUP-REPO-001's finding; here it is only evidence
        evidence["error"] = sweep["error"][-300:]
    if wedged or evidence["kept_stale"]:
        return "fail", "major", evidence, metrics
    if recent:
        return "fail", "minor", evidence, metrics
    return "pass", "major", evidence, metrics


def check_drill(ctx):
    _need_sets(ctx)
    record = ctx.record("_drill")
    if record is None:
        raise NotApplicable("no restore drill has run yet (fleetcare backup drill)")
    end = record.get("end") or 0
    age_days = max(0.0, (ctx.now - end) / 86400.0)
    sets, bad = {}, {}
    for name, result in sorted((record.get("sets") or {}).items()):
        sets[name] = dict((k, result.get(k)) for k in ("snapshot_id", "ok", "live_compared", "error",
                                                          "restore_error") if result.get(k) is not None)
        sets[name]["files"] = len(result.get("files") or [])
        if not result.get("ok"):
            bad[name] = {"mismatched": [m.get("path") for m in result.get("mismatched") or []],
                         "unreadable": result.get("unreadable") or [],
                         "error": result.get("error") or result.get("restore_error") or ""}
    evidence = {"age_days": round(age_days, 2), "max_age_days": ctx.p["drill_max_age_days"], "sets": sets,
                "meaning": record.get("meaning"), "scratch_removed": record.get("scratch_removed")}
    metrics = [metric("backup_drill_age_days", age_days, "days"),
               metric("backup_drill_ok", 1 if record.get("ok") else 0)]
    if bad or not record.get("ok"):
        evidence["failed"] = bad
        return "fail", "major", evidence, metrics
    if age_days > ctx.p["drill_max_age_days"]:
        return "fail", "minor", evidence, metrics
    return "pass", "major", evidence, metrics


CHECK_FUNCS = {
    "BKUP-AGE-001": check_age,
    "BKUP-RUN-001": check_run,
    "BKUP-TIMER-001": check_timers,
    "BKUP-UNIT-001": check_units,
    "BKUP-REPO-001": check_repository,
    "BKUP-PRUNE-001": check_prune,
    "BKUP-CHECK-001": check_check,
    "BKUP-LOCK-001": check_locks,
    "BKUP-DRILL-001": check_drill,
}
CHECKS = tuple((record, CHECK_FUNCS[record["id"]]) for record in CHECK_RECORDS)


def audit(params, root="/", runner=run_cmd, now=None):
    ctx = Context(params, root, runner, now)
    findings, metrics = [], []
    for record, func in CHECKS:
        one, more = run_finding(record["id"], record["title"], record["severity"], lambda f=func: f(ctx),
                                record["remediation"], record["references"])
        findings.append(one)
        metrics.extend(more)
    return payload(ROLE, findings, metrics, expected=len(CHECKS))


ARGUMENT_SPEC = dict(
    sets=dict(type="list", elements="str", default=[]),
    rpo_hours=dict(type="int", default=26),
    repository=dict(type="str", default="/var/backups/restic"),
    password_file=dict(type="str", default="/etc/fleetcare/backup/password", no_log=False),
    sftp_command=dict(type="str", default=""),
    audit_repository=dict(type="bool", default=True),
    keep_last=dict(type="int", default=7),
    keep_daily=dict(type="int", default=7),
    keep_weekly=dict(type="int", default=4),
    keep_monthly=dict(type="int", default=6),
    stale_lock_minutes=dict(type="int", default=60),
    check_subset_total=dict(type="int", default=10),
    drill_max_age_days=dict(type="int", default=35),
    drill_files=dict(type="int", default=20),
    drill_timer=dict(type="bool", default=False),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.exit_json(changed=False, host=probe().as_dict(), **audit(module.params))


if __name__ == "__main__":
    main()

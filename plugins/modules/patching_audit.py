#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: patching_audit
short_description: Audit pending package updates of a Debian host, or patch it, in one call and return findings
description:
  - Reads the dpkg status database and APT's own view of the host (C(apt-cache policy), which reads
    the downloaded package lists and their Release files; APT's caches are built in a temporary
    folder of the call's own, shared by its audits and removed at its end, never in
    C(/var/cache/apt)) and reports pending updates split into
    security and other, held packages, the age of the package lists, a pending reboot with its
    reason, whether unattended-upgrades is installed, enabled and ran successfully lately, the
    services that need a restart (C(needrestart -b) where installed, otherwise processes mapping
    deleted libraries), an interrupted dpkg, a held dpkg lock, and the last patch run's record
    (C(/var/lib/fleetcare/patching/last-run.json), written by a patch run), one finding each
    (C(PTCH-*)).
  - A pending update is security when its candidate version comes from a list whose Release file
    names a security suite (Label or Suite containing C(security), as Debian's C(*-security)).
  - Without O(apply) it reads only and never changes the host (RV(ignore:changed) is V(false));
    RV(patching.upgrade) lists what O(update) would install, held packages left out.
  - With O(apply) the same call is the whole patch run (see the notes), so a patched host costs
    one round trip, as the audit does.
version_added: "0.2.0"
author:
  - fleetcare engineers
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Only the audit runs - nothing is installed, refreshed or written, and no health gate runs.
  diff_mode:
    support: none
  platform:
    platforms: debian
    details: Debian 11, 12 and 13 (dpkg and APT).
options:
  lists_max_age_days:
    description: Days since the last successful C(apt-get update) at which C(PTCH-LIST-001) fails.
    type: int
    default: 7
  update:
    description:
      - Which pending updates RV(patching.upgrade) lists for the role to install.
      - V(none) lists nothing; held packages are never listed.
    type: str
    choices: [none, security, all]
    default: none
  report:
    description:
      - Return the findings under the C(fleetcare) result key. The role's first audit before an
        upgrade sets it to V(false), so only the audit of the state left behind is reported.
    type: bool
    default: true
  lock_wait:
    description:
      - Seconds C(PTCH-LOCK-001) waits for another process to release the dpkg lock before it
        fails naming the holder (pid and command). The role's plan before an upgrade waits
        C(patching_lock_timeout); a plain audit does not wait.
    type: int
    default: 0
  uu_max_age_days:
    description: Days since unattended-upgrades' last successful run at which C(PTCH-UU-001) fails.
    type: int
    default: 2
  debsecan_source:
    description:
      - Where C(debsecan) (installed on the host) reads its vulnerability data (its C(--source)
        URL, by default C(https://security-tracker.debian.org/tracker/debsecan/release/1/), a mirror of it,
        or a C(file:///) directory). C(PTCH-SEC-001) then lists the CVE IDs of each pending
        security update. Empty means no CVE IDs.
    type: str
    default: ""
  debsecan_suite:
    description: The suite debsecan reads (file C(SOURCE/SUITE)); empty is the host's codename.
    type: str
    default: ""
  windows:
    description:
      - Maintenance windows in the host's own time, each a dict of C(days) (a list such as
        C([mon, tue])), C(start) and C(end) (C(HH:MM)); an end at or before the start runs past
        midnight. Empty is always open. With O(update)
        outside every window (or inside a blackout), RV(patching.refused) says why and the role
        installs nothing.
    type: list
    elements: dict
    default: []
  blackouts:
    description: Dates C(YYYY-MM-DD) or ranges C(FIRST..LAST) (host time) on which no update is installed.
    type: list
    elements: str
    default: []
  force:
    description: Patch outside the windows and inside blackouts (recorded as forced).
    type: bool
    default: false
  record_dir:
    description: Where a patch run writes its records (C(PTCH-RUN-001) reads last-run.json there).
    type: str
    default: /var/lib/fleetcare/patching
  apply:
    description:
      - Install the updates O(update) selects - the whole patch run on this host in this call (see
        the notes). False (the default) only audits, whatever O(update) says.
    type: bool
    default: false
  stopped:
    description:
      - Why a rolling run stopped before this host (a failed health gate or too many failures in
        an earlier batch). With O(apply), nothing is installed and the record says why.
    type: str
    default: ""
  pre_hooks:
    description: Shell commands run in order before apt; the first that exits non-zero stops the run.
    type: list
    elements: str
    default: []
  post_hooks:
    description: Shell commands run in order after apt succeeded.
    type: list
    elements: str
    default: []
  hook_timeout:
    description: Seconds one hook may run.
    type: int
    default: 600
  reboot:
    description:
      - After a successful run (or one with nothing to install), whether the role reboots the host
        (RV(record.reboot.action)) - V(never); V(always); V(patched) when a package changed;
        V(smart) when a reboot is required (C(/var/run/reboot-required), or a newer kernel than
        the running one). In a container the action is C(not_applicable) with the reason.
      - When the action is C(reboot), the call returns after apt, without findings; the role
        reboots and calls the module again (without O(apply)) to run the health gate after and
        report.
    type: str
    choices: [never, always, patched, smart]
    default: never
  gate:
    description:
      - The health gate (C(PTCH-GATE-001)), judged with the health role's own checks run inside
        this call (module_utils/health_inspection.py, C(sample_seconds) 0), so it costs no extra
        round trip. Keys - C(health) (true runs the gate - with O(apply), before and after the
        update; without, after only, against C(before)), C(options) (options of
        C(fleetcare.ops.health_inspect) for the gate), C(severities) (the gated severities,
        default C([critical, major])), C(stopped_by) (the hosts whose gate stopped the rollout
        before this host).
      - A host failing findings of those severities before is not patched (result
        C(unhealthy)); a finding of those severities failing after but not before fails the
        gate, and RV(patching.gate.new_failures) lists them.
    type: dict
    default: {}
notes:
  - With O(apply) and O(update) V(security) or V(all), one call is the whole patch run on the host - the health
    gate before, the package lists refreshed when missing, the plan (this audit, choosing the
    updates and what blocks them), the pre hooks, apt, the post hooks, the run record, the health
    gate after, and the audit of the state left behind, which is what is reported. In check mode
    only the audit runs and nothing is written.
"""

EXAMPLES = r"""
- name: Audit pending updates
  fleetcare.ops.patching_audit:
    lists_max_age_days: 7
"""

RETURN = r"""
fleetcare:
  description: The findings contract payload (when O(report) is true and no reboot is to follow).
  returned: when report is true
  type: dict
record:
  description: The patch run's record as written on the host (see module_utils/patching_run.py), with its C(path).
  returned: with apply and update security or all
  type: dict
patching:
  description: The pending updates, held packages and what to upgrade.
  returned: always
  type: dict
  contains:
    pending:
      description: One item per pending update (package, installed, candidate, security, origins, held).
      type: list
      elements: dict
    held:
      description: Packages on hold.
      type: list
      elements: str
    upgrade:
      description: C(name=version) of the updates O(update) selected, held packages left out.
      type: list
      elements: str
    refused:
      description: Why this host may not be patched now (outside the windows, inside a blackout); empty if it may.
      type: str
    blocked:
      description: Why no update may be attempted now (an interrupted dpkg, a held dpkg lock); empty if none.
      type: list
      elements: str
"""

import contextlib
import datetime
import os
import shutil
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.fleetcare.ops.plugins.module_utils.debian import (
    DPKG_STATUS, UU_LOG, apt_lists_updated, dpkg_lock_holders, dpkg_pending_journal, installed_packages,
    parse_apt_config, parse_dpkg_held, parse_dpkg_status, parse_needrestart_batch, parse_policy_files,
    parse_policy_packages, parse_uu_log, pending_updates, processes_with_deleted_libraries, reboot_state,
    refresh_apt_lists, running_kernel)
from ansible_collections.fleetcare.ops.plugins.module_utils.findings import (
    CheckError, NotApplicable, metric, payload, run_check)
from ansible_collections.fleetcare.ops.plugins.module_utils.host import probe, read_optional, run_cmd
from ansible_collections.fleetcare.ops.plugins.module_utils.patching_checks import CHECKS as CHECK_RECORDS
from ansible_collections.fleetcare.ops.plugins.module_utils.patching_window import state as window_state
from ansible_collections.fleetcare.ops.plugins.module_utils.patching_window import window_problems
from ansible_collections.fleetcare.ops.plugins.module_utils.patching_run import LAST_RUN, RECORD_DIR, RESULTS
from ansible_collections.fleetcare.ops.plugins.module_utils.patching_run import apply, write_record
from ansible_collections.fleetcare.ops.plugins.module_utils.patching_run import read_record as read_run_record
from ansible_collections.fleetcare.ops.plugins.module_utils.reboot import boot_state, judge_reboot

ROLE = "patching"
DAY = 86400.0


APT_CACHE_KEY = "apt_cache_dir"


def _apt_cache_options(folder):
    """APT's two binary caches in ``folder``, or (no folder) in memory: never the host's own
    /var/cache/apt/*.bin, so the audit writes nothing of the host's."""
    files = [os.path.join(folder, name) if folder else "" for name in ("pkgcache.bin", "srcpkgcache.bin")]
    return ["-o", "Dir::Cache::pkgcache=" + files[0], "-o", "Dir::Cache::srcpkgcache=" + files[1]]


def _apt_cache_policy(runner, names, folder=None):
    """``apt-cache policy``. With ``folder`` (a temporary folder of this module call's own,
    removed at its end: :func:`apt_cache_folder`) APT keeps the caches it builds there, so the
    second call of a module call maps what the first built from the package lists (about 0.05 s
    against 0.5 s of CPU for Debian's lists), and the call after apt only merges the new dpkg
    status into them; a folder that cannot hold them (full, read-only) falls back to memory."""
    for where in ([folder, None] if folder else [None]):
        rc, out, err = runner(["apt-cache"] + _apt_cache_options(where) + ["policy"] + list(names), timeout=60)
        if rc == 0:
            break
    if rc != 0:
        raise CheckError("apt-cache policy exited %d: %s" % (rc, err.strip()[:200]))
    return out


@contextlib.contextmanager
def apt_cache_folder(shared):
    """A temporary folder for APT's caches (``shared[APT_CACHE_KEY]``) for the audits of one
    module call, removed when the call ends, whatever happens; none when the audits share one
    already."""
    if shared.get(APT_CACHE_KEY):
        yield shared[APT_CACHE_KEY]
        return
    folder = tempfile.mkdtemp(prefix="fleetcare-apt-")
    shared[APT_CACHE_KEY] = folder
    try:
        yield folder
    finally:
        shared.pop(APT_CACHE_KEY, None)
        shutil.rmtree(folder, ignore_errors=True)


class Context(object):
    """What the checks read, read once: dpkg status, APT's policy, APT's configuration."""

    def __init__(self, params, root="/", runner=run_cmd, now=None, shared=None):
        self.p, self.root, self.runner = params, root, runner
        self.gate = judge_gate(params.get("gate") or {})
        self.now = time.time() if now is None else now
        self.container = probe(root).container
        status = read_optional(os.path.join(root, DPKG_STATUS.lstrip("/")))
        if status is None:
            raise CheckError("cannot read %s: not a dpkg host" % DPKG_STATUS)
        self.states = parse_dpkg_status(status)
        self.held = parse_dpkg_held(status)
        cache = (shared or {}).get(APT_CACHE_KEY)  # where APT keeps its caches for this call
        # APT's package files and their origins: an upgrade leaves them as they were, so the audit
        # after apt in the same call reads them from the plan (``shared``) instead of APT again
        if shared is not None and "origins" in shared:
            self.origins = shared["origins"]
        else:
            self.origins = parse_policy_files(_apt_cache_policy(runner, [], cache))
            if shared is not None:
                shared["origins"] = self.origins
        policy = parse_policy_packages(_apt_cache_policy(runner, installed_packages(status), cache))
        self.pending = pending_updates(policy, self.origins, self.held)
        self.codename = probe(root).codename
        self.window_open, self.window_reason = window_state(
            params.get("windows") or [], params.get("blackouts") or [], datetime.datetime.fromtimestamp(self.now))
        self.refused = ""
        if params["update"] != "none" and not self.window_open:
            self.refused = self.window_reason if not params.get("force") else ""
        self.local_time = time.strftime("%a %Y-%m-%d %H:%M %Z", time.localtime(self.now))
        self.cves, self.cve_evidence = _cves(self)

    def updates(self, security):
        return [u for u in self.pending if u["security"] == security and not u["held"]]


def _listed(updates):
    return [dict((k, u[k]) for k in ("package", "installed", "candidate", "origins")) for u in updates]


def parse_debsecan_summary(text):
    """``debsecan --format summary`` -> {binary package: [vulnerability ID]} (lines
    ``CVE-2026-1234 PACKAGE (notes)``)."""
    out = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2:
            out.setdefault(words[1], set()).add(words[0])
    return dict((name, sorted(ids)) for name, ids in out.items())


def _cves(ctx):
    """({package: [CVE]}, evidence about the data): debsecan run on the host's dpkg status with
    the data source the role gives (patching_debsecan_source); nothing when no source is given."""
    source = ctx.p["debsecan_source"]
    if not source:
        return {}, {"cve_data": "none: patching_debsecan_source is not set"}
    if ctx.states.get("debsecan") != "installed":
        return {}, {"cve_data": "none: debsecan is not installed", "cve_source": source}
    suite = ctx.p["debsecan_suite"] or ctx.codename or "GENERIC"
    argv = ["debsecan", "--source", source, "--suite", suite, "--format", "summary",
            "--status", os.path.join(ctx.root, DPKG_STATUS.lstrip("/"))]
    try:
        rc, out, err = ctx.runner(argv, timeout=120)
    except Exception as exc:  # the audit goes on without CVE IDs
        return {}, {"cve_data": "error: %s" % exc, "cve_source": source, "cve_suite": suite}
    if rc != 0:
        return {}, {"cve_data": "error: debsecan exited %d: %s" % (rc, " ".join(err.split())[-200:]),
                    "cve_source": source, "cve_suite": suite}
    return parse_debsecan_summary(out), {"cve_data": "debsecan", "cve_source": source, "cve_suite": suite}


def _with_cves(listed, cves):
    for item in listed:
        if item["package"] in cves:
            item["cves"] = cves[item["package"]]
    return listed


def check_security(ctx):
    found = ctx.updates(True)
    evidence = {
        "count": len(found), "updates": _with_cves(_listed(found), ctx.cves), "expected": "no pending security update",
        "security_origins": sorted(set(r.get("label") or r.get("suite") for r in ctx.origins.values()
                                       if "security" in (r.get("label", "") + r.get("suite", "")).lower()))}
    evidence.update(ctx.cve_evidence)
    ids = sorted(set(c for u in evidence["updates"] for c in u.get("cves", ())))
    evidence["cves"] = ids
    return ("fail" if found else "pass"), "major", evidence, [
        metric("patching_pending_security", len(found)), metric("patching_pending_security_cves", len(ids))]


def check_other(ctx):
    found = ctx.updates(False)
    return ("fail" if found else "pass"), "minor", {
        "count": len(found), "updates": _listed(found), "expected": "no pending update"}, [
        metric("patching_pending_other", len(found))]


def check_held(ctx):
    waiting = [u for u in ctx.pending if u["held"]]
    return ("fail" if waiting else "pass"), "minor", {
        "held": ctx.held,
        "held_with_updates": _with_cves([dict(_listed([u])[0], security=u["security"]) for u in waiting], ctx.cves),
        "expected": "no update waiting behind a hold"}, [metric("patching_held_packages", len(ctx.held))]


def check_lists(ctx):
    updated = apt_lists_updated(ctx.root)
    if updated is None:
        raise CheckError("no package lists under /var/lib/apt/lists: apt-get update never succeeded",
                         {"expected": "lists at most %d days old" % ctx.p["lists_max_age_days"]})
    days = max(0.0, (ctx.now - updated) / DAY)
    evidence = {"days_since_update": round(days, 2), "last_update_epoch": int(updated),
                "threshold_days": ctx.p["lists_max_age_days"]}
    return ("fail" if days > ctx.p["lists_max_age_days"] else "pass"), "minor", evidence, [
        metric("patching_days_since_update", round(days, 3), "days")]


def check_reboot(ctx):
    pending, evidence = reboot_state(running_kernel(), ctx.container, ctx.root)
    evidence["expected"] = "no reboot pending"
    return ("fail" if pending else "pass"), "major", evidence, [
        metric("patching_reboot_required", 1 if pending else 0)]


def check_restart(ctx):
    if ctx.states.get("needrestart") == "installed":
        # -b: batch output, -r l: list only; it restarts nothing.
        rc, out, err = ctx.runner(["needrestart", "-b", "-r", "l"], timeout=60)
        if rc != 0:
            raise CheckError("needrestart -b exited %d: %s" % (rc, err.strip()[-200:]))
        found = parse_needrestart_batch(out)
        evidence = {"source": "needrestart -b", "services": found["services"],
                    "containers": found["containers"], "sessions": found["sessions"],
                    "needrestart_kernel_status": found["kernel_status"]}
        count = len(found["services"])
    else:
        processes = processes_with_deleted_libraries(ctx.root)
        services = sorted(set(p["unit"] for p in processes if p["unit"] and p["unit"].endswith(".service")))
        evidence = {"source": "/proc/*/maps (needrestart is not installed)", "services": services,
                    "processes": [dict(p, libraries=p["libraries"][:5]) for p in processes[:50]]}
        count = len(services) + len([p for p in processes if not (p["unit"] or "").endswith(".service")])
    evidence["expected"] = "no process runs a library an upgrade replaced"
    return ("fail" if count else "pass"), "minor", evidence, [metric("patching_restart_needed", count)]


def check_dpkg(ctx):
    journal = dpkg_pending_journal(ctx.root)
    admindir = os.path.join(ctx.root, "var/lib/dpkg")
    rc, out, err = ctx.runner(["dpkg", "--admindir=" + admindir, "--audit"])
    if rc not in (0, 1):
        raise CheckError("dpkg --audit exited %d: %s" % (rc, err.strip()[:200]))
    lines = [line for line in out.splitlines() if line.strip()]
    evidence = {"dpkg_audit": lines[:40], "journal_files": journal[:20],
                "expected": "dpkg --audit prints nothing and /var/lib/dpkg/updates is empty"}
    return ("fail" if lines or journal else "pass"), "critical", evidence, [
        metric("patching_dpkg_interrupted", 1 if lines or journal else 0)]


def check_lock(ctx):
    # a run the window refuses waits for nothing
    deadline = time.time() + (0 if ctx.refused else ctx.p["lock_wait"])
    while True:
        holders = dpkg_lock_holders(ctx.root)
        if not holders or time.time() >= deadline:
            break
        time.sleep(1)
    evidence = {"holders": holders, "waited_seconds": ctx.p["lock_wait"] if holders else None,
                "expected": "no process holds the dpkg lock"}
    if holders:
        evidence["reason"] = "; ".join("%s held by pid %s (%s)" % (h["file"], h["pid"], h["command"] or "?")
                                       for h in holders)
    return ("fail" if holders else "pass"), "major", evidence, []


def check_run(ctx):
    directory = ctx.p.get("record_dir") or RECORD_DIR
    record = read_run_record(ctx.root, directory)
    if record is None:
        raise NotApplicable("no patch run recorded on this host (%s/%s)" % (directory, LAST_RUN))
    end = record.get("end") or record.get("start") or 0
    days = round(max(0.0, (ctx.now - end) / DAY), 2) if end else None
    evidence = dict((k, record.get(k)) for k in ("result", "reason", "kind", "start", "end", "changed"))
    evidence.update(days_since_run=days, record="%s/%s" % (directory, LAST_RUN), reboot=record.get("reboot"),
                    packages=(record.get("packages") or [])[:50],
                    failed_hooks=[h for h in record.get("hooks") or [] if h.get("rc") != 0],
                    expected="the last patch run did what it was asked")
    ok = RESULTS.get(record.get("result"), False)
    metrics = [metric("patching_last_run_ok", 1 if ok else 0)]
    if days is not None:
        metrics.append(metric("patching_days_since_run", days, "days"))
    return ("pass" if ok else "fail"), "major", evidence, metrics


def check_rebooted(ctx):
    directory = ctx.p.get("record_dir") or RECORD_DIR
    record = read_run_record(ctx.root, directory)
    if record is None:
        raise NotApplicable("no patch run recorded on this host (%s/%s)" % (directory, LAST_RUN))
    if ctx.container:
        raise NotApplicable("a %s container has no boot of its own and is never rebooted" % ctx.container)
    status, evidence = judge_reboot(record.get("reboot"), boot_state(ctx.root))
    evidence["record"] = "%s/%s" % (directory, LAST_RUN)
    return status, "major", evidence, [metric("patching_reboot_proven", 1 if status == "pass" else 0)]


def judge_gate(gate):
    """The gate's outcome from the health findings before and after: the findings of a gated
    severity that fail after patching and did not fail before."""
    severities = gate.get("severities") or ["critical", "major"]

    def failing(findings):
        return [f for f in findings or [] if isinstance(f, dict) and f.get("status") == "fail"
                and f.get("severity") in severities]

    before = set(f.get("id") for f in failing(gate.get("before")))
    new = [dict((k, f.get(k)) for k in ("id", "severity", "title")) for f in failing(gate.get("after"))
           if f.get("id") not in before]
    reasons = dict((f.get("id"), (f.get("evidence") or {}).get("reason")) for f in failing(gate.get("after")))
    for item in new:
        if reasons.get(item["id"]):
            item["reason"] = str(reasons[item["id"]])[:300]
    truthy = (True, 1, "True", "true", "yes")  # a template may give the text
    return {"ran": gate.get("ran") in truthy, "skipped": gate.get("skipped") in truthy and bool(before),
            "severities": severities, "failing_before": sorted(before),
            "new_failures": new, "stopped_by": list(gate.get("stopped_by") or [])}


def check_gate(ctx):
    gate = ctx.gate
    if gate.get("stopped_by"):
        raise NotApplicable("not patched: the rollout stopped after the health gate failed on %s"
                            % "; ".join(gate["stopped_by"]))
    if gate.get("skipped"):
        return "fail", "critical", {
            "failing_before": gate["failing_before"], "severities": gate.get("severities") or [],
            "new_failures": [], "expected": "no failing health finding of those severities before patching",
            "reason": "not patched: unhealthy before patching (%s failing)" % ", ".join(gate["failing_before"])}, \
            [metric("patching_gate_new_failures", 0)]
    if not gate.get("ran"):
        raise NotApplicable("no health gate ran (it runs with patching_update and patching_health_gate)")
    new = gate.get("new_failures") or []
    evidence = {"new_failures": new, "failing_before": gate.get("failing_before") or [],
                "severities": gate.get("severities") or [],
                "expected": "no new failing health finding of those severities after patching"}
    if new:
        evidence["reason"] = "health got worse after patching: %s" % ", ".join(
            "%s (%s)" % (f.get("id"), f.get("severity")) for f in new)
    return ("fail" if new else "pass"), "critical", evidence, [metric("patching_gate_new_failures", len(new))]


def _uu_epoch(stamp):
    # the log writes the host's local time
    return time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) if stamp else None


def check_unattended(ctx):
    installed = ctx.states.get("unattended-upgrades") == "installed"
    evidence = {"installed": installed, "expected": "unattended-upgrades installed and enabled"}
    rc, out, err = ctx.runner(["apt-config", "dump"])
    if rc != 0:
        raise CheckError("apt-config dump exited %d: %s" % (rc, err.strip()[:200]), evidence)
    config = parse_apt_config(out)
    value = config.get("APT::Periodic::Unattended-Upgrade", "0")
    evidence["enabled"] = value not in ("", "0", "false", "no")
    evidence["apt_periodic_unattended_upgrade"] = value
    stamp = os.path.join(ctx.root, "var/lib/apt/periodic/unattended-upgrades-stamp")
    evidence["last_run_epoch"] = int(os.stat(stamp).st_mtime) if os.path.exists(stamp) else None
    log = parse_uu_log(read_optional(os.path.join(ctx.root, UU_LOG.lstrip("/"))) or "")
    success = _uu_epoch(log["last_success"])
    evidence.update(log_file=UU_LOG, last_success=log["last_success"], last_error=log["last_error"],
                    last_error_message=log["last_error_message"], threshold_days=ctx.p["uu_max_age_days"])
    days = None if success is None else round(max(0.0, (ctx.now - success) / DAY), 2)
    evidence["days_since_success"] = days
    ok = installed and evidence["enabled"]
    if ok and (days is None or days > ctx.p["uu_max_age_days"]):
        ok = False
        evidence["reason"] = ("enabled, but no successful run in %s" % UU_LOG if days is None else
                              "enabled, but the last successful run was %.1f days ago" % days)
    metrics = [metric("patching_unattended_enabled", 1 if installed and evidence["enabled"] else 0)]
    if days is not None:
        metrics.append(metric("patching_unattended_days_since_success", days, "days"))
    return ("pass" if ok else "fail"), "minor", evidence, metrics


CHECK_FUNCS = {
    "PTCH-SEC-001": check_security,
    "PTCH-UPD-001": check_other,
    "PTCH-HOLD-001": check_held,
    "PTCH-LIST-001": check_lists,
    "PTCH-REBOOT-001": check_reboot,
    "PTCH-REBOOT-002": check_rebooted,
    "PTCH-UU-001": check_unattended,
    "PTCH-RESTART-001": check_restart,
    "PTCH-DPKG-001": check_dpkg,
    "PTCH-LOCK-001": check_lock,
    "PTCH-RUN-001": check_run,
    "PTCH-GATE-001": check_gate,
}
CHECKS = tuple((record, CHECK_FUNCS[record["id"]]) for record in CHECK_RECORDS)


# What the plan before an update needs of the checks: what blocks apt.
BLOCKING = ("PTCH-DPKG-001", "PTCH-LOCK-001")


def audit(params, root="/", runner=run_cmd, now=None, only=None, shared=None):
    """(payload dictionary, the `patching` result): every check in order, or those of ``only``
    (the plan runs only :data:`BLOCKING`: nothing of it is reported). ``shared``: a dictionary the
    audits of one call share (APT's origins, read once)."""
    findings, metrics = [], []
    try:
        ctx = Context(params, root, runner, now, shared)
    except Exception as exc:  # APT unreadable: every check is an error with the same reason
        ctx, failed = None, exc
    for record, func in CHECKS:
        if only is not None and record["id"] not in only:
            continue
        if ctx is None:
            def func(_ctx, exc=failed):
                raise exc
        one, more = run_check(record["id"], record["title"], record["severity"], lambda f=func: f(ctx),
                              record["remediation"], record["references"])
        findings.append(one)
        metrics.extend(more)
    pending = ctx.pending if ctx else []
    # What stops an update before apt is run: an interrupted dpkg, a lock another process holds.
    blocked = ["%s: %s" % (f["id"], f["evidence"].get("reason") or f["title"]) for f in findings
               if f["id"] in BLOCKING and f["status"] != "pass"]
    chosen = {"none": lambda u: False, "security": lambda u: u["security"], "all": lambda u: True}[params["update"]]
    refused = ""
    if ctx and ctx.refused:
        refused = "%s (host time %s); nothing was changed" % (ctx.refused, ctx.local_time)
    result = {"pending": pending, "held": ctx.held if ctx else [], "blocked": blocked,
              "time": ctx.now if ctx else time.time(), "refused": refused,
              "gate": judge_gate(params.get("gate") or {}),
              "window": {"open": ctx.window_open, "reason": ctx.window_reason, "host_time": ctx.local_time,
                         "forced": bool(params.get("force")) and not ctx.window_open} if ctx else None,
              "upgrade": ["%s=%s" % (u["package"], u["candidate"]) for u in pending if not u["held"] and chosen(u)]}
    return payload(ROLE, findings, metrics, expected=len(CHECKS) if only is None else len(only)), result


def gate_on(gate):
    """Whether the gate runs: its ``health`` key true (a template may give the text)."""
    return boolean(gate.get("health") or False, strict=False)


def gate_params(gate):
    """The health checks' parameters for the gate: their defaults, the gate's C(options) over
    them, no sampling window. (params, problem): problem is one line, or "" when they are valid.
    The health checks are imported only for a gate: an audit alone does not load them."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    from ansible_collections.fleetcare.ops.plugins.module_utils.health_inspection import ARGUMENT_SPEC as HEALTH_SPEC
    from ansible_collections.fleetcare.ops.plugins.module_utils.health_inspection import validate as health_validate

    options = dict(gate.get("options") or {}, sample_seconds=0.0)
    checked = ArgumentSpecValidator(HEALTH_SPEC).validate(options)
    if checked.error_messages:
        return None, "gate.options: %s" % checked.error_messages[0]
    problems = health_validate(checked.validated_parameters)
    return checked.validated_parameters, ("gate.options: %s" % problems[0]) if problems else ""


def patch_run(params, check_mode, root="/", health=None, refresh=refresh_apt_lists, apt=None, health_params=None,
              **audit_kw):
    """The whole call (:func:`_patch_run`) with the APT cache folder its audits share
    (:func:`apt_cache_folder`)."""
    with apt_cache_folder(audit_kw.setdefault("shared", {})):
        return _patch_run(params, check_mode, root, health, refresh, apt, health_params, **audit_kw)


def _patch_run(params, check_mode, root="/", health=None, refresh=refresh_apt_lists, apt=None, health_params=None,
               **audit_kw):
    """With ``apply`` and ``update`` security or all, the whole patch run on this host in one call: the health
    gate before, the lists refreshed when missing, the plan, apt between the hooks, the record
    written, the gate after and the audit of what is left. Returns (result dict, error line):
    the module's result keys (``patching``, ``record``, ``changed``, ``fleetcare``).
    ``health``, ``refresh`` and ``apt`` stand in for the health checks, the lists refresh and
    apt-get in the unit tests; ``health_params``: the gate's checked parameters when the caller has
    them already (:func:`gate_params`); ``audit_kw`` goes to :func:`audit`."""
    gate = params.get("gate") or {}
    severities = gate.get("severities") or ["critical", "major"]
    if health_params is None and gate_on(gate):
        health_params = gate_params(gate)[0]
    audit_kw.setdefault("shared", {})
    if health is None and health_params is not None:
        from ansible_collections.fleetcare.ops.plugins.module_utils.health_inspection import inspect

        def health():
            return inspect(health_params, root)["fleetcare"]["findings"]
    stopped = params.get("stopped") or ""
    judged = {"ran": False, "before": [], "after": [], "severities": severities,
              "stopped_by": gate.get("stopped_by") or []}
    out = {"changed": False}
    patching = params.get("apply") and params["update"] != "none"
    if patching and not check_mode:
        before = health() if health_params is not None and not stopped else []
        unhealthy = [f["id"] for f in before if f["status"] == "fail" and f["severity"] in severities]
        judged.update(before=before, skipped=bool(unhealthy))
        if not stopped:
            refreshed, _reason, error = refresh(0, 600, False, root)
            if error:
                return out, error
            out["changed"] = refreshed
        _, plan = audit(dict(params, report=False, debsecan_source="", gate={},
                             lock_wait=0 if stopped or unhealthy else params["lock_wait"]), root,
                        only=BLOCKING, **audit_kw)
        record = apply({"upgrade": plan["upgrade"], "kind": params["update"], "blocked": plan["blocked"],
                        "refused": plan["refused"], "stopped": stopped, "unhealthy": unhealthy,
                        "pre_hooks": params["pre_hooks"], "post_hooks": params["post_hooks"],
                        "hook_timeout": params["hook_timeout"], "lock_timeout": params["lock_wait"],
                        "start": plan["time"], "reboot": params["reboot"]}, root, apt, container=probe(root).container)
        record["path"] = write_record(record, root, params["record_dir"])
        out.update(record=record, changed=out["changed"] or bool(record["changed"]))
        if record["reboot"]["action"] == "reboot":
            # The role reboots the host, then calls again (without apply) to judge the gate and
            # report. Nothing gated failed before: the host would not have been patched.
            out["patching"] = plan
            return out, ""
        if health_params is not None and not stopped and not unhealthy:
            judged.update(ran=True, after=health())
    elif patching:
        out["record"] = {"result": "check_mode", "planned": []}
    elif health_params is not None and not check_mode:
        judged.update(ran=True, after=health())  # after a reboot: the host was healthy before
    # the audit of the state left behind: it waits for no lock (the plan did)
    found, result = audit(dict(params, update="none" if patching and not check_mode else params["update"],
                               gate=judged, lock_wait=0), root, **audit_kw)
    if check_mode and "record" in out:
        out["record"]["planned"] = result["upgrade"]
    out["patching"] = result
    if params["report"]:
        out.update(found)
    return out, ""


ARGUMENT_SPEC = dict(
    lists_max_age_days=dict(type="int", default=7),
    update=dict(type="str", default="none", choices=["none", "security", "all"]),
    report=dict(type="bool", default=True),
    lock_wait=dict(type="int", default=0),
    uu_max_age_days=dict(type="int", default=2),
    debsecan_source=dict(type="str", default=""),
    debsecan_suite=dict(type="str", default=""),
    windows=dict(type="list", elements="dict", default=[]),
    blackouts=dict(type="list", elements="str", default=[]),
    force=dict(type="bool", default=False),
    gate=dict(type="dict", default={}),
    record_dir=dict(type="str", default=RECORD_DIR),
    apply=dict(type="bool", default=False),
    stopped=dict(type="str", default=""),
    pre_hooks=dict(type="list", elements="str", default=[]),
    post_hooks=dict(type="list", elements="str", default=[]),
    hook_timeout=dict(type="int", default=600),
    reboot=dict(type="str", default="never", choices=["never", "always", "patched", "smart"]),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    for name in ("lists_max_age_days", "lock_wait", "uu_max_age_days"):
        if module.params[name] < 0:
            module.fail_json(msg="%s must be 0 or more" % name)
    problems = window_problems(module.params["windows"], module.params["blackouts"])
    if problems:
        module.fail_json(msg="windows/blackouts: %s" % problems[0])
    health_params = None
    if gate_on(module.params["gate"] or {}):
        health_params, problem = gate_params(module.params["gate"])
        if problem:
            module.fail_json(msg=problem)
    result, error = patch_run(module.params, module.check_mode, health_params=health_params)
    if error:
        module.fail_json(msg=error, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

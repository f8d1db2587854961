#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: patching_apply
short_description: Install the planned updates between pre and post hooks and record the run on the host
description:
  - One patch run on one host, in order, stopping at the first thing that fails; whatever
    happens it writes the run's record (C(/var/lib/fleetcare/patching/last-run.json), atomically,
    and one line in C(runs.jsonl) beside it) that C(patching_audit) reports as C(PTCH-RUN-001).
  - O(refused) (outside the maintenance window) or O(blocked) (dpkg interrupted, lock held) -
    nothing runs. Otherwise the pre hooks (a failing one stops the run), then C(apt-get install)
    of exactly the planned C(name=version) list, never prompting (no debconf question, the old
    conffile kept, needrestart suspended, the dpkg lock waited for O(lock_timeout) seconds), then
    the post hooks.
  - In check mode nothing runs and nothing is written.
version_added: "0.3.0"
author:
  - fleetcare engineers
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Nothing runs and no record is written.
  diff_mode:
    support: none
  platform:
    platforms: debian
options:
  upgrade:
    description: C(name=version) of the updates to install (the audit's C(patching.upgrade)).
    type: list
    elements: str
    default: []
  kind:
    description: What was asked for (recorded).
    type: str
    choices: [security, all]
    default: security
  blocked:
    description: Reasons the audit found not to run apt (its C(patching.blocked)).
    type: list
    elements: str
    default: []
  refused:
    description: Why the run may not patch this host now (the maintenance window); empty when it may.
    type: str
    default: ""
  stopped:
    description: Why a rolling run stopped before this host (a failed health gate elsewhere); nothing runs.
    type: str
    default: ""
  unhealthy:
    description:
      - The health findings of a gated severity failing on this host before patching (the health
        gate before, C(ID (severity)) each); when any, the host is skipped (result C(unhealthy)),
        nothing runs.
    type: list
    elements: str
    default: []
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
  lock_timeout:
    description: Seconds apt waits for the dpkg lock (C(DPkg::Lock::Timeout)).
    type: int
    default: 120
  start:
    description: Unix time the run started (the plan's); now when 0.
    type: float
    default: 0
  record_dir:
    description: Directory of the run records (last-run.json, runs.jsonl).
    type: str
    default: /var/lib/fleetcare/patching
  reboot:
    description:
      - After a successful run (or one with nothing to install), whether the role reboots the host
        (RV(record.reboot.action)) - V(never); V(always); V(patched) when a package changed; V(smart) when a reboot is
        required (C(/var/run/reboot-required), or a newer kernel than the running one).
      - In a container the action is C(not_applicable) with the reason; it is never rebooted.
    type: str
    choices: [never, always, patched, smart]
    default: never
"""

EXAMPLES = r"""
- name: Install the planned updates
  fleetcare.ops.patching_apply:
    upgrade: "{{ plan.patching.upgrade }}"
    blocked: "{{ plan.patching.blocked }}"
    pre_hooks: [systemctl stop myapp]
    post_hooks: [systemctl start myapp]
"""

RETURN = r"""
record:
  description: The record written (see module_utils/patching_run.py for its keys).
  returned: always
  type: dict
"""

import os
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fleetcare.ops.plugins.module_utils.debian import (
    DPKG_STATUS, parse_dpkg_installed, reboot_state, running_kernel)
from ansible_collections.fleetcare.ops.plugins.module_utils.host import SEARCH_PATH, probe, read_optional
from ansible_collections.fleetcare.ops.plugins.module_utils.patching_run import RECORD_DIR, RESULTS, write_record
from ansible_collections.fleetcare.ops.plugins.module_utils.reboot import boot_state

OUTPUT_KEEP = 2000
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "NEEDRESTART_SUSPEND": "1", "NEEDRESTART_MODE": "l",
           "APT_LISTCHANGES_FRONTEND": "none", "LC_ALL": "C", "LANG": "C"}


def apt_argv(upgrade, lock_timeout):
    return ["apt-get", "install", "--yes", "--only-upgrade", "--no-install-recommends",
            "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
            "-o", "DPkg::Lock::Timeout=%d" % lock_timeout] + list(upgrade)


def run(argv, timeout, env=None, shell=False):
    """(rc, output tail): stdout and stderr together; a timeout is rc 124 as timeout(1) says."""
    full = dict(os.environ, PATH=SEARCH_PATH, **(env or {}))
    try:
        proc = subprocess.run(argv, shell=shell, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              env=full, timeout=timeout, universal_newlines=True)
    except subprocess.TimeoutExpired as exc:
        out = exc.output or ""
        if isinstance(out, bytes):
            out = out.decode("utf-8", "replace")
        return 124, (out + "\n(killed after %d s)" % timeout)[-OUTPUT_KEEP:]
    except OSError as exc:
        return 127, str(exc)
    return proc.returncode, proc.stdout[-OUTPUT_KEEP:]


def installed_versions(root):
    """{package: version} from dpkg's status (architecture dropped)."""
    out = {}
    for key, info in parse_dpkg_installed(read_optional(os.path.join(root, DPKG_STATUS.lstrip("/"))) or "").items():
        out[key.split(":")[0]] = info["version"]
    return out


def _hooks(phase, commands, timeout, ran):
    """Run one phase's hooks; returns the failing hook's entry, or None."""
    for command in commands:
        rc, output = run(command, timeout, shell=True)
        entry = {"phase": phase, "command": command, "rc": rc, "output": output[-500:]}
        ran.append(entry)
        if rc != 0:
            return entry
    return None


def reboot_decision(policy, record, root="/", container=""):
    """{policy, action, reason}: action ``reboot`` (the role reboots the host), ``none``, or
    ``not_applicable`` in a container, whose kernel is the engine host's (never rebooted)."""
    pending, evidence = reboot_state(running_kernel(), container, root)
    out = {"policy": policy, "required": pending, "required_reason": evidence["reason"]}
    # nothing_to_do is a run that succeeded: a kernel installed earlier may still wait for a reboot
    if record.get("result") not in ("success", "nothing_to_do"):
        wanted, why = False, "the run did not succeed (%s)" % record.get("result")
    elif policy == "never":
        wanted, why = False, "policy never"
    elif policy == "always":
        wanted, why = True, "policy always"
    elif policy == "patched":
        wanted = bool(record.get("changed"))
        why = "policy patched: %s" % ("packages changed" if wanted else "nothing changed")
    else:  # smart
        wanted = pending
        why = "policy smart: %s" % (evidence["reason"] or "no reboot required")
    if wanted and container:
        out.update(action="not_applicable", reason="%s, but this is a %s container: its kernel is the engine "
                   "host's and a container is never rebooted" % (why, container))
    else:
        out.update(action="reboot" if wanted else "none", reason=why)
    if out["action"] == "reboot":
        # kept for the proof after the reboot (PTCH-REBOOT-002: module_utils/reboot.py)
        out["before"] = boot_state(root, evidence["running_kernel"])
    return out


def apply(params, root="/", apt=None, now=time.time, container=""):
    """Do the run and return its record (not yet written)."""
    start = params["start"] or now()
    planned = dict(item.split("=", 1) for item in params["upgrade"])
    before = installed_versions(root)
    record = {"version": 1, "start": start, "kind": params["kind"], "planned": params["upgrade"],
              "hooks": [], "apt": None, "reason": ""}
    if params["stopped"]:
        record.update(result="stopped", reason=params["stopped"])
    elif params["unhealthy"]:
        record.update(result="unhealthy", reason="not patched: unhealthy before patching (%s)"
                      % ", ".join(params["unhealthy"]))
    elif params["refused"]:
        record.update(result="refused", reason=params["refused"])
    elif params["blocked"]:
        record.update(result="blocked", reason="; ".join(params["blocked"]))
    else:
        failed = _hooks("pre", params["pre_hooks"], params["hook_timeout"], record["hooks"])
        if failed:
            record.update(result="pre_hook_failed", reason="pre hook %r exited %d" % (failed["command"], failed["rc"]))
        elif not planned:
            record.update(result="nothing_to_do")
        else:
            rc, output = (apt or run)(apt_argv(params["upgrade"], params["lock_timeout"]),
                                      params["lock_timeout"] + 3600, env=APT_ENV)
            record["apt"] = {"rc": rc, "output": output}
            if rc != 0:
                last = [line for line in output.splitlines() if line.strip()][-1:] or [""]
                record.update(result="failed", reason="apt-get exited %d: %s" % (rc, last[0][:200]))
            else:
                failed = _hooks("post", params["post_hooks"], params["hook_timeout"], record["hooks"])
                record["result"] = "post_hook_failed" if failed else "success"
                if failed:
                    record["reason"] = "post hook %r exited %d" % (failed["command"], failed["rc"])
    record["reboot"] = reboot_decision(params["reboot"], record, root, container)
    after = installed_versions(root)
    record["packages"] = [{"package": name, "from": before.get(name), "to": after.get(name),
                           "planned": version} for name, version in sorted(planned.items())]
    record["changed"] = [p["package"] for p in record["packages"] if p["from"] != p["to"]]
    record["ok"] = RESULTS[record["result"]]
    record["end"] = now()
    return record


ARGUMENT_SPEC = dict(
    upgrade=dict(type="list", elements="str", default=[]),
    kind=dict(type="str", default="security", choices=["security", "all"]),
    blocked=dict(type="list", elements="str", default=[]),
    refused=dict(type="str", default=""),
    stopped=dict(type="str", default=""),
    unhealthy=dict(type="list", elements="str", default=[]),
    pre_hooks=dict(type="list", elements="str", default=[]),
    post_hooks=dict(type="list", elements="str", default=[]),
    hook_timeout=dict(type="int", default=600),
    lock_timeout=dict(type="int", default=120),
    start=dict(type="float", default=0),
    reboot=dict(type="str", default="never", choices=["never", "always", "patched", "smart"]),
    record_dir=dict(type="str", default=RECORD_DIR),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    bad = [item for item in module.params["upgrade"] if "=" not in item]
    if bad:
        module.fail_json(msg="upgrade items are name=version: %r" % bad[0])
    if module.check_mode:
        module.exit_json(changed=False, record={"result": "check_mode", "planned": module.params["upgrade"]})
    record = apply(module.params, container=probe().container)
    record["path"] = write_record(record, directory=module.params["record_dir"])
    module.exit_json(changed=bool(record["changed"]), record=record)


if __name__ == "__main__":
    main()

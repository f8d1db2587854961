# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

"""One patch run on the host, and the record it leaves there: its one writer and its one reader.

:func:`apply` does the run (the pre hooks, apt installing exactly the planned versions and never
prompting, the post hooks) and returns its record, with the reboot policy's decision
(:func:`reboot_decision`). :func:`write_record` writes :data:`LAST_RUN` atomically (a temporary
file in the same directory, flushed, renamed over the old one) and appends the same record as
one line to :data:`HISTORY` (the newest :data:`HISTORY_KEEP` lines kept). A record holds
``version``, ``start``/``end`` (Unix seconds, the host's clock), ``kind`` (security or all),
``result`` (one of :data:`RESULTS`), ``reason``, ``packages`` (``package``, ``from``, ``to``,
``planned``), the ``hooks`` that ran (``phase``, ``command``, ``rc``, ``output``) and ``apt``
(``rc``, ``output``). ``patching_audit`` runs all of it and reads the record back (PTCH-RUN-001).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import tempfile
import time

from ansible_collections.fleetcare.ops.plugins.module_utils.debian import (
    DPKG_STATUS, parse_dpkg_installed, reboot_state, running_kernel)
from ansible_collections.fleetcare.ops.plugins.module_utils.host import SEARCH_PATH, read_optional
from ansible_collections.fleetcare.ops.plugins.module_utils.reboot import boot_state

RECORD_DIR = "/var/lib/fleetcare/patching"
LAST_RUN = "last-run.json"
HISTORY = "runs.jsonl"
HISTORY_KEEP = 200
RECORD_VERSION = 1
# result -> whether the run did what it was asked
RESULTS = {
    "success": True,            # the planned updates are installed
    "nothing_to_do": True,      # nothing was pending for this kind
    "refused": False,           # outside the maintenance window or inside a blackout
    "stopped": False,           # a rolling run stopped before this host: a health gate failed
    "unhealthy": False,         # the health gate before failed: the host was skipped
    "blocked": False,           # dpkg interrupted or its lock held: apt never ran
    "pre_hook_failed": False,   # a pre-patch hook exited non-zero: apt never ran
    "failed": False,            # apt failed
    "post_hook_failed": False,  # installed, but a post-patch hook exited non-zero
}
# the results of a host that was tried and failed: what --max-fail counts (a host refused,
# stopped or unhealthy before was never tried)
FAILED_ATTEMPTS = frozenset(("blocked", "pre_hook_failed", "failed", "post_hook_failed"))


def record_dir(root="/", directory=RECORD_DIR):
    return os.path.join(root, directory.lstrip("/"))


def write_record(record, root="/", directory=RECORD_DIR):
    """Write ``record`` as last-run.json (atomically) and append it to runs.jsonl. Returns the path."""
    path = record_dir(root, directory)
    if not os.path.isdir(path):
        os.makedirs(path, 0o755)
    text = json.dumps(record, sort_keys=True)
    fd, tmp = tempfile.mkstemp(prefix=".last-run.", dir=path)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.rename(tmp, os.path.join(path, LAST_RUN))
    except Exception:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    history = os.path.join(path, HISTORY)
    lines = []
    if os.path.exists(history):
        with open(history, "r") as handle:
            lines = [line for line in handle.read().splitlines() if line.strip()]
    lines = (lines + [text])[-HISTORY_KEEP:]
    fd, tmp = tempfile.mkstemp(prefix=".runs.", dir=path)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o644)
    os.rename(tmp, history)
    return os.path.join(path, LAST_RUN)


def read_record(root="/", directory=RECORD_DIR):
    """The last run's record, or None when no run wrote one; ValueError when it is not a record."""
    path = os.path.join(record_dir(root, directory), LAST_RUN)
    try:
        with open(path, "r") as handle:
            text = handle.read()
    except (IOError, OSError) as exc:
        if getattr(exc, "errno", None) == 2:
            return None
        raise
    try:
        record = json.loads(text)
    except ValueError:
        record = None
    if not isinstance(record, dict) or "result" not in record:
        raise ValueError("%s is not a patch run record" % path)
    return record


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
    record["attempt_failed"] = record["result"] in FAILED_ATTEMPTS
    record["end"] = now()
    return record

# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

"""The reboot primitive every role shares: what a boot is, and the proof that a reboot happened.

A role that decides to reboot a host calls :func:`boot_state` BEFORE the reboot (a module
running on the host, such as the patching module, keeps it in its record), reboots it with
``ansible.builtin.reboot`` (which waits, bounded by its ``reboot_timeout``), and after it a
module judges the reboot with :func:`judge_reboot`: the kernel's boot ID
(``/proc/sys/kernel/random/boot_id``, new at every boot) must differ from the one kept, and the
running kernel must be the newest one installed (a reboot that came back on an old kernel
did not put the fix in force). In a container there is no boot of its own: the decision is
``not_applicable`` with the reason, and nothing is rebooted.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.fleetcare.ops.plugins.module_utils.debian import (
    installed_kernels, kernel_key, newest_kernel, running_kernel)
from ansible_collections.fleetcare.ops.plugins.module_utils.findings import NotApplicable
from ansible_collections.fleetcare.ops.plugins.module_utils.host import read_optional

BOOT_ID = "proc/sys/kernel/random/boot_id"


def boot_id(root="/"):
    """This boot's ID (a UUID the kernel makes at boot), or None when it cannot be read."""
    text = read_optional(os.path.join(root, BOOT_ID))
    return text.strip() or None if text else None


def uptime_seconds(root="/"):
    text = read_optional(os.path.join(root, "proc/uptime"))
    try:
        return int(float(text.split()[0])) if text else None
    except (ValueError, IndexError):
        return None


def boot_state(root="/", running=None):
    """{boot_id, running_kernel, newest_installed_kernel, uptime_seconds} of the host now."""
    return {"boot_id": boot_id(root), "running_kernel": running or running_kernel(),
            "newest_installed_kernel": newest_kernel(installed_kernels(root)),
            "uptime_seconds": uptime_seconds(root)}


def judge_reboot(decision, now):
    """(status, evidence) of a reboot decided earlier, judged by the host's state ``now``.

    ``decision`` is what the deciding module recorded: ``action`` (reboot, none,
    not_applicable), ``reason``, and ``before`` (:func:`boot_state` before the reboot).
    NotApplicable when no reboot was decided, or in a container; ``fail`` when the boot ID did
    not change (the reboot did not happen) or the running kernel is not the newest installed.
    """
    action = (decision or {}).get("action")
    if action == "not_applicable":
        raise NotApplicable(decision.get("reason") or "a container is never rebooted")
    if action != "reboot":
        raise NotApplicable("no reboot was decided (%s)" % ((decision or {}).get("reason") or "no decision"))
    before = decision.get("before") or {}
    evidence = {"reason": decision.get("reason"), "boot_id_before": before.get("boot_id"),
                "boot_id_after": now.get("boot_id"), "kernel_before": before.get("running_kernel"),
                "running_kernel": now.get("running_kernel"),
                "newest_installed_kernel": now.get("newest_installed_kernel"),
                "uptime_seconds": now.get("uptime_seconds"),
                "expected": "a new boot ID, running the newest installed kernel"}
    problems = []
    if not before.get("boot_id") or not now.get("boot_id"):
        problems.append("the boot ID could not be read before and after the reboot")
    elif before["boot_id"] == now["boot_id"]:
        problems.append("the boot ID did not change: the host did not reboot")
    newest, running = now.get("newest_installed_kernel"), now.get("running_kernel")
    if newest and running and newest != running and kernel_key(newest) > kernel_key(running):
        problems.append("running kernel %s, but %s is installed and newer" % (running, newest))
    evidence["rebooted"] = bool(before.get("boot_id") and now.get("boot_id")
                                and before["boot_id"] != now["boot_id"])
    evidence["runs_newest_kernel"] = not (newest and running and newest != running
                                          and kernel_key(newest) > kernel_key(running))
    if problems:
        evidence["problems"] = problems
    return ("fail" if problems else "pass"), evidence

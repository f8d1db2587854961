# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

"""The checks of the drift role, as data: one record per finding ID (see ``health_checks.py``).

``DRFT-SNAP-001`` is the snapshot itself (taken on the host by ``drift_snapshot``); every other
record is a category of drift, judged on the controller against the host's approved baseline
(``fleetcare/drift.py``), which takes titles, severities and texts from here. ``category`` is the
key of the snapshot a record judges.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def _check(fid, title, severity, options, rationale, remediation, category=""):
    return {"id": fid, "title": title, "severity": severity, "options": tuple(options),
            "rationale": " ".join(rationale.split()), "remediation": " ".join(remediation.split()),
            "references": [], "category": category}


_ACCEPT = "If the change was intended, accept it: fleetcare drift accept HOST ITEM --reason '...'; otherwise undo it."

CHECKS = (
    _check("DRFT-SNAP-001", "Host snapshot taken", "major", ("paths", "excludes", "max_files"),
           """Drift can only be judged from a complete snapshot. A path set larger than the bound
           fails here instead of running without end; nothing of that host is compared then.""",
           """Narrow the paths (drift_paths) or exclude what changes by itself (drift_excludes), or
           raise drift_max_files."""),
    _check("DRFT-FILE-001", "File drifted from the baseline", "major", ("paths", "excludes"),
           """A configuration file that changed, appeared or went away (content, mode, owner, group,
           symlink target) is the most common undocumented change on a host.""", _ACCEPT, "files"),
    _check("DRFT-PKG-001", "Package drifted from the baseline", "minor", (),
           """A package installed, removed, upgraded or put on hold outside a planned change.""",
           _ACCEPT, "packages"),
    _check("DRFT-SVC-001", "Service drifted from the baseline", "major", (),
           """A systemd service enabled, disabled, started or stopped outside a planned change.""",
           _ACCEPT, "services"),
    _check("DRFT-USER-001", "User or group drifted from the baseline", "major", (),
           """An account or group added, removed, or with another UID/GID, shell, home or
           membership: who can log in and what they may do.""", _ACCEPT, "accounts"),
    _check("DRFT-SYSCTL-001", "Kernel setting drifted from the baseline", "major", ("sysctl_exclude",),
           """A sysctl value changed at run time or by a new file under /etc/sysctl.d.""",
           _ACCEPT, "sysctl"),
    _check("DRFT-PORT-001", "Listening socket drifted from the baseline", "major", (),
           """A socket that listens now and did not (or the other way round) changes what the
           host exposes.""", _ACCEPT, "ports"),
    _check("DRFT-CRON-001", "Scheduled job drifted from the baseline", "major", (),
           """A crontab or systemd timer added, changed or removed: code that runs by itself.""",
           _ACCEPT, "cron"),
    _check("DRFT-KMOD-001", "Kernel module drifted from the baseline", "major", (),
           """A kernel module loaded or unloaded since the baseline: code running in the kernel.
           (In a container the modules are the host's; they are recorded as the container sees
           them.)""", _ACCEPT, "kmods"),
    _check("DRFT-MOUNT-001", "Mount drifted from the baseline", "major", ("mount_exclude",),
           """A file system mounted, unmounted, or mounted with other options (nodev, nosuid,
           noexec, ro) or from another source. Pseudo file systems (proc, sysfs, cgroup, ...)
           and runtime mount points under /proc, /sys and /run/user are left out.""",
           _ACCEPT, "mounts"),
    _check("DRFT-SUDO-001", "Sudo rights drifted from the baseline", "major", (),
           """Who may run what as whom through sudo (/etc/sudoers and the files it includes,
           aliases expanded), per user or %group, and the Defaults lines: a new NOPASSWD rule or
           a new user with rights is a privilege change.""", _ACCEPT, "sudo"),
    _check("DRFT-DESIRED-001", "Host drifted from the desired state", "major", (),
           """With drift_desired (fleetcare drift --desired) the hardening audit judges every control
           of the catalog on the host, read-only; each control that fails is drift from the desired
           state the enforcement role would restore, with the current and the desired value. It is
           judged against the catalog, not against the baseline, so a host without a baseline has it
           too. The finding takes the control's own severity.""",
           """Apply the desired state (fleetcare harden -l HOST, after fleetcare harden --check), or
           change the hardening settings (hardening_overrides, hardening_controls_skip) if the
           current value is the one wanted. It cannot be accepted into the baseline."""),
    _check("DRFT-BASE-001", "Host has an approved baseline", "major", (),
           """Drift is judged against an approved snapshot kept on the controller; a host without
           one cannot be judged.""", """Take one: fleetcare drift baseline -l HOST."""),
)

# the key of a snapshot's hardening audit result (drift_desired): judged against the catalog, not
# recorded in a baseline, so not a category; its items are desired:<control ID>
DESIRED = "desired"
DESIRED_ID = "DRFT-DESIRED-001"

# snapshot category -> finding ID, in report order
CATEGORY_IDS = dict((c["category"], c["id"]) for c in CHECKS if c["category"])

# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

"""The checks of the patching role, as data: one record per finding ID, the texts written once.

The module ``patching_audit`` takes each finding's title, base severity, remediation and
references from here, and the wrapper reads the same records for ``fleetcare explain PTCH-...``.
The record keys are those of ``health_checks.py``; ``options`` are the module options (role
variables ``patching_<option>``) that tune a check.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# One record builder for every role's checks (the health role's).
from ansible_collections.fleetcare.ops.plugins.module_utils.health_checks import _check  # noqa: F401


CHECKS = (
    _check("PTCH-SEC-001", "Pending security updates", "major", (),
           """An installed package has a newer version in a security suite (the candidate's list
           is labelled or named *-security in the host's own APT lists). Until it is installed the
           host runs code with a published vulnerability. Held packages are counted by PTCH-HOLD-001.""",
           """Install the security updates: fleetcare patch --update security (or apt-get upgrade).""",
           ("https://www.debian.org/security/",)),
    _check("PTCH-UPD-001", "Pending other updates", "minor", (),
           """An installed package has a newer candidate outside the security suites (point
           releases, bug fixes). Left alone, hosts drift apart and the eventual upgrade grows.""",
           """Install the updates in a maintenance window: fleetcare patch --update all."""),
    _check("PTCH-HOLD-001", "Held packages with pending updates", "minor", (),
           """A package on hold (apt-mark hold) is never upgraded, security fixes included. A hold
           is a decision someone made; this finding keeps it visible while updates wait behind it.""",
           """Review each hold (apt-mark showhold); release it with apt-mark unhold PACKAGE when the
           reason is gone."""),
    _check("PTCH-LIST-001", "Age of the package lists", "minor", ("lists_max_age_days",),
           """The pending updates are only as current as the package lists: lists older than the
           limit hide updates published since. Judged by the last successful apt-get update.""",
           """Run apt-get update (or enable APT::Periodic::Update-Package-Lists) and fix what makes
           it fail."""),
    _check("PTCH-REBOOT-001", "Reboot required", "major", (),
           """An update asked for a reboot (/var/run/reboot-required, with the packages in its .pkgs
           file) or a newer kernel than the running one is installed: the fixes are on disk but not
           in force. The same implementation as the health role's HLTH-REBOOT-001.""",
           """Reboot the host in its maintenance window."""),
    _check("PTCH-REBOOT-002", "The decided reboot happened, into the newest kernel", "major", (),
           """When the last patch run's reboot policy decided a reboot, the run kept the boot ID
           (/proc/sys/kernel/random/boot_id) and the running kernel before it. After the reboot
           the boot ID must be new and the running kernel the newest one installed; otherwise the
           host did not reboot, or came back on an older kernel and the fix is not in force.
           not_applicable when no reboot was decided, and in a container (never rebooted).""",
           """Reboot the host (fleetcare patch -e patching_reboot=always, or by hand); if it boots an
           older kernel, check the boot loader's default entry (/vmlinuz, grub-set-default)."""),
    _check("PTCH-UU-001", "Automatic security updates", "minor", ("uu_max_age_days",),
           """unattended-upgrades installed and enabled (APT::Periodic::Unattended-Upgrade not 0)
           installs security updates between patch runs. Enabled is not enough: it is judged by its
           last successful run in /var/log/unattended-upgrades/unattended-upgrades.log, so one that
           is configured but silently not running (or failing) fails too.""",
           """apt-get install unattended-upgrades and set APT::Periodic::Unattended-Upgrade "1"
           (dpkg-reconfigure -plow unattended-upgrades), or accept the finding if patch runs are
           the policy.""",
           ("https://wiki.debian.org/UnattendedUpgrades",)),
    _check("PTCH-RESTART-001", "Services running replaced libraries", "minor", (),
           """After an upgrade, processes started before it keep running the old code: the fixed
           library is on disk, the vulnerable one in memory. Read from needrestart's batch output
           (needrestart -b) where it is installed, otherwise from the processes whose memory maps
           name a deleted shared library (/proc/PID/maps), with their systemd unit.""",
           """Restart the services listed (systemctl restart UNIT), or reboot in the maintenance
           window; needrestart -r l lists them."""),
    _check("PTCH-DPKG-001", "Interrupted dpkg run", "critical", (),
           """dpkg --audit lists packages left half-installed or unconfigured, or dpkg's journal
           (/var/lib/dpkg/updates) holds entries: an earlier run was interrupted. APT refuses to
           work until it is repaired, so an update is not attempted on such a host.""",
           """Run dpkg --configure -a as root, then apt-get -f install if dependencies are left
           broken; check dpkg --audit prints nothing."""),
    _check("PTCH-LOCK-001", "dpkg lock held by another process", "major", (),
           """Another process (apt, unattended-upgrades, an operator) holds dpkg's lock
           (/var/lib/dpkg/lock-frontend or lock). A patch run waits for it for
           patching_lock_timeout seconds, then reports the holder instead of hanging.""",
           """Let the holder named in the evidence finish (ps -p PID); if it is stuck, stop it,
           then run dpkg --configure -a."""),
    _check("PTCH-RUN-001", "Last patch run", "major", (),
           """Every patch run leaves a record on the host (/var/lib/fleetcare/patching/last-run.json,
           and one line per run in runs.jsonl): when it ran, each package from -> to, the hooks and
           the result. A run that was refused (maintenance window), blocked (dpkg interrupted or
           locked), stopped by a failing pre-patch hook, or whose apt or post-patch hook failed
           fails this finding with the reason; not_applicable on a host never patched by fleetcare.""",
           """Read the reason in the evidence (and runs.jsonl), fix it, and run fleetcare patch
           --update again."""),
    _check("PTCH-GATE-001", "Health gate after patching", "critical", (),
           """With a patch run, the health role's own module (health_inspect) runs on each host
           before and after it. A finding of a gated severity (critical, major) that fails after
           patching but did not before means the update broke something: the gate fails, and in a
           rolling run (--batch N) no further batch is patched; those hosts say so here and in
           PTCH-RUN-001.""",
           """Fix the finding named in the evidence on this host (fleetcare inspect shows it in
           full), or roll the package back; then run fleetcare patch again for the hosts left."""),
)

BY_ID = dict((check["id"], check) for check in CHECKS)

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
    _check("PTCH-UU-001", "Automatic security updates", "minor", (),
           """unattended-upgrades installed and enabled (APT::Periodic::Unattended-Upgrade not 0)
           installs security updates between patch runs; the evidence gives when it last ran.""",
           """apt-get install unattended-upgrades and set APT::Periodic::Unattended-Upgrade "1"
           (dpkg-reconfigure -plow unattended-upgrades), or accept the finding if patch runs are
           the policy.""",
           ("https://wiki.debian.org/UnattendedUpgrades",)),
)

BY_ID = dict((check["id"], check) for check in CHECKS)

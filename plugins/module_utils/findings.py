# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

"""The one way findings leave a host.

Every module of fleetcare.ops that checks something returns its findings and
metrics under a single result key, ``fleetcare``. The wrapper reads that key
from the ansible-runner event stream and nowhere else, so this file is the
host side of the findings contract (``fleetcare/schema/finding.schema.json``
is the controller side). The host name is added by the controller, which
knows the inventory name; a module only knows the machine it runs on.

It also holds the one way a check becomes a finding (:func:`run_check`): a
check that cannot measure raises :class:`CheckError` (status error), one that
does not apply raises :class:`NotApplicable`; either may carry evidence, and
the message lands in ``evidence.reason``. Anything else a check raises is
caught too, so one broken check never costs the others.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

RESULT_KEY = "fleetcare"
CONTRACT_VERSION = 1
SEVERITIES = ("critical", "major", "minor", "info")
STATUSES = ("pass", "fail", "error", "not_applicable", "waived")


def finding(fid, title, severity, status, evidence=None, remediation="", references=()):
    """Build one finding record; raises ValueError on a malformed one so a
    module bug shows up in tests instead of in a customer report."""
    if severity not in SEVERITIES:
        raise ValueError("finding %s: bad severity %r" % (fid, severity))
    if status not in STATUSES:
        raise ValueError("finding %s: bad status %r" % (fid, status))
    return {
        "id": fid,
        "title": title,
        "severity": severity,
        "status": status,
        "evidence": dict(evidence or {}),
        "remediation": remediation,
        "references": [str(r) for r in references],
    }


class CheckError(Exception):
    """A check could not read or measure what it needs: status error.

    ``CheckError(reason)`` or ``CheckError(reason, evidence_mapping)``."""


class ToolMissing(CheckError):
    """The program a check runs is not installed on the host."""


class NotApplicable(Exception):
    """A check does not apply on this host: status not_applicable (same arguments as CheckError)."""


def failure_evidence(exc):
    """(status, evidence) for an exception a check raised."""
    if isinstance(exc, (NotApplicable, CheckError)):
        evidence = dict(exc.args[1]) if len(exc.args) > 1 else {}
        evidence["reason"] = str(exc.args[0]) if exc.args else type(exc).__name__
        return ("not_applicable" if isinstance(exc, NotApplicable) else "error"), evidence
    if isinstance(exc, (IOError, OSError)):
        return "error", {"reason": "cannot read %s: %s" % (getattr(exc, "filename", "") or "",
                                                           exc.strerror or exc)}
    return "error", {"reason": "check crashed: %s: %s" % (type(exc).__name__, exc),
                     "traceback": traceback.format_exc().splitlines()[-3:]}


def run_check(fid, title, severity, func, remediation="", references=(), evidence=None):
    """One finding and its metrics from a check function; returns ``(finding, metrics)``.

    ``func()`` returns ``(status, severity, evidence, metrics)``; the severity given here is
    the check's base severity, used when it raised. ``evidence`` (a mapping) is merged into the
    finding's evidence whatever happened, such as the kind of a hardening control.
    """
    try:
        status, severity, found, metrics = func()
    except Exception as exc:  # a bug in one check must not cost the others
        status, found = failure_evidence(exc)
        metrics = []
    if evidence:
        found = dict(found, **evidence)
    return finding(fid, title, severity, status, found, remediation, references), list(metrics)


def grade(value, warn, crit, warn_severity, crit_severity):
    """(status, severity) of a value held against two ascending thresholds."""
    if value >= crit:
        return "fail", crit_severity
    if value >= warn:
        return "fail", warn_severity
    return "pass", warn_severity


def metric(name, value, unit="", **labels):
    """One number kept for trends, such as disk_used_pct{mount=/}."""
    return {
        "name": name,
        "value": float(value),
        "unit": unit,
        "labels": dict((k, str(v)) for k, v in labels.items()),
    }


def payload(role, findings, metrics=(), expected=None):
    """The dictionary a module merges into its result (exit_json kwargs).

    ``expected`` is how many findings the controller must receive: the number
    of checks the module was asked to run when it knows it, else the number it
    produced. Fewer arriving means the result was cut on the way, and the
    controller fails the host instead of calling it clean.
    """
    findings = list(findings)
    return {
        RESULT_KEY: {
            "contract": CONTRACT_VERSION,
            "role": role,
            "findings": findings,
            "metrics": list(metrics),
            "expected": len(findings) if expected is None else int(expected),
        }
    }

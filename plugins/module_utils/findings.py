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
"""

from __future__ import annotations

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

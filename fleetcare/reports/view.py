"""What the human-readable reports show, computed once in Python from a Run.

Findings are grouped by finding ID (one block per check, not one row per host x
check): counts by status, and only the hosts where the check failed or errored,
each with its evidence. Passing hosts are counted, never listed. One pass over
the findings builds the groups and the per-host counts, so a run of 200,000
findings costs a fraction of a second here and the templates only loop.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fleetcare.results import HOST_STATUSES, SEVERITIES, STATUSES, Run, severity_rank

PROBLEM_STATUSES = ("fail", "error")


@dataclass(slots=True)
class FindingGroup:
    id: str
    title: str
    severity: str
    role: str
    remediation: str
    references: list[str]
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    # (host, status, evidence) for failing then erroring hosts, by host name
    rows: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    @property
    def failing(self) -> int:
        return self.counts["fail"]

    @property
    def errors(self) -> int:
        return self.counts["error"]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(slots=True)
class Analysis:
    groups: list[FindingGroup]  # problems first, then worst severity, most failing, ID
    # host name -> failing findings per severity (SEVERITIES order) followed by the error count
    per_host: dict[str, list[int]]


def analyse(run: Run) -> Analysis:
    groups: dict[str, FindingGroup] = {}
    per_host: dict[str, list[int]] = {}
    sev_index = {s: i for i, s in enumerate(SEVERITIES)}
    n = len(SEVERITIES)
    for host in run.hosts.values():
        tally = per_host[host.name] = [0] * (n + 1)
        for f in host.findings:
            g = groups.get(f.id)
            if g is None:
                g = groups[f.id] = FindingGroup(f.id, f.title, f.severity, f.role, f.remediation,
                                                list(f.references))
            elif f.severity != g.severity and severity_rank(f.severity) < severity_rank(g.severity):
                g.severity = f.severity  # one check, two severities: report the worse one
            status = f.status
            g.counts[status] = g.counts.get(status, 0) + 1
            if status == "fail":
                g.rows.append((f.host, status, f.evidence))
                tally[sev_index.get(f.severity, n - 1)] += 1
            elif status == "error":
                g.rows.append((f.host, status, f.evidence))
                tally[n] += 1
    for g in groups.values():
        g.rows.sort(key=lambda r: (r[1] != "fail", r[0]))
    ordered = sorted(groups.values(), key=lambda g: (
        not g.rows, _rank(g.severity), -g.failing, -g.errors, g.id))
    return Analysis(ordered, per_host)


def group_findings(run: Run) -> list[FindingGroup]:
    return analyse(run).groups


def host_counts(run: Run) -> dict[str, int]:
    counts = Counter(h.status for h in run.hosts.values())
    return {s: counts[s] for s in HOST_STATUSES}


def _rank(severity: str) -> int:
    return severity_rank(severity) if severity in SEVERITIES else len(SEVERITIES)


_BARE = re.compile(r"[^\s\"'=]+")


def evidence_text(evidence: dict[str, Any], value_chars: int = 200) -> str:
    """``key=value`` pairs on one line; strings with spaces or quotes are JSON-quoted,
    nested values are compact JSON, and each value is cut at ``value_chars``."""
    parts = []
    for key, value in evidence.items():
        if isinstance(value, str) and _BARE.fullmatch(value):
            text = value
        elif isinstance(value, bool) or value is None:
            text = json.dumps(value)
        elif isinstance(value, int | float):
            text = repr(value)
        else:
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
        if len(text) > value_chars:
            text = text[: value_chars - 1] + "…"
        parts.append(f"{key}={text}")
    return " ".join(parts)

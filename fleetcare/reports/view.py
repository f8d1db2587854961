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

from fleetcare.results import HOST_STATUSES, SEVERITIES, STATUSES, HostResult, Run, severity_rank

PROBLEM_STATUSES = ("fail", "error")


class Memo(dict):
    """``fn(text)`` remembered for one render, called as ``memo(value)``: a fleet repeats the same
    IDs, titles, roles and host names in thousands of places, and each is escaped once. A value
    that is not a ``str`` goes to ``fn`` every time (it may not be hashable)."""

    def __init__(self, fn: Any) -> None:
        super().__init__()
        self.fn = fn

    def __missing__(self, value: str) -> str:
        out = self[value] = self.fn(value)
        return out

    def __call__(self, value: object) -> str:
        return self[value] if value.__class__ is str else self.fn(value)


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


# what the reports call each host status; "pending" is only ever seen in a run that
# did not finish (an interrupted one, or one still running)
HOST_LABELS = {"ok": "ok", "unreachable": "unreachable", "failed": "failed", "pending": "not finished"}


def answered(host: HostResult) -> bool:
    """The host sent its results back. A run interrupted before Ansible's closing
    stats leaves such a host "pending", but with its findings (or changes) in hand."""
    return host.status == "ok" or (host.status == "pending" and bool(host.findings or host.changes))


def host_state(host: HostResult) -> str:
    """The host's status as the reports count it: one of HOST_STATUSES."""
    return "ok" if answered(host) else host.status


def host_counts(run: Run) -> dict[str, int]:
    counts = Counter(host_state(h) for h in run.hosts.values())
    return {s: counts[s] for s in HOST_STATUSES}


# -- hosts that did not answer, grouped by what went wrong ---------------------------------------------
PROBLEM_ORDER = ("failed", "unreachable", "pending")

_IPV4 = r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])"
# compressed (::1, fe80::1) or full eight-group forms only, so "12:34:56" stays text
_IPV6 = (r"(?<![\w:.])(?=[0-9A-Fa-f:]*::|(?:[0-9A-Fa-f]{1,4}:){7})"
         r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
_VARYING = (rf"(?P<address>{_IPV4}|{_IPV6}|\[[0-9A-Fa-f:.]+\])(?::(?P<port2>\d{{1,5}})(?!\d))?"
            r"|(?<=\bport )(?P<port>\d{1,5})(?!\d)"
            # ssh's ControlPath under ~/.ansible/cp/ is a hash of host, port and user
            r"|(?<=/cp/)(?P<socket>[0-9a-f]{8,})")
_GENERIC = re.compile(_VARYING)
_KINDS = {"address": "address", "port2": "port", "port": "port", "socket": "socket"}


@dataclass(slots=True)
class HostProblem:
    """Hosts that ended the same way: same status, same message once what
    names the host itself (its name, address, port, control socket) is set aside."""
    status: str  # failed, unreachable or pending
    pieces: tuple[str, ...]  # the message's fixed text around the varying parts
    kinds: tuple[str, ...]  # what each varying part is: host, address, port, socket
    values: list[tuple[str, ...]] = field(default_factory=list)  # each host's varying parts
    hosts: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return HOST_LABELS[self.status]

    @property
    def message(self) -> str:
        """The shared message: a varying part every host has in common is
        shown as it is, one that differs as ``<address>``, ``<port>``, ..."""
        out = [self.pieces[0]]
        for i, kind in enumerate(self.kinds):
            seen = {v[i] for v in self.values}
            out.append(seen.pop() if len(seen) == 1 else f"<{kind}>")
            out.append(self.pieces[i + 1])
        return "".join(out)


_PORT_AT = re.compile(r":(\d{1,5})(?!\d)")
_NAME_EDGE = re.compile(r"[\w.-]")
_WORD = re.compile(r"[A-Za-z]+")


def _host_spans(message: str, name: str) -> list[tuple[int, int, str, str]]:
    """Where the host's own name (and a ``:port`` after it) stands in ``message``.

    A name made only of letters could be a word of the message ("db", "refused"):
    setting it aside could merge different failures, so it stays text."""
    spans: list[tuple[int, int, str, str]] = []
    if not name or _WORD.fullmatch(name):
        return spans
    at = message.find(name)
    while at >= 0:
        end = at + len(name)
        before = message[at - 1] if at else ""
        after = message[end] if end < len(message) else ""
        if not (before and _NAME_EDGE.match(before)) and not (after and (after.isalnum() or after in "_-")):
            spans.append((at, end, "host", name))
            port = _PORT_AT.match(message, end)
            if port:
                spans.append((port.start(1), port.end(1), "port", port.group(1)))
                end = port.end()
            at = message.find(name, end)
        else:
            at = message.find(name, at + 1)
    return spans


def split_message(message: str, name: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """``(pieces, kinds, values)``: the fixed text, and what varies between hosts
    (the host's name, addresses, ports, ssh's control socket)."""
    spans = _host_spans(message, name)
    taken = [(a, b) for a, b, _, _ in spans]
    for m in _GENERIC.finditer(message):
        if any(a < m.end() and m.start() < b for a, b in taken):
            continue  # inside the host's name (web-10.0.0.1): already set aside
        for group, value in m.groupdict().items():
            if value is not None:
                spans.append((m.start(group), m.end(group), _KINDS[group], value))
    spans.sort()
    pieces, kinds, values, at = [], [], [], 0
    for start, end, kind, value in spans:
        pieces.append(message[at:start])
        kinds.append(kind)
        values.append(value)
        at = end
    pieces.append(message[at:])
    return tuple(pieces), tuple(kinds), tuple(values)


def host_problems(run: Run) -> list[HostProblem]:
    """Hosts that failed, were unreachable or did not finish, one group per
    distinct failure: failed first, then unreachable, then not finished, the
    biggest group first within each."""
    groups: dict[tuple[str, tuple[str, ...], tuple[str, ...]], HostProblem] = {}
    for h in run.hosts.values():
        state = host_state(h)
        if state not in PROBLEM_ORDER:
            continue
        pieces, kinds, values = split_message(h.message, h.name)
        key = (state, pieces, kinds)
        group = groups.get(key)
        if group is None:
            group = groups[key] = HostProblem(state, pieces, kinds)
        group.values.append(values)
        group.hosts.append(h.name)
    return sorted(groups.values(), key=lambda g: (PROBLEM_ORDER.index(g.status), -len(g.hosts), g.message))


def first_hosts(names: list[str], shown: int, tr: Any = None) -> str:
    """``a, b, c and 1,995 more``: the first ``shown`` names of a group (the words by ``tr``,
    a :class:`fleetcare.i18n.Translator`, when given)."""
    head = ", ".join(names[:shown])
    rest = len(names) - shown
    if rest <= 0:
        return head
    return tr("{names} and {count} more", names=head, count=f"{rest:,}") if tr else f"{head} and {rest:,} more"


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

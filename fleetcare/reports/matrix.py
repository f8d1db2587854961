"""The host x check matrix of the HTML report, and its per-host sections.

One row per check (grouped by role), one column per host that answered, one cell per
(check, host) coloured by what the host reported. The matrix is the largest thing in
the report (200 hosts x 337 checks are 67,400 cells, 1,000 x 200 are 200,000), so a
cell costs as few bytes as HTML allows: a pass is a bare ``<td>`` (the default colour),
anything else ``<td class=X>`` plus one character that tells the status apart without
colour; end tags are left to the parser (HTML allows it) and no cell carries a title:
the sticky row and column headers say which check and which host it is. The cell
markup is built here from a fixed table of classes, never from host data; check IDs,
titles and host names reach the page only through the template, which escapes them.

Per host: the findings that are not a pass, failing ones first (worst severity first),
each list of IDs on one line; passes and missing checks are counted, not listed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from markupsafe import Markup

from fleetcare.reports.view import Analysis, answered
from fleetcare.results import SEVERITIES, Finding, Run

# cell kinds: (class, character shown, legend label); the class is also the key
FAIL_KINDS = tuple((f"f{i}", "x", f"fail · {sev}") for i, sev in enumerate(SEVERITIES))
KINDS = (("p", "", "pass"), *FAIL_KINDS, ("e", "!", "error"), ("w", "w", "waived"),
         ("na", "-", "not applicable"), ("m", "?", "missing (no result from this host)"))
LABELS = {cls: label for cls, _, label in KINDS}
# the markup of one cell of each kind: a pass is the bare default
CELL = {cls: "<td>" if cls == "p" else f"<td class={cls}>{ch}" for cls, ch, _ in KINDS}
_STATUS_KIND = {"pass": "p", "error": "e", "waived": "w", "not_applicable": "na"}
# when one host reports one check twice, the cell shows the worse result
_WORSE = {cls: i for i, cls in enumerate(("m", "p", "na", "w", "e", "f3", "f2", "f1", "f0"))}
# Size budget (the report must stay under 5 MB at 200 hosts x 337 checks, and the rest of it
# already takes about 3.7 MB at 1,000 x 200): the matrix costs about 5.5 bytes a cell and the
# per-host lists about 16 bytes a result that is not a pass. Beyond these many cells each is
# left out and a note says so; report.json always has every result.
MAX_CELLS = 250_000  # the matrix: 1,000 hosts x 200 checks still drawn
MAX_HOST_CELLS = 120_000  # the per-host sections: 200 x 337 and 500 x 200 listed, 1,000 x 200 not


@dataclass(slots=True)
class MatrixRow:
    id: str
    title: str
    severity: str
    linked: bool  # the check has a block of its own in "Findings needing attention"
    cells: Markup


@dataclass(slots=True)
class MatrixRole:
    role: str
    failing: int
    rows: list[MatrixRow] = field(default_factory=list)


@dataclass(slots=True)
class MatrixHost:
    name: str
    anchor: str  # h-<n>: host names are not safe in a URL fragment, their place in the columns is
    counts: dict[str, int]  # kind -> cells of this host
    # (kind, label, IDs) for every kind but pass and missing, failing first, worst first
    lists: list[tuple[str, str, list[str]]] = field(default_factory=list)

    @property
    def failing(self) -> int:
        return sum(self.counts[cls] for cls, _, _ in FAIL_KINDS)


@dataclass(slots=True)
class Matrix:
    hosts: list[MatrixHost]
    roles: list[MatrixRole]
    counts: dict[str, int]  # kind -> cells in the whole matrix
    legend: list[tuple[str, str, str, int]]  # (class, character, label, cells)
    left_out: int  # hosts that did not answer: no column
    too_big: bool  # more than MAX_CELLS cells: the matrix is not drawn
    hosts_listed: bool  # at most MAX_HOST_CELLS cells: the per-host sections are drawn

    @property
    def checks(self) -> int:
        return sum(len(r.rows) for r in self.roles)

    @property
    def cells(self) -> int:
        return len(self.hosts) * self.checks


def kind_of(status: str, severity: str) -> str:
    if status == "fail":
        return f"f{SEVERITIES.index(severity)}" if severity in SEVERITIES else f"f{len(SEVERITIES) - 1}"
    return _STATUS_KIND.get(status, "e")


def build(run: Run, analysis: Analysis, max_cells: int | None = None,
          max_host_cells: int | None = None) -> Matrix:
    """The matrix of ``run``: columns are the hosts that answered, the worst first (the
    most critical failures, then major, minor, info, then errors); rows the checks,
    grouped by role (the role with the most failing findings first) and within a role in
    the order of the report's check blocks. Thresholds default to MAX_CELLS and
    MAX_HOST_CELLS, read when called."""
    columns = [h for h in run.hosts.values() if answered(h) or h.findings]
    left_out = len(run.hosts) - len(columns)
    zero = [0] * (len(SEVERITIES) + 1)
    columns.sort(key=lambda h: (*(-c for c in analysis.per_host.get(h.name, zero)), h.name))
    groups = analysis.groups
    cells = len(columns) * len(groups)
    too_big = cells > (MAX_CELLS if max_cells is None else max_cells)
    listed = cells <= (MAX_HOST_CELLS if max_host_cells is None else max_host_cells)
    # per host: check ID -> cell kind, in one pass over its findings
    seen = [_kinds(h.findings) for h in columns]
    roles: dict[str, MatrixRole] = {}
    for g in groups:
        role = roles.get(g.role)
        if role is None:
            role = roles[g.role] = MatrixRole(g.role, 0)
        role.failing += g.failing
        fid = g.id
        row = Markup("") if too_big else Markup("".join([CELL[k.get(fid, "m")] for k in seen]))
        role.rows.append(MatrixRow(fid, g.title, g.severity, bool(g.rows), row))
    ordered = sorted(roles.values(), key=lambda r: (-r.failing, r.role))
    hosts = [_host(h.name, i, kinds, len(groups), listed) for i, (h, kinds) in enumerate(zip(columns, seen,
                                                                                            strict=True))]
    counts = dict.fromkeys(LABELS, 0)
    for mh in hosts:
        for cls, n in mh.counts.items():
            counts[cls] += n
    legend = [(cls, ch, label, counts[cls]) for cls, ch, label in KINDS]
    return Matrix(hosts, ordered, counts, legend, left_out, too_big, listed)


_KIND = {(st, sev): kind_of(st, sev) for st in ("pass", "fail", "error", "not_applicable", "waived")
         for sev in SEVERITIES}
_LISTED = [cls for cls, _, _ in FAIL_KINDS] + ["e", "w", "na"]  # failing first, worst first


def _kinds(findings: Iterable[Finding]) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for f in findings:
        k = _KIND.get((f.status, f.severity)) or kind_of(f.status, f.severity)
        old = kinds.setdefault(f.id, k)
        if old is not k and _WORSE[k] > _WORSE[old]:
            kinds[f.id] = k  # one check reported twice by a host: the worse result
    return kinds


def _host(name: str, index: int, kinds: dict[str, str], checks: int, listed: bool) -> MatrixHost:
    tally = Counter(kinds.values())
    counts = {cls: tally.get(cls, 0) for cls in LABELS}
    counts["m"] = checks - len(kinds)
    lists: list[tuple[str, str, list[str]]] = []
    if listed:
        by_kind: dict[str, list[str]] = {}
        for fid, k in kinds.items():
            if k != "p":
                by_kind.setdefault(k, []).append(fid)
        lists = [(cls, LABELS[cls], sorted(by_kind[cls])) for cls in _LISTED if cls in by_kind]
    return MatrixHost(name, f"h-{index}", counts, lists)

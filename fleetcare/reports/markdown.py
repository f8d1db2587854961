"""The Markdown summary: what failed, where, worst first; short enough for a ticket or a PR comment.

Every value that comes from a host (names, messages, evidence) goes through
:func:`cell`: whitespace is folded to one line and Markdown punctuation is
backslash-escaped, so a ``|`` cannot split a table row and ``<script>`` or
``[x](javascript:...)`` stay text in any CommonMark renderer.
"""

from __future__ import annotations

import re

from fleetcare.reports.view import (
    FindingGroup,
    evidence_text,
    first_hosts,
    group_findings,
    host_counts,
    host_problems,
)
from fleetcare.results import SEVERITIES, Run
from fleetcare.term import safe

HOSTS_PER_FINDING = 20  # the summary points to report.html / report.json for the rest
HOSTS_PER_PROBLEM = 10  # names shown per group of hosts that failed the same way
EVIDENCE_CHARS = 120

_SPACE = re.compile(r"\s+")
# CommonMark lets any ASCII punctuation be backslash-escaped; these are the ones that
# can start markup inside a table cell (code, emphasis, links, HTML, entities, cells);
# an underscore inside a word (used_pct) is never emphasis, so it stays readable
_ACTIVE = re.compile(r"([\\`*\[\]<>&|!]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z]))")


def cell(value: object, limit: int | None = None) -> str:
    text = safe(_SPACE.sub(" ", "" if value is None else str(value)).strip())
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return _ACTIVE.sub(r"\\\1", text)


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def render(run: Run) -> str:
    groups = group_findings(run)
    counts = host_counts(run)
    failing = sum(g.failing for g in groups)
    out: list[str] = []
    add = out.append

    add(f"# fleetcare {cell(run.command)} report: run {cell(run.id)}")
    add("")
    add(_row("run", "status", "exit code", "fail on", "started", "finished", "inventory", "limit"))
    add(_row(*["---"] * 8))
    add(_row(cell(run.id), cell(run.status), cell(run.exit_code if run.exit_code is not None else "-"),
             cell(run.fail_on), cell(run.started), cell(run.finished or "-"), cell(run.inventory or "-"),
             cell(run.limit or "-")))
    add("")

    _changes_since(out, run)

    add("## Hosts")
    add("")
    add(_row("total", "ok", "unreachable", "failed", "not finished"))
    add(_row(*["---:"] * 5))
    add(_row(len(run.hosts), counts["ok"], counts["unreachable"], counts["failed"], counts["pending"]))
    add("")

    add("## Failing findings")
    add("")
    by_severity = {s: 0 for s in SEVERITIES}
    for g in groups:
        by_severity[g.severity] += g.failing
    add(_row(*SEVERITIES, "total"))
    add(_row(*["---:"] * (len(SEVERITIES) + 1)))
    add(_row(*(by_severity[s] for s in SEVERITIES), failing))
    add("")
    problem_groups = [g for g in groups if g.rows]
    if not problem_groups:
        add("No finding failed or errored.")
        add("")
    for g in problem_groups:
        _group(out, g)

    problems = host_problems(run)
    if problems:
        add("## Hosts unreachable, failed or not finished")
        add("")
        add(_row("status", "hosts", "message", "which"))
        add(_row("---", "---:", "---", "---"))
        for g in problems:
            add(_row(g.label, len(g.hosts), cell(g.message or "-", 300),
                     cell(first_hosts(g.hosts, HOSTS_PER_PROBLEM), 600)))
        add("")

    _trends(out, run)

    changed = [h for h in run.hosts.values() if h.changes]
    if changed:
        add("## Changes this run would make (check mode)" if run.check else "## Changes made")
        add("")
        add(_row("host", "changes", "what"))
        add(_row("---", "---:", "---"))
        for h in changed:
            add(_row(cell(h.name), len(h.changes), cell("; ".join(h.changes), 600)))
        add("")

    add(f"_fleetcare {cell(run.fleetcare_version)}; every finding with its full evidence is in "
        "report.json and report.html._")
    return "\n".join(out) + "\n"


COMPARED_ROWS = 50  # the rest is in report.json
TREND_ROWS = 100  # filesystems listed, soonest full first; report.json and report.html have them all


def _trends(out: list[str], run: Run) -> None:
    """Capacity forecasts (fleetcare.trends): one row per host and filesystem, soonest full first."""
    trends = run.trends
    if not trends or not trends["filesystems"]:
        return
    add = out.append
    settings = trends["settings"]
    add("## Capacity forecast")
    add("")
    add(f"From {trends['runs']} runs within {settings['window_days']:g} days; a forecast needs "
        f"{settings['min_points']} points over {settings['min_span_days']:g} day(s) and R² at least "
        f"{settings['min_r2']:g}.")
    add("")
    add(_row("host", "mount", "used %", "points", "R²", "days until full", "forecast"))
    add(_row("---", "---", "---:", "---:", "---:", "---:", "---"))
    order = {"forecast": 0, "unsteady": 1, "insufficient": 2, "not_filling": 3}
    rows = sorted(trends["filesystems"], key=lambda f: (order.get(f["status"], 4), f["days_until_full"] or 0,
                                                          f["host"], f["mount"]))
    for f in rows[:TREND_ROWS]:
        days = f["days_until_full"]
        add(_row(cell(f["host"]), cell(f["mount"]), cell(f["used_pct"]), f["points"],
                 "-" if f["r2"] is None else f"{f['r2']:.2f}", "-" if days is None else f"{days:.1f}",
                 cell(f"full {f['full_at'][:10]}" if days is not None and f["full_at"] else f["reason"] or "-")))
    if len(rows) > TREND_ROWS:
        add("")
        add(f"… and {len(rows) - TREND_ROWS} more in report.json.")
    add("")


def _changes_since(out: list[str], run: Run) -> None:
    """What changed since the compared run: first, before any other section."""
    comparison = run.comparison
    if comparison is None:
        return
    add = out.append
    add("## What changed since the last run")
    add("")
    if comparison["against"] is None:
        add("No earlier run of this command over the same hosts: every failing finding is new.")
    else:
        add(f"Compared with run {cell(comparison['against'])} ({cell(comparison['against_started'])}).")
    add("")
    counts = comparison["counts"]
    add(_row("new", "regressed", "still open", "resolved"))
    add(_row(*["---:"] * 4))
    add(_row(counts["new"], counts["regressed"], counts["still_open"], counts["resolved"]))
    add("")
    changed = [e for e in comparison["findings"] if e["state"] != "still_open"]
    if changed:
        add(_row("change", "severity", "ID", "host", "first seen"))
        add(_row(*["---"] * 5))
        for e in changed[:COMPARED_ROWS]:
            add(_row(e["state"], e["severity"], cell(e["id"]), cell(e["host"]), cell(e["first_seen"])))
        if len(changed) > COMPARED_ROWS:
            add("")
            add(f"… and {len(changed) - COMPARED_ROWS} more in report.json.")
        add("")


def _group(out: list[str], g: FindingGroup) -> None:
    add = out.append
    parts = [f"{g.failing} failing"]
    if g.errors:
        parts.append(f"{g.errors} error")
    add(f"### {cell(g.severity)} · {cell(g.id)} · {cell(g.title)} ({', '.join(parts)})")
    add("")
    if g.remediation:
        add(f"Remediation: {cell(g.remediation, 400)}")
        add("")
    add(_row("host", "status", "evidence"))
    add(_row("---", "---", "---"))
    for host, status, evidence in g.rows[:HOSTS_PER_FINDING]:
        add(_row(cell(host), status, cell(evidence_text(evidence), EVIDENCE_CHARS) or "-"))
    rest = len(g.rows) - HOSTS_PER_FINDING
    if rest > 0:
        add("")
        add(f"… and {rest} more host{'s' if rest != 1 else ''}.")
    add("")

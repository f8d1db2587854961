"""The HTML report: one self-contained file a customer can open anywhere, offline.

Inline CSS, charts as inline SVG drawn from numbers computed here, no script,
no external URL of any kind. Jinja2 autoescapes every value (host names,
messages, evidence and titles all come from the managed hosts, which we do not
trust), and a Content-Security-Policy forbids scripts and remote loads besides,
should a value ever slip through. Groups and rows are precomputed in Python
(:mod:`fleetcare.reports.view`) so the template only loops: 1,000 hosts x 200
checks render in well under a second and a few megabytes.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fleetcare import commands
from fleetcare.reports.view import (
    HOST_LABELS,
    Analysis,
    analyse,
    answered,
    evidence_text,
    host_counts,
    host_problems,
    host_state,
)
from fleetcare.results import HOST_STATUSES, SEVERITIES, Run
from fleetcare.term import safe

EVIDENCE_VALUE_CHARS = 300
HOSTS_PER_PROBLEM = 20  # names shown per group of hosts that failed the same way; the rest fold away
COMPARED_ROWS = 500  # changed findings listed in "what changed"; report.json has them all
STATUS_ORDER = ("fail", "error", "pass", "not_applicable", "waived")  # counts shown in a block

SEVERITY_COLORS = {"critical": "#b3261e", "major": "#d9480f", "minor": "#b7791f", "info": "#3b6fb6"}
HOST_COLORS = {"ok": "#2f855a", "unreachable": "#6b46c1", "failed": "#b3261e", "pending": "#a0aec0"}


@cache
def _template():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("fleetcare.reports", "templates"),
        autoescape=True,  # for every template and every value, whatever the file name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_shown,
    )
    env.filters["n"] = "{:,}".format  # 20,139 failing, not 20139
    return env.get_template("report.html.j2")


def _shown(value: Any) -> Any:
    """Every printed value, before escaping: control and bidi characters from hosts
    become visible escapes (a U+202E would otherwise reorder a host name)."""
    if isinstance(value, str):
        text = safe(value)
        return value if text == value else type(value)(text)  # Markup stays Markup
    return value


def render(run: Run) -> str:
    return _template().render(**context(run))


def context(run: Run) -> dict[str, Any]:
    analysis = analyse(run)
    hosts = host_counts(run)
    failing = {s: 0 for s in SEVERITIES}
    for g in analysis.groups:
        failing[g.severity] = failing.get(g.severity, 0) + g.failing
    problem = [g for g in analysis.groups if g.rows]
    clean = [g for g in analysis.groups if not g.rows]
    blocks = [{
        "g": g,
        "color": SEVERITY_COLORS.get(g.severity, "#4a5568"),
        "rows": [(host, status, evidence_text(ev, EVIDENCE_VALUE_CHARS)) for host, status, ev in g.rows],
    } for g in problem]
    return {
        "run": run,
        "title": commands.title(run.command),  # titles and exit meanings: the command registry
        "exit_meaning": commands.exit_meaning(run.exit_code, run.fail_on),
        "verdict": _verdict(run, hosts, failing, analysis),
        "hosts": hosts,
        "hosts_total": len(run.hosts),
        "failing": failing,
        "failing_total": sum(failing.values()),
        "errors_total": sum(g.errors for g in analysis.groups),
        "checks_total": len(analysis.groups),
        "findings_total": sum(g.total for g in analysis.groups),
        "severities": SEVERITIES,
        "status_order": STATUS_ORDER,
        "severity_colors": SEVERITY_COLORS,
        "host_colors": HOST_COLORS,
        "severity_chart": _severity_chart(failing),
        "host_chart": _host_chart(hosts),
        "blocks": blocks,
        "clean": clean,
        "host_rows": _host_rows(run, analysis),
        "host_labels": HOST_LABELS,
        "problems": host_problems(run),
        "problem_hosts_shown": HOSTS_PER_PROBLEM,
        "comparison": run.comparison,
        "compared_rows": [e for e in (run.comparison or {}).get("findings", ())
                          if e["state"] != "still_open"][:COMPARED_ROWS],
        "drift_diffs": drift_diffs(run),
    }


# -- drift: the unified diffs of drifted files (section "drift diffs" of the template) -----------
DRIFT_DIFFS_SHOWN = 100


def drift_diffs(run: Run) -> list[dict[str, Any]]:
    """The failing findings that carry a unified diff (fleetcare.drift, already redacted on the
    host), in report order, at most :data:`DRIFT_DIFFS_SHOWN`."""
    out = []
    for f in run.findings():
        if f.failing and isinstance(f.evidence.get("diff"), str) and f.evidence["diff"]:
            out.append({"host": f.host, "item": f.evidence.get("item", ""), "diff": f.evidence["diff"],
                        "baseline": f.evidence.get("baseline", "own"),
                        "version": f.evidence.get("baseline_version", ""), "note": f.evidence.get("diff_note", "")})
            if len(out) >= DRIFT_DIFFS_SHOWN:
                break
    return out


def _verdict(run: Run, hosts: dict[str, int], failing: dict[str, int], analysis: Analysis) -> dict[str, str]:
    limit = SEVERITIES.index(run.fail_on) if run.fail_on in SEVERITIES else len(SEVERITIES) - 1
    gating = sum(failing[s] for s in SEVERITIES[: limit + 1])
    gating_hosts = sum(1 for tally in analysis.per_host.values() if any(tally[: limit + 1]))
    down = hosts["unreachable"] + hosts["failed"]
    if run.status == "interrupted":
        return {"cls": "bad", "text": "Interrupted: the results below are partial."}
    if run.status == "running" or run.exit_code is None:
        return {"cls": "warn", "text": "The run has not finished: the results below are partial."}
    parts = []
    if gating:
        parts.append(f"{gating:,} failing finding{'s' if gating != 1 else ''} at or above {run.fail_on} "
                     f"on {gating_hosts:,} host{'s' if gating_hosts != 1 else ''}")
    if down:
        parts.append(f"{down:,} host{'s' if down != 1 else ''} unreachable or failed")
    if parts:
        return {"cls": "bad", "text": "Action needed: " + "; ".join(parts) + "."}
    below = sum(failing.values())
    if below:
        return {"cls": "warn", "text": f"No finding at or above {run.fail_on}; {below:,} below it."}
    return {"cls": "good", "text": "Clean: every host answered and no check failed."}


def _severity_chart(failing: dict[str, int]) -> dict[str, Any]:
    label_w, bar_w, row_h = 78, 250, 30
    top = max(failing.values(), default=0) or 1
    bars = []
    for i, sev in enumerate(SEVERITIES):
        count = failing.get(sev, 0)
        width = round(count / top * bar_w) if count else 0
        bars.append({"label": sev, "count": count, "y": i * row_h + 6, "w": max(width, 2 if count else 0),
                     "color": SEVERITY_COLORS[sev]})
    return {"bars": bars, "x0": label_w, "width": label_w + bar_w + 60,
            "height": len(SEVERITIES) * row_h + 4, "bar_h": row_h - 12}


def _host_chart(hosts: dict[str, int]) -> dict[str, Any]:
    total = sum(hosts.values())
    segments, x = [], 0.0
    for status in HOST_STATUSES:
        count = hosts.get(status, 0)
        if not count:
            continue
        w = count / total * 1000
        segments.append({"status": status, "label": HOST_LABELS[status], "count": count,
                         "x": round(x, 2), "w": round(w, 2), "color": HOST_COLORS[status]})
        x += w
    return {"segments": segments, "total": total}


def _host_rows(run: Run, analysis: Analysis) -> list[tuple[Any, ...]]:
    zero = [0] * (len(SEVERITIES) + 1)
    order = {"failed": 0, "unreachable": 1, "pending": 2, "ok": 3}
    rows = []
    for h in run.hosts.values():
        if not (answered(h) or h.findings):
            continue  # listed in its group under "Hosts unreachable, failed or not finished"
        tally = analysis.per_host.get(h.name, zero)
        rows.append((h.name, host_state(h), h.message, *tally))
    rows.sort(key=lambda r: (order.get(r[1], 4), *(-c for c in r[3:]), r[0]))
    return rows

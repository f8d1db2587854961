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

from fleetcare import commands, i18n
from fleetcare.reports import matrix
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
from fleetcare.results import HOST_STATUSES, SEVERITIES, STATUSES, Run
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

    from fleetcare.codecache import jinja_bytecode_cache

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("fleetcare.reports", "templates"),
        bytecode_cache=jinja_bytecode_cache(),  # compiled once, not on every run
        autoescape=True,  # for every template and every value, whatever the file name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_shown,
    )
    env.filters["n"] = "{:,}".format  # 20,139 failing, not 20139
    _translation_filters(env)
    return env.get_template("report.html.j2")


def _shown(value: Any) -> Any:
    """Every printed value, before escaping: control and bidi characters from hosts
    become visible escapes (a U+202E would otherwise reorder a host name)."""
    if isinstance(value, str):
        text = safe(value)
        return value if text == value else type(value)(text)  # Markup stays Markup
    return value


def render(run: Run, lang: str | None = None) -> str:
    return _template().render(**context(run, lang))


# -- translation (zh): every text of the template goes through the filter `t`; see fleetcare.i18n ----
def _translation_filters(env: Any) -> None:
    """``{{ "Hosts" | t }}``, ``{{ "run {id}" | t(id=run.id) }}``, ``{{ st | label }}`` (a status,
    severity or state), ``{{ g.title | check(g.id) }}`` (a check's title or remediation), all in the
    language of the render (the context's ``tr``)."""
    import jinja2

    @jinja2.pass_context
    def t(ctx: Any, text: str, **fields: Any) -> str:
        return ctx["tr"](text, **fields)

    @jinja2.pass_context
    def label(ctx: Any, word: str) -> str:
        return ctx["tr"].label(word)

    @jinja2.pass_context
    def check(ctx: Any, text: str, finding_id: str) -> str:
        return ctx["tr"].check(finding_id, text)

    env.filters.update(t=t, label=label, check=check)


def context(run: Run, lang: str | None = None) -> dict[str, Any]:
    tr = i18n.translator(lang)
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
        "tr": tr,
        "lang": tr.lang,
        # the `label` filter's results, looked up in the loops over rows (10,000s of cells)
        "labels": {w: tr.label(w) for w in (*i18n.LABELS, *STATUSES, *HOST_LABELS.values())},
        "run": run,
        "title": tr(commands.title(run.command)),  # titles and exit meanings: the command registry
        "exit_meaning": commands.exit_meaning(run.exit_code, run.fail_on, tr, run.fail_on_overdue),
        "verdict": _verdict(run, hosts, failing, analysis, tr),
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
        "kb": _knowledge(run),
        "trends": trends_view(run, tr),
        **_duties_context(run),
        **matrix_context(run, analysis, tr),
        "drift_diffs": drift_diffs(run),
    } | _duties_verdict(run, _verdict(run, hosts, failing, analysis, tr), tr)


DUTY_ROWS = 500  # due and waived findings listed; report.json has them all


def _duties_context(run: Run) -> dict[str, Any]:
    """Service levels and waivers (the template's "duties" block)."""
    from fleetcare.reports.duties import duties

    return {"duties": duties(run, DUTY_ROWS)}


def _duties_verdict(run: Run, verdict: dict[str, str], tr: i18n.Translator) -> dict[str, Any]:
    """The verdict, saying how many findings are waived or overdue: "clean" must not hide them."""
    waived = (run.waivers or {}).get("waived", 0)
    overdue = (run.service_levels or {}).get("counts", {}).get("overdue", 0)
    if not (waived or overdue):
        return {}
    if waived and overdue:
        note = tr("Findings {overdue} overdue and {waived} waived: see below.", overdue=f"{overdue:,}",
                  waived=f"{waived:,}")
    elif overdue:
        note = tr("Findings {count} overdue: see below.", count=f"{overdue:,}")
    else:
        note = tr("Findings {count} waived: see below.", count=f"{waived:,}")
    return {"verdict": {**verdict, "text": f"{verdict['text']} {note}"}}


RECURRING_ROWS = 500  # recurring findings listed; report.json has them all


def _knowledge(run: Run) -> dict[str, Any]:
    """The knowledge base's part of the report (fleetcare.knowledge): recurring findings,
    and the notes and recurring hosts beside each failing finding."""
    from fleetcare import knowledge

    recurring = knowledge.recurring(run)
    per_id: dict[str, int] = {}
    for e in recurring:
        per_id[e["id"]] = per_id.get(e["id"], 0) + 1
    return {"rule": knowledge.rule(run), "recurring": recurring[:RECURRING_ROWS],
            "recurring_total": len(recurring), "recurring_hosts": per_id,
            "notes": knowledge.notes_by_finding(run)}


# -- trends and capacity (fleetcare.trends; the report's ``trends`` key) ---------------------------
SPARK_W, SPARK_H = 160, 30


def _spark(samples: list[list[Any]], min_span: float) -> dict[str, str]:
    """An SVG sparkline through (time, value) samples, oldest first: time across, value up, over the
    samples' own range widened to at least ``min_span`` (so that noise does not fill the height).
    ``points`` for the polyline and the last point's ``x``/``y`` for a dot (one sample is a dot)."""
    from datetime import datetime

    pts = [(datetime.fromisoformat(t).timestamp(), float(v)) for t, v in samples if v is not None]
    if not pts:
        return {"points": "", "x": "", "y": ""}
    t0, t1 = pts[0][0], pts[-1][0]
    lo, hi = min(v for _, v in pts), max(v for _, v in pts)
    if hi - lo < min_span:
        mid = (hi + lo) / 2
        lo, hi = mid - min_span / 2, mid + min_span / 2
    span_t, span_v = (t1 - t0) or 1.0, hi - lo
    pad = 3
    out = []
    for t, v in pts:
        x = SPARK_W - pad if t1 == t0 else pad + (t - t0) / span_t * (SPARK_W - 2 * pad)
        y = pad + (SPARK_H - 2 * pad) * (1 - (v - lo) / span_v)
        out.append((f"{x:.1f}", f"{y:.1f}"))
    return {"points": " ".join(f"{x},{y}" for x, y in out), "x": out[-1][0], "y": out[-1][1]}


def _bytes(value: float | None) -> str:
    if value is None:
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return ""


def trends_view(run: Run, tr: i18n.Translator) -> dict[str, Any] | None:
    """Rows of the trends section: filesystems (soonest full first) and memory/load, each with the
    points of its sparkline; None when the run carries no trends."""
    trends = run.trends
    if not trends:
        return None
    threshold = trends["settings"]["threshold_days"]
    order = {"forecast": 0, "unsteady": 1, "insufficient": 2, "not_filling": 3}
    filesystems = []
    for fs in sorted(trends["filesystems"], key=lambda f: (
            order.get(f["status"], 4), f["days_until_full"] if f["days_until_full"] is not None else 0,
            f["host"], f["mount"])):
        days = fs["days_until_full"]
        if fs["status"] == "forecast":
            verdict = tr("full in {days} days ({date})", days=f"{days:,.1f}", date=(fs["full_at"] or "")[:10])
        else:
            verdict = fs["reason"] or tr.label(fs["status"])
        filesystems.append({
            "host": fs["host"], "mount": fs["mount"], "used_pct": fs["used_pct"],
            "avail": _bytes(fs["avail_bytes"]), "size": _bytes(fs["size_bytes"]),
            "slope": "—" if fs["slope_bytes_per_day"] is None
            else tr("{amount}/day", amount=_bytes(-fs["slope_bytes_per_day"])),
            "r2": fs["r2"], "points": fs["points"], "verdict": verdict, "status": fs["status"],
            "soon": days is not None and days <= threshold, "spark": _spark(fs["samples"], 5.0)})
    resources = [{
        "host": r["host"], "metric": r["metric"], "unit": "%" if r["unit"] == "percent" else "",
        "last": r["last"], "slope": r["slope_per_day"], "reason": r["reason"], "points": r["points"],
        "spark": _spark(r["samples"], 5.0 if r["unit"] == "percent" else max(0.2, abs(r["last"] or 0) * 0.2)),
    } for r in trends["resources"]]
    return {"settings": trends["settings"], "runs": trends["runs"], "filesystems": filesystems,
            "resources": resources, "soon": sum(1 for f in filesystems if f["soon"]),
            "w": SPARK_W, "h": SPARK_H}


def matrix_context(run: Run, analysis: Analysis, tr: i18n.Translator | None = None) -> dict[str, Any]:
    """The host x check matrix and the per-host sections (:mod:`fleetcare.reports.matrix`), with
    the legend's labels in the report's language (``mx_labels``: cell class -> label)."""
    tr = tr or i18n.translator("en")
    labels = {"p": tr.label("pass"), "e": tr.label("error"), "w": tr.label("waived"),
              "na": tr.label("not applicable"), "m": tr("missing (no result from this host)")}
    labels |= {f"f{i}": tr("fail · {severity}", severity=tr.label(sev)) for i, sev in enumerate(SEVERITIES)}
    return {"matrix": matrix.build(run, analysis), "mx_labels": labels}


MATRIX_BLOCKS = ("matrix_style", "matrix", "per_host")


def render_matrix(run: Run) -> str:
    """The matrix's blocks of the report alone (its styles, the matrix, the per-host
    sections), rendered from the same template: what the matrix costs, for the benchmark."""
    template = _template()
    ctx = template.new_context({**matrix_context(run, analyse(run)), "tr": i18n.translator("en")})
    return "".join(chunk for name in MATRIX_BLOCKS for chunk in template.blocks[name](ctx))


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


def _verdict(run: Run, hosts: dict[str, int], failing: dict[str, int], analysis: Analysis,
             tr: i18n.Translator) -> dict[str, str]:
    limit = SEVERITIES.index(run.fail_on) if run.fail_on in SEVERITIES else len(SEVERITIES) - 1
    gating = sum(failing[s] for s in SEVERITIES[: limit + 1])
    gating_hosts = sum(1 for tally in analysis.per_host.values() if any(tally[: limit + 1]))
    down = hosts["unreachable"] + hosts["failed"]
    if run.status == "interrupted":
        return {"cls": "bad", "text": tr("Interrupted: the results below are partial.")}
    if run.status == "running" or run.exit_code is None:
        return {"cls": "warn", "text": tr("The run has not finished: the results below are partial.")}
    parts = []
    level = tr.label(run.fail_on)
    if gating:
        on_hosts = tr.plural("on {count} host", "on {count} hosts", gating_hosts)
        parts.append(tr.plural("{count} failing finding at or above {level} {on_hosts}",
                               "{count} failing findings at or above {level} {on_hosts}", gating,
                               level=level, on_hosts=on_hosts))
    if down:
        parts.append(tr.plural("{count} host unreachable or failed", "{count} hosts unreachable or failed", down))
    if parts:
        return {"cls": "bad", "text": tr("Action needed: {what}.", what=tr("; ").join(parts))}
    below = sum(failing.values())
    if below:
        return {"cls": "warn", "text": tr("No finding at or above {level}; {count} below it.",
                                          level=level, count=f"{below:,}")}
    return {"cls": "good", "text": tr("Clean: every host answered and no check failed.")}


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

"""The Markdown summary: what failed, where, worst first; short enough for a ticket or a PR comment.

Every value that comes from a host (names, messages, evidence) goes through
:func:`cell`: whitespace is folded to one line and Markdown punctuation is
backslash-escaped, so a ``|`` cannot split a table row and ``<script>`` or
``[x](javascript:...)`` stay text in any CommonMark renderer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from fleetcare import i18n, knowledge
from fleetcare.i18n import Translator
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


def render(run: Run, lang: str | None = None) -> str:
    _ = i18n.translator(lang)  # every text below goes through _ (see fleetcare.i18n)
    groups = group_findings(run)
    counts = host_counts(run)
    failing = sum(g.failing for g in groups)
    out: list[str] = []
    add = out.append

    add("# " + _("fleetcare {command} report: run {id}", command=cell(run.command), id=cell(run.id)))
    add("")
    add(_row(_("run"), _("status"), _("exit code"), _("fail on"), _("started"), _("finished"), _("inventory"),
             _("limit")))
    add(_row(*["---"] * 8))
    add(_row(cell(run.id), cell(_.label(run.status)), cell(run.exit_code if run.exit_code is not None else "-"),
             cell(_.label(run.fail_on)), cell(run.started), cell(run.finished or "-"), cell(run.inventory or "-"),
             cell(run.limit or "-")))
    add("")

    _changes_since(out, run, _)
    _recurring(out, run, _)
    _duties(out, run, _)

    add("## " + _("Hosts"))
    add("")
    add(_row(_("total"), _.label("ok"), _.label("unreachable"), _.label("failed"), _.label("not finished")))
    add(_row(*["---:"] * 5))
    add(_row(len(run.hosts), counts["ok"], counts["unreachable"], counts["failed"], counts["pending"]))
    add("")

    add("## " + _("Failing findings"))
    add("")
    by_severity = {s: 0 for s in SEVERITIES}
    for g in groups:
        by_severity[g.severity] += g.failing
    add(_row(*(_.label(s) for s in SEVERITIES), _("total")))
    add(_row(*["---:"] * (len(SEVERITIES) + 1)))
    add(_row(*(by_severity[s] for s in SEVERITIES), failing))
    add("")
    problem_groups = [g for g in groups if g.rows]
    if not problem_groups:
        add(_("No finding failed or errored."))
        add("")
    notes = knowledge.notes_by_finding(run)
    for g in problem_groups:
        _group(out, g, _, notes.get(g.id, ()))

    problems = host_problems(run)
    if problems:
        add("## " + _("Hosts unreachable, failed or not finished"))
        add("")
        add(_row(_("status"), _("hosts"), _("message"), _("which")))
        add(_row("---", "---:", "---", "---"))
        for g in problems:
            add(_row(_.label(g.label), len(g.hosts), cell(g.message or "-", 300),
                     cell(first_hosts(g.hosts, HOSTS_PER_PROBLEM, _), 600)))
        add("")

    _trends(out, run, _)

    changed = [h for h in run.hosts.values() if h.changes]
    if changed:
        add("## " + (_("Changes this run would make (check mode)") if run.check else _("Changes made")))
        add("")
        add(_row(_("host"), _("changes"), _("what")))
        add(_row("---", "---:", "---"))
        for h in changed:
            add(_row(cell(h.name), len(h.changes), cell("; ".join(h.changes), 600)))
        add("")

    add("_" + _("fleetcare {version}; every finding with its full evidence is in report.json and report.html.",
                version=cell(run.fleetcare_version)) + "_")
    return "\n".join(out) + "\n"


COMPARED_ROWS = 50  # the rest is in report.json
TREND_ROWS = 100  # filesystems listed, soonest full first; report.json and report.html have them all


def _trends(out: list[str], run: Run, _: Translator) -> None:
    """Capacity forecasts (fleetcare.trends): one row per host and filesystem, soonest full first."""
    trends = run.trends
    if not trends or not trends["filesystems"]:
        return
    add = out.append
    settings = trends["settings"]
    add("## " + _("Capacity forecast"))
    add("")
    add(_("From {runs} runs within {window} days; a forecast needs {points} points over {span} day(s) and R² "
          "at least {r2}.", runs=trends["runs"], window=f"{settings['window_days']:g}",
          points=settings["min_points"], span=f"{settings['min_span_days']:g}", r2=f"{settings['min_r2']:g}"))
    add("")
    add(_row(_("host"), _("mount"), _("used %"), _("points"), "R²", _("days until full"), _("forecast")))
    add(_row("---", "---", "---:", "---:", "---:", "---:", "---"))
    order = {"forecast": 0, "unsteady": 1, "insufficient": 2, "not_filling": 3}
    rows = sorted(trends["filesystems"], key=lambda f: (order.get(f["status"], 4), f["days_until_full"] or 0,
                                                          f["host"], f["mount"]))
    for f in rows[:TREND_ROWS]:
        days = f["days_until_full"]
        full = _("full {date}", date=f["full_at"][:10]) if days is not None and f["full_at"] else None
        add(_row(cell(f["host"]), cell(f["mount"]), cell(f["used_pct"]), f["points"],
                 "-" if f["r2"] is None else f"{f['r2']:.2f}", "-" if days is None else f"{days:.1f}",
                 cell(full or f["reason"] or "-")))
    if len(rows) > TREND_ROWS:
        add("")
        add(_("… and {count} more in report.json.", count=len(rows) - TREND_ROWS))
    add("")


def _changes_since(out: list[str], run: Run, _: Translator) -> None:
    """What changed since the compared run: first, before any other section."""
    comparison = run.comparison
    if comparison is None:
        return
    add = out.append
    add("## " + _("What changed since the last run"))
    add("")
    if comparison["against"] is None:
        add(_("No earlier run of this command over the same hosts: every failing finding is new."))
    else:
        add(_("Compared with run {id} ({started}).", id=cell(comparison["against"]),
              started=cell(comparison["against_started"])))
    add("")
    counts = comparison["counts"]
    add(_row(*(_.label(s) for s in ("new", "regressed", "still_open", "resolved"))))
    add(_row(*["---:"] * 4))
    add(_row(counts["new"], counts["regressed"], counts["still_open"], counts["resolved"]))
    add("")
    changed = [e for e in comparison["findings"] if e["state"] != "still_open"]
    if changed:
        add(_row(_("change"), _("severity"), "ID", _("host"), _("first seen")))
        add(_row(*["---"] * 5))
        for e in changed[:COMPARED_ROWS]:
            add(_row(_.label(e["state"]), _.label(e["severity"]), cell(e["id"]), cell(e["host"]),
                     cell(e["first_seen"])))
        if len(changed) > COMPARED_ROWS:
            add("")
            add(_("… and {count} more in report.json.", count=len(changed) - COMPARED_ROWS))
        add("")


DUTY_ROWS = 50  # due and waived findings listed; the rest is in report.json


def _duties(out: list[str], run: Run, _: Translator) -> None:
    """Service levels (open findings by due time, overdue marked) and waivers (expiring soon,
    lapsed, the findings waived): after what changed, before the hosts."""
    from fleetcare.reports.duties import duties

    d = duties(run, DUTY_ROWS)
    add = out.append
    if d.due:
        c = d.counts
        add("## " + _("Service levels"))
        add("")
        promise = "; ".join(_("{severity} respond {respond}, resolve {resolve}", severity=_.label(s),
                              respond=p["respond"], resolve=p["resolve"]) for s, p in d.policy.items()
                            if p["respond"] != "none" or p["resolve"] != "none")
        add(_("{open} open failing findings, {overdue} overdue, {late} past their respond-by time, as of {at} "
              "(policy {source}: {promise}).", open=c.get("open", 0), overdue=c.get("overdue", 0),
              late=c.get("respond_late", 0), at=cell(d.as_of), source=cell(d.policy_source), promise=cell(promise)))
        add("")
        add(_row(_("due"), _("severity"), _("ID"), _("host"), _("first seen"), _("respond by"), _("resolve by")))
        add(_row(*["---"] * 7))
        for e in d.due:
            mark = _.label(e["mark"])
            add(_row(f"**{mark}**" if e["overdue"] else mark, _.label(e["severity"]), cell(e["id"]),
                     cell(e["host"]), cell(e["first_seen"]), cell(e["respond_by"] or "-"),
                     cell(e["resolve_by"] or "-")))
        if c.get("due", 0) > len(d.due):
            add("")
            add(_("… and {count} more in report.json.", count=c["due"] - len(d.due)))
        add("")
    if not (d.waived or d.lapsed):
        return
    add("## " + _("Waivers"))
    add("")
    add(_("{waived} findings waived under {used} waivers; {expiring} expire within {days} days.",
          waived=d.waived, used=len(d.used), expiring=len(d.expiring), days=d.warn_days))
    add("")
    if d.expiring:
        add("### " + _("Waivers expiring within {days} days", days=d.warn_days))
        add("")
        _waiver_table(out, d.expiring, _)
    if d.lapsed:
        add("### " + _("Waivers that lapsed (their findings fail again)"))
        add("")
        _waiver_table(out, d.lapsed, _)
    if d.waived_rows:
        add("### " + _("Waived findings"))
        add("")
        add(_row(_("severity"), _("ID"), _("host"), _("owner"), _("expires"), _("reason"), _("waiver")))
        add(_row(*["---"] * 7))
        for severity, fid, host, w in d.waived_rows:
            add(_row(_.label(severity), cell(fid), cell(host), cell(w.get("owner")), cell(w.get("expires")),
                     cell(w.get("reason"), 200), cell(f"{_.label(w.get('source') or '')} {w.get('ref')}")))
        if d.waived > len(d.waived_rows):
            add("")
            add(_("… and {count} more in report.json.", count=d.waived - len(d.waived_rows)))
        add("")


def _waiver_table(out: list[str], rows: list[dict], _: Translator) -> None:
    out.append(_row(_("ID"), _("hosts"), _("owner"), _("expires"), _("state"), _("findings"), _("reason"),
                    _("waiver")))
    out.append(_row(*["---"] * 5, "---:", "---", "---"))
    for w in rows:
        out.append(_row(cell(w["finding"]), cell(w["host"]), cell(w["owner"]), cell(w["expires"]),
                        _.label(w.get("state", "")) if w.get("state") else "", w.get("findings", 0),
                        cell(w["reason"], 200), cell(f"{_.label(w['source'])} {w['ref']}")))
    out.append("")


def _group(out: list[str], g: FindingGroup, _: Translator, notes: Sequence[dict] = ()) -> None:
    add = out.append
    parts = [_("{count} failing", count=g.failing)]
    if g.errors:
        parts.append(_("{count} error", count=g.errors))
    add("### " + _("{severity} · {id} · {title} ({counts})", severity=cell(_.label(g.severity)), id=cell(g.id),
                   title=cell(_.check(g.id, g.title)), counts=_(", ").join(parts)))
    add("")
    if g.remediation:
        add(_("Remediation: {text}", text=cell(_.check(g.id, g.remediation), 400)))
        add("")
    _known_causes(out, notes, _)
    add(_row(_("host"), _("status"), _("evidence")))
    add(_row("---", "---", "---"))
    for host, status, evidence in g.rows[:HOSTS_PER_FINDING]:
        add(_row(cell(host), _.label(status), cell(evidence_text(evidence), EVIDENCE_CHARS) or "-"))
    rest = len(g.rows) - HOSTS_PER_FINDING
    if rest > 0:
        add("")
        add(_.plural("… and {count} more host.", "… and {count} more hosts.", rest))
    add("")


# -- knowledge base: recurring findings and known causes (fleetcare.knowledge) -------------
RECURRING_ROWS = 50  # the rest is in report.json
NOTES_PER_FINDING = 3
NOTE_CHARS = 300


def _recurring(out: list[str], run: Run, _: Translator) -> None:
    """Failing findings that keep coming back on a host: look for the root cause."""
    rows = knowledge.recurring(run)
    if not rows:
        return
    add = out.append
    rule = knowledge.rule(run)
    add("## " + _("Recurring findings: look for the root cause"))
    add("")
    add(_("Failed again after the host had passed them, {times} times or more in {days} days.",
          times=rule["times"], days=rule["days"]))
    add("")
    add(_row(_("severity"), _("ID"), _("host"), _("recurrences"), _("known cause")))
    add(_row("---", "---", "---", "---:", "---"))
    notes = knowledge.notes_by_finding(run)
    for e in rows[:RECURRING_ROWS]:
        known = next((n for n in notes.get(e["id"], ()) if knowledge.host_matches(n["host"], e["host"])), None)
        add(_row(_.label(e["severity"]), cell(e["id"]), cell(e["host"]), e["recurrences"],
                 cell(known["cause"], 120) if known else "-"))
    if len(rows) > RECURRING_ROWS:
        add("")
        add(_("… and {count} more in report.json.", count=len(rows) - RECURRING_ROWS))
    add("")


def _known_causes(out: list[str], notes: Sequence[dict], _: Translator) -> None:
    """The notes that apply to a failing finding's hosts, as one quoted block beside it."""
    if not notes:
        return
    add = out.append
    for n in notes[:NOTES_PER_FINDING]:
        hosts = _("every host") if n["host"] == "*" else _("hosts {pattern}", pattern=cell(n["host"]))
        add("> " + _("**Known cause** (note {id}, {author}, {date}, {hosts}, {failing} failing here): {cause}",
                     id=n["id"], author=cell(n["author"]), date=cell(n["created"][:10]), hosts=hosts,
                     failing=n["failing_hosts"], cause=cell(n["cause"], NOTE_CHARS)) + "  ")
        add("> " + _("**Fix:** {fix}", fix=cell(n["fix"], NOTE_CHARS)))
        add(">")
    if len(notes) > NOTES_PER_FINDING:
        add("> " + _("… and {count} more notes: {command}", count=len(notes) - NOTES_PER_FINDING,
                     command=f"`fleetcare explain {cell(notes[0]['finding'])}`"))
    else:
        out.pop()
    add("")

"""The knowledge base: what caused a finding and how it was fixed, kept in history so that the
next occurrence is solved faster; and the findings that keep coming back.

Notes (``fleetcare note ID --cause TEXT --fix TEXT [--host PATTERN]``) are stored against a
finding ID, on the hosts a shell-style pattern matches (``*``: every host). ``fleetcare explain
ID`` prints them after the check's own text and its history; every report shows, beside a
failing finding, the notes that apply to its hosts.

Recurrence, counted per finding and host over the results of every command in history (a finding
ID means the same check whichever command ran it): the host's results of the check are read in
the order the runs started, keeping only ``pass`` and ``fail`` (an error, a not-applicable or a
waived result, and a run that did not reach the host, neither end nor start a failure). A
*recurrence* is a ``fail`` that comes right after a ``pass``: the fault was fixed, or went away,
and came back. A failing finding is ``recurring`` when at least :data:`RECURRING_TIMES`
recurrences, the ``pass`` and the ``fail`` of each both inside the :data:`RECURRING_DAYS` days
that end with the run, lead up to it (the run's own failure included). The first failure ever
seen is no recurrence, and neither is a failure that simply goes on.
"""

from __future__ import annotations

import fnmatch
import textwrap
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fleetcare.errors import InputError
from fleetcare.results import Run
from fleetcare.term import safe

# recurring: at least this many recurrences in this many days (the lead wires them to the shared
# policy file, key ``recurring: {times, days}``)
RECURRING_TIMES = 3
RECURRING_DAYS = 30

EXPLAIN_HOSTS = 25  # hosts listed by `fleetcare explain`; --hosts 0 lists all
TEXT_LIMIT = 4000  # characters of a cause or a fix


def host_matches(pattern: str, host: str) -> bool:
    """Whether a note's host pattern (shell-style, case-sensitive like inventory names) covers a host."""
    return fnmatch.fnmatchcase(host, pattern)


def window_start(until: str | datetime, days: int) -> str:
    """The start of the ``days`` days that end at ``until``, in history's timestamp form."""
    end = datetime.fromisoformat(until) if isinstance(until, str) else until
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    return (end - timedelta(days=days)).astimezone(UTC).isoformat(timespec="seconds")


# -- notes --------------------------------------------------------------------------
def finding_id(text: str, history: Any | None = None) -> str:
    """The ID as stored: one a role of the collection emits (any case given), or one that
    history recorded (a check of an older fleetcare); InputError with a close match otherwise."""
    from fleetcare import catalog

    known = catalog.known_id(text)
    if known:
        return known
    wanted = text.strip().upper()
    if history is not None and wanted and history.recorded(wanted):
        return wanted
    raise catalog.unknown_id(text)


def _text(option: str, value: str | None) -> str:
    text = (value or "").strip()
    if not text:
        raise InputError(f"{option}: must not be empty")
    if len(text) > TEXT_LIMIT:
        raise InputError(f"{option}: at most {TEXT_LIMIT} characters, not {len(text)}")
    return text


def check_note(finding: str, cause: str | None, fix: str | None, host: str | None = "*",
               author: str | None = None) -> dict[str, str]:
    """The note's fields, checked before anything is written (InputError naming the option)."""
    from fleetcare.drift import default_by

    pattern = (host or "").strip()
    if not pattern or any(c.isspace() for c in pattern):
        raise InputError(f"--host: {host!r} is not a host pattern (one word, shell-style: web-*)")
    by = (author or "").strip() if author is not None else default_by()
    if not by:
        raise InputError("--by: must not be empty")
    return {"finding": finding, "host": pattern, "cause": _text("--cause", cause), "fix": _text("--fix", fix),
            "author": by}


def add_note(history: Any, finding: str, cause: str | None, fix: str | None, host: str | None = "*",
             author: str | None = None) -> dict[str, Any]:
    """Record a cause and a fix against ``finding`` (on hosts matching ``host``); the stored note."""
    from fleetcare import clock

    note = check_note(finding_id(finding, history), cause, fix, host, author)
    note["created"] = clock.now().astimezone(UTC).isoformat(timespec="seconds")
    note["id"] = history.add_note(**note)
    return note


def notes(history: Any, finding: str | None = None) -> list[dict[str, Any]]:
    """Notes, newest first: every one, or those on one finding ID."""
    if finding is None:
        return history.notes()
    return history.notes([finding_id(finding, history)])


# -- recurrence and notes on a run's reports -----------------------------------------
def annotate(run: Run, history: Any, times: int = RECURRING_TIMES, days: int = RECURRING_DAYS) -> Run:
    """Mark the recurring failing findings of ``run.comparison`` (``recurring: true`` and
    ``recurrences``), and set ``run.notes`` to the notes that apply to its failing findings.
    Nothing is set on the run until every query has succeeded."""
    comparison = run.comparison
    if comparison is None:
        return run
    failing = [e for e in comparison["findings"] if e["state"] != "resolved"]
    counts = history.recurrences(run, window_start(run.started, days))
    hosts: dict[str, list[str]] = defaultdict(list)
    for e in failing:
        hosts[e["id"]].append(e["host"])
    applied = []
    for note in history.notes(hosts) if hosts else ():
        n = sum(1 for h in hosts[note["finding"]] if host_matches(note["host"], h))
        if n:
            applied.append({**note, "failing_hosts": n})
    comparison["recurring_rule"] = {"times": times, "days": days}
    for e in failing:
        n = counts.get((e["id"], e["host"]), 0)
        if n >= times:
            e["recurring"], e["recurrences"] = True, n
    run.notes = applied or None
    return run


def recurring(run: Run) -> list[dict[str, Any]]:
    """The recurring entries of a run's comparison, most recurrences first."""
    entries = [e for e in (run.comparison or {}).get("findings", ()) if e.get("recurring")]
    entries.sort(key=lambda e: (-e["recurrences"], e["id"], e["host"]))
    return entries


def rule(run: Run) -> dict[str, int]:
    return (run.comparison or {}).get("recurring_rule") or {"times": RECURRING_TIMES, "days": RECURRING_DAYS}


def notes_by_finding(run: Run) -> dict[str, list[dict[str, Any]]]:
    """The run's notes grouped by finding ID, newest first."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for note in run.notes or ():
        out[note["finding"]].append(note)
    return dict(out)


# -- fleetcare explain ID --------------------------------------------------------------
def explain(text: str, db: Path | str | None = None, hosts_shown: int = EXPLAIN_HOSTS,
            times: int = RECURRING_TIMES, days: int = RECURRING_DAYS) -> str:
    """What ``fleetcare explain ID`` prints: the check (what, why, how to fix, references),
    then its history from the database at ``db``. A missing database is not created."""
    from fleetcare import catalog
    from fleetcare.history import History, default_path

    path = Path(db).expanduser() if db else default_path()
    try:
        head = catalog.explain(text)
    except InputError:
        if not path.is_file():
            raise
        with History(path) as history:
            fid = finding_id(text, history)  # recorded by an older fleetcare, or the same error
            head = f"{fid}\n\n  not a check of this fleetcare version; results of it are in history"
            return head + "\n\n" + _history_text(history, fid, hosts_shown, times, days)
    fid = head.split(None, 1)[0]
    if not path.is_file():
        return head + f"\n\nHistory\n  no history database at {safe(path)}: nothing recorded yet"
    with History(path) as history:
        return head + "\n\n" + _history_text(history, fid, hosts_shown, times, days)


def _history_text(history: Any, fid: str, hosts_shown: int, times: int, days: int) -> str:
    from fleetcare import clock

    lines = ["History"]
    if not history.runs(1):
        lines.append(f"  no runs recorded yet in {safe(history.path)}")
    else:
        trail = history.trail(fid, window_start(clock.now(), days))
        if not trail:
            seen = "passed every time it was checked" if history.recorded(fid) else "no stored run checked it"
            lines.append(f"  never failed: {seen}")
        else:
            lines += _trail_lines(trail, hosts_shown, times, days)
    notes_ = history.notes([fid])
    lines += ["", f"Notes ({len(notes_)}, newest first)" if notes_ else "Notes"]
    if not notes_:
        lines.append(f"  none: record a cause and a fix with 'fleetcare note {fid} --cause TEXT --fix TEXT'")
    for n in notes_:
        lines.append(safe(f"  #{n['id']}  {n['created']}  by {n['author']}  hosts {n['host']}"))
        lines += _indented("cause", n["cause"]) + _indented("fix", n["fix"])
    return "\n".join(lines)


def _trail_lines(trail: list[dict[str, Any]], hosts_shown: int, times: int, days: int) -> list[str]:
    first = min(t["first_failed"] for t in trail)
    last = max(t["last_failed"] for t in trail)
    failing_now = sum(1 for t in trail if t["last_status"] == "fail")
    recurring_hosts = sum(1 for t in trail if t["recent_recurrences"] >= times)
    n = len(trail)
    lines = [f"  failed on {n:,} host{'s' if n != 1 else ''} ({failing_now:,} failing at their latest result); "
             f"first seen {first}, last seen {last}"]
    if recurring_hosts:
        lines.append(f"  recurring on {recurring_hosts:,} host{'s' if recurring_hosts != 1 else ''} "
                     f"({times} or more recurrences in {days} days): look for the root cause")
    shown = trail if hosts_shown <= 0 else trail[:hosts_shown]
    width = max(4, *(len(safe(t["host"])) for t in shown))
    lines += ["", f"  {'host':<{width}}  {'first failed':<25}  {'last failed':<25}  {'failed':>6}  "
                  f"{'recurred':>8}  {f'in {days} days':>12}  latest"]
    for t in shown:
        mark = "  recurring" if t["recent_recurrences"] >= times else ""
        lines.append(f"  {safe(t['host']):<{width}}  {t['first_failed']:<25}  {t['last_failed']:<25}  "
                     f"{t['failed_runs']:>6}  {t['recurrences']:>8}  {t['recent_recurrences']:>12}  "
                     f"{t['last_status']}{mark}")
    if len(trail) > len(shown):
        lines.append(f"  ... and {len(trail) - len(shown):,} more hosts (--hosts 0 lists all)")
    return lines


def _indented(label: str, text: str) -> list[str]:
    wrapped = textwrap.wrap(" ".join(safe(text).split()), 90) or ["-"]
    pad = " " * (len(label) + 2)
    return [f"      {label}: {wrapped[0]}", *(f"      {pad}{w}" for w in wrapped[1:])]

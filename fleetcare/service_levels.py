"""Service levels: every open failing finding is due by its severity's promise (fleetcare.policy),
counted from when history first saw it fail (``first_seen``, fleetcare.lifecycle).

``respond_by`` = first_seen + respond, ``resolve_by`` = first_seen + resolve, judged at the run's
start (``as_of``): a finding past its ``resolve_by`` is ``overdue`` (the promise is broken; what
``--fail-on-overdue`` exits 1 on), one past its ``respond_by`` only is ``respond_late``. A waived
finding is accepted for the waiver's time and carries no due time; when the waiver ends it is due
again from its first failure (its first_seen carried on through the waiver). A severity whose
policy promises nothing (info, by default) gives no due time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fleetcare.lifecycle import first_seen_of
from fleetcare.policy import Policy
from fleetcare.results import Run, severity_rank


def _time(text: str) -> datetime:
    t = datetime.fromisoformat(text)
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


def _due(seen: str, level: Any, at: datetime) -> tuple[Any, ...] | None:
    """(first_seen, respond_by, resolve_by, sort time, overdue, respond late) for one first_seen
    time and service level; None when the level promises nothing."""
    if level.respond is None and level.resolve is None:
        return None
    first = _time(seen)
    respond = first + level.respond if level.respond else None
    resolve = first + level.resolve if level.resolve else None
    is_overdue = resolve is not None and at > resolve
    is_late = respond is not None and at > respond and not is_overdue
    return (_iso(first), _iso(respond) if respond else None, _iso(resolve) if resolve else None,
            resolve or respond, is_overdue, is_late)


def annotate(run: Run, policy: Policy) -> Run:
    """Set ``run.service_levels``: the policy, counts, and the open failing findings with a due
    time, soonest due first."""
    at = _time(run.started)
    since = first_seen_of(run)
    # (first_seen, severity) -> due times: a fleet's findings share a handful of first_seen times,
    # so each is parsed and each due time formatted once, not once per finding
    due: dict[tuple[str, str], tuple[Any, ...] | None] = {}
    rows: list[dict[str, Any]] = []
    keys: list[tuple[Any, ...]] = []
    open_total = 0
    for f in run.findings():
        if not f.failing:
            continue
        open_total += 1
        seen = since.get((f.id, f.host)) or run.started
        d = due.get((seen, f.severity), False)
        if d is False:
            d = due[(seen, f.severity)] = _due(seen, policy.level(f.severity), at)
        if d is None:
            continue
        first, respond, resolve, sort_at, is_overdue, is_late = d
        keys.append((sort_at, severity_rank(f.severity), f.id, f.host, len(rows)))
        rows.append({"id": f.id, "host": f.host, "severity": f.severity, "first_seen": first,
                     "respond_by": respond, "resolve_by": resolve, "overdue": is_overdue, "respond_late": is_late})
    keys.sort()
    rows = [rows[k[-1]] for k in keys]
    overdue = sum(1 for r in rows if r["overdue"])
    late = sum(1 for r in rows if r["respond_late"])
    run.service_levels = {"as_of": _iso(at), "policy": policy.describe(), "source": policy.source,
                          "counts": {"open": open_total, "due": len(rows), "overdue": overdue,
                                     "respond_late": late},
                          "findings": rows}
    return run

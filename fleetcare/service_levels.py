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


def annotate(run: Run, policy: Policy) -> Run:
    """Set ``run.service_levels``: the policy, counts, and the open failing findings with a due
    time, soonest due first."""
    at = _time(run.started)
    since = first_seen_of(run)
    entries: list[tuple[Any, ...]] = []
    open_total = 0
    for f in run.findings():
        if not f.failing:
            continue
        open_total += 1
        level = policy.level(f.severity)
        if level.respond is None and level.resolve is None:
            continue
        first = _time(since.get((f.id, f.host)) or run.started)
        respond = first + level.respond if level.respond else None
        resolve = first + level.resolve if level.resolve else None
        entries.append(((resolve or respond), severity_rank(f.severity), f.id, f.host, f.severity, first,
                        respond, resolve))
    entries.sort(key=lambda e: e[:4])
    rows, overdue, late = [], 0, 0
    for _, _, fid, host, severity, first, respond, resolve in entries:
        is_overdue = resolve is not None and at > resolve
        is_late = respond is not None and at > respond and not is_overdue
        overdue += is_overdue
        late += is_late
        rows.append({"id": fid, "host": host, "severity": severity, "first_seen": _iso(first),
                     "respond_by": _iso(respond) if respond else None,
                     "resolve_by": _iso(resolve) if resolve else None,
                     "overdue": is_overdue, "respond_late": is_late})
    run.service_levels = {"as_of": _iso(at), "policy": policy.describe(), "source": policy.source,
                          "counts": {"open": open_total, "due": len(rows), "overdue": overdue,
                                     "respond_late": late},
                          "findings": rows}
    return run

"""The life of a finding across runs, computed from history after a run is built and before its
reports are written (results -> history -> lifecycle -> reports).

Comparison: each failing finding of a run is held against the previous run of the same command
over the same hosts (or any run named with ``fleetcare report RUN --against OTHER``), per host:

- ``new``: it fails now, did not fail then, and never failed on that host before;
- ``still_open``: it failed then and fails now;
- ``regressed``: it failed in an earlier run, did not fail in the compared run, fails again;
- ``resolved``: it failed then, and now the host reports it and it does not fail.

``first_seen`` is when the current stretch of failures began: this run's start for a new or
regressed finding, the compared run's ``first_seen`` for one still open. History stores it with
each failing finding, so the next run carries it on.

A waived finding (``fleetcare.waivers``) is still a fault: the comparison follows it like a
failing one (new, still open or regressed, with status ``waived``), it is never resolved by its
waiver, and its ``first_seen`` carries on, so the service levels keep counting from the first
failure when the waiver ends.
"""

from __future__ import annotations

from typing import Any

from fleetcare.results import Run

STATES = ("new", "regressed", "still_open", "resolved")
Key = tuple[str, str]  # (finding id, host)


def compare(run: Run, against: Run | None, failed_before: set[Key] = frozenset(),
            first_seen: dict[Key, str] | None = None) -> dict[str, Any]:
    """The ``comparison`` of ``run`` with ``against`` (None: no earlier run to compare with).

    ``failed_before`` holds the (id, host) pairs that failed in runs older than ``against``;
    ``first_seen`` maps the pairs failing in ``against`` to the start of their failures."""
    first_seen = first_seen or {}
    then = {(f.id, f.host): f for f in against.findings()} if against is not None else {}
    entries: list[dict[str, Any]] = []
    now: dict[Key, Any] = {}
    for f in run.findings():
        key = (f.id, f.host)
        now[key] = f
        if not f.open:
            continue
        before = then.get(key)
        if before is not None and before.open:
            state, since = "still_open", first_seen.get(key) or against.started
        elif key in failed_before:
            state, since = "regressed", run.started
        else:
            state, since = "new", run.started
        entries.append(_entry(f, state, since))
    for key, before in then.items():
        current = now.get(key)
        if before.open and current is not None and not current.open:
            entries.append(_entry(current, "resolved", first_seen.get(key) or against.started))
    order = {s: i for i, s in enumerate(STATES)}
    entries.sort(key=lambda e: (order[e["state"]], e["id"], e["host"]))
    counts = dict.fromkeys(STATES, 0)
    for e in entries:
        counts[e["state"]] += 1
    return {"against": against.id if against is not None else None,
            "against_started": against.started if against is not None else None,
            "counts": counts, "findings": entries}


def _entry(f: Any, state: str, since: str) -> dict[str, Any]:
    return {"id": f.id, "host": f.host, "severity": f.severity, "title": f.title, "status": f.status,
            "state": state, "first_seen": since}


def first_seen_of(run: Run) -> dict[Key, str]:
    """(id, host) -> first_seen for the failing findings of a compared run."""
    return {(e["id"], e["host"]): e["first_seen"] for e in (run.comparison or {}).get("findings", ())
            if e["state"] != "resolved"}


def annotate(run: Run, history: Any, against: str | None = None, recurring: Any = None) -> Run:
    """Set ``run.comparison`` from history: against the run ``against`` names, or else the
    previous run of the same command over the same hosts; ``recurring`` (the policy's
    ``times``/``days``, :class:`fleetcare.policy.Recurring`) says when a fault is recurring."""
    from fleetcare import knowledge

    other_id = history.resolve(against) if against else history.previous_run(run)
    other = history.outline(other_id) if other_id else None  # ids and statuses are all it needs
    if other is None:
        run.comparison = compare(run, None)
    else:
        run.comparison = compare(run, other, history.failed_before(other), history.first_seen(other.id))
    if recurring is None:
        return knowledge.annotate(run, history)  # recurring findings and their notes
    return knowledge.annotate(run, history, recurring.times, recurring.days)

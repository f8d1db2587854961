"""Waivers: a failing finding accepted for a while, with a reason, an owner and an expiry.

A waiver names a finding ID or a shell-style pattern of IDs (``HARD-SSH-*``), checked against the
IDs the roles can emit (:func:`fleetcare.catalog.finding_ids`), and a host pattern (``*`` for every
host). It is kept in history (``fleetcare waive``; revoked by ``fleetcare unwaive``, never
deleted) or in a YAML file that can live in a customer's repository (``--waivers FILE``)::

    waivers:
      - id: HARD-SSH-*
        host: "web-*"
        reason: the bastion needs agent forwarding until the migration (CHG-1234)
        owner: alice
        expires: 2027-03-31

Every waiver is checked the same way wherever it comes from: reason, owner and expiry present, the
expiry a date (``YYYY-MM-DD``, meaning 00:00 UTC that day) or an ISO 8601 time, no further away than
the policy's ``waivers.max_days``, the ID known. A bad one is one InputError naming the file and
the entry, before any host is contacted.

:func:`apply` is the one place waivers touch a run: after the run is built and before history saves
it and the reports are written. A failing finding matched by a waiver active at the run's start
(not revoked, not yet expired) gets status ``waived`` and the waiver in ``Finding.waiver``; it no
longer counts for ``--fail-on``. Once the waiver has expired the finding fails again.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from fleetcare import clock, inputs
from fleetcare.errors import InputError
from fleetcare.policy import Policy
from fleetcare.results import Run

_GLOB = frozenset("*?[")
_FILE_KEYS = ("id", "host", "reason", "owner", "expires")
STATES = ("active", "expiring", "expired", "revoked")


@dataclass(frozen=True, slots=True)
class Waiver:
    finding: str  # an ID or a pattern of IDs, upper case
    host: str  # a pattern of host names
    reason: str
    owner: str
    expires: datetime  # UTC
    source: str  # "history" or "file"
    ref: str  # the history id, or "FILE#N" (the N-th entry of the file, from 1)
    created: str | None = None
    revoked: str | None = None

    def revoked_by(self, at: datetime) -> bool:
        """Revoked at or before ``at`` (a revocation after a run's start does not reach back)."""
        if self.revoked is None:
            return False
        try:
            return parse_time(self.revoked, "revoked") <= at
        except InputError:
            return True

    def active(self, at: datetime) -> bool:
        return not self.revoked_by(at) and at < self.expires

    def state(self, at: datetime, warn_days: int) -> str:
        if self.revoked_by(at):
            return "revoked"
        if at >= self.expires:
            return "expired"
        return "expiring" if self.expires - at <= timedelta(days=warn_days) else "active"

    def to_dict(self) -> dict[str, Any]:
        """What a waived finding carries (``Finding.waiver``) and the reports show."""
        return {"finding": self.finding, "host": self.host, "reason": self.reason, "owner": self.owner,
                "expires": iso(self.expires), "source": self.source, "ref": self.ref}

    def label(self) -> str:
        where = "" if self.host == "*" else f" on {self.host}"
        return f"{self.finding}{where}"


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds")


def parse_time(value: Any, where: str) -> datetime:
    """A waiver's expiry: a date (00:00 UTC that day) or an ISO 8601 time (UTC without an offset).
    YAML hands dates and times over already parsed; both are taken."""
    if isinstance(value, datetime):
        t = value
    elif isinstance(value, date):
        t = datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and value.strip():
        try:
            t = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InputError(f"{where}: {value!r} is not a date (YYYY-MM-DD) or an ISO 8601 time") from None
    else:
        raise InputError(f"{where}: missing (a date, YYYY-MM-DD, or an ISO 8601 time)")
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)


def now() -> datetime:
    """The controller's clock; a bad FLEETCARE_NOW is one InputError."""
    try:
        return clock.now().astimezone(UTC)
    except ValueError:
        import os

        raise InputError(f"FLEETCARE_NOW={os.environ.get('FLEETCARE_NOW')!r}: not an ISO 8601 time "
                         "(e.g. 2026-12-01T08:00:00+00:00)") from None


def _text(value: Any, where: str, key: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InputError(f"{where}: {key}: missing (a waiver needs a reason, an owner and an expiry)")
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise InputError(f"{where}: {key}: must be text")
    return " ".join(str(value).split())


def known_ids() -> frozenset[str]:
    """Every finding ID a role can emit (what ``fleetcare explain`` knows)."""
    from fleetcare import catalog

    return frozenset(catalog.finding_ids())


def check_id(pattern: Any, where: str, known: frozenset[str] | None = None) -> str:
    """An exact finding ID or a pattern of IDs that matches at least one ID a role can emit
    (upper-cased); InputError with a close match otherwise."""
    from fleetcare import catalog

    if not isinstance(pattern, str) or not pattern.strip():
        raise InputError(f"{where}: id: missing (a finding ID such as HARD-SSH-001, or a pattern such as HARD-SSH-*)")
    wanted = pattern.strip().upper()
    known = known if known is not None else known_ids()
    if _GLOB & set(wanted):
        if not any(fnmatch.fnmatchcase(i, wanted) for i in known):
            families = sorted({i.rsplit("-", 1)[0] + "-*" for i in known})
            raise InputError(f"{where}: no finding ID matches {pattern!r}{catalog._suggestion(wanted, families)}")
    elif wanted not in known:
        raise InputError(f"{where}: unknown finding ID {pattern!r}{catalog._suggestion(wanted, sorted(known))}")
    return wanted


def check(raw: dict[str, Any], where: str, policy: Policy, at: datetime, source: str, ref: str,
          future: bool = False, known: frozenset[str] | None = None) -> Waiver:
    """One waiver from its parts (a file's entry, or the options of ``fleetcare waive``), validated.
    ``future``: the expiry must not have passed yet (a new waiver)."""
    finding = check_id(raw.get("id"), where, known)
    host = raw.get("host")
    host = "*" if host is None else _text(host, where, "host")
    reason = _text(raw.get("reason"), where, "reason")
    owner = _text(raw.get("owner"), where, "owner")
    expires = parse_time(raw.get("expires"), f"{where}: expires")
    limit = policy.waivers.max_days
    if expires - at > timedelta(days=limit):
        raise InputError(f"{where}: expires: {iso(expires)} is more than {limit} days away (the policy's "
                         f"waivers.max_days; latest {(at + timedelta(days=limit)).date()})")
    if future and expires <= at:
        raise InputError(f"{where}: expires: {iso(expires)} has already passed")
    return Waiver(finding, host, reason, owner, expires, source, ref)


def load_file(path: Path | str, policy: Policy, at: datetime | None = None) -> list[Waiver]:
    """The waivers of a YAML file (``waivers:`` and a list of entries), every entry checked.
    An entry already expired is kept (listed as expired, matching nothing)."""
    path = Path(path).expanduser()
    at = at or now()
    label = f"--waivers {path}"
    data = inputs.load_yaml(path, "waivers file")
    if data is None:
        return []
    if not isinstance(data, dict) or set(data) - {"waivers"}:
        extra = sorted(set(data) - {"waivers"}) if isinstance(data, dict) else []
        what = f"{extra[0]}: unknown key" if extra else "must be a mapping with the key waivers"
        raise InputError(f"{label}: {what} (expected 'waivers:' and a list of waivers)")
    entries = data.get("waivers") or []
    if not isinstance(entries, list):
        raise InputError(f"{label}: waivers: must be a list of waivers")
    out = []
    known = known_ids()
    for n, entry in enumerate(entries, 1):
        name = entry.get("id") if isinstance(entry, dict) else None
        where = f"{label}: entry {n}" + (f" ({name})" if isinstance(name, str) else "")
        if not isinstance(entry, dict):
            raise InputError(f"{where}: must be a mapping of {', '.join(_FILE_KEYS)}")
        unknown = sorted(set(entry) - set(_FILE_KEYS))
        if unknown:
            raise InputError(f"{where}: {unknown[0]}: unknown key (expected {', '.join(_FILE_KEYS)})")
        out.append(check(entry, where, policy, at, "file", f"{path}#{n}", known=known))
    return out


def from_history(history: Any) -> list[Waiver]:
    """Every waiver history holds, revoked ones too."""
    out = []
    for row in history.waivers():
        try:
            expires = parse_time(row["expires"], "history")
        except InputError:
            continue  # a row this fleetcare did not write; it waives nothing
        out.append(Waiver(row["finding"], row["host"] or "*", row["reason"], row["owner"], expires,
                          "history", str(row["id"]), row["created"], row["revoked"]))
    return out


# -- applying ----------------------------------------------------------------------------------
class Matcher:
    """The waivers that apply to (finding ID, host), found without trying every waiver on every
    finding: exact IDs by dictionary, patterns once per distinct ID, exact hosts by dictionary."""

    def __init__(self, waivers: Iterable[Waiver]) -> None:
        self.exact: dict[tuple[str, str], list[Waiver]] = {}
        self.by_id: dict[str, list[Waiver]] = {}
        self.patterns: list[Waiver] = []
        self._for_id: dict[str, list[Waiver]] = {}
        self._host_ok: dict[tuple[str, str], bool] = {}  # (host pattern, host) -> matches
        for w in waivers:
            if _GLOB & set(w.finding):
                self.patterns.append(w)
            elif _GLOB & set(w.host):
                self.by_id.setdefault(w.finding, []).append(w)
            else:
                self.exact.setdefault((w.finding, w.host), []).append(w)

    def best(self, fid: str, host: str) -> Waiver | None:
        """The waiver for this finding on this host that lasts longest (history's before a file's)."""
        cands = self._for_id.get(fid)
        if cands is None:
            cands = self._for_id[fid] = self.by_id.get(fid, []) + [
                w for w in self.patterns if fnmatch.fnmatchcase(fid, w.finding)]
        hits = list(self.exact.get((fid, host), ()))
        ok = self._host_ok
        for w in cands:
            key = (w.host, host)
            hit = ok.get(key)
            if hit is None:
                hit = ok[key] = fnmatch.fnmatchcase(host, w.host)
            if hit:
                hits.append(w)
        if not hits:
            return None
        if len(hits) == 1:
            return hits[0]
        return max(hits, key=lambda w: (w.expires, w.source == "history", w.ref))


def apply(run: Run, waivers: Iterable[Waiver], policy: Policy) -> Run:
    """Waive the failing findings of ``run`` that a waiver active at the run's start covers, and
    set ``run.waivers``: the waivers used (expiring soon marked) and the waivers that lapsed
    (expired or revoked) while a finding they covered still fails."""
    at = parse_time(run.started, "run start")
    warn = policy.waivers.warn_days
    waivers = list(waivers)
    live = Matcher(w for w in waivers if w.active(at))
    lapsed = Matcher(w for w in waivers if not w.active(at))
    any_lapsed = bool(lapsed.exact or lapsed.by_id or lapsed.patterns)
    used: dict[tuple[str, str], list[Any]] = {}  # (source, ref) -> [waiver dict, findings]
    gone: dict[tuple[str, str], list[Any]] = {}
    waived = newly = 0
    for f in run.findings():
        if f.status == "waived":
            waived += 1
            if f.waiver:  # waived when it ran (a run loaded from history)
                key = (str(f.waiver.get("source")), str(f.waiver.get("ref")))
                used.setdefault(key, [f.waiver, 0])[1] += 1
            continue
        if f.status != "fail":
            continue
        w = live.best(f.id, f.host)
        if w is None:
            old = lapsed.best(f.id, f.host) if any_lapsed else None
            if old is not None:
                gone.setdefault((old.source, old.ref), [{**old.to_dict(), "state": old.state(at, warn)}, 0])[1] += 1
            continue
        f.status, f.waiver = "waived", w.to_dict()
        waived += 1
        newly += 1
        used.setdefault((w.source, w.ref), [f.waiver, 0])[1] += 1
    run._failing -= newly  # the progress tally counts failing findings
    rows = []
    for d, count in used.values():
        try:
            left = (parse_time(d.get("expires"), "waiver") - at).total_seconds() / 86400
        except InputError:
            left = 0.0
        rows.append({**d, "findings": count, "state": "expiring" if left <= warn else "active",
                     "days_left": round(left, 1)})
    rows.sort(key=lambda r: (str(r.get("expires")), str(r.get("ref"))))
    lapsed_rows = [{**d, "findings": count} for d, count in
                   sorted(gone.values(), key=lambda e: (e[0]["expires"], e[0]["ref"]))]
    run.waivers = {"as_of": iso(at), "warn_days": warn, "waived": waived,
                   "expiring": sum(1 for r in rows if r["state"] == "expiring"),
                   "used": rows, "lapsed": lapsed_rows}
    return run


def listing(waivers: Iterable[Waiver], at: datetime, warn_days: int) -> list[dict[str, Any]]:
    """Rows for ``fleetcare waivers``: expiring soon first, then active, expired, revoked."""
    rows = [{**w.to_dict(), "state": w.state(at, warn_days), "created": w.created, "revoked": w.revoked}
            for w in waivers]
    order = {"expiring": 0, "active": 1, "expired": 2, "revoked": 3}
    rows.sort(key=lambda r: (order[r["state"]], r["expires"], r["ref"]))
    return rows

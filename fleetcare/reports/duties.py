"""What the human-readable reports show of waivers and service levels, computed once from a Run
(``run.waivers`` from fleetcare.waivers, ``run.service_levels`` from fleetcare.service_levels).
Kept apart from :mod:`fleetcare.reports.view` so each report format only loops over these rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fleetcare.results import Run, severity_rank


@dataclass(slots=True)
class Duties:
    as_of: str = ""
    policy: dict[str, dict[str, str]] = field(default_factory=dict)
    policy_source: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    due: list[dict[str, Any]] = field(default_factory=list)  # soonest due first, each with "mark"
    waived: int = 0
    warn_days: int = 0
    used: list[dict[str, Any]] = field(default_factory=list)
    expiring: list[dict[str, Any]] = field(default_factory=list)
    lapsed: list[dict[str, Any]] = field(default_factory=list)
    waived_rows: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)  # severity, id, host

    @property
    def shown(self) -> bool:
        return bool(self.due or self.waived or self.lapsed)


def mark(entry: dict[str, Any]) -> str:
    """overdue, respond late or due: how a finding stands against its service level."""
    if entry["overdue"]:
        return "overdue"
    return "respond late" if entry["respond_late"] else "due"


def duties(run: Run, rows: int) -> Duties:
    """At most ``rows`` due findings and waived findings (report.json has them all)."""
    levels = run.service_levels or {}
    section = run.waivers or {}
    out = Duties(as_of=levels.get("as_of") or section.get("as_of") or "", policy=levels.get("policy") or {},
                 policy_source=levels.get("source") or "", counts=dict(levels.get("counts") or {}),
                 due=[{**e, "mark": mark(e)} for e in (levels.get("findings") or ())[:rows]],
                 waived=section.get("waived", 0), warn_days=section.get("warn_days", 0),
                 used=list(section.get("used") or ()), lapsed=list(section.get("lapsed") or ()))
    out.expiring = [w for w in out.used if w.get("state") == "expiring"]
    if out.waived:
        waived = [f for f in run.findings() if f.status == "waived"]
        waived.sort(key=lambda f: (severity_rank(f.severity), f.id, f.host))
        out.waived_rows = [(f.severity, f.id, f.host, f.waiver or _from_role(f)) for f in waived[:rows]]
    return out


def _from_role(f: Any) -> dict[str, Any]:
    """A finding its role reported waived itself (no fleetcare waiver): what its evidence says."""
    why = f.evidence.get("reason") or f.evidence.get("waiver") or ""
    return {"finding": f.id, "host": f.host, "reason": str(why), "owner": "-", "expires": "-",
            "source": "role", "ref": f.role}

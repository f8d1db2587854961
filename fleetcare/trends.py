"""Trends and capacity forecasts from history, on the controller.

The health inspection records, per host, ``disk_avail_bytes``, ``disk_size_bytes`` and
``disk_used_pct`` for every filesystem (label ``mount``), ``mem_used_pct`` and ``load5``
(``plugins/modules/health_inspect.py``). For a run, :func:`annotate` reads those series from the
earlier runs of the same command within :attr:`Settings.window_days` (at most
:attr:`Settings.max_points` runs, spread over the window) plus the run itself, and sets
``run.trends`` (the report's optional ``trends`` key, report schema 3):

- per host and filesystem, a least-squares line through the free space over time gives the days
  until the free space reaches 0 (the space df calls available, reserved blocks excluded). Only
  with at least ``min_points`` points over ``min_span_days`` and a fit of R^2 at least ``min_r2``;
  otherwise the entry says why (``"3 points, need 4"``, ``"no steady growth, R^2 0.20"``). Only
  the points since the filesystem last changed size count: a grown volume starts a new series.
- per host, the slope per day and the last value of memory use and load.

:func:`judge` (``app.run_job(judge=...)``, before the reports) also adds one ``HLTH-CAP-001``
finding per inspected host: failing when a filesystem will be full within the host's threshold
(``health_capacity_days``, default 14 days, sent back by the health module), passing when every
forecast is further away or not filling, not applicable while no filesystem can be forecast yet.
Reports read ``run.trends`` only; SQL stays in :mod:`fleetcare.history`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from fleetcare.collection import health_checks
from fleetcare.history import History, HistoryError
from fleetcare.results import CONTRACT_VERSION, Run

ROLE = "health"
CHECK_ID = "HLTH-CAP-001"
DISK_METRICS = ("disk_avail_bytes", "disk_size_bytes", "disk_used_pct")
# resource trends: metric -> unit as the report states it
RESOURCE_METRICS = {"mem_used_pct": "percent", "load5": ""}
DAY = 86400.0
RESIZE_TOLERANCE = 0.005  # a size change beyond 0.5 % is a grown (or shrunk) filesystem


@dataclass(frozen=True)
class Settings:
    threshold_days: float = 14.0  # a filesystem full within this many days fails HLTH-CAP-001
    min_points: int = 4
    min_span_days: float = 1.0
    min_r2: float = 0.6
    window_days: float = 30.0
    max_points: int = 60

    def to_dict(self) -> dict[str, Any]:
        return {"threshold_days": self.threshold_days, "min_points": self.min_points,
                "min_span_days": self.min_span_days, "min_r2": self.min_r2,
                "window_days": self.window_days, "max_points": self.max_points}


@lru_cache(maxsize=4096)
def _epoch(iso: str) -> float:
    # a few dozen distinct run starts, parsed for thousands of series
    return datetime.fromisoformat(iso).timestamp()


def fit(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least squares ``y = slope * x + intercept``: (slope, intercept, R^2). A flat series has R^2 1
    when it is exactly flat (a perfect, if uninteresting, fit)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    syy = sum((y - my) ** 2 for y in ys)
    slope = sxy / sxx if sxx else 0.0
    intercept = my - slope * mx
    r2 = 1.0 if syy == 0 else (sxy * sxy) / (sxx * syy) if sxx else 0.0
    return slope, intercept, r2


def _enough(xs: list[float], settings: Settings) -> str | None:
    """Why the points cannot carry a fit, or None when they can."""
    if len(xs) < settings.min_points:
        return f"{len(xs)} point{'s' if len(xs) != 1 else ''}, need {settings.min_points}"
    span = (xs[-1] - xs[0])
    if span < settings.min_span_days:
        return f"{len(xs)} points over {span:.2f} days, need {settings.min_span_days:g}"
    return None


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def forecast_filesystem(host: str, mount: str, points: list[tuple[str, float, float, float]],
                        settings: Settings) -> dict[str, Any]:
    """The forecast of one filesystem from (run start, avail bytes, size bytes, used pct), oldest first."""
    size = points[-1][2]
    start = 0
    for i in range(len(points) - 1, -1, -1):
        if size and abs(points[i][2] - size) > RESIZE_TOLERANCE * size:
            start = i + 1
            break
    kept = points[start:]
    t0 = _epoch(kept[0][0])
    xs = [(_epoch(p[0]) - t0) / DAY for p in kept]
    avail = [p[1] for p in kept]
    entry: dict[str, Any] = {
        "host": host, "mount": mount, "points": len(kept), "span_days": _round(xs[-1] - xs[0], 3),
        "size_bytes": size, "avail_bytes": avail[-1], "used_pct": _round(points[-1][3], 2),
        "slope_bytes_per_day": None, "r2": None, "days_until_full": None, "full_at": None,
        "resized": start > 0, "status": "insufficient", "reason": None,
        "samples": [[p[0], _round(p[3], 2)] for p in points],
    }
    reason = _enough(xs, settings)
    if reason:
        entry["reason"] = reason + (" since the filesystem changed size" if start else "")
        return entry
    slope, intercept, r2 = fit(xs, avail)
    entry["slope_bytes_per_day"], entry["r2"] = _round(slope, 1), _round(r2)
    if slope >= 0:
        entry["status"], entry["reason"] = "not_filling", "free space is not falling"
        return entry
    if r2 < settings.min_r2:
        entry["status"], entry["reason"] = "unsteady", f"no steady growth, R^2 {r2:.2f} (need {settings.min_r2:g})"
        return entry
    days = max(0.0, -intercept / slope - xs[-1])
    entry["status"], entry["days_until_full"] = "forecast", _round(days, 2)
    entry["full_at"] = (datetime.fromisoformat(kept[-1][0]) + timedelta(days=days)).isoformat(timespec="seconds")
    return entry


def resource_trend(host: str, name: str, points: list[tuple[str, float]], settings: Settings) -> dict[str, Any]:
    t0 = _epoch(points[0][0])
    xs = [(_epoch(t) - t0) / DAY for t, _ in points]
    ys = [v for _, v in points]
    entry: dict[str, Any] = {"host": host, "metric": name, "unit": RESOURCE_METRICS[name], "points": len(points),
                             "span_days": _round(xs[-1] - xs[0], 3), "last": _round(ys[-1]),
                             "slope_per_day": None, "r2": None, "reason": _enough(xs, settings),
                             "samples": [[t, _round(v)] for t, v in points]}
    if entry["reason"] is None:
        slope, _, r2 = fit(xs, ys)
        entry["slope_per_day"], entry["r2"] = _round(slope), _round(r2)
    return entry


def _pick(runs: list[tuple[str, str]], count: int) -> list[tuple[str, str]]:
    """At most ``count`` runs spread evenly over ``runs`` (oldest first), the newest always kept."""
    if len(runs) <= count:
        return runs
    if count <= 1:
        return runs[-1:] if count == 1 else []
    step = (len(runs) - 1) / (count - 1)
    return [runs[round(i * step)] for i in range(count)]


def collect(run: Run, history: History, settings: Settings) -> dict[str, Any]:
    """The ``trends`` of ``run``: its own metrics and those of the earlier runs of its command."""
    since = (datetime.fromisoformat(run.started) - timedelta(days=settings.window_days)).isoformat(timespec="seconds")
    earlier = _pick(history.trend_runs(run.command, run.started, since, exclude=run.id), settings.max_points - 1)
    started = dict(earlier)
    names = (*DISK_METRICS, *RESOURCE_METRICS)
    wanted = set(run.hosts)
    disks: dict[tuple[str, str], dict[str, dict[str, float]]] = {}  # (host, mount) -> run start -> name -> value
    resources: dict[tuple[str, str], dict[str, float]] = {}

    def take(when: str, host: str, name: str, value: float, labels: dict[str, str]) -> None:
        if name in RESOURCE_METRICS:
            resources.setdefault((host, name), {})[when] = value
        elif "mount" in labels:
            disks.setdefault((host, labels["mount"]), {}).setdefault(when, {})[name] = value

    parsed: dict[str, dict[str, str]] = {}  # the few distinct label sets ({"mount": "/var"}), parsed once
    for run_id, host, name, value, labels in history.metric_values([r for r, _ in earlier], names):
        if host in wanted:
            found = parsed.get(labels)
            if found is None:
                found = parsed[labels] = json.loads(labels)
            take(started[run_id], host, name, value, found)
    for m in run.metrics():
        if m.name in names:
            take(run.started, m.host, m.name, m.value, m.labels)
    current = {(m.host, m.labels.get("mount")) for m in run.metrics() if m.name == "disk_avail_bytes"}
    filesystems = []
    for (host, mount), by_time in sorted(disks.items()):
        if (host, mount) not in current:
            continue  # a filesystem this run did not see is not forecast
        points = [(t, v["disk_avail_bytes"], v.get("disk_size_bytes", 0.0), v.get("disk_used_pct", 0.0))
                  for t, v in sorted(by_time.items(), key=lambda kv: _epoch(kv[0])) if "disk_avail_bytes" in v]
        filesystems.append(forecast_filesystem(host, mount, points, settings))
    hosts_now = {(m.host, m.name) for m in run.metrics() if m.name in RESOURCE_METRICS}
    trends = [resource_trend(host, name, sorted(by_time.items(), key=lambda kv: _epoch(kv[0])), settings)
              for (host, name), by_time in sorted(resources.items()) if (host, name) in hosts_now]
    return {"settings": settings.to_dict(), "runs": len(earlier) + 1, "filesystems": filesystems,
            "resources": trends}


def annotate(run: Run, history: History, settings: Settings | None = None) -> Run:
    """Set ``run.trends`` from history (nothing when the run carries no health metrics)."""
    if any(m.name in DISK_METRICS or m.name in RESOURCE_METRICS for m in run.metrics()):
        run.trends = collect(run, history, settings or Settings())
    return run


def threshold_of(run: Run, host: str, default: float) -> float:
    """The host's ``health_capacity_days`` as its health module sent it back, else ``default``."""
    value = (run.hosts[host].data.get(ROLE) or {}).get("capacity_days")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0 else default


def capacity_findings(run: Run, settings: Settings) -> dict[str, dict[str, Any]]:
    """host -> the HLTH-CAP-001 finding (without host and role) for every host with filesystems."""
    record = health_checks.CONTROLLER_BY_ID[CHECK_ID]
    per_host: dict[str, list[dict[str, Any]]] = {}
    for fs in (run.trends or {}).get("filesystems", ()):
        per_host.setdefault(fs["host"], []).append(fs)
    out = {}
    for host, entries in per_host.items():
        threshold = threshold_of(run, host, settings.threshold_days)
        forecasts = {e["mount"]: e["days_until_full"] for e in entries if e["status"] == "forecast"}
        judged = [e for e in entries if e["status"] in ("forecast", "not_filling")]
        filling = sorted((e for e in entries if e["status"] == "forecast" and e["days_until_full"] <= threshold),
                         key=lambda e: (e["days_until_full"], e["mount"]))
        evidence: dict[str, Any] = {"threshold_days": threshold, "forecasts": forecasts}
        if filling:
            worst = filling[0]
            status = "fail"
            evidence.update(mount=worst["mount"], days_until_full=worst["days_until_full"], full_at=worst["full_at"],
                            r2=worst["r2"], points=worst["points"],
                            filling={e["mount"]: e["days_until_full"] for e in filling})
        elif judged:
            status = "pass"
        else:
            status = "not_applicable"
            evidence["reason"] = "; ".join(f"{e['mount']}: {e['reason']}" for e in entries)
        out[host] = {"id": CHECK_ID, "title": record["title"], "severity": record["severity"], "status": status,
                     "evidence": evidence, "remediation": record["remediation"],
                     "references": list(record["references"])}
    return out


def judge(history: History, run: Run, settings: Settings | None = None) -> None:
    """Trends of ``run`` and its HLTH-CAP-001 findings, added as the health role's."""
    settings = settings or Settings()
    try:
        annotate(run, history, settings)
    except HistoryError:
        run.trends = None  # a history that fails here costs the trends, not the run
        return
    for host, finding in capacity_findings(run, settings).items():
        if run.hosts[host].status in ("unreachable", "failed"):
            continue
        run.add_payload(host, {"contract": CONTRACT_VERSION, "role": ROLE, "findings": [finding]})

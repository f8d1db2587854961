"""Prometheus textfile for node_exporter's textfile collector: ``fleetcare_<command>.prom``.

One file per command kind, replaced whole by each run of that command (temporary file and
rename in the same directory, so the collector never reads half a file). Names follow the
Prometheus conventions: the ``fleetcare_`` prefix, base units (``_seconds``, ``_bytes``,
``_ratio`` for a percentage), and labels whose values are bounded (host, role, severity,
finding ID, status, a metric's own labels such as a mount point); evidence never becomes a
label. Every series carries ``command``, so the files of several commands can be served by one
collector without clashing.

``fleetcare_last_complete_run_timestamp_seconds`` is carried over from the file it replaces
when this run did not complete, so a stale-run alert keeps counting from the last run that did.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from fleetcare.reports.junit import duration
from fleetcare.reports.view import Memo
from fleetcare.results import RUN_STATUSES, SEVERITIES, Run, bulk

PREFIX = "fleetcare_"
# worst first: one series per (host, finding ID) shows the worst status among duplicates
_STATUS_ORDER = ("fail", "error", "waived", "not_applicable", "pass")
_RANK = {status: rank for rank, status in enumerate(_STATUS_ORDER)}
# a host metric's unit -> (name suffix, factor to the base unit); the unit's word leaves the name
_UNITS = {"percent": ("_ratio", 0.01, "pct"), "bytes": ("_bytes", 1.0, "bytes"),
          "seconds": ("_seconds", 1.0, "seconds"), "hours": ("_seconds", 3600.0, "hours"),
          "days": ("_seconds", 86400.0, "days")}
_NAME = re.compile(r"[^a-zA-Z0-9_]")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_COMPLETE = re.compile(r"^fleetcare_last_complete_run_timestamp_seconds\{[^}]*\} (\S+)$", re.M)


def filename(command: str) -> str:
    return f"{PREFIX}{_NAME.sub('_', command)}.prom"


def _value(value: object) -> str:
    # the exposition format's label value escaping
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, object]]) -> str:
    return "{" + ",".join(f'{k}="{_value(v)}"' for k, v in pairs) + "}"


def _number(value: float) -> str:
    return repr(float(value)) if value != int(value) else str(int(value))


def _epoch(iso: str | None) -> float | None:
    try:
        return datetime.fromisoformat(iso or "").timestamp()
    except ValueError:
        return None


class _Families:
    """Series grouped by metric name, each family written once with its HELP and TYPE."""

    def __init__(self) -> None:
        self.help: dict[str, str] = {}
        self.series: dict[str, dict[str, str]] = {}

    def add(self, name: str, help_text: str, labels: Iterable[tuple[str, object]], value: float) -> None:
        # the same labels twice (a mount listed twice): the last value wins, one series
        self.family(name, help_text)[_labels(labels)] = _number(value)

    def family(self, name: str, help_text: str) -> dict[str, str]:
        """The series of family ``name`` (created here, in the order families first appear), labels
        written as in the file (``{k="v",...}``) -> value as written; for putting many at once."""
        self.help.setdefault(name, help_text)
        return self.series.setdefault(name, {})

    def text(self) -> str:
        out = []
        for name, series in self.series.items():
            out.append(f"# HELP {name} {self.help[name]}")
            # a host's own counter (net_errors_total: since boot) stays one; the rest are gauges
            out.append(f"# TYPE {name} {'counter' if name.endswith('_total') else 'gauge'}")
            out.extend(f"{name}{labels} {value}" for labels, value in series.items())
        return "\n".join(out) + "\n"


def host_metric_name(name: str, unit: str) -> tuple[str, float]:
    """``fleetcare_host_<name>`` in base units: disk_used_pct (percent) -> disk_used_ratio, x0.01."""
    suffix, factor, word = _UNITS.get(unit, ("", 1.0, ""))
    parts = [p for p in _NAME.sub("_", name).split("_") if p and p != word]
    base = "_".join(parts) or "value"
    if suffix and not base.endswith(suffix):
        base += suffix
    return f"{PREFIX}host_{base}", factor


def render(run: Run, previous: str = "") -> str:
    """The textfile of ``run``; ``previous`` is the file it replaces (for the last complete run)."""
    fam = _Families()
    cmd = ("command", run.command)
    finished = _epoch(run.finished) or _epoch(run.started) or 0.0
    fam.add(f"{PREFIX}last_run_timestamp_seconds", "When the last run of this command finished (Unix time).",
            [cmd], finished)
    fam.add(f"{PREFIX}last_run_duration_seconds", "How long the last run of this command took.",
            [cmd], duration(run))
    fam.add(f"{PREFIX}last_run_exit_code", "The exit code of the last run of this command.",
            [cmd], run.exit_code if run.exit_code is not None else -1)
    for status in RUN_STATUSES:
        fam.add(f"{PREFIX}last_run_status", "1 for the status of the last run of this command.",
                [cmd, ("status", status)], 1 if run.status == status else 0)
    complete = finished if run.status == "complete" else None
    if complete is None:
        found = _COMPLETE.search(previous)
        complete = float(found.group(1)) if found else None
    if complete is not None:
        fam.add(f"{PREFIX}last_complete_run_timestamp_seconds",
                "When the last run of this command that completed finished (Unix time).", [cmd], complete)
    down = {h.name for h in run.hosts.values() if h.status in ("unreachable", "failed", "pending")}
    fam.add(f"{PREFIX}hosts", "Hosts in the last run of this command.", [cmd], len(run.hosts))
    fam.add(f"{PREFIX}hosts_unreachable", "Hosts of the last run that were unreachable or failed.", [cmd], len(down))

    # the per-finding series are most of the file (a series per host and check): their label
    # texts are put together from values escaped once per render, not once per series
    value = Memo(_value)
    failing_name, failing_help = f"{PREFIX}findings_failing", "Failing findings per host, role and severity."
    status_name = f"{PREFIX}check_status"
    status_help = "1 per host and check (or control), labelled with its status."
    status_labels: dict[tuple[str, str, str, str], str] = {}  # (id, role, severity, status) -> their labels
    severities = [(severity, value(severity)) for severity in SEVERITIES]
    metric_names: dict[tuple[str, str], tuple[str, float]] = {}
    for host in run.hosts.values():
        h = ("host", host.name)
        fam.add(f"{PREFIX}host_up", "1 when the host answered the last run, 0 when it was unreachable or failed.",
                [cmd, h], 0 if host.name in down else 1)
        failing: dict[str, dict[str, int]] = {}
        worst: dict[str, tuple[int, str, str, str]] = {}
        for f in host.findings:
            role, status = f.role, f.status
            per_role = failing.get(role)
            if per_role is None:
                per_role = failing[role] = dict.fromkeys(SEVERITIES, 0)
            if status == "fail" and f.severity in per_role:
                per_role[f.severity] += 1
            rank = _RANK.get(status)
            if rank is None:
                rank = _STATUS_ORDER.index(status)  # ValueError, as for any status fleetcare does not know
            seen = worst.get(f.id)
            if seen is None or rank < seen[0]:
                worst[f.id] = (rank, status, f.severity, role)
        head = f'{{command="{value(run.command)}",host="{value(host.name)}"'
        series = fam.family(failing_name, failing_help) if failing else None
        for role, counts in failing.items():
            role_labels = f'{head},role="{value(role)}",severity="'
            for severity, escaped in severities:
                series[f'{role_labels}{escaped}"}}'] = str(counts[severity])
        series = fam.family(status_name, status_help) if worst else None
        for fid, (_, status, severity, role) in worst.items():
            key = (fid, role, severity, status)
            tail = status_labels.get(key)
            if tail is None:
                tail = status_labels[key] = (f',id="{value(fid)}",role="{value(role)}",severity="{value(severity)}",'
                                             f'status="{value(status)}"}}')
            series[head + tail] = "1"
        for m in host.metrics:
            named = metric_names.get((m.name, m.unit))
            if named is None:
                named = metric_names[(m.name, m.unit)] = host_metric_name(m.name, m.unit)
            name, factor = named
            extra = [(k, v) for k, v in sorted(m.labels.items()) if _LABEL.match(k) and k not in ("command", "host")]
            unit = f" ({m.unit})" if m.unit else ""
            fam.add(name, f"The {m.name}{unit} the last run measured on the host, in base units.",
                    [cmd, h, *extra], m.value * factor)
    _role_series(fam, run, cmd)
    return fam.text()


# -- what the roles' results mean for alerting (patching, backup, drift, capacity) ---------------
def _drift_categories() -> dict[str, str]:
    """finding ID -> drift category (DRFT-FILE-001 -> files), from the drift role's check data."""
    from fleetcare.collection import module_utils

    return {fid: category for category, fid in module_utils("drift_checks").CATEGORY_IDS.items()}


def _role_series(fam: _Families, run: Run, cmd: tuple[str, str]) -> None:
    """Series named for what they mean rather than for the metric a module sent: pending updates
    and since when security updates wait, reboot required, last successful backup per set and the
    RPO it is held to, drift items per category, and when each filesystem is forecast full."""
    at = _epoch(run.started) or 0.0
    since = {(e["id"], e["host"]): e["first_seen"] for e in (run.comparison or {}).get("findings", ())
             if e["state"] != "resolved"}
    drift: dict[str, str] | None = None
    for host in run.hosts.values():
        h = ("host", host.name)
        for m in host.metrics:
            if m.name in ("patching_pending_security", "patching_pending_other"):
                fam.add(f"{PREFIX}patching_pending_updates", "Updates pending on the host, security or other "
                        "(held packages not counted).", [cmd, h, ("kind", m.name.rsplit("_", 1)[1])], m.value)
            elif m.name == "patching_reboot_required":
                fam.add(f"{PREFIX}patching_reboot_required", "1 when the host needs a reboot for updates to take "
                        "effect.", [cmd, h], m.value)
            elif m.name == "backup_last_success_age_hours" and m.labels.get("set"):
                fam.add(f"{PREFIX}backup_last_success_timestamp_seconds", "When the backup set last succeeded "
                        "(Unix time, from its age when the run started).", [cmd, h, ("set", m.labels["set"])],
                        round(at - m.value * 3600.0, 3))
        for f in host.findings:
            if f.id == "PTCH-SEC-001" and f.status == "fail":
                fam.add(f"{PREFIX}patching_security_pending_since_timestamp_seconds",
                        "Since when security updates have been pending on the host (Unix time: the first run "
                        "of the current stretch in which PTCH-SEC-001 failed).", [cmd, h],
                        _epoch(since.get((f.id, host.name))) or at)
            elif f.id in ("BKUP-AGE-001", "HLTH-BKUP-001") and isinstance(
                    f.evidence.get("threshold_hours"), int | float):
                fam.add(f"{PREFIX}backup_rpo_seconds", "The recovery point objective the host's backups are "
                        "held to.", [cmd, h], f.evidence["threshold_hours"] * 3600.0)
            elif f.role == "drift" and f.id.startswith("DRFT-"):
                drift = drift if drift is not None else _drift_categories()
                category = drift.get(f.id)
                if category:
                    key = _labels([cmd, h, ("category", category)])
                    series = fam.series.setdefault(f"{PREFIX}drift_items", {})
                    fam.help.setdefault(f"{PREFIX}drift_items", "Items drifted from the host's approved "
                                        "baseline, per category.")
                    series[key] = _number(float(series.get(key, "0")) + (1 if f.status == "fail" else 0))
    for fs in (run.trends or {}).get("filesystems", ()):
        if fs["status"] == "forecast" and fs["full_at"]:
            fam.add(f"{PREFIX}filesystem_full_timestamp_seconds", "When the filesystem is forecast to be full "
                    "(Unix time; least squares over the recent runs, see fleetcare explain HLTH-CAP-001).",
                    [cmd, ("host", fs["host"]), ("mount", fs["mount"])], _epoch(fs["full_at"]) or 0.0)
    for host in run.hosts.values():
        for f in host.findings:
            if f.id == "HLTH-CAP-001" and isinstance(f.evidence.get("threshold_days"), int | float):
                fam.add(f"{PREFIX}capacity_threshold_seconds", "How close a forecast full filesystem must be "
                        "to fail HLTH-CAP-001 (health_capacity_days).", [cmd, ("host", host.name)],
                        f.evidence["threshold_days"] * 86400.0)


def write(run: Run, directory: Path) -> Path:
    """Replace ``directory/fleetcare_<command>.prom`` atomically. A new file is 0644: the
    collector usually runs as another user; an existing one keeps its mode."""
    from fleetcare.reports import replace_file

    path = Path(directory) / filename(run.command)
    try:
        previous = path.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        previous = ""
    except OSError:
        previous = ""
    with bulk():
        text = render(run, previous)
    return replace_file(path, text, new_mode=0o644)


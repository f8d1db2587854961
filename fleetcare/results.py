"""The results model: Run -> HostResult -> Finding, built from runner events.

This is the one place where results are read. ``execute.py`` hands every
ansible-runner event (a plain dict) to :meth:`Run.feed`; findings are picked
out of the ``fleetcare`` key of a module result (see
``plugins/module_utils/findings.py``) and nowhere else. History and reports
consume a finished :class:`Run`; they never look at events.

A module result can reach us two ways. Inside the runner's event, but the
runner replaces any result larger than its event size limit (``MAX_EVENT_RES``,
700,000 characters) with ``{}``; and through the findings channel: the
``fleetcare.ops.findings`` callback writes every ``fleetcare`` payload, with
its host and task uuid, as one JSON line that ``execute.py`` hands on as a
:data:`PAYLOAD_EVENT`. Both carry the task uuid, so each (host, task) is taken
exactly once, whichever comes first. A fleetcare task whose payload never
arrives, or arrives with fewer findings than the module produced, fails its
host: a missing result is never a pass.
"""

from __future__ import annotations

import contextlib
import gc
import json
import re
import secrets
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

from fleetcare import __version__, clock

RESULT_KEY = "fleetcare"  # the module-side twin lives in plugins/module_utils/findings.py
PAYLOAD_EVENT = "fleetcare_payload"  # one line of the findings channel, as execute.py hands it on
MODULE_PREFIX = "fleetcare.ops."  # a task of this collection's modules is expected to deliver a payload
CONTRACT_VERSION = 1
SCHEMA_VERSION = 3  # 2: the comparison with an earlier run (fleetcare.lifecycle); 3: the lifecycle of issue 13
SEVERITIES = ("critical", "major", "minor", "info")  # most severe first
STATUSES = ("pass", "fail", "error", "not_applicable", "waived")
HOST_STATUSES = ("pending", "ok", "unreachable", "failed")
RUN_STATUSES = ("running", "complete", "interrupted", "failed", "abandoned")

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_HOSTS = 3
EXIT_INTERRUPTED = 4
# The run finished and its reports are written, but history could not record it (say the
# database stayed locked past the busy timeout). Never 0: a scheduler must notice;
# `fleetcare import RUN_DIR` records the run afterwards.
EXIT_HISTORY = 5


@contextlib.contextmanager
def bulk() -> Iterator[None]:
    """Cyclic garbage collection held off while a run's objects are built, judged, stored or
    rendered in bulk (a run of 1,000 hosts holds some 200,000 findings): every allocation burst
    would otherwise start a collection that walks all of them and frees nothing, since they are
    alive. Collection resumes as it was afterwards (nesting is harmless); memory freed by
    reference counting is unaffected."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def severity_rank(severity: str) -> int:
    """0 for critical ... 3 for info; lower is worse."""
    return SEVERITIES.index(severity)


@dataclass(slots=True)
class Finding:
    id: str
    title: str
    severity: str
    status: str
    host: str
    role: str
    evidence: dict[str, Any] = field(default_factory=dict)
    remediation: str = ""
    references: list[str] = field(default_factory=list)
    # the waiver a waived finding ran under (fleetcare.waivers): finding, host, reason, owner,
    # expires, source, ref; None for a finding no waiver touched
    waiver: dict[str, Any] | None = None

    @property
    def failing(self) -> bool:
        """A failed check; errors and not-applicable checks are not failures
        of the host, they are reported apart and never gate the exit code."""
        return self.status == "fail"

    @property
    def open(self) -> bool:
        """A fault still there: failing, or failing under a waiver. The lifecycle follows open
        findings (a waived finding is not resolved; its first_seen carries on)."""
        return self.status in ("fail", "waived")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity,
            "status": self.status,
            "host": self.host,
            "role": self.role,
            "evidence": self.evidence,
            "remediation": self.remediation,
            "references": self.references,
            **({"waiver": self.waiver} if self.waiver is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(
            id=data["id"],
            title=data["title"],
            severity=data["severity"],
            status=data["status"],
            host=data["host"],
            role=data["role"],
            evidence=dict(data.get("evidence") or {}),
            remediation=data.get("remediation") or "",
            references=list(data.get("references") or []),
            waiver=dict(data["waiver"]) if data.get("waiver") else None,
        )


@dataclass(slots=True)
class Metric:
    host: str
    name: str
    value: float
    unit: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "name": self.name, "value": self.value,
                "unit": self.unit, "labels": self.labels}


@dataclass(slots=True)
class HostResult:
    name: str
    status: str = "pending"
    message: str = ""
    findings: list[Finding] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)  # what a run changed (or would, in check mode)
    data: dict[str, Any] = field(default_factory=dict)  # role -> extra data of its payload (drift's snapshot)

    @property
    def done(self) -> bool:
        return self.status != "pending" or bool(self.findings)


def new_run_id(now: datetime | None = None) -> str:
    now = now or clock.now().astimezone(UTC)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def utcnow() -> str:
    """Now, on the controller's one clock (FLEETCARE_NOW pins it: fleetcare.clock)."""
    return clock.now().astimezone(UTC).isoformat(timespec="seconds")


_NO_HOST = object()  # no host name equals it


class MalformedResult(ValueError):
    """A module returned a ``fleetcare`` key that breaks the contract."""


@dataclass
class Run:
    id: str
    command: str
    started: str = field(default_factory=utcnow)
    finished: str | None = None
    status: str = "running"
    exit_code: int | None = None
    fail_on: str = "major"
    fail_on_overdue: bool = False  # --fail-on-overdue: exit 1 on overdue findings only
    inventory: str | None = None
    limit: str | None = None
    fleetcare_version: str = __version__
    check: bool = False  # check mode: changes are what would have changed
    hosts: dict[str, HostResult] = field(default_factory=dict)
    # set by fleetcare.lifecycle from history before the reports are written
    comparison: dict[str, Any] | None = None
    # set by fleetcare.knowledge with the comparison: the notes that apply to its failing findings
    notes: list[dict[str, Any]] | None = None
    # set by fleetcare.waivers and fleetcare.service_levels, after the comparison
    waivers: dict[str, Any] | None = None
    service_levels: dict[str, Any] | None = None
    # set by fleetcare.trends from history before the reports are written (report key ``trends``)
    trends: dict[str, Any] | None = None
    # (host, task uuid) of payloads taken, and of fleetcare tasks still owing one (-> task name)
    _delivered: set[tuple[str, str]] = field(default_factory=set, init=False, repr=False, compare=False)
    _awaiting: dict[tuple[str, str], str] = field(default_factory=dict, init=False, repr=False, compare=False)
    # running tallies for the progress line, kept as hosts change (O(1) per event)
    _done: set[str] = field(default_factory=set, init=False, repr=False, compare=False)
    _down: set[str] = field(default_factory=set, init=False, repr=False, compare=False)
    _failing: int = field(default=0, init=False, repr=False, compare=False)

    # -- building from events -------------------------------------------------
    def host(self, name: str) -> HostResult:
        result = self.hosts.get(name)
        if result is None:
            result = self.hosts[name] = HostResult(name)
        return result

    def set_status(self, name: str, status: str, message: str = "") -> None:
        """Change a host's status; every change goes through here so the tallies hold."""
        host = self.host(name)
        host.status, host.message = status, message
        self._tally(host)

    def _tally(self, host: HostResult) -> None:
        (self._done.add if host.done else self._done.discard)(host.name)
        (self._down.add if host.status in ("unreachable", "failed") else self._down.discard)(host.name)

    def tally(self) -> tuple[int, int, int]:
        """(hosts done, hosts unreachable or failed, failing findings) so far, in O(1)."""
        return len(self._done), len(self._down), self._failing

    def feed(self, event: dict[str, Any]) -> None:
        """Apply one ansible-runner event (or one line of the findings channel).
        Unknown events are ignored."""
        kind = event.get("event")
        data = event.get("event_data") or {}
        name = data.get("host")
        if kind == "runner_on_ok" and name:
            res = data.get("res") or {}
            key = (name, str(data.get("task_uuid") or ""))
            payload = res.get(RESULT_KEY)
            if payload is not None:
                self._take(key, payload)
            elif key not in self._delivered and not res and str(
                    data.get("resolved_action") or data.get("task_action") or "").startswith(MODULE_PREFIX):
                # ansible-runner empties a result over its event size limit: the payload
                # is owed by the findings channel. (A module asked only for facts, like the
                # hardening role's container probe, or a no_log result, comes back with
                # other keys and owes nothing.)
                self._awaiting[key] = str(data.get("task") or "a fleetcare task")
            if res.get("changed"):
                self.host(name).changes.extend(_changes(data.get("task") or "task", res))
        elif kind == PAYLOAD_EVENT and name:
            self._take((name, str(data.get("task_uuid") or "")), data.get("payload"))
        elif kind == "runner_on_unreachable" and name:
            self.set_status(name, "unreachable", _message(data.get("res"), "host unreachable"))
        elif kind == "runner_on_failed" and name and not data.get("ignore_errors"):
            if self.host(name).status != "unreachable":
                task = data.get("task") or "a task"
                self.set_status(name, "failed", f"{task}: {_message(data.get('res'), 'failed')}")
        elif kind == "playbook_on_stats":
            for name in data.get("ok") or {}:
                if self.host(name).status == "pending":
                    self.set_status(name, "ok")

    def _take(self, key: tuple[str, str], payload: Any) -> None:
        """One payload per (host, task), from the event or the channel, whichever is first."""
        if key in self._delivered:
            return
        self._delivered.add(key)
        self._awaiting.pop(key, None)
        self.add_payload(key[0], payload)

    def add_payload(self, name: str, payload: dict[str, Any]) -> None:
        """Take the findings and metrics a module returned for host ``name``."""
        if not isinstance(payload, dict) or payload.get("contract") != CONTRACT_VERSION:
            raise MalformedResult(f"{name}: result key {RESULT_KEY!r} is not contract {CONTRACT_VERSION}")
        role = payload.get("role") or "unknown"
        host = self.host(name)
        raws = payload.get("findings") or ()
        for raw in raws:
            if raw.get("severity") not in SEVERITIES or raw.get("status") not in STATUSES:
                raise MalformedResult(f"{name}: finding {raw.get('id')!r} has a bad severity or status")
        found = [Finding.from_dict({**raw, "host": name, "role": raw.get("role") or role}) for raw in raws]
        host.findings.extend(found)
        if payload.get("data") is not None:  # kept for the controller's own judgement, not for reports
            host.data[role] = payload["data"]
        self._failing += sum(1 for f in found if f.failing)
        for raw in payload.get("metrics") or ():
            host.metrics.append(Metric(name, raw["name"], float(raw["value"]), raw.get("unit") or "",
                                       {k: str(v) for k, v in (raw.get("labels") or {}).items()}))
        self._tally(host)
        expected = payload.get("expected")
        if not found:
            self.set_status(name, "failed", f"the {role} module reported no checks: nothing to pass")
        elif isinstance(expected, int) and len(found) < expected:
            self.set_status(name, "failed", f"the {role} module ran {expected} checks but only "
                                            f"{len(found)} findings arrived")

    # -- reading ----------------------------------------------------------------
    def findings(self) -> Iterator[Finding]:
        for host in self.hosts.values():
            yield from host.findings

    def metrics(self) -> Iterator[Metric]:
        for host in self.hosts.values():
            yield from host.metrics

    def failing(self, at_or_above: str = "info") -> list[Finding]:
        """Failed findings at or above a severity, worst first."""
        limit = severity_rank(at_or_above)
        out = [f for f in self.findings() if f.failing and severity_rank(f.severity) <= limit]
        out.sort(key=lambda f: (severity_rank(f.severity), f.id, f.host))
        return out

    def summary(self) -> dict[str, Any]:
        host_counts = Counter(h.status for h in self.hosts.values())
        by_status: Counter[str] = Counter()
        failing: Counter[str] = Counter()
        for f in self.findings():
            by_status[f.status] += 1
            if f.failing:
                failing[f.severity] += 1
        return {
            "hosts_total": len(self.hosts),
            "hosts_ok": host_counts["ok"],
            "hosts_unreachable": host_counts["unreachable"],
            "hosts_failed": host_counts["failed"],
            "changes": sum(len(h.changes) for h in self.hosts.values()),
            "findings_by_status": {s: by_status[s] for s in STATUSES},
            "failing_by_severity": {s: failing[s] for s in SEVERITIES},
        }

    def finish(self, interrupted: bool = False) -> int:
        """Close the run: set status, finish time and the exit code."""
        self.finished = utcnow()
        self.status = "interrupted" if interrupted else "complete"
        for (name, _), task in self._awaiting.items():
            if self.host(name).status != "unreachable":
                self.set_status(name, "failed", f"{task}: the module ran but its findings never arrived "
                                                "(result dropped on the way, e.g. over the runner's event "
                                                "size limit)")
        self._awaiting.clear()
        for h in list(self.hosts.values()):
            if h.status == "ok" and not h.findings:
                # every command ends in checks: a host that answered with none is not clean
                self.set_status(h.name, "failed", "the host answered but no finding arrived from it")
        if interrupted:
            self.exit_code = EXIT_INTERRUPTED
        elif any(h.status in ("unreachable", "failed") for h in self.hosts.values()):
            self.exit_code = EXIT_HOSTS
        elif any(h.status == "pending" for h in self.hosts.values()):
            # the playbook ended without a word about a host: treat as failed
            for h in list(self.hosts.values()):
                if h.status == "pending":
                    self.set_status(h.name, "failed", "no result came back from this host")
            self.exit_code = EXIT_HOSTS
        else:
            self.exit_code = self.findings_verdict()
        return self.exit_code

    def findings_verdict(self) -> int:
        """EXIT_FINDINGS or EXIT_OK, from the findings alone: failing at or above --fail-on, or
        with --fail-on-overdue overdue findings only (waived findings count for neither)."""
        if self.fail_on_overdue:
            overdue = (self.service_levels or {}).get("counts", {}).get("overdue", 0)
            return EXIT_FINDINGS if overdue else EXIT_OK
        return EXIT_FINDINGS if self.failing(self.fail_on) else EXIT_OK

    def rejudge(self) -> None:
        """Draw the exit code again after waivers or service levels changed what counts; only a
        verdict drawn from findings changes (hosts down, an interruption or a run not finished stay)."""
        if self.exit_code in (EXIT_OK, EXIT_FINDINGS):
            self.exit_code = self.findings_verdict()

    # -- the JSON report, source of truth ---------------------------------------
    def to_report(self) -> dict[str, Any]:
        doc = self._report()
        if self.comparison is not None:
            doc["comparison"] = self.comparison
        if self.notes is not None:
            doc["notes"] = self.notes
        if self.waivers is not None:
            doc["waivers"] = self.waivers
        if self.service_levels is not None:
            doc["service_levels"] = self.service_levels
        if self.fail_on_overdue:
            doc["run"]["fail_on_overdue"] = True
        if self.trends is not None:
            doc["trends"] = self.trends
        return doc

    def _report(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "run": {
                "id": self.id,
                "command": self.command,
                "started": self.started,
                "finished": self.finished,
                "status": self.status,
                "exit_code": self.exit_code,
                "fail_on": self.fail_on,
                "inventory": self.inventory,
                "limit": self.limit,
                "check": self.check,
                "fleetcare_version": self.fleetcare_version,
            },
            "summary": self.summary(),
            "hosts": [{"name": h.name, "status": h.status, "message": h.message, "changes": h.changes}
                      for h in self.hosts.values()],
            "findings": [f.to_dict() for f in self.findings()],
            "metrics": [m.to_dict() for m in self.metrics()],
        }

    @classmethod
    def from_parts(cls, run: dict[str, Any], hosts: Iterable[dict[str, Any]],
                   findings: Iterable[Finding], metrics: Iterable[Metric]) -> Run:
        """Rebuild a run from stored parts (history, or a JSON report)."""
        out = cls(**{k: run[k] for k in (
            "id", "command", "started", "finished", "status", "exit_code", "fail_on",
            "inventory", "limit", "fleetcare_version")}, check=bool(run.get("check")),
            fail_on_overdue=bool(run.get("fail_on_overdue")))
        for h in hosts:
            out.hosts[h["name"]] = HostResult(h["name"], h["status"], h.get("message") or "",
                                              changes=list(h.get("changes") or []))
        # stored parts come host by host: the host of the one before is looked up once
        name: Any = _NO_HOST
        into: list[Any] = []
        for f in findings:
            if f.host != name:
                name, into = f.host, out.host(f.host).findings
            into.append(f)
        name = _NO_HOST
        for m in metrics:
            if m.host != name:
                name, into = m.host, out.host(m.host).metrics
            into.append(m)
        return out

    @classmethod
    def from_report(cls, report: dict[str, Any]) -> Run:
        run = cls.from_parts(
            report["run"], report["hosts"],
            (Finding.from_dict(f) for f in report["findings"]),
            (Metric(m["host"], m["name"], m["value"], m.get("unit", ""), m.get("labels") or {})
             for m in report["metrics"]))
        run.comparison = report.get("comparison")
        run.notes = report.get("notes")
        run.waivers = report.get("waivers")
        run.service_levels = report.get("service_levels")
        run.trends = report.get("trends")
        return run


def _changes(task: str, res: dict[str, Any]) -> list[str]:
    """One line per change: the task, and for loops each changed item's label
    (a control record's id when the item is one)."""
    items = res.get("results")
    if not isinstance(items, list):
        return [task]
    out = []
    for item in items:
        if isinstance(item, dict) and item.get("changed"):
            label = item.get("_ansible_item_label", item.get("item"))
            if isinstance(label, dict):
                label = label.get("id") or label.get("name") or "item"
            out.append(f"{task}: {label}")
    return out or [task]


def _message(res: Any, default: str) -> str:
    if isinstance(res, dict):
        msg = res.get("msg") or res.get("stderr") or res.get("module_stderr")
        if msg:
            return " ".join(str(msg).split())[:500]
    return default


# -- schema -----------------------------------------------------------------------
@cache
def schema(name: str = "report") -> dict[str, Any]:
    """The versioned JSON schema shipped in fleetcare/schema/."""
    text = resources.files("fleetcare").joinpath("schema", f"{name}.schema.json").read_text()
    return json.loads(text)


@cache
def _validator(name: str):
    # compiled once; a large report's findings go to _FindingCheck instead
    return _compiled(schema(name))


def _compiled(definition: dict[str, Any]):
    """fastjsonschema's validator of ``definition``, its generated code kept between runs."""
    import fastjsonschema
    from fastjsonschema.ref_resolver import RefResolver

    from fleetcare.codecache import python_code

    text = json.dumps(definition, sort_keys=True)
    # fastjsonschema writes into the definition it resolves: it gets a copy, and the key stays put
    code = python_code(f"fastjsonschema {fastjsonschema.VERSION}\n{text}",
                       lambda: fastjsonschema.compile_to_code(json.loads(text)), "<fleetcare schema validator>")
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    return namespace[RefResolver.from_schema(json.loads(text)).get_scope_name()]


class SchemaError(ValueError):
    pass


def validate(document: dict[str, Any], name: str = "report") -> None:
    """Raise SchemaError when ``document`` breaks the ``name`` schema.

    A report's findings are the bulk of it (200,000 at 1,000 hosts x 200 checks), and the compiled
    validator spends about 15-25 microseconds on each, as on each entry of the comparison and the
    service levels. So the large arrays of a document are first checked column by column
    (:class:`_Columns`: each property's values at once, each distinct text once), and the compiled
    validator checks the rest. When a column check cannot vouch for an array (it is stricter than
    the schema, never looser), the document is checked the slow way, :func:`validate_slowly`, which
    names the first problem; either way the same documents pass and the same message is raised."""
    import fastjsonschema

    try:
        if not _validate_quickly(document, name):
            _validate_slowly(document, name)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise SchemaError(f"{name} schema: {exc.message}") from None


def validate_slowly(document: dict[str, Any], name: str = "report") -> None:
    """:func:`validate` without the column checks: the compiled validator, and for a report of many
    findings :class:`_FindingCheck` on each finding in turn (the reference the fast path matches)."""
    import fastjsonschema

    try:
        _validate_slowly(document, name)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise SchemaError(f"{name} schema: {exc.message}") from None


def _validate_slowly(document: dict[str, Any], name: str) -> None:
    findings = document.get("findings") if name == "report" and isinstance(document, dict) else None
    check = _finding_check() if isinstance(findings, list) and len(findings) >= FAST_FINDINGS else None
    if check is None:
        _validator(name)(document)
        return
    _validator(name)({**document, "findings": []})
    for i, finding in enumerate(findings):
        check(finding, i)


def _validate_quickly(document: Any, name: str) -> bool:
    """True when ``document`` is valid: its large arrays pass their column checks and the rest
    passes the compiled validator (which raises, naming the first problem, as the slow way would:
    the arrays it did not see are valid). False when a column check could not vouch for an array."""
    if not isinstance(document, dict):
        return False
    slim = document
    for path, columns in _array_checks(name):
        parent = document.get(path[0]) if len(path) == 2 else document
        items = parent.get(path[-1]) if isinstance(parent, dict) else None
        if items.__class__ is not list or len(items) < FAST_FINDINGS:
            continue
        if not columns.vouch(items):
            return False
        slim = {**slim, path[0]: []} if len(path) == 1 else {**slim, path[0]: {**slim[path[0]], path[1]: []}}
    if slim is document:
        return False
    _validator(name)(slim)
    return True


FAST_FINDINGS = 1000  # from this many findings on, they are checked by _FindingCheck


class _FindingCheck:
    """The report schema's ``finding`` definition as plain Python checks, built from the schema
    itself (so the schema stays the one contract). It knows the keywords that definition uses
    (required, additionalProperties: false, and per property type string/object/array, minLength,
    pattern, enum, string items, and a $ref, which goes to a compiled validator); anything else
    in it makes :func:`_finding_check` return None and the whole document go to the compiled
    validator. Failures raise the compiled validator's exception, with the same kind of message."""

    _TYPES = {"string": str, "object": dict, "array": list}

    def __init__(self, root: dict[str, Any]) -> None:
        definition = root["definitions"]["finding"]
        if set(definition) - {"type", "required", "additionalProperties", "properties"} \
                or definition.get("type") != "object" or definition.get("additionalProperties") is not False:
            raise ValueError("finding definition uses keywords _FindingCheck does not know")
        self.required = tuple(definition["required"])
        self.known = frozenset(definition["properties"])
        self.props: list[tuple[str, type | None, int, Any, frozenset | None, bool, Any]] = []
        for key, spec in definition["properties"].items():
            if "$ref" in spec:
                if set(spec) != {"$ref"}:
                    raise ValueError(f"{key}: $ref beside other keywords")
                self.props.append((key, None, 0, None, None, False, _ref_validator(root, spec["$ref"])))
                continue
            if set(spec) - {"type", "minLength", "pattern", "enum", "items"}:
                raise ValueError(f"{key}: keywords _FindingCheck does not know")
            kind = self._TYPES[spec["type"]] if "type" in spec else None
            if "items" in spec and spec["items"] != {"type": "string"}:
                raise ValueError(f"{key}: items other than strings")
            self.props.append((key, kind, spec.get("minLength", 0),
                               _pattern(spec["pattern"]) if "pattern" in spec else None,
                               frozenset(spec["enum"]) if "enum" in spec else None, "items" in spec, None))

    def __call__(self, f: Any, i: int) -> None:
        from fastjsonschema import JsonSchemaValueException

        where = f"data.findings[{i}]"
        if not isinstance(f, dict):
            self._fail(f"{where} must be object", f)
        missing = [key for key in self.required if key not in f]
        if missing:
            self._fail(f"{where} must contain {missing} properties", f)
        extra = f.keys() - self.known
        if extra:
            self._fail(f"{where} must not contain {sorted(extra)} properties", f)
        for key, kind, min_length, pattern, enum, string_items, ref in self.props:
            if key not in f:
                continue
            value = f[key]
            if ref is not None:
                try:
                    ref(value)
                except JsonSchemaValueException as exc:  # its path is the sub-document's: "data..."
                    self._fail(exc.message.replace("data", f"{where}.{key}", 1), value)
                continue
            if kind is not None and not isinstance(value, kind):
                self._fail(f"{where}.{key} must be {kind.__name__}", value)
            if enum is not None and (not isinstance(value, str) or value not in enum):
                self._fail(f"{where}.{key} must be one of {sorted(enum)}", value)
            if min_length and len(value) < min_length:
                self._fail(f"{where}.{key} must be longer than or equal to {min_length} characters", value)
            if pattern is not None and not pattern.search(value):
                self._fail(f"{where}.{key} must match pattern {pattern.pattern}", value)
            if string_items and not all(isinstance(x, str) for x in value):
                self._fail(f"{where}.{key} must contain only strings", value)

    @staticmethod
    def _fail(message: str, value: Any) -> None:
        import fastjsonschema

        raise fastjsonschema.JsonSchemaValueException(message, value=value)


def _pattern(pattern: str) -> re.Pattern[str]:
    """A schema's ``pattern`` as the compiled validator reads it: an unescaped ``$`` is the end of
    the text (``\\Z``), never the place before a final newline as in Python's ``re``."""
    return re.compile(re.sub(r"(?<!\\)\$", r"\\Z", pattern))


@cache
def _finding_check() -> _FindingCheck | None:
    try:
        return _FindingCheck(schema("report"))
    except (KeyError, ValueError):
        return None


def _ref_validator(root: dict[str, Any], ref: str):
    return _compiled({key: root[key] for key in ("$schema", "$id", "definitions") if key in root} | {"$ref": ref})


# -- column checks: the large arrays of a report, a property at a time -------------------------------
_EXACT_TYPES: dict[str, tuple[type, ...]] = {
    # the Python types that are certainly of a JSON type (bool is no integer, a tuple no array here:
    # anything else is left to the compiled validator)
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,), "null": (type(None),),
    "object": (dict,), "array": (list,)}


class _Columns:
    """The schema of the items of an array of objects, applied a property at a time: the types of a
    column in one pass, each distinct text of it checked once against its enum, pattern and length.
    It only vouches (:meth:`vouch`), never explains: it is stricter than the schema (a value of a
    type it is not sure of makes it decline), and when it declines the document is checked the slow
    way. Built from the schema itself; a keyword it does not know raises ValueError at build."""

    _OBJECT = {"type", "required", "additionalProperties", "properties", "description"}
    _PROPERTY = {"type", "enum", "const", "minLength", "pattern", "minimum", "items", "$ref",
                 "additionalProperties", "description"}

    def __init__(self, root: dict[str, Any], spec: dict[str, Any]) -> None:
        spec = _resolve(root, spec)
        if set(spec) - self._OBJECT or spec.get("type") != "object":
            raise ValueError("not an object schema the column checks know")
        extra = spec.get("additionalProperties", True)
        if extra not in (True, False):
            raise ValueError("additionalProperties other than true or false")
        properties = spec.get("properties", {})
        self.required = frozenset(spec.get("required", ()))
        self.known = frozenset(properties) if extra is False else None
        self.columns: list[tuple[str, bool, Any]] = []
        for key, prop in properties.items():
            prop = _resolve(root, prop) if set(prop) == {"$ref"} else prop
            if prop.get("type") == "object" and ("properties" in prop or "required" in prop):
                # an object of known properties (a finding's waiver): its own column checks
                self.columns.append((key, key in self.required, {
                    "types": (dict,), "enum": None, "const": False, "min_length": 0, "pattern": None,
                    "minimum": None, "string_items": False, "string_values": False,
                    "nested": _Columns(root, prop)}))
                continue
            if set(prop) - self._PROPERTY or "$ref" in prop:
                raise ValueError(f"{key}: keywords the column checks do not know")
            nested = None
            kinds = prop.get("type")
            kinds = [kinds] if isinstance(kinds, str) else kinds
            types = None if kinds is None else tuple(t for k in kinds for t in _EXACT_TYPES[k])
            values = prop.get("additionalProperties")
            if values not in (None, {"type": "string"}) or prop.get("items") not in (None, {"type": "string"}):
                raise ValueError(f"{key}: items or additionalProperties other than strings")
            enum = prop.get("enum")
            if enum is not None and not all(isinstance(v, str) for v in enum):
                raise ValueError(f"{key}: an enum of other than strings")
            if "const" in prop and prop["const"] is not True:
                raise ValueError(f"{key}: a const other than true")
            self.columns.append((key, key in self.required, {
                "types": types, "enum": frozenset(enum) if enum is not None else None,
                "const": "const" in prop, "min_length": prop.get("minLength", 0),
                "pattern": _pattern(prop["pattern"]) if "pattern" in prop else None,
                "minimum": prop.get("minimum"), "string_items": "items" in prop,
                "string_values": values is not None, "nested": nested}))

    def vouch(self, items: list[Any]) -> bool:
        """True when every item is certainly valid; False when that is not certain."""
        from operator import itemgetter

        if set(map(type, items)) != {dict}:
            return False
        for shape in {frozenset(keys) for keys in set(map(tuple, items))}:  # the few key sets there are
            if not self.required <= shape or (self.known is not None and not shape <= self.known):
                return False
        for key, required, rule in self.columns:
            values = list(map(itemgetter(key), items)) if required else [i[key] for i in items if key in i]
            if values and not self._column(values, rule):
                return False
        return True

    @staticmethod
    def _column(values: list[Any], rule: dict[str, Any]) -> bool:
        from itertools import chain

        types = set(map(type, values))
        if rule["types"] is not None and not types <= set(rule["types"]):
            return False
        if rule["const"]:
            return all(v is True for v in values)
        texts = rule["enum"] is not None or rule["pattern"] is not None or rule["min_length"]
        if texts:
            if types != {str}:
                return False
            distinct = set(values)
            if rule["enum"] is not None and not distinct <= rule["enum"]:
                return False
            if rule["min_length"] and min(map(len, distinct)) < rule["min_length"]:
                return False
            pattern = rule["pattern"]
            if pattern is not None and not all(pattern.search(v) for v in distinct):
                return False
        minimum = rule["minimum"]
        if minimum is not None:
            if not types <= {int, float}:
                return False
            if any(v < minimum for v in values):
                return False
        if rule["string_items"] and (types != {list} or not set(map(type, chain.from_iterable(values))) <= {str}):
            return False
        if rule["string_values"] and (types != {dict} or not set(
                map(type, chain.from_iterable(v.values() for v in values))) <= {str}):
            return False
        nested = rule["nested"]
        return nested is None or nested.vouch(values)


def _resolve(root: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """A ``$ref`` to ``#/definitions/NAME`` resolved; any other spec as it is."""
    ref = spec.get("$ref")
    if ref is None:
        return spec
    if set(spec) != {"$ref"} or not ref.startswith("#/definitions/"):
        raise ValueError(f"{ref}: a reference the column checks do not follow")
    return root["definitions"][ref.removeprefix("#/definitions/")]


@cache
def _array_checks(name: str) -> tuple[tuple[tuple[str, ...], _Columns], ...]:
    """(path, column checks) for each array of objects the ``name`` schema holds at the top or one
    object down (a report's findings, metrics, comparison, service levels, waivers used...),
    whose only keyword is its items: emptying it changes nothing else the schema asks."""
    root = schema(name)
    found: list[tuple[tuple[str, ...], _Columns]] = []

    def consider(path: tuple[str, ...], spec: dict[str, Any]) -> None:
        if spec.get("type") != "array" or set(spec) - {"type", "items", "description"} \
                or not isinstance(spec.get("items"), dict):
            return
        # an array the column checks cannot vouch for is left to the compiled validator
        with contextlib.suppress(KeyError, ValueError):
            found.append((path, _Columns(root, spec["items"])))

    for key, spec in root.get("properties", {}).items():
        consider((key,), spec)
        if spec.get("type") == "object":
            for sub, sub_spec in spec.get("properties", {}).items():
                consider((key, sub), sub_spec)
    return tuple(found)

"""Results of a run made without the wrapper, read back as runner events.

``fleetcare import PATH`` feeds what this module reads into :meth:`fleetcare.results.Run.feed`,
the one place where results are read, exactly as a live run feeds its events. Two records of a
run are understood:

- an ansible-runner artifact directory (``artifacts/<ident>/`` with ``job_events/``), or a
  directory holding exactly one (a private data directory, a fleetcare run directory): its
  events in the order Ansible emitted them. When the artifact directory also holds
  :data:`RESULTS_FILE` (JSON lines ``{"host": NAME, "payload": {...the module's fleetcare
  key...}}``, the file the collection's ``fleetcare.ops.findings`` callback writes, so that no
  payload depends on the runner's event size limit; other keys of a line are ignored),
  payloads are taken from that file and not from the events;
- the events of an AWX (Automation Controller) job as its API gives them
  (``/api/v2/jobs/N/job_events/``: a page ``{"count", "next", "results": [...]}``, a list of
  such pages, or a plain list of events). AWX stores the events ansible-runner emits, so they
  are the runner's events with a few more fields; every page must be there (a page that
  names a ``next`` one is refused rather than read as the whole job);
- the JSON document that ``ansible-playbook`` prints with
  ``ANSIBLE_STDOUT_CALLBACK=ansible.posix.json``: each task's per-host results become the
  events the runner would have sent. (That callback does not record ``ignore_errors``, so an
  ignored failure counts as a failed host.)
- a scanner's result: a Lynis report (``lynis-report.dat``) or an OpenSCAP XCCDF result or ARF
  report, read into findings of the contract by :mod:`fleetcare.scanners` (one host, the one
  the file names).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetcare import scanners
from fleetcare.errors import InputError
from fleetcare.execute import FINDINGS_FILE, leftover_events
from fleetcare.results import PAYLOAD_EVENT, RESULT_KEY

RESULTS_FILE = FINDINGS_FILE  # what the fleetcare.ops.findings callback writes


@dataclass
class Recorded:
    events: list[dict[str, Any]]
    playbook: str  # as the run named it ("" when the record does not say)


def read(path: Path, host: str | None = None) -> Recorded:
    """The events of the run recorded at ``path``; InputError naming the path otherwise.
    ``host`` names the host of a scanner's result (only those name one host)."""
    path = path.expanduser()
    if host is not None and not host.strip():
        raise InputError("--host: empty host name")
    if path.is_file():
        scanned = scanners.sniff(path, host)
        if scanned is not None:
            return Recorded(scanned[1], "")
        if host is not None:
            raise InputError(f"{path}: --host applies to a scanner's result only (a Lynis report, an OpenSCAP result)")
        return _from_json_callback(path)
    if host is not None:
        raise InputError(f"{path}: --host applies to a scanner's result only (a Lynis report, an OpenSCAP result)")
    if not path.is_dir():
        raise InputError(f"{path}: not found")
    return _from_artifacts(_artifact_dir(path))


def _artifact_dir(path: Path) -> Path:
    if (path / "job_events").is_dir():
        return path
    found = sorted({p.parent for pattern in ("artifacts/*/job_events", "runner/artifacts/*/job_events")
                    for p in path.glob(pattern)})
    if not found:
        raise InputError(f"{path}: no ansible-runner artifacts here (expected job_events/ or artifacts/IDENT/)")
    if len(found) > 1:
        raise InputError(f"{path}: holds {len(found)} runs' artifacts; name one: {found[0]}")
    return found[0]


def _from_artifacts(artifacts: Path) -> Recorded:
    by_uuid: dict[str, dict[str, Any]] = {}
    for event in leftover_events(artifacts):  # events the runner had not processed yet
        by_uuid[str(event.get("uuid") or id(event))] = event
    for file in (artifacts / "job_events").glob("*.json"):
        if file.name.endswith("-partial.json"):
            continue
        try:
            event = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{file}: not a readable runner event ({exc})") from None
        by_uuid[str(event.get("uuid") or file.name)] = event
    events = sorted(by_uuid.values(), key=lambda e: e.get("counter", 0))
    if not events:
        raise InputError(f"{artifacts}: job_events/ holds no event")
    results = artifacts / RESULTS_FILE
    if results.is_file():
        events = _with_results_file(events, results)
    start = next((e for e in events if e.get("event") == "playbook_on_start"), {})
    return Recorded(events, str((start.get("event_data") or {}).get("playbook") or ""))


def _with_results_file(events: list[dict[str, Any]], results: Path) -> list[dict[str, Any]]:
    """The findings channel's lines as the live run hands them on (one
    :data:`~fleetcare.results.PAYLOAD_EVENT` each, before the play's stats), in place of the
    events' own copies: the run model matches each to its task's event by host and task uuid."""
    payloads = []
    for n, line in enumerate(results.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict) or "host" not in record or "payload" not in record:
            raise InputError(f"{results}: line {n}: expected {{\"host\": ..., \"payload\": {{...}}}}") from None
        payloads.append({"event": PAYLOAD_EVENT, "event_data": record})
    out = []
    for event in events:
        res = (event.get("event_data") or {}).get("res")
        if isinstance(res, dict) and RESULT_KEY in res:
            # the file holds every payload whole; an event's copy may have been cut short
            event = {**event, "event_data": {**event["event_data"], "res": {
                k: v for k, v in res.items() if k != RESULT_KEY}}}
        if event.get("event") == "playbook_on_stats":
            out += payloads
            payloads = []
        out.append(event)
    return out + payloads


def _from_json_callback(path: Path) -> Recorded:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    except ValueError as exc:
        raise InputError(f"{path}: not JSON from the ansible.posix.json callback ({exc})") from None
    awx = _awx_events(path, doc)
    if awx is not None:
        return awx
    if not isinstance(doc, dict) or not isinstance(doc.get("plays"), list):
        raise InputError(f"{path}: no 'plays' and no 'results': neither the output of the ansible.posix.json "
                         "callback nor an AWX job's events")
    events: list[dict[str, Any]] = []
    playbook = ""
    for play in doc["plays"]:
        playbook = playbook or str((play.get("play") or {}).get("path") or "").rsplit(":", 1)[0]
        for task in play.get("tasks") or ():
            name = (task.get("task") or {}).get("name") or "task"
            for host, res in (task.get("hosts") or {}).items():
                kind = ("runner_on_unreachable" if res.get("unreachable") else "runner_on_failed"
                        if res.get("failed") else "runner_on_skipped" if res.get("skipped") else "runner_on_ok")
                events.append({"event": kind, "event_data": {"host": host, "task": name, "res": res}})
    stats = doc.get("stats") or {}
    events.append({"event": "playbook_on_stats", "event_data": {
        key: {h: s[field] for h, s in stats.items() if s.get(field)}
        for key, field in (("ok", "ok"), ("dark", "unreachable"), ("failures", "failures"))}})
    return Recorded(events, playbook)


def _awx_events(path: Path, doc: Any) -> Recorded | None:
    """An AWX job's events (one page of /api/v2/jobs/N/job_events/, a list of pages, or a list
    of events); None when ``doc`` is none of those."""
    pages = doc if isinstance(doc, list) else [doc]
    if not pages or not all(isinstance(p, dict) for p in pages):
        return None
    if all("event" in p for p in pages):
        events = list(pages)
    elif all(isinstance(p.get("results"), list) for p in pages):
        if len(pages) == 1 and pages[0].get("next"):
            raise InputError(f"{path}: one page of an AWX job's events (count {pages[0].get('count')}, next "
                             f"{pages[0]['next']}): save every page, as a list of pages or with a page_size "
                             "that holds them all")
        events = [e for p in pages for e in p["results"]]
        count = pages[0].get("count")
        if isinstance(count, int) and count != len(events):
            raise InputError(f"{path}: holds {len(events)} of the job's {count} events: save every page")
    else:
        return None
    for n, event in enumerate(events):
        if not isinstance(event, dict) or not isinstance(event.get("event"), str) or not isinstance(
                event.get("event_data", {}), dict):
            raise InputError(f"{path}: event {n}: expected an object with 'event' and 'event_data'")
    if not events:
        raise InputError(f"{path}: the AWX job has no events")
    events.sort(key=lambda e: e.get("counter") or 0)
    start = next((e for e in events if e.get("event") == "playbook_on_start"), {})
    playbook = str((start.get("event_data") or {}).get("playbook") or start.get("playbook") or
                   next((e.get("playbook") for e in events if e.get("playbook")), "") or "")
    return Recorded(events, playbook)

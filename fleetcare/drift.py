"""Drift: hosts' snapshots held against their approved baselines, on the controller.

The ``drift_snapshot`` module sends each host's snapshot in its findings payload (key ``data``,
kept by :class:`~fleetcare.results.Run` in ``HostResult.data``). After the results of a run and
before its reports (``app.run_job(judge=...)``):

- :func:`take_baseline` stores each snapshot as the host's next baseline version;
- :func:`judge` compares each snapshot with the host's latest baseline and adds one finding per
  drifted item (``DRFT-FILE`` ... ``DRFT-CRON``) with before and after in its evidence, and with
  ``drift_desired`` one ``DRFT-DESIRED-001`` per hardening control failing on the host
  (:func:`desired_findings`: drift from the desired state, beside drift from the baseline), through
  the same :meth:`Run.add_payload` every module's findings take; the snapshot is kept as the
  host's last observed one, which :func:`accept` draws accepted items from.

An item is ``<category>:<key>``, e.g. ``files:/etc/ssh/sshd_config`` or ``packages:curl:amd64``.
Baselines live in the history database (tables ``drift_baselines`` and ``drift_observed``).

Unified diffs: beside its categories a snapshot may carry ``texts`` ({path: text}), the text of
small world-readable text files with secret-looking lines already redacted on the host
(``module_utils/redact.py``). The host sends only the texts the controller does not hold yet
(:func:`known_digests` is handed to the module as ``known``), so what travels on a drift run is
the text of the files that changed; a baseline keeps the text of every such file (bounded on the
host by ``drift_text_max_bytes`` per file and ``drift_text_budget`` per snapshot), and a drifted
file's finding carries a unified diff between the two (:data:`DIFF_MAX_LINES` at most).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fleetcare.collection import module_utils
from fleetcare.errors import InputError
from fleetcare.history import History
from fleetcare.results import CONTRACT_VERSION, SEVERITIES, Run

ROLE = "drift"
_checks = module_utils("drift_checks")
CHECKS = {c["id"]: c for c in _checks.CHECKS}
CATEGORY_IDS: dict[str, str] = dict(_checks.CATEGORY_IDS)


TEXTS = "texts"  # the key of a snapshot's redacted file texts: not a category
SETTINGS = "settings"  # the host's drift_severity and drift_baseline_from, as its module checked them
DESIRED: str = _checks.DESIRED  # the hardening audit's result (drift_desired): judged against the catalog
DESIRED_ID: str = _checks.DESIRED_ID
RESERVED = frozenset((TEXTS, SETTINGS, DESIRED))
DIFF_MAX_LINES = 200


def snapshot_of(run: Run, host: str) -> dict[str, Any] | None:
    return run.hosts[host].data.get(ROLE)


def categories(snapshot: dict[str, Any]) -> set[str]:
    return {c for c in snapshot if c not in RESERVED}


def flatten(snapshot: dict[str, Any]) -> dict[str, Any]:
    """{"category:key": value} of a snapshot (its texts left out)."""
    return {f"{cat}:{key}": value for cat, items in snapshot.items() if cat not in RESERVED
            for key, value in items.items()}


def judged(baseline: dict[str, Any], observed: dict[str, Any]) -> set[str]:
    """The categories compared: those both snapshots record. One the observed snapshot lacks was
    not recordable on the host this time; one the baseline lacks was not recorded when it was
    taken (an older fleetcare, or sudo installed since): neither is judged item by item."""
    return categories(baseline) & categories(observed)


def diff(baseline: dict[str, Any], observed: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(item, before, after) of every item that differs, None for absent, in the categories
    :func:`judged`."""
    before, after = flatten(baseline), flatten(observed)
    judged_ = judged(baseline, observed)
    items = sorted(k for k in set(before) | set(after)
                   if k.split(":", 1)[0] in judged_ and before.get(k) != after.get(k))
    return [(k, before.get(k), after.get(k)) for k in items]


def settings(snapshot: dict[str, Any], key: str) -> dict[str, Any]:
    return dict((snapshot.get(SETTINGS) or {}).get(key) or {})


def _finding(fid: str, status: str, evidence: dict[str, Any], severity: str | None = None) -> dict[str, Any]:
    c = CHECKS[fid]
    return {"id": fid, "title": c["title"], "severity": severity or c["severity"], "status": status,
            "evidence": evidence, "remediation": c["remediation"], "references": list(c["references"])}


def unified_diff(path: str, before: str | None, after: str | None) -> tuple[str, str]:
    """(diff, note): the unified diff of two redacted texts (None: the file is absent), at most
    :data:`DIFF_MAX_LINES` lines; the note says why there is no diff or that it was cut."""
    import difflib

    lines = list(difflib.unified_diff((before or "").splitlines(True), (after or "").splitlines(True),
                                      f"baseline{path}", f"now{path}", n=2))
    if not lines:
        return "", "the change is only in redacted lines (secrets are never shown)"
    note = ""
    if len(lines) > DIFF_MAX_LINES:
        note = f"diff cut at {DIFF_MAX_LINES} of {len(lines)} lines"
        lines = lines[:DIFF_MAX_LINES]
    return "".join(ln if ln.endswith("\n") else ln + "\n\\ No newline at end of file\n" for ln in lines), note


def _file_diff(item: str, before: Any, after: Any, base_texts: dict[str, str],
               now_texts: dict[str, str]) -> dict[str, str]:
    path = item.split(":", 1)[1]
    old, new = base_texts.get(path), now_texts.get(path)
    if (before or {}).get("sha256") == (after or {}).get("sha256"):
        return {}  # mode, owner or link changed, not the content
    if (before is not None and old is None) or (after is not None and new is None):
        return {"diff_note": "no diff: not a small world-readable text file on both sides"}
    text, note = unified_diff(path, old, new)
    return {"diff": text, **({"diff_note": note} if note else {})}


def drift_findings(baseline: dict[str, Any], observed: dict[str, Any], version: int,
                   source: str = "own") -> list[dict[str, Any]]:
    """One failing finding per drifted item, one passing finding per category without drift;
    ``source`` names the baseline (``own``, a golden host, ``group:NAME``) in the evidence."""
    out, drifted = [], set()
    base_texts, now_texts = baseline.get(TEXTS) or {}, observed.get(TEXTS) or {}
    severity = settings(observed, "severity")  # drift_severity, per category
    for item, before, after in diff(baseline, observed):
        category = item.split(":", 1)[0]
        drifted.add(category)
        change = "added" if before is None else "removed" if after is None else "changed"
        evidence = {"item": item, "change": change, "before": before, "after": after, "baseline": source,
                    "baseline_version": version}
        if category == "files":
            evidence.update(_file_diff(item, before, after, base_texts, now_texts))
        out.append(_finding(CATEGORY_IDS[category], "fail", evidence, severity.get(category)))
    for category, fid in CATEGORY_IDS.items():
        if category in observed and category not in categories(baseline):
            out.append(_finding(fid, "not_applicable", {
                "reason": f"baseline version {version} does not record {category}: take a new baseline "
                          "('fleetcare drift baseline') to judge it", "items": len(observed[category]),
                "baseline": source, "baseline_version": version}, severity.get(category)))
        elif category in observed and category not in drifted:
            out.append(_finding(fid, "pass", {"items": len(observed[category]), "baseline": source,
                                              "baseline_version": version}, severity.get(category)))
    return out


def desired_findings(audit: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Desired-state drift from a hardening audit's result (``{controls, findings}``, as a
    snapshot carries it under ``desired``): one ``DRFT-DESIRED-001`` per control that fails (item
    ``desired:<control ID>``, its title, current and desired value, its severity), an ``error``
    one per control the audit could not judge; controls that pass or do not apply give nothing.
    Without any of those, one passing finding; no audit (drift_desired off), no finding at all."""
    if audit is None:
        return []
    out = []
    for raw in audit.get("findings") or ():
        status = raw.get("status")
        if status not in ("fail", "error"):
            continue
        control, ev = str(raw.get("id")), dict(raw.get("evidence") or {})
        evidence: dict[str, Any] = {"item": f"{DESIRED}:{control}", "control": control,
                                    "title": raw.get("title") or control}
        if status == "error":
            why = ev.get("reason") or "no reason given"
            evidence["reason"] = f"the hardening audit could not judge {control}: {why}"
        else:
            evidence.update(current=ev.pop("actual", None), desired=ev.pop("expected", None))
        ev.pop("reason", None)
        if ev:
            evidence["details"] = ev  # what the audit looked at (option, path, key, ...)
        severity = raw.get("severity") if raw.get("severity") in SEVERITIES else None
        out.append(_finding(DESIRED_ID, status, evidence, severity))
    if not out:
        out.append(_finding(DESIRED_ID, "pass", {"controls": int(audit.get("controls") or 0)}))
    return out


# -- which baseline each category is held against (drift_baseline_from) ------------------------
OWN = "own"  # the host's own last approved snapshot
GROUP_PREFIX = "group:"  # a baseline declared for a group: 'fleetcare drift baseline --as group:NAME'


def sources(observed: dict[str, Any], host: str = "") -> dict[str, list[str]]:
    """baseline name -> the categories of ``observed`` held against it (``own`` unless its
    drift_baseline_from names a golden host or ``group:NAME``; the golden host itself, whose
    group_vars name it too, is held against its own)."""
    chosen = settings(observed, "baseline_from")
    out: dict[str, list[str]] = {}
    for category in sorted(categories(observed)):
        source = chosen.get(category, OWN)
        out.setdefault(OWN if source == host else source, []).append(category)
    return out


def part(snapshot: dict[str, Any], cats: list[str] | set[str]) -> dict[str, Any]:
    """The categories ``cats`` of a snapshot, with its texts and settings."""
    return {k: v for k, v in snapshot.items() if k in cats or k in RESERVED}


def _add(run: Run, host: str, findings: list[dict[str, Any]]) -> None:
    run.add_payload(host, {"contract": CONTRACT_VERSION, "role": ROLE, "findings": findings})


# -- the store -----------------------------------------------------------------------
def latest(history: History, host: str) -> tuple[int, dict[str, Any]] | None:
    return history.drift_latest(host)


def _store(history: History, host: str, snapshot: dict[str, Any], run_id: str | None, kind: str,
           by: str, reason: str, items: list[str]) -> int:
    # a run's settings and the desired state's verdict are not the host's recorded state
    snapshot = {k: v for k, v in snapshot.items() if k not in (SETTINGS, DESIRED)}
    return history.drift_store(host, snapshot, run_id, kind, by, reason, items)


def default_by() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


KNOWN_DIGITS = 16  # of a digest in 'known' (drift_snapshot's KNOWN_DIGITS)


def known_digests(history: History, host: str, baseline: bool = False) -> dict[str, str]:
    """What the host need not send, from its latest baseline: {path: first digits of the SHA-256}
    of the files whose text the baseline holds (sent again only when the file changed); for a
    drift run (``baseline`` False) also ``-`` for each file the baseline holds no text of (a diff
    needs both sides, so its text is never sent; a baseline run collects it, budget permitting)."""
    base = latest(history, host)
    if base is None:
        return {}
    files, texts = base[1].get("files") or {}, base[1].get(TEXTS) or {}
    out = {}
    for path, entry in files.items():
        digest = str(entry.get("sha256", ""))[:KNOWN_DIGITS]
        if path in texts:
            out[path] = digest
        elif not baseline and "sha256" in entry:
            out[path] = "-"
    return out


def write_known(history: History, hosts: tuple[str, ...] | list[str], directory: Path,
                baseline: bool = False) -> dict[str, str]:
    """Write ``<host>.json`` (:func:`known_digests`) for each host with a baseline into
    ``directory``; returns the role variable that points the drift role there."""
    for host in hosts:
        digests = known_digests(history, host, baseline)
        if digests and "/" not in host:
            (directory / f"{host}.json").write_text(json.dumps(digests), encoding="utf-8")
    return {"__drift_known_dir": str(directory)}


def with_texts(snapshot: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """``snapshot`` with the texts it did not carry because ``previous`` held them (same digest)."""
    out = dict(snapshot)
    texts = dict(snapshot.get(TEXTS) or {})
    old_files, old_texts = (previous or {}).get("files") or {}, (previous or {}).get(TEXTS) or {}
    for path, entry in (snapshot.get("files") or {}).items():
        if path not in texts and path in old_texts and old_files.get(path, {}).get("sha256") == entry.get("sha256"):
            texts[path] = old_texts[path]
    if texts:
        out[TEXTS] = dict(sorted(texts.items()))
    return out


def check_baseline_name(name: str, hosts: tuple[str, ...] | list[str] | None = None) -> None:
    """``drift baseline --as NAME``: NAME is ``group:GROUP`` and the run covers one host."""
    if not name.startswith(GROUP_PREFIX) or not name[len(GROUP_PREFIX):].strip() or name != name.strip():
        raise InputError(f"--as {name!r}: a declared baseline is named group:NAME (e.g. group:web)")
    if hosts is not None and len(hosts) != 1:
        shown = ", ".join(list(hosts)[:3]) + (", ..." if len(hosts) > 3 else "")
        raise InputError(f"--as {name}: takes the snapshot of one host, this run covers {len(hosts)} "
                         f"({shown}); name it with -l")


def take_baseline(history: History, run: Run, by: str | None = None, as_name: str | None = None) -> None:
    """Store every host's snapshot of ``run`` as its next baseline version (with the texts the
    previous version held for files that did not change); with ``as_name`` (``group:NAME``), the
    one host's snapshot becomes that declared baseline's next version instead."""
    for name in run.hosts:
        snap = snapshot_of(run, name)
        if snap is None:
            continue
        own = latest(history, name)
        snap = with_texts(snap, own[1] if own else None)
        target, reason = (as_name, f"declared from {name}") if as_name else (name, "baseline taken")
        prev = latest(history, target) if as_name else own
        _store(history, target, with_texts(snap, prev[1] if prev else None), run.id, "snapshot",
               by or default_by(), reason, [])


def judge(history: History, run: Run) -> None:
    """Compare every host's snapshot of ``run`` with its latest baseline; add the findings."""
    for name in run.hosts:
        snap = snapshot_of(run, name)
        if snap is None:
            continue
        history.drift_observe(name, run.id, snap)
        _add(run, name, host_findings(history, name, snap) + desired_findings(snap.get(DESIRED)))


def host_findings(history: History, name: str, snap: dict[str, Any]) -> list[dict[str, Any]]:
    """Each category of ``snap`` held against the baseline drift_baseline_from names for it."""
    own = latest(history, name)
    out: list[dict[str, Any]] = []
    for source, cats in sources(snap, name).items():
        base = own if source == OWN else latest(history, source)
        if base is None:
            if source == OWN:
                reason = f"no baseline for {name}: take one with 'fleetcare drift baseline'"
            else:
                how = f"--as {source} -l HOST" if source.startswith(GROUP_PREFIX) else f"-l {source}"
                reason = (f"no baseline {source!r} to hold {', '.join(cats)} against (drift_baseline_from): "
                          f"take it with 'fleetcare drift baseline {how}'")
            out.append(_finding("DRFT-BASE-001", "fail", {"reason": reason, "baseline": source, "categories": cats}))
            continue
        # the texts the host did not send because its own baseline holds them
        observed = with_texts(part(snap, cats), own[1] if own else None)
        out.extend(drift_findings(part(base[1], cats), observed, base[0], source))
    return out


def accept(history: History, host: str, items: list[str], reason: str, by: str | None = None) -> tuple[int, list[str]]:
    """Make items of the host's last observed snapshot part of a new baseline version (all drifted
    items when none are named). Returns (version, items accepted)."""
    if not reason or not reason.strip():
        raise InputError("--reason: accepting drift needs a reason")
    base = latest(history, host)
    if base is None:
        raise InputError(f"drift accept: unknown host {host!r} (no baseline; see 'fleetcare drift baseline')")
    observed = history.drift_observed(host)
    if observed is None:
        raise InputError(f"drift accept: {host!r} has no drift run since its baseline (run 'fleetcare drift')")
    held = sources(observed, host)
    own = set(held.get(OWN, ()))
    drifted = {item: after for item, _before, after in diff(part(base[1], own), part(observed, own))}
    golden = {c: src for src, cats in held.items() if src != OWN for c in cats}
    for item in items:
        category = item.split(":", 1)[0]
        if category in golden:
            raise InputError(f"drift accept: {item!r} is held against the baseline {golden[category]!r} "
                             f"(drift_baseline_from {category}), not {host}'s own: change that baseline instead")
    desired = [i for i in items if i.startswith(f"{DESIRED}:")]
    if desired:
        raise InputError(f"drift accept: {desired[0]!r} is drift from the desired state (the hardening catalog), "
                         "not from the baseline: apply it with 'fleetcare harden', or change the hardening settings")
    unknown = [i for i in items if i not in drifted]
    if unknown:
        raise InputError(f"drift accept: {unknown[0]!r} is not a drifted item of {host} "
                         f"({len(drifted)} drifted; see the last drift report)")
    if not drifted:
        raise InputError(f"drift accept: {host} has no drift to accept")
    chosen = list(items) or sorted(drifted)
    snapshot = {cat: dict(values) for cat, values in base[1].items()}
    now_texts = observed.get(TEXTS) or {}
    for item in chosen:
        category, key = item.split(":", 1)
        if drifted[item] is None:
            snapshot.get(category, {}).pop(key, None)
        else:
            snapshot.setdefault(category, {})[key] = drifted[item]
        if category == "files":
            # the accepted file's text is the one it has now (or none)
            texts = snapshot.setdefault(TEXTS, {})
            if drifted[item] is not None and key in now_texts:
                texts[key] = now_texts[key]
            else:
                texts.pop(key, None)
    version = _store(history, host, snapshot, None, "accept", by or default_by(), reason.strip(), chosen)
    return version, chosen


def log(history: History, host: str) -> list[dict[str, Any]]:
    """The baseline versions of a host, oldest first."""
    rows = history.drift_log(host)
    if not rows:
        raise InputError(f"drift log: unknown host {host!r} (no baseline)")
    return rows

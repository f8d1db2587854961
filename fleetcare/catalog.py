"""Every finding ID the roles emit, read on the controller: hardening's controls and health's checks.

The hardening catalog is data (``roles/hardening/vars/catalog.yml``, the list
``__hardening_catalog``; the record is described in ``docs/controls.md``), read and validated by
the collection's one loader (``plugins/plugin_utils/controls.py``, with the schema beside it),
which the role's audit action plugin uses too. Health's checks are data as well
(``plugins/module_utils/health_checks.py``, where the health module takes its texts from).
This module serves the wrapper: ``fleetcare explain ID`` for both, validation of
``--controls``/``--skip`` patterns before a run starts (with the collection's one matcher), and
the README's control table.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fleetcare.collection import ROOT, controls, role_checks
from fleetcare.errors import InputError

CATALOG_PATH = ROOT / "roles" / "hardening" / "vars" / "catalog.yml"
CATALOG_KEY = controls.CATALOG_KEY


def load(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The catalog's records in file order, validated against the schema (read once per file
    version, then cached)."""
    try:
        return list(controls.load_catalog(str(path or CATALOG_PATH)))
    except controls.SelectionError as exc:
        raise InputError(str(exc)) from None


def ids(path: str | Path | None = None) -> list[str]:
    return [str(r.get("id")) for r in load(path)]


def _suggestion(word: str, candidates: Iterable[str]) -> str:
    candidates = list(candidates)
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6) or difflib.get_close_matches(
        word.upper(), candidates, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def get(control_id: str, path: str | Path | None = None) -> dict[str, Any]:
    """One record by ID (case-insensitive); InputError naming a close match when unknown."""
    wanted = control_id.strip().upper()
    for record in load(path):
        if str(record.get("id", "")).upper() == wanted:
            return record
    raise InputError(f"unknown control {control_id!r}{_suggestion(wanted, ids(path))}")


def _role_checks() -> list[tuple[str, dict[str, Any]]]:
    """(role, record) of every role of the command registry that describes its checks as data
    (``plugins/module_utils/<role>_checks.py``), in registry order."""
    from fleetcare import commands

    roles = dict.fromkeys(r for c in commands.run_commands() for r in c.roles)
    return [(role, record) for role in roles for record in role_checks(role)]


def health_check(check_id: str) -> dict[str, Any] | None:
    """A check's record by ID (case-insensitive), from any role's check data, or None."""
    wanted = check_id.strip().upper()
    return next((dict(record, role=role) for role, record in _role_checks() if record["id"] == wanted), None)


def finding_ids() -> list[str]:
    """Every finding ID a role of the collection can emit: the roles' checks (health's first),
    then hardening's controls."""
    return [record["id"] for _, record in _role_checks()] + ids()


def expected(record: dict[str, Any]) -> str:
    """The expected value of a record in a few words (used by explain and the README table)."""
    params = record.get("params") or {}
    kind = record.get("kind", "")
    if kind == "sshd_option":
        value = str(params.get("value", ""))
        if value.startswith("-"):
            return f"{params.get('option')} without {value[1:]}"
        return f"{params.get('option')} {value}"
    if kind == "sysctl":
        return f"{params.get('key')} = {params.get('value')}"
    if kind == "file_mode":
        owner = ":".join(str(params[k]) for k in ("owner", "group") if params.get(k))
        return f"{params.get('path')} at most {params.get('mode')}" + (f", {owner}" if owner else "")
    if kind == "config_line":
        sep = params.get("separator", " ")
        return f"{params.get('path')}: {params.get('key')}{sep if sep.strip() else ' '}{params.get('value')}"
    if kind == "ini_option":
        return f"{params.get('path')} [{params.get('section')}] {params.get('option')}={params.get('value')}"
    if kind == "file_content":
        return f"{params.get('path')} with fixed content" + (f", mode {params['mode']}" if params.get("mode") else "")
    if kind == "file_absent":
        return f"{params.get('path')} absent"
    if kind == "package_absent":
        return f"{params.get('package')} not installed"
    if kind == "package_present":
        return f"{params.get('package')} installed"
    if kind == "service_disabled":
        return f"{params.get('service')} disabled or absent"
    if kind == "service_enabled":
        return f"{params.get('service')} enabled and running"
    if kind == "module_blacklist":
        return f"install {params.get('module')} /bin/false"
    if kind == "mount_option":
        return f"{params.get('mount')} mounted {params.get('option')}" + (
            " (if separate)" if params.get("optional") else "")
    if kind == "audit_rule":
        return str(params.get("rule", ""))
    if kind == "pam_module":
        args = " ".join(
            k if v is True or v is None else (f"no {k}" if v is False else f"{k}={v}")
            for k, v in sorted((params.get("args") or {}).items()))
        return f"{params.get('service')}: {params.get('type')} {params.get('module')} {args}".strip()
    if kind == "account":
        return f"account check {params.get('check')}"
    if kind == "apt_source":
        return f"an enabled deb source of {params.get('suite')} (added: {params.get('uri')} {params.get('components')})"
    # a kind this version does not know: its params as they are
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _container(record: dict[str, Any]) -> str:
    if not record.get("applies_in_container"):
        return "not applicable (needs the host itself)"
    if record.get("kind") == "sysctl":
        return "applies in the container's own network namespace (not where /proc/sys is read-only)"
    return "applies"


def _yes(value: Any) -> str:
    return "yes" if value else "no"


def _prose(r: dict[str, Any]) -> list[str]:
    """The part of an explanation every role's records have: why, how to fix, references."""
    refs = r.get("references") or []
    return ["", "Why", *_wrap(r.get("rationale", "")), "", "How to fix", *_wrap(r.get("remediation", "")),
            "", "References", *([f"  - {ref}" for ref in refs] or ["  (none)"])]


def _explain_health(r: dict[str, Any]) -> str:
    options = ", ".join(f"{r['role']}_{o}" for o in r.get("options") or ()) or "(none)"
    return "\n".join([
        f"{r['id']}  {r['title']}",
        "",
        f"  role          {r['role']}",
        f"  severity      {r['severity']}",
        f"  tuned by      {options}",
        *_prose(r),
    ])


def known_id(finding_id: str) -> str | None:
    """The ID as the roles spell it when one of them emits it (any case given), else None."""
    wanted = finding_id.strip().upper()
    return next((i for i in finding_ids() if i == wanted), None)


def unknown_id(finding_id: str) -> InputError:
    """The one-line error for a finding ID no role knows, naming a close match."""
    wanted = finding_id.strip().upper()
    return InputError(f"unknown finding ID {finding_id!r}{_suggestion(wanted, finding_ids())}")


def explain(control_id: str, path: str | Path | None = None) -> str:
    """A finding ID's record as readable text (a hardening control or a health check): what,
    why, how to fix, references. InputError naming a close match when no role knows the ID."""
    check = None if path else health_check(control_id)
    if check is not None:
        return _explain_health(check)
    try:
        r = get(control_id, path)
    except InputError:
        if path:
            raise
        raise unknown_id(control_id) from None
    params = r.get("params") or {}
    lines = [
        f"{r['id']}  {r.get('title', '')}",
        "",
        f"  severity      {r.get('severity', '')}",
        f"  kind          {r.get('kind', '')}",
        f"  expected      {expected(r)}",
    ]
    if r.get("kind") == "file_content" and params.get("content"):
        lines.append("  content       " + "\n                ".join(str(params["content"]).rstrip("\n").splitlines()))
    lines += [
        f"  container     {_container(r)}",
        f"  disruptive    {_yes(r.get('disruptive'))}"
        + ("  (off by default: enable with hardening_controls_enable_disruptive)" if r.get("disruptive") else ""),
        f"  tags          {', '.join(r.get('tags') or [])}",
        *_prose(r),
    ]
    return "\n".join(lines)


def _wrap(text: str, width: int = 96) -> list[str]:
    import textwrap

    return textwrap.wrap(" ".join(str(text).split()), width, initial_indent="  ", subsequent_indent="  ") or ["  -"]


def match(patterns: Iterable[str], path: str | Path | None = None) -> list[str]:
    """IDs (in catalog order) matching any of the shell-style patterns.

    A pattern matches a control's ID, one of its tags or its kind, ignoring case, with the very
    function the role's switches use (``HARD-SSH-*``, ``HARD-PAM-00[1-3]``, ``pam``). A pattern
    that matches nothing is an InputError, so a mistyped ID stops a run before anything changes.
    """
    records = load(path)
    chosen: set[str] = set()
    for pattern in patterns:
        hits = {str(r["id"]) for r in records if controls.matches(r, [pattern])}
        if not hits:
            tags = {str(t) for r in records for t in r.get("tags") or []}
            candidates = ids(path) + sorted(tags)
            if any(c in pattern for c in "*?["):
                candidates = sorted({i.rsplit("-", 1)[0] + "-*" for i in ids(path)} | tags)
            raise InputError(f"no control matches {pattern!r}{_suggestion(pattern, candidates)}")
        chosen |= hits
    return [str(r["id"]) for r in records if str(r["id"]) in chosen]

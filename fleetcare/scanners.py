"""The results of the scanners auditors run, read into findings of the contract.

``fleetcare import FILE`` hands a file to :func:`sniff`; when it is a scanner's result, its
findings become the payload of one host, fed to the run model like a module's
(:mod:`fleetcare.ingest`), so they reach history, reports, waivers and the comparison like
those of any run.

- Lynis: ``lynis-report.dat`` (``key=value`` lines; ``key[]=`` lines repeat, one value each;
  lines without ``=`` are comments or noise and are skipped). One finding per Lynis test:
  ``LYNIS-<test id>`` fails ``major`` for a ``warning[]``, ``minor`` for a ``suggestion[]``
  only (a test with several lines is one finding whose evidence lists them all), passes for a
  test in ``tests_executed`` with neither, is ``not_applicable`` for ``tests_skipped``. The
  hardening index is a metric (``lynis_hardening_index``).
- OpenSCAP: an XCCDF result (``oscap xccdf eval --results``: the benchmark with its
  ``TestResult``) or an ARF report (``--results-arf``). One finding per evaluated rule,
  ``SSG-<rule id>`` (the ``xccdf_org.ssgproject.content_rule_`` prefix left out): ``pass`` and
  ``fixed`` pass, ``fail`` fails, ``error`` and ``unknown`` are errors, ``notapplicable`` and
  ``notchecked`` are not applicable, ``notselected`` (outside the profile) is left out. The
  rule's severity maps high/medium/low to critical/major/minor; its title, its sh fix (the
  remediation) and its references come from the benchmark in the same file. The score is a
  metric (``openscap_score``). ``oscap`` exits 2 when a rule fails: the file is still a result.
"""

from __future__ import annotations

import contextlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from fleetcare.errors import InputError
from fleetcare.results import CONTRACT_VERSION, RESULT_KEY

LYNIS_MARK = re.compile(r"^(# Lynis Report|report_version_major=|lynis_version=)", re.M)
LYNIS_ID = re.compile(r"^[A-Z0-9]+(-[A-Z0-9]+)*$")
SSG_PREFIX = "xccdf_org.ssgproject.content_rule_"
XCCDF_NS = ("http://checklists.nist.gov/xccdf/1.2", "http://checklists.nist.gov/xccdf/1.1")
SEVERITY = {"high": "critical", "medium": "major", "low": "minor"}
STATUS = {"pass": "pass", "fixed": "pass", "fail": "fail", "error": "error", "unknown": "error",
          "notapplicable": "not_applicable", "notchecked": "not_applicable", "informational": "pass"}
REASON = {"error": "the scanner could not evaluate the rule", "unknown": "the scanner could not tell",
          "notapplicable": "the rule does not apply to this platform",
          "notchecked": "the content has no automated check for this rule"}
REFERENCE_LABELS = (("ssi.gouv.fr", "ANSSI"), ("cisecurity.org/controls", "CIS Controls"), ("800-53", "NIST 800-53"),
                    ("800-171", "NIST 800-171"), ("pcisecurity", "PCI-DSS"), ("cyber.mil/stigs", "STIG"))
REMEDIATION_MAX = 2000
REFERENCES_MAX = 12


def sniff(path: Path, host: str | None = None) -> tuple[str, list[dict[str, Any]]] | None:
    """(host, events) when ``path`` holds a Lynis report or an OpenSCAP result, else None. ``host``
    replaces the host the file names (an offline scan names the machine that scanned)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    text = head.decode("utf-8", "replace")
    if LYNIS_MARK.search(text):
        named, payload = lynis(path, host is None)
    elif text.lstrip().startswith("<") and ("xccdf" in text.lower() or "asset-report-collection" in text):
        named, payload = openscap(path, host is None)
    else:
        return None
    host = host or named
    task = "Lynis report" if payload["role"] == "lynis" else "OpenSCAP result"
    return host, [{"event": "runner_on_ok", "event_data": {"host": host, "task": task, "res": {RESULT_KEY: payload}}},
                  {"event": "playbook_on_stats", "event_data": {"ok": {host: 1}}}]


def _payload(role: str, findings: list[dict[str, Any]], metrics: list[dict[str, Any]]) -> dict[str, Any]:
    return {"contract": CONTRACT_VERSION, "role": role, "findings": findings, "metrics": metrics,
            "expected": len(findings)}


# --------------------------------------------------------------------------- Lynis


def parse_lynis(text: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """``lynis-report.dat`` -> (single keys: last value wins, repeated ``key[]`` keys: every value)."""
    single: dict[str, str] = {}
    repeated: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        if key.endswith("[]"):
            repeated.setdefault(key[:-2], []).append(value)
        elif key:
            single[key] = value
    return single, repeated


def _lynis_line(value: str) -> tuple[str, str, str, str]:
    """``TEST-ID|message|details|solution|`` -> its four fields, ``-`` read as empty."""
    fields = [("" if f.strip() == "-" else f.strip()) for f in value.split("|")]
    fields += [""] * (4 - len(fields))
    solution = fields[3][len("text:"):] if fields[3].startswith("text:") else fields[3]
    return fields[0], fields[1], fields[2], solution


def lynis(path: Path, need_host: bool = True) -> tuple[str, dict[str, Any]]:
    text = path.read_text(encoding="utf-8", errors="replace")
    single, repeated = parse_lynis(text)
    host = single.get("hostname") or ""
    if not host and need_host:
        raise InputError(f"{path}: a Lynis report without hostname= (name the host with --host)")
    if "hardening_index" not in single and "tests_executed" not in single:
        raise InputError(f"{path}: a Lynis report without hardening_index= or tests_executed= (cut short?)")
    lines: dict[str, dict[str, Any]] = {}
    for kind in ("warning", "suggestion"):
        for value in repeated.get(kind, ()):
            test, message, details, solution = _lynis_line(value)
            if not LYNIS_ID.match(test):
                continue
            entry = lines.setdefault(test, {"title": message, "warnings": [], "suggestions": [], "solutions": []})
            entry[kind + "s"].append(message + (f" ({details})" if details else ""))
            if solution and solution not in entry["solutions"]:
                entry["solutions"].append(solution)
    executed = [t for t in single.get("tests_executed", "").split("|") if LYNIS_ID.match(t)]
    skipped = [t for t in single.get("tests_skipped", "").split("|") if LYNIS_ID.match(t)]
    version = single.get("lynis_version", "")
    findings = []
    for test in dict.fromkeys([*executed, *lines, *skipped]):
        refs = [f"Lynis {test}", f"https://cisofy.com/lynis/controls/{test}/"]
        entry = lines.get(test)
        if entry:
            messages = entry["warnings"] + entry["suggestions"]
            evidence = {k: v for k, v in entry.items() if v and k in ("warnings", "suggestions")}
            findings.append(_finding(f"LYNIS-{test}", entry["title"] or f"Lynis test {test}",
                                     "major" if entry["warnings"] else "minor",
                                     "fail", {**evidence, "lynis_version": version},
                                     "; ".join(entry["solutions"]) or "; ".join(dict.fromkeys(messages)), refs))
        elif test in executed:
            findings.append(_finding(f"LYNIS-{test}", f"Lynis test {test}", "info", "pass",
                                     {"lynis_version": version}, "", refs))
        else:
            findings.append(_finding(f"LYNIS-{test}", f"Lynis test {test}", "info", "not_applicable",
                                     {"reason": "skipped by Lynis (profile, platform or missing tool)"}, "", refs))
    if not findings:
        raise InputError(f"{path}: a Lynis report with no test in it")
    metrics = []
    if single.get("hardening_index", "").isdigit():
        metrics.append({"name": "lynis_hardening_index", "value": int(single["hardening_index"]), "unit": "",
                        "labels": {}})
    return host, _payload("lynis", findings, metrics)


def _finding(fid: str, title: str, severity: str, status: str, evidence: dict[str, Any], remediation: str,
             references: list[str]) -> dict[str, Any]:
    return {"id": fid, "title": title, "severity": severity, "status": status, "evidence": evidence,
            "remediation": remediation, "references": references}


# --------------------------------------------------------------------------- OpenSCAP


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _ns(elem: ET.Element) -> str:
    return elem.tag[1:].split("}", 1)[0] if elem.tag.startswith("{") else ""


def _text(elem: ET.Element | None) -> str:
    return " ".join("".join(elem.itertext()).split()) if elem is not None else ""


def openscap(path: Path, need_host: bool = True) -> tuple[str, dict[str, Any]]:
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise InputError(f"{path}: not a readable XCCDF or ARF document ({exc})") from None
    results = [e for e in root.iter() if _local(e.tag) == "TestResult" and _ns(e) in XCCDF_NS]
    if not results:
        raise InputError(f"{path}: no XCCDF TestResult in it (run oscap xccdf eval with --results or --results-arf)")
    if len(results) > 1:
        raise InputError(f"{path}: holds {len(results)} XCCDF TestResults; import one scan at a time")
    result = results[0]
    ns = "{" + _ns(result) + "}"
    rules = {r.get("id"): r for r in root.iter(ns + "Rule")}
    target = result.find(ns + "target")
    host = _text(target)
    if not host and need_host:
        raise InputError(f"{path}: the TestResult names no target host (name it with --host)")
    profile = (result.find(ns + "profile").get("idref") or "") if result.find(ns + "profile") is not None else ""
    findings = []
    for rr in result.iter(ns + "rule-result"):
        outcome = _text(rr.find(ns + "result"))
        if outcome not in STATUS:
            continue  # notselected: outside the profile
        idref = rr.get("idref") or ""
        rule = rules.get(idref)
        rid = idref[len(SSG_PREFIX):] if idref.startswith(SSG_PREFIX) else idref.rsplit("_rule_", 1)[-1]
        severity = SEVERITY.get(rr.get("severity") or (rule.get("severity") if rule is not None else ""), "info")
        evidence: dict[str, Any] = {"result": outcome, "rule": idref}
        if profile:
            evidence["profile"] = profile
        messages = [_text(m) for m in rr.iter(ns + "message") if _text(m)]
        if messages:
            evidence["messages"] = messages[:10]
        if outcome in REASON:
            evidence["reason"] = REASON[outcome]
        title, remediation, references = rid, "", []
        if rule is not None:
            title = _text(rule.find(ns + "title")) or rid
            fixes = [f for f in rule.iter(ns + "fix") if (f.get("system") or "").endswith(":sh")]
            remediation = "".join(fixes[0].itertext()).strip()[:REMEDIATION_MAX] if fixes else ""
            for ref in rule.iter(ns + "reference"):
                href, label = ref.get("href") or "", None
                label = next((name for key, name in REFERENCE_LABELS if key in href.lower()), None)
                if label and _text(ref):
                    references.append(f"{label} {_text(ref)}")
        findings.append(_finding(f"SSG-{rid}", title, severity, STATUS[outcome], evidence,
                                 remediation or ("See the rule's description in the SCAP content."
                                                 if outcome == "fail" else ""),
                                 [f"SSG {rid}", *references[:REFERENCES_MAX]]))
    if not findings:
        raise InputError(f"{path}: the TestResult holds no evaluated rule")
    metrics = []
    score = result.find(ns + "score")
    if score is not None and _text(score):
        with contextlib.suppress(ValueError):
            metrics.append({"name": "openscap_score", "value": float(_text(score)), "unit": "",
                            "labels": {"system": score.get("system") or "", "profile": profile}})
    return host, _payload("openscap", findings, metrics)

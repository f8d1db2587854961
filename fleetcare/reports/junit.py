"""JUnit XML for CI: one test suite per host, one test case per finding.

A failing finding is a ``<failure>`` carrying its evidence and remediation, an error an
``<error>``, not_applicable and waived findings are ``<skipped>`` with their reason. A host
that was unreachable or failed gets one more test case, in error, so a pipeline that gates on
the file never reads a host nobody could check as clean. The XML is written as text (one pass,
no DOM: 200,000 findings stay cheap); every value from a host is escaped, and characters XML 1.0
cannot carry (control characters) become U+FFFD.
"""

from __future__ import annotations

import re
from datetime import datetime

from fleetcare.reports.view import Memo, evidence_text
from fleetcare.results import Finding, Run

EVIDENCE_CHARS = 2000

_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_ATTR = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                       "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"})


def _text(value: object) -> str:
    return _INVALID.sub("\ufffd", str(value)).translate(_TEXT)


def _attr(value: object) -> str:
    return _INVALID.sub("\ufffd", str(value)).translate(_ATTR)


def duration(run: Run) -> float:
    """Seconds from start to finish (0 for a run without both times)."""
    try:
        return max(0.0, (datetime.fromisoformat(run.finished or "") -
                         datetime.fromisoformat(run.started)).total_seconds())
    except ValueError:
        return 0.0


def reason(f: Finding) -> str:
    """Why a finding was skipped: for a waived one its waiver (reason, owner, expiry), else the
    evidence's reason when it gives one."""
    if f.status == "waived" and f.waiver:
        w = f.waiver
        return f"waived: {w.get('reason')} (owner {w.get('owner')}, expires {w.get('expires')})"
    why = f.evidence.get("reason") or f.evidence.get("waiver") or ""
    label = "waived" if f.status == "waived" else "not applicable"
    return f"{label}: {why}" if why else label


def _head(classname: str, f: Finding, attr=_attr) -> str:
    """A finding's opening tag: it depends on its check alone (ID, title, role)."""
    return f'<testcase name="{attr(f"{f.id} {f.title}")}" classname="{attr(classname)}.{attr(f.role)}" time="0"'


def _case(out: list[str], classname: str, f: Finding, attr=_attr, head: str | None = None) -> None:
    head = head if head is not None else _head(classname, f, attr)
    if f.status == "pass":
        out.append(head + "/>")
        return
    out.append(head + ">")
    if f.status in ("fail", "error"):
        tag = "failure" if f.status == "fail" else "error"
        body = [f"{f.severity} {f.id} on {f.host}: {f.title}"]
        if f.evidence:
            body.append(f"evidence: {evidence_text(f.evidence, EVIDENCE_CHARS)}")
        if f.remediation:
            body.append(f"remediation: {f.remediation}")
        if f.references:
            body.append(f"references: {'; '.join(f.references)}")
        message = f.evidence.get("reason") if f.status == "error" else None
        out.append(f'<{tag} message="{attr(message or f.title)}" type="{attr(f.severity)}">'
                   f"{_text(chr(10).join(body))}</{tag}>")
    else:
        out.append(f'<skipped message="{attr(reason(f))}"/>')
    out.append("</testcase>")


def render(run: Run) -> str:
    package = f"fleetcare.{run.command}"
    attr = Memo(_attr)  # a fleet repeats its IDs, titles and roles on every host: each escaped once
    heads: dict[tuple[str, str, str], str] = {}  # a check's opening tag, the same on every host
    cases: list[str] = []
    totals = [0, 0, 0, 0]  # tests, failures, errors, skipped
    for n, host in enumerate(run.hosts.values()):
        tests = failures = errors = skipped = 0
        body: list[str] = []
        down = host.status in ("unreachable", "failed", "pending")
        if down:
            tests += 1
            errors += 1
            body.append(f'<testcase name="host {_attr(host.status)}" classname="{_attr(package)}.host" time="0">'
                        f'<error message="{_attr(host.message or host.status)}" type="{_attr(host.status)}">'
                        f"{_text(host.message or host.status)}</error></testcase>")
        for f in host.findings:
            tests += 1
            if f.status == "fail":
                failures += 1
            elif f.status == "error":
                errors += 1
            elif f.status != "pass":
                skipped += 1
            try:
                head = heads[(f.id, f.title, f.role)]
            except KeyError:
                head = heads[(f.id, f.title, f.role)] = _head(package, f, attr)
            except TypeError:  # a value that cannot be a key (the schema forbids it): built each time
                head = _head(package, f, attr)
            if f.status == "pass":
                body.append(head + "/>")
            else:
                _case(body, package, f, attr, head)
        cases.append(f'<testsuite name="{_attr(host.name)}" id="{n}" package="{_attr(package)}" '
                     f'hostname="{_attr(host.name)}" timestamp="{_attr(run.started)}" tests="{tests}" '
                     f'failures="{failures}" errors="{errors}" skipped="{skipped}" time="0">'
                     f'<properties><property name="fleetcare.host_status" value="{_attr(host.status)}"/>'
                     f'<property name="fleetcare.run" value="{_attr(run.id)}"/></properties>')
        cases.extend(body)
        cases.append("</testsuite>")
        for i, v in enumerate((tests, failures, errors, skipped)):
            totals[i] += v
    head = (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<testsuites name="{_attr(f"fleetcare {run.command} {run.id}")}" tests="{totals[0]}" '
            f'failures="{totals[1]}" errors="{totals[2]}" skipped="{totals[3]}" time="{duration(run):.3f}">')
    return head + "\n" + "\n".join(cases) + "\n</testsuites>\n"

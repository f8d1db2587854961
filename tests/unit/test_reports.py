"""Reports: every format renders a run; JSON is validated and round-trips; values from hosts
are escaped in HTML and Markdown; files are written whole, 0600, or not at all."""

from __future__ import annotations

import json
import re
import stat
from html.parser import HTMLParser

import pytest

from fleetcare import reports
from fleetcare.reports import html as html_report
from fleetcare.reports import markdown
from fleetcare.results import Finding, HostResult, Metric, Run, SchemaError, validate

SCRIPT_HOST = "<script>alert(1)</script>"
IMG_EVIDENCE = "<img src=x onerror=alert(1)>"
TITLE_PAYLOAD = "<script>document.title='PWNED'</script>"


def _finding(host: str, fid: str, status: str, severity: str = "major", **evidence) -> Finding:
    return Finding(id=fid, title=f"Check {fid}", severity=severity, status=status, host=host,
                   role="health", evidence=evidence or {"used_pct": 97.1, "threshold_pct": 90},
                   remediation=f"Fix {fid}.", references=["CIS 5.2.10"])


def sample_run(hostile: bool = False) -> Run:
    """Five hosts: two failing the disk check, one failing SSH with a pipe in its evidence,
    one in error, one unreachable. ``hostile`` puts markup into names and evidence."""
    run = Run(id="20261125-092000-abcd", command="inspect", inventory="inventories/customer-a.yml",
              started="2026-11-25T09:20:00+00:00")
    names = ["db-1", "db-2", "web-1", SCRIPT_HOST if hostile else "web-2"]
    for name in names:
        run.hosts[name] = HostResult(name, status="ok")
    run.hosts["db-1"].findings += [
        _finding("db-1", "HLTH-DISK-001", "fail", "critical", mount="/var", used_pct=97.1, threshold_pct=90),
        _finding("db-1", "HARD-SSH-003", "pass"),
    ]
    run.hosts["db-2"].findings += [
        _finding("db-2", "HLTH-DISK-001", "fail", "critical", mount="/srv", used_pct=91.0, threshold_pct=90),
        _finding("db-2", "HARD-SSH-003", "fail", option="PermitRootLogin", expected="no",
                 actual="yes | prohibit-password\nsecond line"),
    ]
    run.hosts["web-1"].findings += [
        _finding("web-1", "HLTH-DISK-001", "pass", "critical"),
        _finding("web-1", "HLTH-UNIT-001", "error", "minor", reason="systemctl: not found"),
        _finding("web-1", "HARD-SSH-003", "not_applicable", reason="no sshd"),
    ]
    last = names[-1]
    run.hosts[last].findings += [
        _finding(last, "HLTH-DISK-001", "fail", "critical",
                 mount=IMG_EVIDENCE if hostile else "/home", used_pct=99.0, threshold_pct=90),
        _finding(last, "HARD-SSH-003", "waived"),
    ]
    run.hosts[last].metrics.append(Metric(last, "load1", 0.42, "", {"window": "1m"}))
    run.hosts["db-1"].metrics.append(Metric("db-1", "disk_used_pct", 97.1, "percent", {"mount": "/var"}))
    message = TITLE_PAYLOAD if hostile else "ssh: connect timed out | port 22"
    run.hosts["cache-1"] = HostResult("cache-1", status="unreachable", message=message)
    run.finish()
    return run


# -- JSON ---------------------------------------------------------------------------------------------
def test_json_is_the_validated_report_and_deterministic():
    run = sample_run()
    text = reports.render(run, "json")
    doc = json.loads(text)
    validate(doc)
    assert doc == json.loads(json.dumps(run.to_report()))
    assert text == reports.render(run, "json")
    assert "\n" not in text.rstrip("\n") and ", " not in text[:200]  # compact: one line, no padding
    assert list(doc) == sorted(doc)


def test_json_round_trips_through_run_from_report():
    run = sample_run()
    doc = json.loads(reports.render(run, "json"))
    again = Run.from_report(doc)
    for key in ("run", "summary", "hosts", "findings"):
        assert again.to_report()[key] == doc[key], key


def test_json_round_trips_metrics():
    doc = json.loads(reports.render(sample_run(), "json"))
    assert Run.from_report(doc).to_report()["metrics"] == doc["metrics"]


def test_json_refuses_a_run_that_breaks_the_schema(tmp_path):
    run = sample_run()
    run.hosts["db-1"].findings[0].severity = "catastrophic"
    with pytest.raises(SchemaError, match="report schema"):
        reports.render(run, "json")
    with pytest.raises(SchemaError):
        reports.write_all(run, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_json_refuses_nan():
    run = sample_run()
    run.hosts["db-1"].metrics[0].value = float("nan")
    with pytest.raises(SchemaError):
        reports.render(run, "json")


# -- writing ------------------------------------------------------------------------------------------
def test_write_all_writes_every_format_0600_and_no_temp_files(tmp_path):
    out = tmp_path / "runs" / "r1"
    paths = reports.write_all(sample_run(), out)
    assert set(paths) == set(reports.FORMATS)
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json", "report.md"]
    for path in paths.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    validate(json.loads(paths["json"].read_text()))


def test_a_failing_write_keeps_the_previous_report(tmp_path, monkeypatch):
    path = tmp_path / "report.md"
    path.write_text("previous\n")

    def boom(*args):
        raise OSError("disk full")

    monkeypatch.setattr(reports.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        reports.atomic_write(path, "new\n")
    assert path.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="unknown report format 'pdf'"):
        reports.render(sample_run(), "pdf")


# -- Markdown -----------------------------------------------------------------------------------------
def _table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def _cells(row: str) -> list[str]:
    # a cell boundary is a pipe not escaped by a backslash
    return re.split(r"(?<!\\)\|", row.strip())[1:-1]


def test_markdown_groups_failing_findings_worst_first():
    text = reports.render(sample_run(), "md")
    headings = [line for line in text.splitlines() if line.startswith("### ")]
    assert [h.split(" · ")[1] for h in headings] == ["HLTH-DISK-001", "HARD-SSH-003", "HLTH-UNIT-001"]
    assert "3 failing" in headings[0]
    assert "1 error" in headings[2]
    disk = text.split("### ")[1]
    assert "db-1" in disk and "db-2" in disk and "web-2" in disk and "web-1" not in disk
    assert "mount=/var used_pct=97.1 threshold_pct=90" in disk
    assert "## Hosts unreachable, failed or not finished" in text and "cache-1" in text


def test_markdown_tables_survive_pipes_and_newlines():
    text = reports.render(sample_run(), "md")
    for table in text.split("\n\n"):
        rows = _table_rows(table)
        if rows:
            widths = {len(_cells(r)) for r in rows}
            assert len(widths) == 1, table
    # evidence is JSON-quoted (the newline becomes \n), then the pipe and the backslash are escaped
    assert 'actual="yes \\| prohibit-password\\\\nsecond line"' in text
    assert "connect timed out \\| port 22" in text


def test_markdown_cell_escapes_markup():
    assert markdown.cell("a|b\nc") == "a\\|b c"
    assert markdown.cell(SCRIPT_HOST) == "\\<script\\>alert(1)\\</script\\>"
    assert markdown.cell("[x](javascript:alert(1))") == "\\[x\\](javascript:alert(1))"
    assert markdown.cell("used_pct") == "used_pct"
    assert markdown.cell("x" * 50, limit=10) == "x" * 9 + "…"


def test_markdown_hostile_values_stay_text():
    text = reports.render(sample_run(hostile=True), "md")
    assert not re.search(r"(?<!\\)[<>]", text)  # every angle bracket is backslash-escaped
    assert "\\<script\\>alert(1)\\</script\\>" in text


# -- HTML ---------------------------------------------------------------------------------------------
class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self._title = False
        self.title = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._title = tag == "title" and not self.title

    def handle_endtag(self, tag):
        self._title = False

    def handle_data(self, data):
        self.text.append(data)
        if self._title:
            self.title += data


def _parse(text: str) -> _Elements:
    parser = _Elements()
    parser.feed(text)
    parser.close()
    return parser


def test_html_groups_by_finding_and_lists_only_problem_hosts():
    text = reports.render(sample_run(), "html")
    doc = _parse(text)
    blocks = [a["id"] for tag, a in doc.tags if tag == "article"]
    assert blocks == ["f-HLTH-DISK-001", "f-HARD-SSH-003", "f-HLTH-UNIT-001"]
    disk = text.split('id="f-HLTH-DISK-001"')[1].split("</article>")[0]
    assert "db-1" in disk and "db-2" in disk and "web-2" in disk
    assert "web-1" not in disk  # passed: counted, not listed
    assert "mount=/var used_pct=97.1 threshold_pct=90" in disk
    assert "Fix HLTH-DISK-001." in disk and "CIS 5.2.10" in disk
    assert "ssh: connect timed out | port 22" in text  # host table message
    assert "inventories/customer-a.yml" in text and "20261125-092000-abcd" in text


def test_html_is_self_contained():
    text = reports.render(sample_run(), "html")
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text.lower()
    doc = _parse(text)
    tags = {tag for tag, _ in doc.tags}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed", "base"}
    assert "svg" in tags  # charts are inline
    for _, attrs in doc.tags:
        assert "src" not in attrs
        assert not (attrs.get("href") or "#").partition("#")[0], attrs  # only in-page anchors
        assert not any(k.startswith("on") for k in attrs)


def test_html_escapes_every_value_from_hosts():
    run = sample_run(hostile=True)
    text = reports.render(run, "html")
    assert "<script" not in text.lower() and "<img" not in text.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    doc = _parse(text)
    assert not {tag for tag, _ in doc.tags} & {"script", "img"}
    assert SCRIPT_HOST in doc.text  # the parsed text is the original string
    assert any(IMG_EVIDENCE in t for t in doc.text)
    assert doc.title == "Inspection report · 20261125-092000-abcd"


def test_html_url_references_are_text_not_links():
    run = sample_run()
    run.hosts["db-1"].findings[0].references = ["https://example.invalid/cis"]
    text = reports.render(run, "html")
    assert "https://example.invalid/cis" in text
    assert not [a for tag, a in _parse(text).tags if a.get("href") or a.get("src")
                if "example" in (a.get("href") or a.get("src") or "")]


def test_html_of_a_run_without_hosts():
    run = Run(id="r0", command="audit")
    run.finish()
    text = reports.render(run, "html")
    assert "Hardening audit report" in text and "No check failed" in text


def test_html_verdicts():
    ctx = html_report.context(sample_run())
    assert ctx["verdict"]["cls"] == "bad"
    assert "4 failing findings at or above major on 3 hosts" in ctx["verdict"]["text"]
    clean = Run(id="r1", command="inspect")
    clean.hosts["a"] = HostResult("a", "ok", findings=[_finding("a", "HLTH-DISK-001", "pass")])
    clean.finish()
    assert html_report.context(clean)["verdict"]["cls"] == "good"


@pytest.mark.parametrize("check", [False, True])
def test_changes_are_listed_per_host(check):
    run = Run(id="20261125-100000-cafe", command="harden", check=check)
    host = run.host("web-<1>")
    host.status = "ok"
    host.changes = ["Set sysctl: HARD-KERN-001", "Write sshd drop-in"]
    run.host("web-2").status = "ok"
    run.finish()
    heading = "would make (check mode)" if check else "Changes made"
    md = reports.render(run, "md")
    assert heading in md and "Set sysctl: HARD-KERN-001; Write sshd drop-in" in md and "web-2" not in md.split(
        heading)[1]
    html = reports.render(run, "html")
    assert heading in html and "web-&lt;1&gt;" in html and "HARD-KERN-001" in html

"""The trends in the reports: the JSON carries the numbers (schema 3), the Markdown a table, the
HTML one inline SVG sparkline per host and filesystem, escaped, rendered by a real Chromium."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from fleetcare import reports, trends
from fleetcare.history import History
from fleetcare.results import validate

from .test_report_browser import _chromium, _dump_dom, _parse
from .test_trends import GB, T0, _run

HOSTILE_HOST = 'db-<script>document.title="PWNED"</script>'
HOSTILE_MOUNT = '/srv/"><img src=x onerror=alert(1)>'


@pytest.fixture
def trended(tmp_path):
    """A run of 3 hosts, 5 filesystems, after 8 daily runs (one filesystem new this run)."""
    def fs(i: int) -> dict[str, dict[str, float]]:
        return {"web-1": {"/": (40 - i) * GB, "/var": (30 - 2 * i) * GB},
                HOSTILE_HOST: {"/": 50 * GB, HOSTILE_MOUNT: (20 - i) * GB}}

    with History(tmp_path / "h.db") as history:
        for i in range(8):
            run = _run(i, T0 + timedelta(days=i), fs(i), mem=30 + 2 * i)
            run.finish()
            history.save(run)
        now = fs(8)
        now["db-9"] = {"/": 70 * GB}
        run = _run(99, T0 + timedelta(days=8), now, mem=46)
        trends.judge(history, run)
    run.finish()
    return run


def test_json_markdown_and_html_carry_the_trends(trended):
    doc = json.loads(reports.render(trended, "json"))
    validate(doc)
    assert doc["schema_version"] == 3
    assert len(doc["trends"]["filesystems"]) == 5 and len(doc["trends"]["resources"]) == 6
    var = next(f for f in doc["trends"]["filesystems"] if f["host"] == "web-1" and f["mount"] == "/var")
    assert var["days_until_full"] == pytest.approx(7.0, abs=0.01)  # 14 GB left, 2 GB a day
    md = reports.render(trended, "md")
    assert "## Capacity forecast" in md
    assert re.search(r"\| web-1 \| /var \| [0-9.]+ \| 9 \| 1\.00 \| 7\.0 \| full 2026-11-16 \|", md)
    assert "1 point, need 4" in md
    html = reports.render(trended, "html")
    section = html[html.index("id=\"trends\""):]
    fs_table = section[section.index('<table class="trend fs">'):section.index("</table>")]
    assert fs_table.count('<svg class="spark"') == 5  # one per host and filesystem
    assert fs_table.count("<polyline") == 5
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "onerror=alert(1)&gt;" in html


def test_the_trends_section_renders_in_chromium(tmp_path, trended):
    page = tmp_path / "report.html"
    page.write_text(reports.render(trended, "html"), encoding="utf-8")
    dom = _parse(_dump_dom(tmp_path, page))
    assert dom.title.startswith("Inspection report")  # the hostile host name did not run
    tags = [t for t, _ in dom.elements]
    assert "script" not in tags and "img" not in tags
    sparks = [a for t, a in dom.elements if t == "svg" and a.get("class") == "spark"]
    assert len(sparks) == 5 + 6  # 5 filesystems, and memory and load of 3 hosts
    labels = {a["aria-label"] for a in sparks}
    assert f"use of {HOSTILE_MOUNT} on {HOSTILE_HOST}" in labels  # as text, attribute intact
    polylines = [a for t, a in dom.elements if t == "polyline"]
    assert len(polylines) == 11
    assert all(re.fullmatch(r"(-?[0-9.]+,-?[0-9.]+ ?)+", a["points"]) for a in polylines)
    assert HOSTILE_MOUNT in dom.texts and "full in 7.0 days (2026-11-16)" in dom.texts
    # nothing the page does is refused or fails: the console stays clean (control first: a page
    # whose image the CSP refuses does log it, so this check can fail)
    control = tmp_path / "control.html"
    control.write_text(page.read_text(encoding="utf-8").replace("</main>", '<img src="http://192.0.2.1/x.png"></main>'),
                       encoding="utf-8")

    def console(path):
        logged = _chromium(tmp_path, "--enable-logging=stderr", "--v=0", "--dump-dom", path.as_uri()).stderr
        return [line for line in logged.splitlines() if ":CONSOLE" in line]

    assert any("Content Security Policy" in line for line in console(control))
    assert console(page) == []


@pytest.mark.parametrize(("key", "value"), [("status", "soon"), ("days_until_full", -1), ("r2", 1.5),
                                            ("samples", [["2026-11-01T06:00:00+00:00"]])])
def test_the_schema_refuses_a_broken_forecast(trended, key, value):
    from fleetcare.results import SchemaError

    doc = json.loads(reports.render(trended, "json"))
    doc["trends"]["filesystems"][0][key] = value
    with pytest.raises(SchemaError):
        validate(doc)

"""The host x check matrix of the HTML report: its size at 200 hosts x the 337 hardening
controls, every cell as the browser sees it (headless Debian chromium, as in
test_report_browser.py), a screenshot in which it paints in its colours, the per-host
sections it links to, and hostile names, IDs and titles rendered as text."""

from __future__ import annotations

import random
import struct
import zlib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

from fleetcare import catalog, reports
from fleetcare.reports import html as html_report
from fleetcare.reports import matrix
from fleetcare.results import SEVERITIES, Finding, HostResult, Run

from .test_report_browser import _chromium, _dump_dom, _parse
from .test_reports import IMG_EVIDENCE, SCRIPT_HOST, TITLE_PAYLOAD

LIMIT_BYTES = 5 * 1000 * 1000  # "5 MB", read strictly
HOSTS = 200
CONTROLS = len(catalog.load())  # 337 when this was measured; the catalog grows
# what each result must look like in the page: (class, character); a pass is a bare cell
EXPECTED = {"pass": (None, ""), "error": ("e", "!"), "waived": ("w", "w"), "not_applicable": ("na", "-")}
MISSING = ("m", "?")


def expected_cell(finding: Finding | None) -> tuple[str | None, str]:
    if finding is None:
        return MISSING
    if finding.status == "fail":
        return f"f{SEVERITIES.index(finding.severity)}", "x"
    return EXPECTED[finding.status]


def fleet_run(hosts: int = HOSTS, seed: int = 14) -> Run:
    """``hosts`` hosts x every control of the real hardening catalog (337), with health
    checks on most hosts too: about 8% failing (a few controls fail widely), a few errors,
    waivers and not-applicable results, some hosts without the health role (missing
    cells), and five hosts unreachable (no column). Evidence about as long as the
    controls' real evidence."""
    rng = random.Random(seed)
    controls = catalog.load()
    health = [(f"HLTH-CHK-{i:03d}", f"Health check {i} within its threshold", rng.choice(SEVERITIES))
              for i in range(12)]
    fail_p = {c["id"]: min(0.8, rng.expovariate(12.0)) for c in controls}
    run = Run(id="20261201-230000-mtrx", command="audit", inventory="inventories/customer-a.yml",
              started="2026-12-01T23:00:00+00:00")
    roles = ["web", "app", "db", "cache", "lb"]
    for n in range(hosts):
        name = f"{roles[n % len(roles)]}-{n:03d}.dc{n % 3 + 1}.customer-a.example"
        host = run.hosts[name] = HostResult(name, status="ok")
        for c in controls:
            r = rng.random()
            status = ("fail" if r < fail_p[c["id"]] else "error" if r > 0.998 else "waived" if r > 0.993
                      else "not_applicable" if r > 0.985 else "pass")
            evidence = ({"reason": "not in a container: the control does not apply"} if status == "not_applicable"
                        else {"file": "/etc/ssh/sshd_config.d/50-fleetcare.conf", "expected": "no",
                              "actual": "yes" if status == "fail" else "no", "source": "sshd -T"})
            host.findings.append(Finding(c["id"], c["title"], c["severity"], status, name, "hardening",
                                         evidence, c["remediation"], list(c.get("references", []))))
        if n % 7:  # every seventh host has no health results: missing cells
            for fid, title, sev in health:
                status = "fail" if rng.random() < 0.1 else "pass"
                host.findings.append(Finding(fid, title, sev, status, name, "health",
                                             {"used_pct": round(rng.uniform(10, 99), 1), "threshold_pct": 90},
                                             "Free space or grow the filesystem.", []))
    for n in range(5):
        name = f"edge-{n}.customer-a.example"
        run.hosts[name] = HostResult(name, "unreachable", f"ssh: connect to host 10.0.0.{n} port 22: timed out")
    run.finish()
    return run


@pytest.fixture(scope="module")
def fleet() -> Run:
    return fleet_run()


@pytest.fixture(scope="module")
def fleet_page(fleet, tmp_path_factory) -> Path:
    page = tmp_path_factory.mktemp("matrix") / "report.html"
    page.write_text(reports.render(fleet, "html"), encoding="utf-8")
    return page


# -- size ---------------------------------------------------------------------------------------------
def test_200_hosts_x_337_controls_stay_under_5_mb(fleet, fleet_page):
    size = fleet_page.stat().st_size
    assert size < LIMIT_BYTES, f"report.html is {size:,} bytes"
    text = fleet_page.read_text(encoding="utf-8")
    # the matrix and the per-host sections are really there, not left out to save room
    m = html_report.context(fleet)["matrix"]
    assert not m.too_big and m.hosts_listed
    assert CONTROLS >= 337 and (len(m.hosts), m.checks) == (HOSTS, CONTROLS + 12)
    start, end = text.index('<table class="mx">'), text.index("</table>", text.index('<table class="mx">'))
    assert text.count("<td", start, end) == HOSTS * (CONTROLS + 12)
    assert text.count('<section class="ph" id="h-') == HOSTS


def test_the_limits_leave_out_what_would_not_fit(fleet, monkeypatch):
    monkeypatch.setattr(matrix, "MAX_HOST_CELLS", 1000)
    text = reports.render(fleet, "html")
    assert '<table class="mx">' in text and 'class="ph"' not in text
    assert "too many to list host by host" in text and 'href="#h-' not in text
    monkeypatch.setattr(matrix, "MAX_CELLS", 1000)
    text = reports.render(fleet, "html")
    assert '<table class="mx">' not in text and "cells are too many to draw" in text


# -- the DOM in a real browser ---------------------------------------------------------------------------
class _Matrix(HTMLParser):
    """The matrix as chromium serialised it: column host names and their links, and per
    row the check ID and each cell's (class, text); plus the per-host sections."""

    def __init__(self) -> None:
        super().__init__()
        self.hosts: list[str] = []
        self.links: list[str] = []
        self.rows: list[tuple[str, list[tuple[str | None, str]]]] = []
        self.sections: dict[str, str] = {}
        self._in = False
        self._part = ""
        self._text: list[str] | None = None
        self._section: str | None = None
        self._cell = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("class") == "mx":
            self._in = True
        elif tag == "section" and a.get("class") == "ph":
            self._section = a["id"]
        elif tag == "h3" and self._section:
            self._text = []
        if not self._in:
            return
        if tag in ("thead", "tbody"):
            self._part = tag
        elif tag == "tr" and self._part == "tbody" and a.get("class") != "rg":
            self.rows.append(("", []))
        elif tag == "th" and self._part == "thead" and a.get("class") == "hh":
            self._text = []
        elif tag == "a" and self._part == "thead":
            self.links.append(a.get("href") or "")
        elif tag == "th" and self._part == "tbody" and self.rows and not self.rows[-1][0]:
            self._text = []
        elif tag == "td" and self._part == "tbody":
            self.rows[-1][1].append((a.get("class"), ""))
            self._cell = True

    def handle_endtag(self, tag):
        if tag in ("td", "tr"):
            self._cell = False
        if tag == "table" and self._in:
            self._in = False
        elif tag == "h3" and self._section and self._text is not None:
            self.sections[self._section] = "".join(self._text).removesuffix("matrix")
            self._text = None
        elif tag == "section":
            self._section = None
        elif tag == "th" and self._text is not None and self._in:
            text = "".join(self._text)
            if self._part == "thead":
                self.hosts.append(text)
            elif self.rows and self.rows[-1][1] == [] and not self.rows[-1][0]:
                self.rows[-1] = (text, [])
            self._text = None

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)
        elif self._cell:
            cls, text = self.rows[-1][1][-1]
            self.rows[-1][1][-1] = (cls, text + data)


def _matrix_dom(tmp_path: Path, page: Path) -> _Matrix:
    dom = _Matrix()
    dom.feed(_dump_dom(tmp_path, page))
    dom.close()
    return dom


def test_every_cell_in_the_browser_is_the_hosts_result(tmp_path, fleet, fleet_page):
    dom = _matrix_dom(tmp_path, fleet_page)
    answered = [h for h in fleet.hosts.values() if h.status == "ok"]
    assert sorted(dom.hosts) == sorted(h.name for h in answered)  # the unreachable have no column
    ids = {f.id for h in answered for f in h.findings}
    assert sorted(fid for fid, _ in dom.rows) == sorted(ids)  # each check once
    assert sum(len(cells) for _, cells in dom.rows) == len(dom.hosts) * len(ids)
    by_host = {h.name: {f.id: f for f in h.findings} for h in answered}
    kinds: Counter[str | None] = Counter()
    for fid, cells in dom.rows:
        assert len(cells) == len(dom.hosts), fid
        for host, cell in zip(dom.hosts, cells, strict=True):
            assert cell == expected_cell(by_host[host].get(fid)), (fid, host)
            kinds[cell[0]] += 1
    # every kind of cell is there, failures in all four severities, missing health results too
    assert set(kinds) == {None, "f0", "f1", "f2", "f3", "e", "w", "na", "m"}
    # columns: the worst host first (most critical failures, then major, ..., then errors)
    tallies = [tuple([sum(f.status == "fail" and f.severity == sev for f in by_host[h].values())
                      for sev in SEVERITIES] + [sum(f.status == "error" for f in by_host[h].values())])
               for h in dom.hosts]
    assert tallies == sorted(tallies, reverse=True) and len(set(tallies)) > 10
    # each column header leads to that host's section, which names the same host
    assert dom.links == [f"#h-{i}" for i in range(len(dom.hosts))]
    assert [dom.sections[link[1:]] for link in dom.links] == dom.hosts


def test_each_host_section_lists_its_results_failing_first(fleet):
    m = html_report.context(fleet)["matrix"]
    for mh in m.hosts:
        findings = fleet.hosts[mh.name].findings
        fails = [f for f in findings if f.status == "fail"]
        kinds = [cls for cls, _, _ in mh.lists]
        assert kinds == sorted(kinds, key=["f0", "f1", "f2", "f3", "e", "w", "na"].index)
        listed = {fid for cls, _, ids in mh.lists if cls.startswith("f") for fid in ids}
        assert listed == {f.id for f in fails}
        assert mh.counts["p"] == sum(f.status == "pass" for f in findings)
        assert mh.counts["m"] == m.checks - len({f.id for f in findings})


# -- a screenshot --------------------------------------------------------------------------------------
def _pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the RGB rows of an 8-bit RGB or RGBA PNG (as chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert depth == 8 and ctype in (2, 6), (depth, ctype)
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    prev, rows = bytearray(stride), []
    for y in range(height):
        at = y * (stride + 1)
        kind, line = raw[at], bytearray(raw[at + 1:at + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev, strict=True))
        elif kind == 3:
            for i in range(stride):
                line[i] = (line[i] + (((line[i - bpp] if i >= bpp else 0) + prev[i]) >> 1)) & 255
        elif kind == 4:
            for i in range(stride):
                a, b = (line[i - bpp] if i >= bpp else 0), prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line) if bpp == 3 else bytes(v for i, v in enumerate(line) if i % 4 != 3))
        prev = line
    return width, height, rows


def test_the_matrix_paints_in_its_colours(tmp_path, fleet_page):
    shot = tmp_path / "matrix.png"
    _chromium(tmp_path, "--window-size=1400,1600", f"--screenshot={shot}", fleet_page.as_uri(), timeout=90)
    assert shot.exists()
    width, height, rows = _pixels(shot.read_bytes())
    assert (width, height) == (1400, 1600)
    colours: Counter[bytes] = Counter()
    for row in rows:
        colours.update(row[i:i + 3] for i in range(0, len(row), 3))
    assert len(colours) > 16, "the screenshot is nearly one colour: the page did not paint"
    pass_green = bytes.fromhex("bfe3cb")  # used by the matrix and nowhere else in the page
    top = next(y for y, row in enumerate(rows) if pass_green in {row[i:i + 3] for i in range(0, len(row), 3)})
    below: Counter[bytes] = Counter()
    for row in rows[top:]:
        below.update(row[i:i + 3] for i in range(0, len(row), 3))
    assert below[pass_green] > 100_000, "the matrix's pass cells did not paint"
    for name, hex_colour in (("critical", "b3261e"), ("major", "d9480f"), ("minor", "b7791f"),
                             ("error", "6b46c1")):
        assert below[bytes.fromhex(hex_colour)] > 50, f"no {name} cell painted in the matrix"


# -- hostile values ---------------------------------------------------------------------------------------
HOSTILE_ID = '"><img src=x onerror=alert(1)>'


def hostile_run() -> Run:
    run = Run(id="20261201-230000-evil", command="inspect", started="2026-12-01T23:00:00+00:00")
    for name in (SCRIPT_HOST, TITLE_PAYLOAD, "web-1", "a b\u202e#h-0"):
        host = run.hosts[name] = HostResult(name, status="ok")
        host.findings += [
            Finding(HOSTILE_ID, TITLE_PAYLOAD, "critical", "fail", name, IMG_EVIDENCE, {"x": IMG_EVIDENCE}),
            Finding("HLTH-DISK-001", "Disk", "minor", "waived" if name == "web-1" else "pass", name,
                    f"</th></tr></table>{SCRIPT_HOST}", {}),
        ]
    run.finish()
    return run


def test_hostile_values_in_the_matrix_render_as_text(tmp_path):
    page = tmp_path / "report.html"
    page.write_text(reports.render(hostile_run(), "html"), encoding="utf-8")
    text = _dump_dom(tmp_path, page)
    dom, cells = _parse(text), _Matrix()
    cells.feed(text)
    cells.close()
    assert dom.title == "Inspection report · 20261201-230000-evil"
    tags = [tag for tag, _ in dom.elements]
    assert "script" not in tags and "img" not in tags
    assert not [(t, a) for t, a in dom.elements if any(k.startswith("on") for k in a)]
    # the names and IDs are the matrix's text, exactly as sent (the bidi override made visible)
    assert sorted(cells.hosts) == sorted([SCRIPT_HOST, TITLE_PAYLOAD, "web-1", "a b\\u202e#h-0"])
    assert sorted(fid for fid, _ in cells.rows) == sorted([HOSTILE_ID, "HLTH-DISK-001"])
    assert sum(len(c) for _, c in cells.rows) == 8
    assert {c for _, row in cells.rows for c in row} == {("f0", "x"), (None, ""), ("w", "w")}
    # titles are attributes holding the text; anchors are positions, never names
    assert {a.get("title") for t, a in dom.elements if t == "th" and a.get("class") == "hh"} == set(cells.hosts)
    assert any(a.get("title") == f"critical · {TITLE_PAYLOAD}" for t, a in dom.elements if t == "th")
    assert cells.links == ["#h-0", "#h-1", "#h-2", "#h-3"]
    assert sorted(cells.sections.values()) == sorted(cells.hosts)
    assert [a["id"] for t, a in dom.elements if t == "section" and a.get("class") == "ph"] == [
        "h-0", "h-1", "h-2", "h-3"]

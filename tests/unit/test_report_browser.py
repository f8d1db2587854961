"""The HTML report in a real browser (headless Debian chromium): hostile values render as
text, no injected element exists, no injected script runs, and the page paints.

Chromium is required, not optional: CI installs it (``apt-get install -y chromium``), and
a missing browser fails here with that instruction instead of silently skipping.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from fleetcare import reports

from .test_reports import IMG_EVIDENCE, SCRIPT_HOST, TITLE_PAYLOAD, sample_run

CHROMIUM = "/usr/bin/chromium"
EXPECTED_TITLE = "Inspection report · 20261125-092000-abcd"


def _chromium(tmp_path: Path, *args: str, timeout: int = 45) -> subprocess.CompletedProcess[str]:
    exe = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if not exe:
        pytest.fail(f"headless chromium is required for this test and was not found at {CHROMIUM}: "
                    "install it with `apt-get install -y chromium` (CI does)")
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--hide-scrollbars", f"--user-data-dir={profile}", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        # a page load takes about a second; a page that never finishes is most often one
        # where an injected alert() holds a modal dialog open
        pytest.fail(f"chromium did not finish within {timeout} s (did a script open a dialog?)")
    assert proc.returncode == 0, f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}"
    return proc


def _dump_dom(tmp_path: Path, page: Path) -> str:
    return _chromium(tmp_path, "--dump-dom", page.as_uri()).stdout


class _Dom(HTMLParser):
    """Elements, attributes and text nodes of the DOM chromium serialised."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[str] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        self._in_title = tag == "title" and not self.title

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        self.texts.append(data)
        if self._in_title:
            self.title += data


def _parse(text: str) -> _Dom:
    dom = _Dom()
    dom.feed(text)
    dom.close()
    return dom


@pytest.fixture
def hostile_page(tmp_path) -> Path:
    page = tmp_path / "report.html"
    page.write_text(reports.render(sample_run(hostile=True), "html"), encoding="utf-8")
    return page


def test_the_harness_sees_a_script_that_runs(tmp_path):
    """Control: an unescaped script in a page without CSP does run, and the dump shows it;
    so the PWNED checks below can fail."""
    page = tmp_path / "control.html"
    page.write_text(f"<!DOCTYPE html><html><head><title>clean</title></head><body>{TITLE_PAYLOAD}"
                    "</body></html>", encoding="utf-8")
    assert _parse(_dump_dom(tmp_path, page)).title == "PWNED"


def test_hostile_values_render_as_text(tmp_path, hostile_page):
    dom = _parse(_dump_dom(tmp_path, hostile_page))
    assert dom.title == EXPECTED_TITLE  # TITLE_PAYLOAD (a host message) did not run
    tags = [tag for tag, _ in dom.elements]
    assert "script" not in tags
    assert "img" not in tags
    assert not [(t, a) for t, a in dom.elements if any(k.startswith("on") for k in a)]
    # the browser's text nodes hold the strings exactly as the hosts sent them
    assert SCRIPT_HOST in dom.texts
    assert TITLE_PAYLOAD in dom.texts
    assert any(IMG_EVIDENCE in t for t in dom.texts)
    assert "body" in tags and "svg" in tags and "article" in tags


def _png_info(data: bytes) -> tuple[int, int, int]:
    """Width, height and the number of distinct byte values in the decoded pixel rows."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


def test_report_paints_a_screenshot(tmp_path, hostile_page):
    shot = tmp_path / "report.png"
    _chromium(tmp_path, "--window-size=1280,1800", f"--screenshot={shot}", hostile_page.as_uri())
    data = shot.read_bytes()
    width, height, distinct = _png_info(data)
    assert (width, height) == (1280, 1800)
    assert len(data) > 50_000, "the screenshot is too small to hold the report"
    assert distinct > 64, "the screenshot is nearly one colour: the page did not paint"

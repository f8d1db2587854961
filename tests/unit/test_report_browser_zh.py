"""The zh-CN HTML report in a real browser (headless Debian chromium): its Chinese paints as CJK
glyphs, not as tofu (the missing-glyph box), with the fonts the machine has (no web fonts).

How: the report is screenshot twice, once as it is and once with every CJK character replaced by
a code point no font has (U+10FFFD, private use). Where the Chinese renders as tofu, both pages
are the same boxes, pixel for pixel; where it renders as glyphs, they differ. The same pair under
a fontconfig that hides every font proves the comparison can fail. CI installs the font with
``./setup.sh --test`` (Debian's fonts-wqy-microhei).
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import pytest

from fleetcare.reports import html as html_report

from .test_i18n import fleet_run
from .test_report_browser import _chromium, _png_info

CJK_CHARS = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
MISSING = "\U0010fffd"  # private use: in no font
SIZE = "--window-size=1280,1000"


def _pixels(png: Path) -> bytes:
    data, pos, idat = png.read_bytes(), 8, b""
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        if data[pos + 4:pos + 8] == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return zlib.decompress(idat)


def _pair(tmp_path: Path, name: str) -> tuple[bytes, bytes]:
    """Screenshots of the zh-CN report and of its copy with the CJK replaced by MISSING."""
    page = html_report.render(fleet_run(), "zh-CN")
    assert len(CJK_CHARS.findall(page)) > 500
    real, tofu = tmp_path / f"{name}-zh.html", tmp_path / f"{name}-tofu.html"
    real.write_text(page, encoding="utf-8")
    tofu.write_text(CJK_CHARS.sub(MISSING, page), encoding="utf-8")
    shots = []
    for path in (real, tofu):
        shot = path.with_suffix(".png")
        _chromium(tmp_path, SIZE, f"--screenshot={shot}", path.as_uri())
        width, height, distinct = _png_info(shot.read_bytes())
        assert (width, height) == (1280, 1000) and distinct > 64, "the page did not paint"
        shots.append(_pixels(shot))
    return shots[0], shots[1]


def test_zh_report_paints_cjk_glyphs_not_tofu(tmp_path):
    real, tofu = _pair(tmp_path, "fonts")
    assert real != tofu, (
        "the zh-CN report's Chinese renders as missing-glyph boxes: no CJK font is installed "
        "(Debian: apt-get install fonts-wqy-microhei; ./setup.sh --test does)")
    # not a few pixels: the headings, labels and the verdict all differ
    changed = sum(a != b for a, b in zip(real, tofu, strict=True))
    assert changed > 20_000, changed


def test_without_a_cjk_font_the_comparison_sees_tofu(tmp_path, monkeypatch):
    """The check can fail: with fontconfig given no fonts at all, both pages are boxes alike."""
    empty = tmp_path / "no-fonts"
    empty.mkdir()
    conf = tmp_path / "fonts.conf"
    conf.write_text('<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n'
                    f"<fontconfig><dir>{empty}</dir><cachedir>{tmp_path / 'fc-cache'}</cachedir></fontconfig>\n")
    monkeypatch.setenv("FONTCONFIG_FILE", str(conf))
    real, tofu = _pair(tmp_path, "nofonts")
    if real != tofu:
        pytest.fail("with no fonts at all the two pages still differ: this comparison cannot tell "
                    "glyphs from tofu on this machine")

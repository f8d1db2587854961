"""The JSON report: ``Run.to_report()``, checked against the report schema, then dumped.

It is the source of truth the other formats and ``fleetcare report`` can be
rebuilt from, so it is validated before anything is written, and dumped
deterministically (sorted keys, no whitespace, UTF-8 text kept as is): the same
run always gives the same bytes. Characters that would steer a terminal showing
the file (C1 controls, bidi overrides: :data:`fleetcare.term.UNSAFE`) are written
as ``\\uXXXX`` escapes, which any JSON reader decodes back to the same text.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fleetcare.results import Run, SchemaError, validate
from fleetcare.term import UNSAFE


def document(run: Run) -> dict[str, Any]:
    """The report dict of ``run``; raises SchemaError when it breaks the schema."""
    doc = run.to_report()
    validate(doc)
    return doc


def dumps(doc: dict[str, Any]) -> str:
    try:
        text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False)
    except ValueError as exc:  # NaN or infinity in a metric or in evidence: not JSON
        raise SchemaError(f"report: {exc}") from None
    if not text.isascii() or "\x7f" in text:  # json.dumps escaped every other ASCII control
        text = UNSAFE.sub(_json_escape, text)
    return text + "\n"


def _json_escape(match: re.Match[str]) -> str:
    # outside strings JSON has no such characters, so every match is inside one
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def render(run: Run) -> str:
    return dumps(document(run))

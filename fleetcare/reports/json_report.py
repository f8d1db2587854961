"""The JSON report: ``Run.to_report()``, checked against the report schema, then dumped.

It is the source of truth the other formats and ``fleetcare report`` can be
rebuilt from, so it is validated before anything is written, and dumped
deterministically (sorted keys, no whitespace, UTF-8 text kept as is): the same
run always gives the same bytes.
"""

from __future__ import annotations

import json
from typing import Any

from fleetcare.results import Run, SchemaError, validate


def document(run: Run) -> dict[str, Any]:
    """The report dict of ``run``; raises SchemaError when it breaks the schema."""
    doc = run.to_report()
    validate(doc)
    return doc


def dumps(doc: dict[str, Any]) -> str:
    try:
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False) + "\n"
    except ValueError as exc:  # NaN or infinity in a metric or in evidence: not JSON
        raise SchemaError(f"report: {exc}") from None


def render(run: Run) -> str:
    return dumps(document(run))

"""Text for the terminal (and for reports a terminal may show), made harmless.

Host names, messages and evidence come from the managed hosts, which we do not
trust. Printed raw, an ESC starts a terminal escape sequence (retitle the
window, move the cursor, hide text, on some terminals write to the clipboard),
a CR or a backspace overwrites what was printed before it, a BEL rings, and a
bidi override (U+202E) makes ``db-1`` look like another host. :func:`safe`
turns each such character into a visible backslash escape instead.
"""

from __future__ import annotations

import re

# Characters that steer a terminal or a text renderer instead of being shown:
# C0 controls (ESC, CR, BS, BEL, tab, newline ...), DEL and the C1 controls
# (U+009B is an 8-bit CSI), bidi marks, embeddings, overrides and isolates,
# zero-width and other invisible format characters, line and paragraph
# separators, the BOM, interlinear annotation marks, lone surrogates (left by
# undecodable bytes; they cannot even be encoded for output) and the invisible
# tag characters.
UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f"
    "\ufeff\ufff9-\ufffb\ud800-\udfff\U000e0000-\U000e007f]")


def escape(ch: str) -> str:
    """``\\x1b``, ``\\u202e``, ``\\U000e0041``: the character's code, readable."""
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def safe(value: object) -> str:
    """``value`` as text with every unsafe character escaped; printable text
    (any script, CJK included) is left as it is."""
    text = "" if value is None else str(value)
    return UNSAFE.sub(lambda m: escape(m.group()), text)

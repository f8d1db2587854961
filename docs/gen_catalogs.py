"""Bring the message catalogs (fleetcare/locale/*/LC_MESSAGES/{ui,checks}.po) up to date with the code.

    python docs/gen_catalogs.py            # every language of fleetcare.i18n.LANGUAGES
    python docs/gen_catalogs.py --check    # exit 1 when a catalog lacks a message (what the tests check)

ui.po: every text the reports and the CLI print, found where it is used: literals piped into the
template's ``t``/``label`` filters, literals passed to ``_``/``tr`` (and ``.plural``/``.label``)
in the report and CLI modules, the registry's report titles and exit meanings, and
``fleetcare.i18n.LABELS``. checks.po: the title and remediation of every check and control
(``fleetcare.catalog``), each under its ID as msgctxt. A translation whose English text is gone
is dropped; a new or changed English text gets an empty entry to translate. See
docs/translations.md.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TEMPLATES = sorted((ROOT / "fleetcare" / "reports" / "templates").glob("*.j2"))
# modules whose printed texts go through the translator
SOURCES = [ROOT / "fleetcare" / p for p in (
    "reports/markdown.py", "reports/html.py", "reports/view.py", "cli.py", "commands.py")]
_FILTERED = re.compile(r"""(?P<q>["'])(?P<text>(?:(?!(?P=q)).)+)(?P=q)\s*\|\s*(?:t|label)\b""")
_CALLS = {"_", "tr", "t"}
_METHODS = {"plural", "label"}


def template_messages() -> list[tuple[str, str]]:
    """(text, file) of the literals the templates translate (no line numbers: an edit elsewhere in
    the template must not touch the catalog)."""
    out = []
    for path in TEMPLATES:
        for line in path.read_text(encoding="utf-8").splitlines():
            out += [(m.group("text"), str(path.relative_to(ROOT))) for m in _FILTERED.finditer(line)]
    return out


def code_messages() -> list[tuple[str, str]]:
    """(text, where) of the literals passed to the translator in the Python sources."""
    out = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            if (isinstance(f, ast.Name) and f.id in _CALLS) or (
                    isinstance(f, ast.Attribute) and f.attr in _METHODS
                    and isinstance(f.value, ast.Name) and f.value.id in _CALLS):
                out += [(a.value, str(path.relative_to(ROOT))) for a in node.args
                        if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    return out


def ui_messages() -> list[tuple[str, str]]:
    """Every UI text, first place of use, in order of first appearance."""
    from fleetcare import commands, i18n

    found = template_messages() + code_messages()
    found += [(c.title, "fleetcare/commands.py") for c in commands.COMMANDS.values() if c.title]
    found += [(e.short, "fleetcare/commands.py") for e in commands.EXIT_CODES]
    found += [(w, "fleetcare/i18n.py LABELS") for w in i18n.LABELS]
    seen: dict[str, str] = {}
    for text, where in found:
        seen.setdefault(text, where)
    return list(seen.items())


def check_messages() -> list[tuple[str, str, str]]:
    """(ID, English, what) of every check's and control's title and remediation."""
    from fleetcare import catalog

    records = [r for _, r in catalog._role_checks()] + catalog.load()
    return [(r["id"], r[k], k) for r in records for k in ("title", "remediation") if r.get(k)]


def _header(lang: str, domain: str, created=None):
    from babel.messages.catalog import Catalog

    return Catalog(locale=lang.replace("-", "_"), domain=domain, project="fleetcare",
                   copyright_holder="the fleetcare authors", fuzzy=False, creation_date=created)


def update(lang: str, check: bool = False) -> list[str]:
    """Rewrite ``lang``'s catalogs from the code, keeping translations; the messages untranslated."""
    from babel.messages.pofile import read_po, write_po

    from fleetcare import i18n

    missing = []
    wanted = {
        "ui": [(None, text, [(where, 0)]) for text, where in ui_messages()],
        "checks": [(fid, text, [(f"{fid} {what}", 0)]) for fid, text, what in check_messages()],
    }
    for domain, messages in wanted.items():
        path = i18n.catalog_path(lang, domain)
        old, created = {}, None
        if path.exists():
            with open(path, "rb") as fh:
                previous = read_po(fh)
            old, created = {(m.context, m.id): m.string for m in previous if m.id}, previous.creation_date
        new = _header(lang, domain, created)  # the file's date stays: a rerun changes nothing
        for context, text, where in messages:
            string = old.get((context, text)) or ""
            if not string:
                missing.append(f"{path.relative_to(ROOT)}: {context + ' ' if context else ''}{text!r}")
            new.add(text, string, context=context, auto_comments=[w for w, _ in where])
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as fh:
                write_po(fh, new, width=100, omit_header=False, sort_output=False, no_location=True)
    return missing


def main(argv: list[str] | None = None) -> int:
    from fleetcare import i18n

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a message is missing")
    args = parser.parse_args(argv)
    missing = [m for lang in i18n.LANGUAGES if lang != i18n.DEFAULT for m in update(lang, args.check)]
    for line in missing:
        print(f"untranslated: {line}")
    return 1 if missing and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())

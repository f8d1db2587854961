"""The language of the reports and of the CLI's lines after a run: one translator, message catalogs.

Everything a reader sees goes through one function: :func:`translator` gives ``t(text, **fields)``
(the Jinja filter ``t`` of the HTML template, ``_`` in markdown.py and the CLI), which looks the
English text up in the language's catalog and fills its ``{fields}``; ``t.check(ID, text)``
translates a check's or control's title or remediation, looked up under the check's ID (the
gettext ``msgctxt``), so an English text that changes is untranslated until the catalog follows.
What is not in the catalog stays English: a report is never incomplete, and the tests say what is
missing.

The catalogs are gettext ``.po`` files (``fleetcare/locale/<ll_CC>/LC_MESSAGES/``), read with
Babel on the controller when a report is rendered: ``ui.po`` (headings, labels, CLI lines) and
``checks.po`` (titles and remediation by ID). Hosts never see them; the JSON report stays English
(it is data; its ``lang`` is always ``en``). See docs/translations.md.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

from fleetcare.errors import InputError

DEFAULT = "en"
LANGUAGES = ("en", "zh-CN")  # what --lang accepts; every one but English has a catalog directory
LOCALE_DIR = Path(__file__).with_name("locale")
DOMAINS = ("ui", "checks")

# environment values that choose a language: (prefix, language); the first variable set decides
_ENV_VARS = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
_ENV_PREFIXES = (("zh_cn", "zh-CN"), ("zh-cn", "zh-CN"), ("zh_hans", "zh-CN"), ("zh-hans", "zh-CN"))

_current: contextvars.ContextVar[str] = contextvars.ContextVar("fleetcare_lang", default=DEFAULT)


def normalise(value: str) -> str:
    """``zh-CN`` for ``zh-CN``/``zh_CN``/``zh-cn``..., ``en``; InputError naming --lang otherwise."""
    wanted = value.strip().replace("_", "-").lower()
    for lang in LANGUAGES:
        if lang.lower() == wanted:
            return lang
    raise InputError(f"--lang: {value!r} is not one of {', '.join(LANGUAGES)}")


def from_environment(environ: Mapping[str, str] | None = None) -> str:
    """The language the locale variables ask for (GNU order: LANGUAGE, LC_ALL, LC_MESSAGES, LANG;
    the first one set decides), English unless it starts with zh_CN, zh-CN or zh_Hans."""
    environ = os.environ if environ is None else environ
    for name in _ENV_VARS:
        value = environ.get(name, "").strip()
        if not value:
            continue
        first = value.split(":", 1)[0].lower()  # LANGUAGE is a list: its first entry
        return next((lang for prefix, lang in _ENV_PREFIXES if first.startswith(prefix)), DEFAULT)
    return DEFAULT


def choose(option: str | None, environ: Mapping[str, str] | None = None) -> str:
    """--lang when given (it wins), else the environment's locale."""
    return normalise(option) if option else from_environment(environ)


def current() -> str:
    return _current.get()


@contextlib.contextmanager
def use(lang: str) -> Iterator[str]:
    """Render everything inside in ``lang`` (the CLI wraps a whole command in it)."""
    token = _current.set(normalise(lang))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def catalog_path(lang: str, domain: str) -> Path:
    return LOCALE_DIR / lang.replace("-", "_") / "LC_MESSAGES" / f"{domain}.po"


@cache
def _messages(lang: str, domain: str) -> dict[tuple[str | None, str], str]:
    """(context, English) -> translation of one catalog; fuzzy and empty entries left out."""
    if lang == DEFAULT:
        return {}
    from babel.messages.pofile import read_po

    with open(catalog_path(lang, domain), "rb") as fh:
        catalog = read_po(fh, locale=lang.replace("-", "_"), domain=domain)
    table: dict[tuple[str | None, str], str] = {}
    for message in catalog:
        if not message.id or message.fuzzy or isinstance(message.id, tuple):
            continue
        if isinstance(message.string, str) and message.string:
            table[(message.context, message.id)] = message.string
    return table


class Translator:
    """``t("Hosts")``, ``t("{n} more", n=3)``, ``t.check("HARD-SSH-001", title)``."""

    def __init__(self, lang: str) -> None:
        self.lang = normalise(lang)
        self._ui = _messages(self.lang, "ui")
        self._checks = _messages(self.lang, "checks")

    def __call__(self, text: str, /, **fields: object) -> str:
        out = self._ui.get((None, text), text)
        return out.format(**fields) if fields else out

    def plural(self, singular: str, plural: str, count: int, /, **fields: object) -> str:
        """English picks by ``count``; each form is its own message (Chinese has one form)."""
        return self(singular if count == 1 else plural, count=f"{count:,}", **fields)

    def check(self, finding_id: str, text: str) -> str:
        """A check's title or remediation, by its ID and its English text."""
        return self._checks.get((finding_id, text), text) if text else text

    def label(self, word: str) -> str:
        """A status, severity or state as the reports show it (``not_applicable``: not applicable)."""
        return self(word.replace("_", " "))


def translator(lang: str | None = None) -> Translator:
    return _translator(normalise(lang) if lang else current())


@cache
def _translator(lang: str) -> Translator:
    return Translator(lang)


# labels the reports print from data (statuses, severities, host states, comparison states):
# not literals at the place they are shown, so listed here for the catalog and its tests
LABELS = (
    "critical", "major", "minor", "info",
    "pass", "fail", "error", "not applicable", "waived",
    "ok", "unreachable", "failed", "not finished", "pending",
    "new", "regressed", "still open", "resolved",
    "running", "complete", "interrupted", "abandoned",
    "overdue", "respond late", "due", "active", "expiring", "expired", "revoked",
    "forecast", "unsteady", "insufficient", "not filling",
    "history", "file", "role",  # where a waiver came from
)

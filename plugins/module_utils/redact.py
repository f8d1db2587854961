# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

"""Lines that look like secrets, redacted on the host before any text leaves it.

:func:`redact` keeps a line's key and separator and replaces its value with :data:`MARK`:

- ``key = value`` and ``key: value`` where the key holds a secret-looking word (password,
  passwd, passphrase, secret, token, key, credential, auth, pass, pwd, psk), in any case, quoted
  or not, commented out or not (a commented secret is still a secret);
- ``key value`` (sshd/redis style, whitespace-separated) where the key holds one of the stronger
  words (password, passwd, passphrase, secret, token, requirepass, masterauth, psk);
- a password in a URL (``scheme://user:PASSWORD@host``);
- every line inside a PEM private key block (``-----BEGIN ... PRIVATE KEY-----``).

It errs on the side of redacting too much (``keyboard: us`` is redacted): a line hidden by
mistake costs a line of diff, a secret shown costs the secret.

Pure Python without imports from Ansible (runs on the managed host).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

MARK = "<redacted>"
_WORDS = r"(?:password|passwd|passphrase|secret|token|key|credential|auth|pass|pwd|psk)"
_STRONG = r"(?:password|passwd|passphrase|secret|token|requirepass|masterauth|psk)"
# multiline patterns run over a whole text in C; [ \t] (never \s) keeps each match on its line.
# A key is matched whole, then judged by its words (no backtracking through the key).
_ASSIGN = re.compile(r"""^([ \t]*(?:[#;!]+[ \t]*)?["']?([\w.\-\[\]/@$]+)["']?[ \t]*(?:=>|:=|=|:)[ \t]*)(\S.*)$""",
                     re.MULTILINE)
_SPACED = re.compile(r"^([ \t]*(?:[#;!]+[ \t]*)?([\w.\-]+)[ \t]+)([^\s=:].*)$", re.MULTILINE)
_IS_SECRET = re.compile(_WORDS, re.IGNORECASE)
_IS_STRONG = re.compile(_STRONG, re.IGNORECASE)
_URL = re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^\s:/@]+:)([^\s@/]+)(@)", re.IGNORECASE)
_PEM = re.compile(r"(-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[^\n]*\n)(.*?)(^[^\n]*-----END [A-Z0-9 ]*PRIVATE KEY-----)",
                  re.DOTALL | re.MULTILINE)
_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY-----")
# a text holding none of these needs no closer look (most of /etc)
_HINTS = ("pass", "pwd", "secret", "token", "key", "credential", "auth", "psk", "://")


def _judged(words):
    def value(match):
        return match.group(1) + MARK if words.search(match.group(2)) else match.group(0)
    return value


_ASSIGNED, _SPACED_OUT = _judged(_IS_SECRET), _judged(_IS_STRONG)


def _pem(match):
    inner = "".join(MARK + "\n" for _ in match.group(2).splitlines())
    return match.group(1) + inner + match.group(3)


def redact(text):
    """``text`` with every secret-looking value replaced by :data:`MARK`."""
    low = text.lower()
    if not any(hint in low for hint in _HINTS):
        return text
    if "private key-----" in low:
        text = _PEM.sub(_pem, text)
    begin = _PEM_BEGIN.search(text) if "private key-----" in low else None
    while begin:  # a key block without its END line: everything after BEGIN is hidden
        head, tail = text[:begin.end()], text[begin.end():]
        if _PEM_END.search(tail) and _PEM_END.search(tail).start() == tail.find("-----END"):
            begin = _PEM_BEGIN.search(text, begin.end())
            continue
        rest = tail.split("\n")
        text = head + rest[0] + "".join("\n" + (MARK if line.strip() else line) for line in rest[1:])
        break
    text = _ASSIGN.sub(_ASSIGNED, text)
    text = _SPACED.sub(_SPACED_OUT, text)
    return _URL.sub(lambda m: m.group(1) + MARK + m.group(3), text)


def redact_line(line):
    return redact(line)

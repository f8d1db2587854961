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
_ASSIGN = re.compile(r"""^(\s*(?:[#;!]+\s*)?["']?[\w.\-\[\]/@$]*%s[\w.\-\[\]/@$]*["']?\s*(?:=|:|=>|:=)\s*)(\S.*)$"""
                     % _WORDS, re.IGNORECASE)
_SPACED = re.compile(r"^(\s*(?:[#;!]+\s*)?[\w.\-]*%s[\w.\-]*\s+)(\S.*)$" % _STRONG, re.IGNORECASE)
_URL = re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^\s:/@]+:)([^\s@/]+)(@)", re.IGNORECASE)
_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY-----")


def redact_line(line):
    match = _ASSIGN.match(line) or _SPACED.match(line)
    if match:
        return match.group(1) + MARK
    return _URL.sub(lambda m: m.group(1) + MARK + m.group(3), line)


def redact(text):
    """``text`` with every secret-looking value replaced by :data:`MARK`, line by line."""
    out, in_key = [], False
    for line in text.splitlines(True):
        body = line.rstrip("\r\n")
        end = line[len(body):]
        if in_key:
            if _PEM_END.search(body):
                in_key = False
                out.append(body + end)
            else:
                out.append(MARK + end)
            continue
        if _PEM_BEGIN.search(body):
            in_key = True
            out.append(body + end)
            continue
        out.append(redact_line(body) + end)
    return "".join(out)

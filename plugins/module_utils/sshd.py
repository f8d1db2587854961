# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

"""Reading an OpenSSH server's effective configuration (``sshd -T``), for every fleetcare reader.

The audit module (``hardening_audit``) and the lock-out filters (``filter/sshd_access.py``,
on the controller) both read ``sshd -T`` output and both need to know how an option spells a
list: this is the one table of that.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Options whose value is ONE comma-separated list (the removal syntax ``-pattern`` applies to
# the algorithm lists).
COMMA_LIST_OPTIONS = frozenset((
    "ciphers", "macs", "kexalgorithms", "hostkeyalgorithms", "pubkeyacceptedalgorithms",
    "pubkeyacceptedkeytypes", "hostbasedacceptedalgorithms", "hostbasedacceptedkeytypes",
    "casignaturealgorithms", "gssapikexalgorithms", "authenticationmethods",
))
# Options sshd -T prints on one line per value (or leaves out when the list is empty), whose
# values are space-separated words.
LIST_LINE_OPTIONS = frozenset((
    "allowgroups", "allowusers", "denygroups", "denyusers", "acceptenv", "hostkey", "listenaddress",
    "authorizedkeysfile", "subsystem", "setenv", "permitopen", "permitlisten",
))
# Options sshd -T shows with the FIRST value that applies (an algorithm list) rather than the last.
FIRST_VALUE_OPTIONS = frozenset(("ciphers", "macs", "kexalgorithms"))
# Old spellings sshd still accepts, mapped to the one sshd -T prints.
VALUE_ALIASES = {"permitrootlogin": {"without-password": "prohibit-password"}}


def parse_sshd_t(text):
    """`sshd -T` output: lower-case option -> list of values (one per line, in order)."""
    out = {}
    for line in (text or "").splitlines():
        parts = line.strip().split(None, 1)
        if not parts:
            continue
        out.setdefault(parts[0].lower(), []).append(parts[1].strip() if len(parts) > 1 else "")
    return out


def list_words(config, option):
    """The words of a list-line option over all its lines, ``none`` left out."""
    words = []
    for value in config.get(option, []):
        words.extend(value.split())
    return [w for w in words if w.lower() != "none"]


def canonical_value(option, value):
    """A value in the spelling sshd -T prints (lower case, aliases resolved)."""
    value = str(value).lower()
    return VALUE_ALIASES.get(option, {}).get(value, value)


def list_separator(option):
    """How a list value of this option is joined in sshd_config: ',' or ' '."""
    return "," if str(option).lower() in COMMA_LIST_OPTIONS else " "

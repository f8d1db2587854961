# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

"""Who may run what through sudo, read from /etc/sudoers and the files it includes.

:func:`rights` returns ``{who: [rule, ...]}``: ``who`` is a user name, ``%group`` or ``ALL``
(User_Alias names expanded, Runas/Host/Cmnd aliases expanded in the rule text), each rule one
line ``HOSTS = (RUNAS) TAGS: COMMANDS`` in a normal form, sorted; ``Defaults`` lines are kept
under the key ``Defaults``. It is a reading of the grammar good enough to notice a change in
rights (a new NOPASSWD, a new command, a new user), not a sudo policy engine: what sudo itself
would refuse is kept as it is written.

Pure Python without imports from Ansible (runs on the managed host).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

ALIAS_KINDS = ("User_Alias", "Runas_Alias", "Host_Alias", "Cmnd_Alias", "Cmd_Alias")
MAX_DEPTH = 8  # sudo itself refuses includes nested deeper than 128; we stop far earlier
_INCLUDE = re.compile(r"^[#@](include|includedir)\s+(.+)$")
_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _logical_lines(text):
    """Lines with backslash continuations joined and comments removed (``#include`` kept)."""
    out, pending = [], ""
    for raw in text.splitlines():
        line = pending + raw
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        stripped = line.strip()
        if not stripped:
            continue
        if _INCLUDE.match(stripped):
            out.append(stripped)
            continue
        # a comment starts at an unescaped '#' not followed by a digit (#1000 is a uid)
        cut = re.search(r"(?<!\\)#(?!\d)", stripped)
        if cut:
            stripped = stripped[:cut.start()].rstrip()
        if stripped:
            out.append(" ".join(stripped.split()))
    return out


def _split(text, sep=","):
    return [p.strip() for p in text.split(sep) if p.strip()]


def _included(path, target):
    base = os.path.dirname(path)
    return target if target.startswith("/") else os.path.join(base, target)


def read_lines(path, root="/", depth=0, seen=None):
    """Logical lines of ``path`` (a host path) and every file it includes, in order."""
    seen = set() if seen is None else seen
    real = os.path.join(root, path.lstrip("/"))
    if depth > MAX_DEPTH or real in seen:
        return []
    seen.add(real)
    try:
        with open(real, "rb") as fh:
            text = fh.read(1 << 20).decode("utf-8", "replace")
    except (IOError, OSError):
        return []
    out = []
    for line in _logical_lines(text):
        match = _INCLUDE.match(line)
        if not match:
            out.append(line)
            continue
        target = _included(path, match.group(2).strip().strip('"'))
        if match.group(1) == "include":
            out.extend(read_lines(target, root, depth + 1, seen))
            continue
        try:
            names = sorted(os.listdir(os.path.join(root, target.lstrip("/"))))
        except OSError:
            continue
        # sudo skips names ending in '~' or holding a '.' (editor backups, package leftovers)
        for name in names:
            if not name.endswith("~") and "." not in name:
                out.extend(read_lines(os.path.join(target, name), root, depth + 1, seen))
    return out


def _expand(items, aliases):
    out = []
    for item in items:
        neg = item.startswith("!")
        name = item[1:].strip() if neg else item
        if _NAME.match(name) and name in aliases and name != "ALL":
            out.extend(("!" + x if neg else x) for x in _expand(aliases[name], aliases))
        else:
            out.append(item)
    return out


def _rule(hosts, spec, aliases):
    """``HOSTS = (RUNAS) TAGS: CMNDS`` with aliases expanded."""
    hosts = ",".join(_expand(_split(hosts), aliases))
    runas = ""
    match = re.match(r"^\(([^)]*)\)\s*(.*)$", spec)
    if match:
        runas = "(%s) " % ":".join(",".join(_expand(_split(part), aliases)) for part in match.group(1).split(":"))
        spec = match.group(2)
    tags = []
    while True:
        match = re.match(r"^([A-Z_]+):\s*(.*)$", spec)
        if not match or _NAME.match(match.group(1)) and match.group(1) in aliases:
            break
        tags.append(match.group(1) + ":")
        spec = match.group(2)
    commands = ", ".join(_expand(_split(spec), aliases))
    return "%s = %s%s%s" % (hosts, runas, " ".join(tags) + " " if tags else "", commands)


def rights(root="/", path="/etc/sudoers"):
    """``{who: sorted rules}`` of a sudoers file and its includes; {} when there is none."""
    lines = read_lines(path, root)
    aliases, out = {}, {}
    for line in lines:
        word = line.split(None, 1)[0]
        if word in ALIAS_KINDS:
            for part in _split(line.split(None, 1)[1] if " " in line else "", ":"):
                name, _, members = part.partition("=")
                aliases[name.strip()] = _split(members)
            continue
        if word.startswith("Defaults"):
            out.setdefault("Defaults", set()).add(line)
            continue
        if "=" not in line:
            continue
        # "users hosts = spec [: hosts = spec ...]"
        head, _, rest = line.partition("=")
        parts = head.split(None, 1)
        if len(parts) != 2:
            continue
        users, first_hosts = parts
        specs, hosts = [], first_hosts
        # further "hosts = spec" groups after ':' (a ':' inside a tag such as NOPASSWD: stays)
        chunks = re.split(r"\s*:\s*(?=[^=():,]+=)", rest)
        for i, chunk in enumerate(chunks):
            if i:
                hosts, _, chunk = chunk.partition("=")
            specs.append(_rule(hosts, chunk.strip(), aliases))
        for who in _expand(_split(users), aliases):
            out.setdefault(who, set()).update(specs)
    return dict((who, sorted(rules)) for who, rules in out.items())

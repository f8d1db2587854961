# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache License 2.0

"""Filter ``fleetcare.ops.sshd_lockout_reasons``: would this sshd configuration refuse this login?"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: sshd_lockout_reasons
author: fleetcare engineers
version_added: 0.1.0
short_description: Say why an effective sshd configuration would refuse a given login
description:
  - Reads the output of C(sshd -T -C user=...,addr=...) (the effective configuration for one
    connection, with the candidate options given as C(-o)) and judges whether the user and the
    authentication method of the current Ansible connection would still be let in.
  - Checks C(PermitRootLogin) (for root), C(PubkeyAuthentication), C(PasswordAuthentication),
    C(KbdInteractiveAuthentication), C(AuthenticationMethods), C(AllowUsers), C(DenyUsers),
    C(AllowGroups), C(DenyGroups), C(Port) and C(AuthorizedKeysFile).
  - Returns an empty list when the login stays allowed, else one sentence per reason, naming the
    controls that set the option when O(controls) is given.
options:
  _input:
    description: The standard output of C(sshd -T).
    type: str
    required: true
  user:
    description: The user this run logs in as.
    type: str
    required: true
  method:
    description: How it authenticates.
    type: str
    choices: [publickey, password, keyboard-interactive]
    required: true
  groups:
    description: The user's groups (names).
    type: list
    elements: str
    default: []
  addr:
    description: The client address sshd sees.
    type: str
  port:
    description: The server port of the current connection, as sshd sees it.
    type: int
  home:
    description: The user's home directory (to expand C(AuthorizedKeysFile)).
    type: str
  key_files:
    description: Authorized keys files of the user that hold keys today.
    type: list
    elements: str
    default: []
  controls:
    description: The enabled C(sshd_option) controls, to name the one behind each reason.
    type: list
    elements: dict
    default: []
"""

EXAMPLES = r"""
- name: Judge the candidate sshd configuration
  ansible.builtin.set_fact:
    __hardening_lockout: >-
      {{ sshd_t.stdout | fleetcare.ops.sshd_lockout_reasons(user='root', method='publickey',
         groups=['root'], addr='10.0.0.5', port=22) }}
"""

RETURN = r"""
_value:
  description: One sentence per reason the login would be refused; empty when it stays allowed.
  type: list
  elements: str
"""

import ipaddress
import posixpath
import re
from fnmatch import fnmatchcase

from ansible_collections.fleetcare.ops.plugins.module_utils.sshd import list_separator, list_words, parse_sshd_t

NAMES = {
    "permitrootlogin": "PermitRootLogin",
    "pubkeyauthentication": "PubkeyAuthentication",
    "passwordauthentication": "PasswordAuthentication",
    "kbdinteractiveauthentication": "KbdInteractiveAuthentication",
    "authenticationmethods": "AuthenticationMethods",
    "allowusers": "AllowUsers",
    "denyusers": "DenyUsers",
    "allowgroups": "AllowGroups",
    "denygroups": "DenyGroups",
    "port": "Port",
    "authorizedkeysfile": "AuthorizedKeysFile",
}


def _first(config, key, default=""):
    values = config.get(key)
    return values[0].strip().lower() if values else default


def _host_matches(pattern, addr):
    if not addr:
        return True
    if "/" in pattern:
        try:
            return ipaddress.ip_address(addr) in ipaddress.ip_network(pattern, strict=False)
        except ValueError:
            return False
    return fnmatchcase(addr, pattern)


def _user_matches(entry, user, addr):
    name, _, host = entry.partition("@")
    return fnmatchcase(user, name) and (not host or _host_matches(host, addr))


def _expand(path, user, home):
    path = path.replace("%%", "\0").replace("%u", user).replace("%h", home or "").replace("\0", "%")
    if not path.startswith("/") and home:
        path = posixpath.join(home, path)
    return posixpath.normpath(path)


def sshd_lockout_reasons(text, user, method, groups=None, addr=None, port=None, home=None,
                         key_files=None, controls=None):
    """Reasons (sentences) why ``user`` logging in with ``method`` would be refused."""
    config = parse_sshd_t(text)
    groups = list(groups or [])
    found = []  # (option, sentence)

    if user == "root":
        prl = _first(config, "permitrootlogin", "prohibit-password")
        if prl == "no":
            found.append(("permitrootlogin", "PermitRootLogin no refuses every root login"))
        elif prl == "forced-commands-only":
            found.append(("permitrootlogin", "PermitRootLogin forced-commands-only refuses Ansible's root login"))
        elif prl in ("prohibit-password", "without-password") and method != "publickey":
            found.append(("permitrootlogin", "PermitRootLogin %s refuses root by %s" % (prl, method)))

    switch = {
        "publickey": "pubkeyauthentication",
        "password": "passwordauthentication",
        "keyboard-interactive": "kbdinteractiveauthentication",
    }[method]
    if _first(config, switch, "yes") == "no":
        found.append((switch, "%s no refuses %s, the method this run uses" % (NAMES[switch], method)))

    methods = _first(config, "authenticationmethods", "any")
    if methods and methods != "any":
        lists = [[m.split(":", 1)[0] for m in chain.split(",")] for chain in methods.split()]
        if not any(all(m == method for m in chain) for chain in lists):
            found.append(("authenticationmethods",
                          "AuthenticationMethods %s cannot be satisfied by %s alone" % (methods, method)))

    allow_users = list_words(config, "allowusers")
    if allow_users and not any(_user_matches(e, user, addr) for e in allow_users):
        found.append(("allowusers", "AllowUsers %s does not name %s" % (" ".join(allow_users), user)))
    deny_users = list_words(config, "denyusers")
    if any(_user_matches(e, user, addr) for e in deny_users):
        found.append(("denyusers", "DenyUsers %s names %s" % (" ".join(deny_users), user)))
    allow_groups = list_words(config, "allowgroups")
    if allow_groups and not any(fnmatchcase(g, p) for g in groups for p in allow_groups):
        found.append(("allowgroups", "AllowGroups %s names none of %s's groups (%s)"
                      % (" ".join(allow_groups), user, " ".join(groups) or "none")))
    deny_groups = list_words(config, "denygroups")
    denied = sorted(g for g in groups if any(fnmatchcase(g, p) for p in deny_groups))
    if denied:
        found.append(("denygroups", "DenyGroups %s names %s's group %s"
                      % (" ".join(deny_groups), user, " ".join(denied))))

    ports = [p.strip() for p in config.get("port", [])]
    if port and ports and str(port) not in ports:
        found.append(("port", "Port %s leaves out %s, the port this run came in on" % (" ".join(ports), port)))

    if method == "publickey" and key_files and "authorizedkeysfile" in config:
        wanted = set(_expand(p, user, home) for p in list_words(config, "authorizedkeysfile"))
        holders = [posixpath.normpath(k) for k in key_files]
        if not any(k in wanted for k in holders):
            found.append(("authorizedkeysfile", "AuthorizedKeysFile %s leaves out %s, where %s's key is"
                          % (" ".join(list_words(config, "authorizedkeysfile")) or "none", holders[0], user)))

    by_option = {}
    for control in controls or []:
        option = str((control.get("params") or {}).get("option", "")).lower()
        by_option.setdefault(option, []).append(str(control.get("id")))
    reasons = []
    for option, sentence in found:
        ids = by_option.get(option)
        reasons.append("%s (%s)" % (sentence, ", ".join(ids) if ids else "already so on the host"))
    return reasons


def sshd_value(params):
    """The value of an C(sshd_option) record as sshd_config spells it."""
    option = str(params.get("option", ""))
    value = params.get("value")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return list_separator(option).join(str(v) for v in value)
    return str(value)


def sshd_option_arg(params):
    """``Option=value`` for ``sshd -o``."""
    return "%s=%s" % (params.get("option"), sshd_value(params))


def sshd_effective_options(controls):
    """The sshd_option controls that take effect: for an option set by several enabled controls,
    the last one in catalog order (sshd itself would keep the first line it reads)."""
    last = {}
    for control in controls or []:
        last[str((control.get("params") or {}).get("option", "")).lower()] = control
    return [c for c in controls or [] if last.get(str((c.get("params") or {}).get("option", "")).lower()) is c]


MAIN_BEGIN = "# BEGIN fleetcare.ops.hardening (the sshd_option controls, as in sshd_config.d/00-fleetcare.conf)"
MAIN_END = "# END fleetcare.ops.hardening"
MAIN_COMMENT = "#fleetcare (set at the top of this file): "


def sshd_main_config(text, controls):
    """sshd's main configuration with the effective sshd_option controls in a block at its top.

    Scanners (OpenSCAP's SSG content, several CIS audits) read /etc/ssh/sshd_config only, while
    sshd reads the drop-ins its ``Include`` names too and keeps the FIRST value of each option.
    The block comes before anything else (before Debian's ``Include``), so sshd and scanners
    read the same values, the drop-in's; a later line setting one of those options outside a
    ``Match`` block is commented out (it would be ignored by sshd but judged by a scanner).
    Applied to its own output it returns it unchanged."""
    lines, inside = [], False
    for line in (text or "").splitlines():
        stripped = line.strip()
        if stripped == MAIN_BEGIN:
            inside = True
        elif inside:
            inside = stripped != MAIN_END
        else:
            lines.append(line)
    controls = sshd_effective_options(controls)
    managed = set(str((c.get("params") or {}).get("option", "")).lower() for c in controls)
    out, in_match = [], False
    for line in lines:
        words = re.split(r"[\s=]+", line.strip(), maxsplit=1)
        keyword = words[0].lower() if words and words[0] else ""
        if keyword == "match":
            in_match = True
        if keyword in managed and not in_match:
            out.append(MAIN_COMMENT + line.strip())
        else:
            out.append(line)
    block = [MAIN_BEGIN] + ["%s %s" % (c["params"]["option"], sshd_value(c["params"])) for c in controls] + [MAIN_END]
    return "\n".join(block + out) + "\n"


class FilterModule(object):
    """fleetcare sshd access filters."""

    def filters(self):
        return {
            "sshd_lockout_reasons": sshd_lockout_reasons,
            "sshd_value": sshd_value,
            "sshd_option_arg": sshd_option_arg,
            "sshd_effective_options": sshd_effective_options,
            "sshd_main_config": sshd_main_config,
        }

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: hardening_audit
short_description: Evaluate hardening controls on a host in one call and return findings
description:
  - Evaluates every control it is given, read-only, in one module call, so a whole hardening
    audit costs one round trip however many controls there are.
  - Controls are records of the C(fleetcare.ops.hardening) catalog (C(roles/hardening/vars/catalog.yml));
    each has a C(kind) and C(params), and this module judges each kind exactly as
    C(docs/controls.md) states in its column "audit passes when".
  - Every control yields exactly one finding with its stable ID, following the fleetcare findings
    contract, with C(evidence.expected) and C(evidence.actual) and the record's remediation and
    references.
  - Inputs are read once per call and shared by all controls of a kind (one C(sshd -T), one parse of
    the dpkg status file, one C(systemctl show) of the units the controls name, one read
    of C(/proc/modules) and C(/proc/mounts)).
  - In a container, controls whose record says C(applies_in_container=false) (kernel-wide settings,
    kernel modules, mounts, auditd, AppArmor, the clock) are V(not_applicable) with a reason naming
    why; they are never judged against the container host's values. Network sysctls belong to the
    container's own network namespace and are judged there, unless the engine mounts C(/proc/sys)
    read-only, which makes them V(not_applicable) too.
  - A control whose C(params.unless_present) lists a path that exists here is V(not_applicable)
    (forwarding stays on where a container engine, a hypervisor or a routing daemon is installed).
  - C(apt_source) controls name a suite, C({codename}) standing for the release in C(/etc/os-release);
    one-line C(.list) and deb822 C(.sources) files are read.
  - A control whose inputs cannot be read (not root, a missing tool) is V(error) with
    C(evidence.reason); the module itself does not fail because of one control.
  - Reads only. It never changes the host, so RV(ignore:changed) is always V(false).
  - Its action plugin works on the controller first. Given the role's switches (O(skip), O(only),
    O(enable_disruptive), O(overrides)) instead of O(controls), it loads the catalog itself (O(catalog)),
    selects the controls exactly as the C(fleetcare.ops.select_controls) filter does, trims each
    record to the keys this module reads (no C(rationale), C(tags) or C(disruptive)) and sends the
    result in one call, so the catalog never passes through Jinja.
version_added: "0.1.0"
author:
  - fleetcare engineers
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
    details: Without O(controls), the catalog is read and the switches are applied on the controller.
  async:
    support: full
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details: The module only reads; check mode evaluates every control as usual.
  diff_mode:
    support: none
  platform:
    platforms: posix
    details: Reads Debian's configuration files, C(/proc), dpkg and systemd; tested on Debian 11, 12 and 13.
options:
  controls:
    description:
      - The enabled controls, each a catalog record with at least C(id), C(title), C(severity),
        C(kind) and C(params) (already merged with the operator's overrides).
      - C(applies_in_container), C(remediation) and C(references) are used when present.
      - When omitted, the action plugin selects them from O(catalog) with O(skip), O(only),
        O(enable_disruptive) and O(overrides). Mutually exclusive with those options.
    type: list
    elements: dict
  skipped:
    description:
      - Controls switched off for this run, each with C(id), C(title) and C(severity).
      - They are reported V(not_applicable) with the reason C(switched off), so a report never
        silently misses a control.
      - Only with O(controls); otherwise the action plugin fills it with the controls its
        selection switched off.
    type: list
    elements: dict
    default: []
  skip:
    description:
      - Without O(controls), IDs, tags, kinds or shell patterns (matched ignoring case) of
        controls switched off (the role's C(hardening_controls_skip)).
      - Applied on the controller; a pattern that matches no control of the catalog fails the task.
    type: list
    elements: str
    default: []
  only:
    description:
      - Without O(controls), when not empty only the controls matching one of these patterns are
        audited (C(hardening_controls_only)).
    type: list
    elements: str
    default: []
  enable_disruptive:
    description:
      - Without O(controls), disruptive controls to audit as enabled
        (C(hardening_controls_enable_disruptive)); the others are switched off.
    type: list
    elements: str
    default: []
  overrides:
    description:
      - Without O(controls), control ID -> params merged over the record's C(params)
        (C(hardening_overrides)).
    type: dict
    default: {}
  catalog:
    description:
      - Without O(controls), the catalog file (a YAML document with the list C(__hardening_catalog)),
        read on the controller.
      - A relative path is searched like C(include_vars) does (the role's C(vars/) first).
      - Defaults to the collection's C(roles/hardening/vars/catalog.yml).
    type: str
  tags:
    description:
      - Without O(controls), the run's C(--tags) (pass C(ansible_run_tags)); when they name
        anything but V(all), only the controls whose ID, tag or kind one of them names are
        audited, the others are switched off.
      - A tag that names no control is not an error (it may be another role's).
    type: list
    elements: str
    default: []
  skip_tags:
    description:
      - Without O(controls), the run's C(--skip-tags) (pass C(ansible_skip_tags)); the controls
        they name are switched off.
    type: list
    elements: str
    default: []
  in_container:
    description:
      - Whether the host is a container.
      - V(auto) asks the host probe shared by every fleetcare module (C(/run/systemd/container),
        C(/run/.containerenv), C(/.dockerenv), the C(container=) variable and the cgroup of PID 1,
        then C(systemd-detect-virt -c)).
    type: str
    choices: [auto, 'yes', 'no']
    default: auto
notes:
  - Run it as root (C(become)); without root C(sshd -T), C(/etc/shadow) and C(auditctl) cannot be
    read and the controls that need them are V(error).
seealso:
  - name: fleetcare control catalog
    description: The record and the kinds both engines implement.
    link: https://example.invalid/fleetcare/docs/controls.md
  - name: fleetcare findings contract
    description: The record every finding follows.
    link: https://example.invalid/fleetcare/docs/findings-contract.md
"""

EXAMPLES = r"""
- name: Audit two controls
  fleetcare.ops.hardening_audit:
    controls:
      - id: HARD-SSH-003
        title: SSH refuses empty passwords
        severity: critical
        kind: sshd_option
        params: {option: permitemptypasswords, value: "no"}
        applies_in_container: true
      - id: HARD-KERN-001
        title: Address space layout randomisation is full
        severity: major
        kind: sysctl
        params: {key: kernel.randomize_va_space, value: "2"}
        applies_in_container: false

- name: Audit the controls the role's switches enable, listing the switched-off ones
  fleetcare.ops.hardening_audit:
    skip: "{{ hardening_controls_skip }}"
    only: "{{ hardening_controls_only }}"
    enable_disruptive: "{{ hardening_controls_enable_disruptive }}"
    overrides: "{{ hardening_overrides }}"

- name: Audit the SSH controls of the collection's catalog but one
  fleetcare.ops.hardening_audit:
    only: [ssh]
    skip: [HARD-SSH-004]
"""

RETURN = r"""
changed:
  description: Always V(false); the module only reads.
  returned: always
  type: bool
  sample: false
in_container:
  description: Whether the host was treated as a container, and what said so.
  returned: always
  type: dict
  sample: {container: true, detected_by: /run/.containerenv}
host:
  description:
    - The host probe of the C(host) module utility, the same answers every fleetcare module gets.
    - C(container) is the container engine, empty on a VM or bare metal.
  returned: always
  type: dict
  sample:
    container: podman
    container_detected_by: /run/.containerenv
    systemd: true
    os_id: debian
    os_version_id: "12"
    os_codename: bookworm
    proc_sys_writable: false
fleetcare:
  description:
    - The findings contract payload, built by the C(findings) module utility.
    - The controller adds C(host) to every finding.
  returned: always
  type: dict
  contains:
    contract:
      description: Version of the findings contract.
      type: int
      sample: 1
    role:
      description: Always C(hardening).
      type: str
      sample: hardening
    findings:
      description:
        - One record per control of O(controls), in their order, then one per O(skipped) control.
        - C(evidence) holds C(kind), C(expected) and C(actual); V(error) and V(not_applicable)
          findings carry C(evidence.reason).
      type: list
      elements: dict
      sample:
        - id: HARD-SSH-003
          title: SSH refuses empty passwords
          severity: critical
          status: pass
          evidence: {kind: sshd_option, option: permitemptypasswords, expected: "no", actual: "no"}
          remediation: Set 'permitemptypasswords no' in a file under /etc/ssh/sshd_config.d.
          references: [CIS Debian 12 5.1.19, Lynis SSH-7408]
    metrics:
      description: The number of controls per status and the time the audit took.
      type: list
      elements: dict
      sample:
        - name: hardening_controls
          value: 142.0
          unit: count
          labels: {status: pass}
"""

import fnmatch
import glob
import os
import re
import stat
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fleetcare.ops.plugins.module_utils.debian import (
    parse_apt_sources, parse_dpkg_status, read_apt_sources)
from ansible_collections.fleetcare.ops.plugins.module_utils.findings import (
    CheckError, NotApplicable, ToolMissing, finding, metric, payload, run_check)
from ansible_collections.fleetcare.ops.plugins.module_utils.host import (
    parse_mounts, parse_properties, probe, read_text, run_cmd)
from ansible_collections.fleetcare.ops.plugins.module_utils.sshd import (
    COMMA_LIST_OPTIONS, FIRST_VALUE_OPTIONS, LIST_LINE_OPTIONS, canonical_value, parse_sshd_t)

ROLE = "hardening"
SWITCHED_OFF = "switched off"

# Why a control that needs the host itself does not apply in a container, by area of its ID
# (the kinds say it for themselves, in KINDS below). Kernel-wide settings there belong to the
# host kernel and are never written.
CONTAINER_REASONS_BY_AREA = {
    "AUDIT": "auditd cannot run in a container: the kernel audit interface belongs to the host",
    "AA": "AppArmor policy is loaded by the host kernel; a container is confined by the host's profile",
    "TIME": "the clock belongs to the host kernel; a container cannot discipline it",
    "MNT": "a container's mounts and their options are set by the container engine",
    "MOD": "kernel modules belong to the host kernel; a container cannot load or block them",
}
NET_SYSCTL_REASON = ("network sysctl: this container's /proc/sys/net is read-only, so its network namespace is "
                     "configured by the container engine (podman run --sysctl); a system container (user "
                     "namespace, /proc/sys writable) sets it from inside")
KERNEL_SYSCTL_REASON = "kernel-wide sysctl: in a container it belongs to the host kernel"

def norm(value):
    """Whitespace-normalised text of a scalar."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return " ".join(str(value).split())


def octal(mode):
    return "%04o" % mode


# --------------------------------------------------------------------------- parsers

UNIT_PROPERTIES = ("Id", "LoadState", "ActiveState", "SubState", "UnitFileState")


def parse_systemctl_show(text, names):
    """`systemctl show -p Id,LoadState,ActiveState,SubState,UnitFileState NAME...`: blocks in the order of
    the names asked for -> {name: {load, active, sub, file_state}} (file_state None when not installed)."""
    blocks = [b for b in re.split(r"\n\s*\n", text.strip()) if b.strip()]
    out = {}
    for index, block in enumerate(blocks[:len(names)]):
        name = names[index]
        props = parse_properties(block)
        out[name] = {"load": props.get("LoadState") or "not-found", "active": props.get("ActiveState") or "inactive",
                     "sub": props.get("SubState") or "dead", "file_state": props.get("UnitFileState") or None}
    return out


def unit_name(service):
    service = str(service)
    return service if "." in service else service + ".service"


def module_key(name):
    return str(name).replace("-", "_")


def parse_modprobe(files):
    """[(path, text)] -> {module_key: [(path, line)]} of install and blacklist directives."""
    installs, blacklists = {}, {}
    for path, text in files:
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            words = line.split()
            if len(words) >= 3 and words[0] == "install":
                installs.setdefault(module_key(words[1]), []).append((path, line))
            elif len(words) >= 2 and words[0] == "blacklist":
                blacklists.setdefault(module_key(words[1]), []).append((path, line))
    return installs, blacklists


def parse_proc_modules(text):
    return set(line.split()[0] for line in text.splitlines() if line.strip())


def mount_table(text):
    """/proc/mounts -> mount point -> {source, fstype, options}; the last (top) mount of a point wins."""
    return dict((m["mount"], m) for m in parse_mounts(text))


def parse_kv_lines(text, separator=" "):
    """Uncommented `key<sep>value` lines -> {key: value of the LAST occurrence}."""
    sep = separator.strip()
    out = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if sep:
            if sep not in line:
                continue
            key, value = line.split(sep, 1)
        else:
            parts = line.split(None, 1)
            key, value = parts[0], (parts[1] if len(parts) > 1 else "")
        out[key.strip()] = norm(value)
    return out


def parse_ini(text):
    """{section: {option: value}}; options before any section land in section ''."""
    out = {"": {}}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            out.setdefault(section, {})
            continue
        if "=" in line:
            key, value = line.split("=", 1)
            out.setdefault(section, {})[key.strip()] = norm(value)
    return out


PAM_LINE = re.compile(r"^\s*(-?)(\w+)\s+(\[[^\]]*\]|\S+)\s+(\S+)\s*(.*)$")


def parse_pam(text):
    """PAM service file -> [{type, control, module, args: [..], line}] (comments and @include left out)."""
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line.startswith("@"):
            continue
        match = PAM_LINE.match(line)
        if not match:
            continue
        out.append({"type": match.group(2).lower(), "control": match.group(3),
                    "module": os.path.basename(match.group(4)), "args": match.group(5).split(), "line": line})
    return out


def pam_args_match(line_args, wanted):
    """True when the args of one PAM line satisfy the wanted mapping.

    value true: the bare flag (or key=anything) is there; false: neither the flag nor key=... is there;
    anything else: key=value is there.
    """
    present = {}
    for arg in line_args:
        key, sep, value = arg.partition("=")
        present[key] = value if sep else True
    for key, want in (wanted or {}).items():
        if want is False:
            if key in present:
                return False
        elif want is True or want is None:
            if key not in present:
                return False
        elif present.get(key) is True or norm(present.get(key, "\0")) != norm(want):
            return False
    return True


def parse_passwd(text):
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        f = line.split(":")
        f += [""] * (7 - len(f))
        rows.append({"name": f[0], "password": f[1], "uid": f[2], "gid": f[3], "home": f[5], "shell": f[6],
                     "line": line})
    return rows


def parse_group(text):
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        f = line.split(":")
        f += [""] * (4 - len(f))
        rows.append({"name": f[0], "gid": f[2], "members": [m for m in f[3].split(",") if m], "line": line})
    return rows


def parse_shadow(text):
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        f = line.split(":")
        f += [""] * (2 - len(f))
        rows.append({"name": f[0], "password": f[1], "line": line})
    return rows


AUDIT_ACTIONS = ("-a", "-A")


def canonical_audit_rule(rule):
    """A comparable form of an audit rule: rules.d syntax and `auditctl -l` output compare equal.

    `-k K` and `-F key=K` are the same; syscalls (-S, possibly repeated or comma lists) are a set;
    `auid!=unset`, `auid!=-1` and `auid!=4294967295` are the same; `-a always,exit` equals `-a exit,always`;
    `-C euid!=uid` equals `-C uid!=euid`.
    """
    tokens = rule.split()
    parts = set()
    syscalls = set()
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        val = tokens[i + 1] if i + 1 < len(tokens) else ""
        if tok in AUDIT_ACTIONS:
            parts.add(("-a", ",".join(sorted(val.split(",")))))
            i += 2
        elif tok == "-S":
            syscalls.update(s for s in val.split(",") if s)
            i += 2
        elif tok == "-k":
            parts.add(("-F", "key=" + val))
            i += 2
        elif tok in ("-F", "-C"):
            val = re.sub(r"^(auid|uid|euid)!=(-1|4294967295)$", r"\1!=unset", val)
            pair = re.match(r"^(\w+)(!?=)(\w+)$", val) if tok == "-C" else None
            if pair:
                # auditctl -l prints a comparison in its own order (-C euid!=uid is listed as
                # -C uid!=euid); = and != do not depend on it
                left, op, right = pair.groups()
                val = op.join(sorted((left, right)))
            parts.add((tok, val))
            i += 2
        elif tok.startswith("-") and val and not val.startswith("-"):
            parts.add((tok, val))
            i += 2
        else:
            parts.add((tok, ""))
            i += 1
    if syscalls:
        parts.add(("-S", ",".join(sorted(syscalls))))
    return frozenset(parts)


def rule_lines(text):
    return [norm(raw) for raw in text.splitlines() if raw.strip() and not raw.strip().startswith("#")]


# --------------------------------------------------------------------------- pure evaluations
# Each returns (status, evidence). They take already-read inputs so tests can feed them text.


def eval_sshd_option(params, effective):
    option = str(params["option"]).lower()
    expected = norm(params["value"])
    values = effective.get(option)
    if values is None and option in LIST_LINE_OPTIONS:
        values = []  # sshd -T leaves out an empty list such as AllowGroups
    evidence = {"option": option, "expected": expected}
    if values is None:
        evidence["actual"] = None
        evidence["reason"] = "sshd -T does not show %s: this sshd does not know the option" % option
        return "fail", evidence
    if option in LIST_LINE_OPTIONS:
        actual = sorted(set(" ".join(values).split()))
        evidence["actual"] = " ".join(actual)
        return ("pass" if actual == sorted(set(expected.split())) else "fail"), evidence
    actual = norm(values[0] if option in FIRST_VALUE_OPTIONS else values[-1])
    evidence["actual"] = actual
    if option in COMMA_LIST_OPTIONS:
        items = [a for a in actual.split(",") if a]
        if expected.startswith("-"):
            banned = [p for p in expected[1:].split(",") if p]
            offenders = sorted(a for a in items if any(fnmatch.fnmatchcase(a, p) for p in banned))
            evidence["offenders"] = offenders
            return ("fail" if offenders else "pass"), evidence
        return ("pass" if set(items) == set(e for e in expected.split(",") if e) else "fail"), evidence
    return ("pass" if canonical_value(option, actual) == canonical_value(option, expected) else "fail"), evidence


def eval_sysctl(params, text):
    key = str(params["key"])
    expected = norm(params["value"])
    evidence = {"key": key, "expected": expected}
    if text is None:
        raise NotApplicable("this kernel has no %s" % key, evidence)
    evidence["actual"] = norm(text)
    return ("pass" if evidence["actual"] == expected else "fail"), evidence


def mode_excess(actual_mode, allowed_mode):
    """Permission bits set in actual and not allowed (the allowed mode is the most permissive one)."""
    return stat.S_IMODE(actual_mode) & ~allowed_mode & 0o7777


def eval_file_mode(params, entries):
    """entries: [{path, mode (int), owner, group}] of the existing matches."""
    allowed = int(str(params["mode"]), 8)
    evidence = {"path": params["path"], "expected": {"mode": octal(allowed)}}
    for key in ("owner", "group"):
        if params.get(key):
            evidence["expected"][key] = params[key]
    if not entries:
        evidence["actual"] = "absent"
        evidence["note"] = "no file matches; nothing to protect"
        return "pass", evidence
    offenders = []
    for entry in entries:
        problems = []
        excess = mode_excess(entry["mode"], allowed)
        if excess:
            problems.append("mode %s exceeds %s" % (octal(stat.S_IMODE(entry["mode"])), octal(allowed)))
        for key in ("owner", "group"):
            if params.get(key) and entry[key] != params[key]:
                problems.append("%s %s, not %s" % (key, entry[key], params[key]))
        if problems:
            offenders.append({"path": entry["path"], "problems": problems})
    evidence["actual"] = [{"path": e["path"], "mode": octal(stat.S_IMODE(e["mode"])), "owner": e["owner"],
                           "group": e["group"]} for e in entries[:20]]
    evidence["checked"] = len(entries)
    if offenders:
        evidence["offenders"] = offenders[:20]
        return "fail", evidence
    return "pass", evidence


def eval_config_line(params, text):
    key = str(params["key"])
    expected = norm(params["value"])
    evidence = {"path": params["path"], "key": key, "expected": expected}
    if text is None:
        evidence["actual"] = None
        evidence["reason"] = "%s does not exist" % params["path"]
        return "fail", evidence
    values = parse_kv_lines(text, params.get("separator") or " ")
    evidence["actual"] = values.get(key)
    if key not in values:
        evidence["reason"] = "%s is not set" % key
        return "fail", evidence
    # keys that say the same thing otherwise (logrotate's weekly beside daily): none may be set
    rivals = [str(k) for k in params.get("replaces") or () if str(k) in values]
    if rivals:
        evidence["reason"] = "%s is set too" % ", ".join(rivals)
        return "fail", evidence
    return ("pass" if values[key] == expected else "fail"), evidence


def eval_ini_option(params, text):
    expected = norm(params["value"])
    evidence = {"path": params["path"], "section": params["section"], "option": params["option"],
                "expected": expected}
    if text is None:
        evidence["actual"] = None
        evidence["reason"] = "%s does not exist" % params["path"]
        return "fail", evidence
    actual = parse_ini(text).get(str(params["section"]), {}).get(str(params["option"]))
    evidence["actual"] = actual
    return ("pass" if actual == expected else "fail"), evidence


def eval_file_content(params, text, mode=None):
    evidence = {"path": params["path"], "expected": params["content"]}
    if params.get("mode"):
        evidence["expected_mode"] = str(params["mode"])
    if text is None:
        evidence["actual"] = None
        evidence["reason"] = "%s does not exist" % params["path"]
        return "fail", evidence
    evidence["actual"] = text if len(text) <= 2000 else text[:2000] + "..."
    ok = text.rstrip("\n") == str(params["content"]).rstrip("\n")
    if not ok:
        evidence["reason"] = "content differs"
    if mode is not None:
        evidence["actual_mode"] = octal(stat.S_IMODE(mode))
        if params.get("mode") and mode_excess(mode, int(str(params["mode"]), 8)):
            evidence["reason"] = "mode %s exceeds %s" % (evidence["actual_mode"], params["mode"])
            ok = False
    return ("pass" if ok else "fail"), evidence


def eval_file_absent(params, exists):
    evidence = {"path": params["path"], "expected": "absent", "actual": "present" if exists else "absent"}
    return ("fail" if exists else "pass"), evidence


def apt_suite(params, codename):
    """The suite a control names, with {codename} replaced by the host's release codename."""
    suite = str(params["suite"])
    if "{codename}" in suite:
        if not codename:
            # unstable (sid) has no codename and no security suite
            raise NotApplicable("/etc/os-release has no VERSION_CODENAME to name the suite %s" % suite,
                                {"suite": suite})
        suite = suite.replace("{codename}", codename)
    return suite


def eval_apt_source(params, codename, entries):
    suite = apt_suite(params, codename)
    evidence = {"suite": suite, "expected": "an enabled deb source for %s" % suite}
    found = ["%s: %s %s" % entry for entry in entries if entry[2] == suite]
    evidence["actual"] = found or "no enabled deb source for %s (%d entries read)" % (suite, len(entries))
    return ("pass" if found else "fail"), evidence


def eval_package_present(params, states):
    state = states.get(str(params["package"]))
    evidence = {"package": params["package"], "expected": "installed", "actual": state or "not installed"}
    return ("pass" if state == "installed" else "fail"), evidence


def eval_package_absent(params, states):
    state = states.get(str(params["package"]))
    gone = state in (None, "not-installed", "config-files")
    evidence = {"package": params["package"], "expected": "not installed", "actual": state or "not installed"}
    return ("pass" if gone else "fail"), evidence


DISABLED_STATES = ("disabled", "masked", "masked-runtime")
ENABLED_STATES = ("enabled", "enabled-runtime")


NOT_INSTALLED = {"load": "not-found", "active": "inactive", "sub": "dead", "file_state": None}


def eval_service_disabled(params, units):
    unit = unit_name(params["service"])
    info = units.get(unit, NOT_INSTALLED)
    evidence = {"service": unit, "expected": "not installed, or disabled/masked and inactive",
                "actual": {"unit_file_state": info["file_state"] or "not installed", "load": info["load"],
                           "active": info["active"]}}
    running = info["active"] in ("active", "activating", "reloading")
    if info["file_state"] is None and info["load"] in ("not-found", "masked"):
        return ("fail" if running else "pass"), evidence
    ok = (info["file_state"] in DISABLED_STATES or info["load"] == "masked") and not running
    return ("pass" if ok else "fail"), evidence


def eval_service_enabled(params, units):
    unit = unit_name(params["service"])
    info = units.get(unit, NOT_INSTALLED)
    evidence = {"service": unit, "expected": "enabled and active",
                "actual": {"unit_file_state": info["file_state"] or "not installed", "active": info["active"],
                           "sub": info["sub"]}}
    ok = info["file_state"] in ENABLED_STATES and info["active"] == "active"
    return ("pass" if ok else "fail"), evidence


BLOCKERS = ("/bin/false", "/bin/true", "/usr/bin/false", "/usr/bin/true")


def eval_module_blacklist(params, installs, blacklists, loaded):
    name = str(params["module"])
    key = module_key(name)
    lines = installs.get(key, [])
    blocked = [(p, line) for p, line in lines if line.split()[2] in BLOCKERS]
    is_loaded = key in loaded
    evidence = {"module": name, "expected": "install %s /bin/false; not loaded" % name,
                "actual": {"install": ["%s: %s" % pl for pl in lines] or None, "loaded": is_loaded,
                           "blacklist": ["%s: %s" % pl for pl in blacklists.get(key, [])] or None}}
    if not blocked:
        evidence["reason"] = "no 'install %s /bin/false' in /etc/modprobe.d/*.conf" % name
    elif is_loaded:
        evidence["reason"] = "%s is loaded; unload it or reboot" % name
    return ("pass" if blocked and not is_loaded else "fail"), evidence


def eval_mount_option(params, mounts):
    mount = str(params["mount"])
    option = str(params["option"])
    evidence = {"mount": mount, "expected": option}
    entry = mounts.get(mount)
    if entry is None:
        evidence["actual"] = None
        if params.get("optional"):
            evidence["note"] = "%s is not a separate mount; the control is optional" % mount
            return "pass", evidence
        evidence["reason"] = "%s is not a separate mount" % mount
        return "fail", evidence
    evidence["actual"] = ",".join(entry["options"])
    evidence["fstype"] = entry["fstype"]
    return ("pass" if option in entry["options"] else "fail"), evidence


def eval_audit_rule(params, file_rules, loaded_rules=None):
    """file_rules: [(path, normalised line)]; loaded_rules: `auditctl -l` lines, or None when auditd is not running."""
    rule = norm(params["rule"])
    want = canonical_audit_rule(rule)
    evidence = {"rule": rule, "expected": rule}
    found = [path for path, line in file_rules if canonical_audit_rule(line) == want]
    evidence["actual"] = {"files": found or None}
    if not found:
        evidence["reason"] = "not in /etc/audit/rules.d/*.rules"
        return "fail", evidence
    if loaded_rules is not None and rule.split()[0] in ("-w", "-a", "-A"):
        is_loaded = any(canonical_audit_rule(line) == want for line in loaded_rules)
        evidence["actual"]["loaded"] = is_loaded
        if not is_loaded:
            evidence["reason"] = "in rules.d but not loaded (augenrules --load)"
            return "fail", evidence
    return "pass", evidence


def eval_pam_module(params, text):
    service = str(params["service"])
    wanted = params.get("args") or {}
    ptype = str(params["type"]).lower()
    module = str(params["module"])
    expected = "%s %s %s" % (ptype, module, " ".join(
        k if v is True or v is None else ("no %s" % k if v is False else "%s=%s" % (k, v))
        for k, v in sorted(wanted.items())))
    expected = expected.strip()
    evidence = {"path": "/etc/pam.d/" + service, "expected": expected}
    if text is None:
        evidence["actual"] = None
        evidence["reason"] = "/etc/pam.d/%s does not exist" % service
        return "fail", evidence
    lines = [e for e in parse_pam(text) if e["type"] == ptype and e["module"] == module]
    evidence["actual"] = [e["line"] for e in lines] or None
    if any(pam_args_match(e["args"], wanted) for e in lines):
        return "pass", evidence
    # A flag that must be absent is satisfied when the module is not used at all.
    if not lines and wanted and all(v is False for v in wanted.values()):
        return "pass", evidence
    evidence["reason"] = ("%s is not in the %s stack" % (module, ptype)) if not lines else "arguments differ"
    return "fail", evidence


# Account checks: each takes the parsed account data (dict) and returns offenders.

NOLOGIN_SHELLS = ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false")
SYSTEM_ACCOUNTS_WITH_SHELLS = ("root", "sync", "shutdown", "halt")


def _int(text, default=-1):
    try:
        return int(text)
    except (TypeError, ValueError):
        return default


def acct_empty_passwords(data):
    return sorted(r["name"] for r in data["shadow"] if r["password"] == "")


def acct_uid0_only_root(data):
    return sorted(r["name"] for r in data["passwd"] if _int(r["uid"]) == 0 and r["name"] != "root")


def acct_gid0_only_root(data):
    return sorted(r["name"] for r in data["group"] if _int(r["gid"]) == 0 and r["name"] != "root")


def acct_no_legacy_plus(data):
    out = []
    for name in ("passwd", "shadow", "group"):
        out += ["/etc/%s: %s" % (name, r["line"]) for r in data.get(name, []) if r["line"].startswith("+")]
    return out


def acct_system_accounts_nologin(data):
    uid_min = data.get("uid_min", 1000)
    return sorted("%s (%s)" % (r["name"], r["shell"]) for r in data["passwd"]
                  if 0 <= _int(r["uid"]) < uid_min and r["name"] not in SYSTEM_ACCOUNTS_WITH_SHELLS
                  and r["shell"] not in NOLOGIN_SHELLS)


def _dupes(values):
    seen, dupes = set(), set()
    for value in values:
        if value in seen:
            dupes.add(value)
        seen.add(value)
    return sorted(dupes)


def acct_duplicate_uids(data):
    return ["uid %s: %s" % (uid, ", ".join(r["name"] for r in data["passwd"] if r["uid"] == uid))
            for uid in _dupes(r["uid"] for r in data["passwd"])]


def acct_duplicate_gids(data):
    return ["gid %s: %s" % (gid, ", ".join(r["name"] for r in data["group"] if r["gid"] == gid))
            for gid in _dupes(r["gid"] for r in data["group"])]


def acct_duplicate_names(data):
    return (["user %s" % n for n in _dupes(r["name"] for r in data["passwd"])]
            + ["group %s" % n for n in _dupes(r["name"] for r in data["group"])])


def acct_passwd_groups_exist(data):
    gids = set(r["gid"] for r in data["group"])
    return sorted("%s (gid %s)" % (r["name"], r["gid"]) for r in data["passwd"] if r["gid"] not in gids)


def acct_shadow_group_empty(data):
    shadow = [r for r in data["group"] if r["name"] == "shadow"]
    if not shadow:
        return []
    out = ["member %s" % m for m in shadow[0]["members"]]
    out += ["%s (primary group)" % r["name"] for r in data["passwd"] if r["gid"] == shadow[0]["gid"]]
    return out


def acct_home_permissions(data):
    """data['homes']: {home: (mode, uid)} or None when missing, for the interactive accounts."""
    uid_min = data.get("uid_min", 1000)
    out = []
    for r in data["passwd"]:
        uid = _int(r["uid"])
        if uid < uid_min or uid == 65534 or r["shell"] in NOLOGIN_SHELLS or not r["home"]:
            continue
        info = data["homes"].get(r["home"])
        if info is None:
            out.append("%s: %s is missing" % (r["name"], r["home"]))
            continue
        mode, owner = info
        problems = []
        if stat.S_IMODE(mode) & 0o027:
            problems.append("mode %s" % octal(stat.S_IMODE(mode)))
        if owner != uid:
            problems.append("owned by uid %s" % owner)
        if problems:
            out.append("%s: %s %s" % (r["name"], r["home"], ", ".join(problems)))
    return out


def acct_root_path(data):
    """data['root_paths']: [(source, PATH)]; data['dirs']: {dir: (mode, uid)} or None when missing."""
    out = []
    for source, path in data["root_paths"]:
        for entry in path.split(":"):
            if entry == "":
                out.append("%s: empty entry" % source)
            elif entry == "." or not entry.startswith("/"):
                out.append("%s: relative entry %r" % (source, entry))
            else:
                info = data["dirs"].get(entry)
                if info is None:
                    continue
                mode, owner = info
                if stat.S_IMODE(mode) & 0o022:
                    out.append("%s: %s is writable by group or others (%s)"
                               % (source, entry, octal(stat.S_IMODE(mode))))
                if owner != 0:
                    out.append("%s: %s is owned by uid %s" % (source, entry, owner))
    return out


ACCOUNT_CHECKS = {
    "empty_passwords": (acct_empty_passwords, "no account with an empty password field"),
    "uid0_only_root": (acct_uid0_only_root, "root is the only UID 0 account"),
    "gid0_only_root": (acct_gid0_only_root, "root is the only GID 0 group"),
    "root_path": (acct_root_path, "no empty, relative or group/world-writable entry in root's PATH"),
    "no_legacy_plus": (acct_no_legacy_plus, "no '+' NIS entries"),
    "system_accounts_nologin": (acct_system_accounts_nologin, "system accounts have a nologin shell"),
    "home_permissions": (acct_home_permissions, "homes owned by their user, mode at most 0750"),
    "duplicate_uids": (acct_duplicate_uids, "every UID is unique"),
    "duplicate_gids": (acct_duplicate_gids, "every GID is unique"),
    "duplicate_names": (acct_duplicate_names, "every user and group name is unique"),
    "passwd_groups_exist": (acct_passwd_groups_exist, "every primary group exists"),
    "shadow_group_empty": (acct_shadow_group_empty, "group shadow has no members"),
}


def eval_account(params, data):
    check = str(params["check"])
    if check not in ACCOUNT_CHECKS:
        raise CheckError("unknown account check %r (known: %s)" % (check, ", ".join(sorted(ACCOUNT_CHECKS))))
    func, expected = ACCOUNT_CHECKS[check]
    offenders = func(data)
    evidence = {"check": check, "expected": expected, "actual": offenders or "none",
                "offenders": offenders}
    return ("fail" if offenders else "pass"), evidence


# --------------------------------------------------------------------------- the host (inputs, read once)


class Host:
    """Reads each input once and keeps it for every control that needs it."""

    def __init__(self, root="/", runner=run_cmd, unit_names=(), in_container=False):
        self.root = root
        self.runner = runner
        self.in_container = in_container
        # Every unit any control asks about, so systemd is asked once for all of them.
        self.unit_names = set(unit_names) | {"auditd.service"}
        self._cache = {}

    def path(self, path):
        return os.path.join(self.root, str(path).lstrip("/"))

    def cached(self, key, func):
        if key not in self._cache:
            try:
                self._cache[key] = (True, func())
            except Exception as exc:  # the same failure is reported by every control that needs it
                self._cache[key] = (False, exc)
        ok, value = self._cache[key]
        if not ok:
            raise value
        return value

    def text(self, path):
        """File text, or None when it does not exist (an unreadable file raises)."""
        def _read():
            try:
                return read_text(self.path(path))
            except (IOError, OSError) as exc:
                if getattr(exc, "errno", None) == 2:
                    return None
                raise CheckError("cannot read %s: %s" % (path, exc.strerror or exc)) from None
        return self.cached(("text", path), _read)

    def must_text(self, path):
        text = self.text(path)
        if text is None:
            raise CheckError("%s does not exist" % path)
        return text

    def sshd(self):
        def _run():
            try:
                rc, out, err = self.runner(["sshd", "-T"])
            except ToolMissing:
                raise NotApplicable("no SSH server on this host: sshd is not installed") from None
            if rc != 0:
                msg = " ".join((err or out).split())[:300]
                if os.geteuid() != 0:
                    msg += " (sshd -T needs root: run with become)"
                raise CheckError("sshd -T failed: %s" % msg)
            return parse_sshd_t(out)
        return self.cached("sshd", _run)

    def packages(self):
        return self.cached("dpkg", lambda: parse_dpkg_status(self.must_text("/var/lib/dpkg/status")))

    def codename(self):
        return probe(self.root, self.runner).codename

    def apt_sources(self):
        return self.cached("apt_sources", lambda: parse_apt_sources(read_apt_sources(self.root)))

    def sysctl_writable(self, key):
        """Whether this process may set the key: false in a container whose engine mounts /proc/sys read-only."""
        return os.access(self.path("/proc/sys/" + str(key).replace(".", "/")), os.W_OK)

    def units(self):
        """State of the units the controls name, from ONE `systemctl show` (list-unit-files would
        enumerate every unit on the host, which costs half a second)."""
        def _run():
            names = sorted(self.unit_names)
            if not names:
                return {}
            rc, out, err = self.runner(["systemctl", "show", "--no-pager", "-p", ",".join(UNIT_PROPERTIES)]
                                       + names)
            if rc != 0:
                why = " ".join((err or out).split())[:300]
                if "not been booted with systemd" in why:
                    raise NotApplicable("systemd is not the init system (PID 1) here, so no service is managed by it")
                raise CheckError("systemctl show failed: %s" % why)
            return parse_systemctl_show(out, names)
        return self.cached("units", _run)

    def modprobe(self):
        def _read():
            files = []
            for path in sorted(glob.glob(self.path("/etc/modprobe.d/*.conf"))):
                files.append(("/etc/modprobe.d/" + os.path.basename(path), read_text(path)))
            loaded = parse_proc_modules(self.text("/proc/modules") or "")
            installs, blacklists = parse_modprobe(files)
            return installs, blacklists, loaded
        return self.cached("modprobe", _read)

    def mounts(self):
        return self.cached("mounts", lambda: mount_table(self.must_text("/proc/mounts")))

    def sysctl(self, key):
        return self.text("/proc/sys/" + str(key).replace(".", "/"))

    def lstat_entries(self, pattern):
        import grp
        import pwd

        def name(func, ident):
            try:
                return func(ident)[0]
            except KeyError:
                return str(ident)

        entries = []
        for path in sorted(glob.glob(self.path(pattern))):
            st = os.stat(path)
            rel = "/" + os.path.relpath(path, self.root) if self.root != "/" else path
            entries.append({"path": rel, "mode": st.st_mode, "owner": name(pwd.getpwuid, st.st_uid),
                            "group": name(grp.getgrgid, st.st_gid)})
        return entries

    def audit_files(self):
        def _read():
            out = []
            for path in sorted(glob.glob(self.path("/etc/audit/rules.d/*.rules"))):
                rel = "/etc/audit/rules.d/" + os.path.basename(path)
                out += [(rel, line) for line in rule_lines(read_text(path))]
            return out
        return self.cached("audit_files", _read)

    def audit_loaded(self):
        """`auditctl -l` lines when auditd runs, else None."""
        def _run():
            try:
                units = self.units()
            except CheckError:
                return None
            if units.get("auditd.service", NOT_INSTALLED)["active"] != "active":
                return None
            rc, out, err = self.runner(["auditctl", "-l"])
            if rc != 0:
                raise CheckError("auditctl -l failed: %s" % " ".join(err.split())[:300])
            return [norm(line) for line in out.splitlines() if line.strip() and line.strip() != "No rules"]
        return self.cached("audit_loaded", _run)

    def accounts(self):
        def _read():
            data = {"passwd": parse_passwd(self.must_text("/etc/passwd")),
                    "group": parse_group(self.must_text("/etc/group"))}
            defs = parse_kv_lines(self.text("/etc/login.defs") or "")
            data["uid_min"] = _int(defs.get("UID_MIN"), 1000)
            data["login_defs"] = defs
            return data
        return self.cached("accounts", _read)

    def shadow(self):
        return self.cached("shadow", lambda: parse_shadow(self.must_text("/etc/shadow")))

    def stat_owner(self, path):
        try:
            st = os.stat(self.path(path))
        except (IOError, OSError):
            return None
        return st.st_mode, st.st_uid

    def account_data(self, check):
        data = dict(self.accounts())
        if check in ("empty_passwords", "no_legacy_plus"):
            data["shadow"] = self.shadow()
        if check == "home_permissions":
            data["homes"] = dict((r["home"], self.stat_owner(r["home"])) for r in data["passwd"] if r["home"])
        if check == "root_path":
            data["root_paths"] = self.root_paths(data["login_defs"])
            data["dirs"] = {}
            for _source, value in data["root_paths"]:
                for entry in value.split(":"):
                    if entry.startswith("/"):
                        data["dirs"][entry] = self.stat_owner(entry)
        return data

    def root_paths(self, defs):
        out = []
        supath = defs.get("ENV_SUPATH", "")
        if supath:
            out.append(("login.defs ENV_SUPATH", supath.split("=", 1)[1] if "=" in supath else supath))
        sudoers = [("/etc/sudoers", self.text("/etc/sudoers") or "")]
        for path in sorted(glob.glob(self.path("/etc/sudoers.d/*"))):
            try:
                sudoers.append(("/etc/sudoers.d/" + os.path.basename(path), read_text(path)))
            except (IOError, OSError):
                continue
        for source, text in sudoers:
            for match in re.finditer(r'^\s*Defaults\s+secure_path\s*=\s*"?([^"\n]+)"?', text, re.M):
                out.append(("%s secure_path" % source, match.group(1).strip()))
        return out


# --------------------------------------------------------------------------- the kinds


def sysctl_container_reason(control):
    if str((control.get("params") or {}).get("key", "")).startswith("net."):
        return NET_SYSCTL_REASON
    return KERNEL_SYSCTL_REASON


def _eval_sysctl_here(control, params, host):
    text = host.sysctl(params["key"])
    if text is not None and host.in_container and not host.sysctl_writable(params["key"]):
        raise NotApplicable(container_reason(control), {"key": params["key"], "actual": norm(text)})
    return eval_sysctl(params, text)


def _eval_file_content_here(control, params, host):
    mode = host.stat_owner(params["path"])
    return eval_file_content(params, host.text(params["path"]), mode[0] if mode else None)


class Kind(object):
    """One kind of control: the params it needs, how it is judged on a host, and whether it can
    apply in a container.

    ``evaluate(control, params, host)`` returns (status, evidence). ``container`` is None when the
    kind can apply in a container (the record's ``applies_in_container`` decides), a reason when
    it never can, or a function of the record giving the reason (sysctl: network keys belong to
    the container's own namespace, kernel-wide ones to the host).
    """

    def __init__(self, required, evaluate, container=None):
        self.required = tuple(required)
        self.evaluate = evaluate
        self.container = container

    def container_reason(self, control):
        return self.container(control) if callable(self.container) else self.container


# The registry: every kind the catalog schema (plugins/plugin_utils/catalog.schema.json) knows has
# an entry here and a task file roles/hardening/tasks/kind_<kind>.yml (a unit test holds the three
# together).
KINDS = {
    "sshd_option": Kind(("option", "value"), lambda c, p, h: eval_sshd_option(p, h.sshd())),
    "sysctl": Kind(("key", "value"), _eval_sysctl_here, sysctl_container_reason),
    "apt_source": Kind(("suite", "uri", "components"),
                       lambda c, p, h: eval_apt_source(p, h.codename(), h.apt_sources())),
    "file_mode": Kind(("path", "mode"), lambda c, p, h: eval_file_mode(p, h.lstat_entries(p["path"]))),
    "config_line": Kind(("path", "key", "value"), lambda c, p, h: eval_config_line(p, h.text(p["path"]))),
    "ini_option": Kind(("path", "section", "option", "value"), lambda c, p, h: eval_ini_option(p, h.text(p["path"]))),
    "file_content": Kind(("path", "content"), _eval_file_content_here),
    "file_absent": Kind(("path",), lambda c, p, h: eval_file_absent(p, os.path.lexists(h.path(p["path"])))),
    "package_present": Kind(("package",), lambda c, p, h: eval_package_present(p, h.packages())),
    "package_absent": Kind(("package",), lambda c, p, h: eval_package_absent(p, h.packages())),
    "service_disabled": Kind(("service",), lambda c, p, h: eval_service_disabled(p, h.units())),
    "service_enabled": Kind(("service",), lambda c, p, h: eval_service_enabled(p, h.units())),
    "module_blacklist": Kind(("module",), lambda c, p, h: eval_module_blacklist(p, *h.modprobe()),
                             CONTAINER_REASONS_BY_AREA["MOD"]),
    "mount_option": Kind(("mount", "option"), lambda c, p, h: eval_mount_option(p, h.mounts()),
                         CONTAINER_REASONS_BY_AREA["MNT"]),
    "audit_rule": Kind(("rule",), lambda c, p, h: eval_audit_rule(p, h.audit_files(), h.audit_loaded()),
                       CONTAINER_REASONS_BY_AREA["AUDIT"]),
    "pam_module": Kind(("service", "type", "module"),
                       lambda c, p, h: eval_pam_module(p, h.text("/etc/pam.d/" + str(p["service"])))),
    "account": Kind(("check",), lambda c, p, h: eval_account(p, h.account_data(str(p["check"])))),
}


def container_reason(control):
    """Why a control does not apply in a container: its kind's reason when the kind depends on the
    record, else its area's, else its kind's, else a general one."""
    kind = KINDS.get(control.get("kind"))
    if kind is not None and callable(kind.container):
        return kind.container_reason(control)
    cid = str(control.get("id", ""))
    area = cid.split("-")[1] if cid.count("-") >= 2 else ""
    if area in CONTAINER_REASONS_BY_AREA:
        return CONTAINER_REASONS_BY_AREA[area]
    if kind is not None and kind.container:
        return kind.container
    return "the control needs the host itself and does not apply in a container"


def evaluate(control, host):
    """(status, evidence) of one control on this host."""
    kind = KINDS.get(control.get("kind"))
    params = control.get("params") or {}
    if kind is None:
        raise CheckError("unknown kind %r" % control.get("kind"))
    missing = [p for p in kind.required if p not in params]
    if missing:
        raise CheckError("the control's params lack %s" % ", ".join(missing))
    present = [path for path in params.get("unless_present") or [] if os.path.lexists(host.path(path))]
    if present:
        raise NotApplicable("%s is installed: this host does this on purpose" % present[0], {"unless_present": present})
    return kind.evaluate(control, params, host)


def audit_one(control, host, in_container):
    """One finding; any failure to evaluate becomes an error finding."""
    fid = str(control.get("id", "?"))
    severity = control.get("severity", "minor")

    def check():
        if in_container and not control.get("applies_in_container", True):
            raise NotApplicable(container_reason(control))
        status, evidence = evaluate(control, host)
        return status, severity, evidence, []

    found, _metrics = run_check(fid, str(control.get("title", fid)), severity, check,
                                str(control.get("remediation", "")), control.get("references") or [],
                                {"kind": control.get("kind")})
    return found


def safe_audit_one(control, host, in_container):
    """audit_one, with a malformed record (a bad severity) reported instead of raised."""
    try:
        return audit_one(control, host, in_container)
    except ValueError as exc:
        return finding(str(control.get("id", "?")), str(control.get("title", "?")), "minor", "error",
                       {"kind": control.get("kind"), "reason": "malformed control record: %s" % exc})


def audit(controls, skipped=(), in_container=False, root="/", runner=run_cmd):
    """Every control in order, then the switched-off ones; returns (findings, metrics)."""
    started = time.time()
    units = [unit_name((c.get("params") or {}).get("service")) for c in controls
             if c.get("kind") in ("service_enabled", "service_disabled") and (c.get("params") or {}).get("service")]
    host = Host(root, runner, units, in_container)
    findings = [safe_audit_one(c, host, in_container) for c in controls]
    for s in skipped:
        findings.append(finding(str(s.get("id", "?")), str(s.get("title", s.get("id", "?"))),
                                s.get("severity", "minor"), "not_applicable", {"reason": SWITCHED_OFF},
                                str(s.get("remediation", "")), s.get("references") or []))
    counts = {}
    for f in findings:
        counts[f["status"]] = counts.get(f["status"], 0) + 1
    metrics = [metric("hardening_controls", n, "count", status=status) for status, n in sorted(counts.items())]
    metrics.append(metric("hardening_audit_seconds", time.time() - started, "seconds"))
    return findings, metrics


# skip/only/enable_disruptive/overrides/catalog/tags/skip_tags are consumed on the controller by the action
# plugin (plugins/action/hardening_audit.py), which always sends `controls`; they are listed so
# the spec and DOCUMENTATION describe the same options.
ARGUMENT_SPEC = dict(
    controls=dict(type="list", elements="dict"),
    skipped=dict(type="list", elements="dict", default=[]),
    in_container=dict(type="str", choices=["auto", "yes", "no"], default="auto"),
    skip=dict(type="list", elements="str", default=[]),
    only=dict(type="list", elements="str", default=[]),
    enable_disruptive=dict(type="list", elements="str", default=[]),
    overrides=dict(type="dict", default={}),
    catalog=dict(type="str"),
    tags=dict(type="list", elements="str", default=[]),
    skip_tags=dict(type="list", elements="str", default=[]),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if module.params["controls"] is None:
        module.fail_json(msg="controls is required on the host: the action plugin fleetcare.ops.hardening_audit "
                             "selects them from the catalog on the controller")
    bad = [i for i, c in enumerate(module.params["controls"]) if not c.get("id") or not c.get("kind")]
    if bad:
        module.fail_json(msg="controls %s lack an id or a kind" % ", ".join(str(i) for i in bad))
    here = probe()
    choice = module.params["in_container"]
    if choice == "auto":
        container, said_by = bool(here.container), here.container_detected_by
    else:
        container, said_by = choice == "yes", "in_container=%s" % choice
    facts = dict(in_container={"container": container, "detected_by": said_by}, host=here.as_dict())
    asked = len(module.params["controls"]) + len(module.params["skipped"] or ())
    if not asked:
        # Only the host probe was asked for (the role's container question): no check ran, so
        # there is no findings payload, which the wrapper would rightly count as a host failure.
        module.exit_json(changed=False, **facts)
    findings, metrics = audit(module.params["controls"], module.params["skipped"], container)
    module.exit_json(changed=False, **dict(facts, **payload(ROLE, findings, metrics, expected=asked)))


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: drift_snapshot
short_description: Take a compact snapshot of a host for drift detection, read-only, in one call
description:
  - Records files under O(paths) (SHA-256, mode, owner, group, size, symlink target), installed
    packages (version, architecture, hold), systemd services (enabled, active), users and groups,
    sysctl values, listening sockets, scheduled jobs (crontabs, C(/etc/cron.*), systemd timers),
    loaded kernel modules (C(/proc/modules)), mounts with their options (C(/proc/self/mountinfo),
    pseudo file systems left out) and sudo rights (C(/etc/sudoers) and what it includes, as rules
    per user or group).
  - Hashes are computed on the host; only the digests travel. The snapshot travels to the
    controller inside the C(fleetcare) result key (key C(data)), beside one finding,
    C(DRFT-SNAP-001), which fails when the path set holds more than O(max_files) entries; no
    snapshot is returned then.
  - The comparison with the approved baseline is made by the fleetcare wrapper on the controller.
  - Reads only. It never changes the host.
version_added: "0.3.0"
author:
  - fleetcare engineers
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only reads.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  paths:
    description: Files and directories (walked, symlinks not followed) whose files are recorded.
    type: list
    elements: str
    default: [/etc]
  excludes:
    description: Shell patterns (fnmatch) of paths left out, such as files that change by themselves.
    type: list
    elements: str
    default: []
  max_files:
    description: Most entries recorded under O(paths); more fails C(DRFT-SNAP-001) instead of running on.
    type: int
    default: 20000
  sysctl_exclude:
    description: Shell patterns of sysctl keys left out (counters and random values that change by themselves).
    type: list
    elements: str
    default: []
  mount_exclude:
    description: Shell patterns of mount points left out, beside the built-in pseudo file systems.
    type: list
    elements: str
    default: []
  text_max_bytes:
    description:
      - Largest file (bytes) whose text is kept for a unified diff on the controller; V(0) keeps none.
      - Only world-readable UTF-8 files are kept; lines that look like secrets (password, secret,
        token, key C(=) or C(:) ...) are redacted on the host before the text leaves it.
    type: int
    default: 32768
  text_budget:
    description: Most bytes of text one snapshot carries; files past it get no diff.
    type: int
    default: 1048576
  categories:
    description:
      - The categories recorded (files, packages, services, accounts, sysctl, ports, cron, kmods,
        mounts, sudo); the others are neither recorded nor judged.
    type: list
    elements: str
    default: [files, packages, services, accounts, sysctl, ports, cron, kmods, mounts, sudo]
  severity:
    description:
      - Category -> severity (critical, major, minor, info) of its drift findings, instead of the
        one in C(fleetcare explain); for example C(files=major) and C(packages=minor).
      - Judged on the controller; the module checks the categories and severities and returns them
        with the snapshot (C(data.settings)).
    type: dict
    default: {}
  baseline_from:
    description:
      - Category -> the baseline the host is held against in it; V(own) (the default) for its own
        last approved snapshot, a golden host's inventory name (its baseline), or C(group:NAME)
        for a baseline declared for a group (C(fleetcare drift baseline --as group:NAME)).
    type: dict
    default: {}
  desired:
    description:
      - The result of the hardening audit of this host (C(fleetcare.ops.hardening_audit), run just
        before by the drift role when C(drift_desired) is true), a dict with two keys.
        C(controls) is how many controls it judged, C(findings) its findings (those that passed or
        do not apply may be left out).
      - Returned with the snapshot as C(data.desired), each finding trimmed to its ID, title,
        severity, status and evidence, for the controller to judge as desired-state drift
        (C(DRFT-DESIRED-001)); never part of a baseline.
    type: dict
  known:
    description:
      - Host path -> the first 16 hex digits of the SHA-256 of the files whose text the controller
        already holds (set by the fleetcare wrapper from the host's baseline); their text is not
        sent again while the digest matches. A value starting with C(-) marks a file the baseline
        holds no text of (no diff can be made); its text is never sent.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Snapshot the host
  fleetcare.ops.drift_snapshot:
    paths: [/etc]
    excludes: [/etc/ld.so.cache]
"""

RETURN = r"""
fleetcare:
  description: The findings payload; C(data) holds the snapshot (category -> item -> value).
  returned: always
  type: dict
"""

import fnmatch
import glob
import grp
import hashlib
import os
import pwd
import re
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fleetcare.ops.plugins.module_utils.debian import DPKG_STATUS, parse_dpkg_installed
from ansible_collections.fleetcare.ops.plugins.module_utils.drift_checks import CATEGORY_IDS, CHECKS, DESIRED
from ansible_collections.fleetcare.ops.plugins.module_utils.findings import CheckError, finding, payload
from ansible_collections.fleetcare.ops.plugins.module_utils.host import probe, read_optional, run_cmd
from ansible_collections.fleetcare.ops.plugins.module_utils.redact import redact
from ansible_collections.fleetcare.ops.plugins.module_utils.sockets import listening, shown
from ansible_collections.fleetcare.ops.plugins.module_utils.sudoers import rights as sudo_rights
from ansible_collections.fleetcare.ops.plugins.module_utils.validation import drift_problems

ARGUMENT_SPEC = dict(
    paths=dict(type="list", elements="str", default=["/etc"]),
    excludes=dict(type="list", elements="str", default=[]),
    max_files=dict(type="int", default=20000),
    sysctl_exclude=dict(type="list", elements="str", default=[]),
    mount_exclude=dict(type="list", elements="str", default=[]),
    text_max_bytes=dict(type="int", default=32768),
    text_budget=dict(type="int", default=1048576),
    known=dict(type="dict", default={}),
    categories=dict(type="list", elements="str", default=list(CATEGORY_IDS)),
    severity=dict(type="dict", default={}),
    baseline_from=dict(type="dict", default={}),
    desired=dict(type="dict"),
)
SNAP = CHECKS[0]
# counters and random values: never drift
SYSCTL_VOLATILE = ("kernel.random.*", "fs.dentry-state", "fs.inode-nr", "fs.inode-state", "fs.file-nr",
                   "kernel.ns_last_pid", "kernel.pty.nr", "fs.quota.*", "net.netfilter.nf_conntrack_count",
                   "kernel.tainted", "fs.aio-nr", "kernel.perf_event_max_sample_rate", "vm.stat_refresh",
                   "net.ipv4.route.flush", "net.ipv6.route.flush", "fs.binfmt_misc.*", "dev.*")
CRON_GLOBS = ("etc/crontab", "etc/cron.d/*", "etc/cron.hourly/*", "etc/cron.daily/*", "etc/cron.weekly/*",
              "etc/cron.monthly/*", "var/spool/cron/crontabs/*")
# kernel and runtime file systems: what they hold is not configuration, and they come and go
PSEUDO_FS = frozenset(("proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue", "debugfs", "tracefs",
                       "securityfs", "pstore", "bpf", "configfs", "fusectl", "hugetlbfs", "autofs",
                       "binfmt_misc", "efivarfs", "rpc_pipefs", "nsfs", "selinuxfs", "ramfs"))
MOUNT_VOLATILE = ("/proc/*", "/sys/*", "/run/user/*", "/run/credentials/*", "/run/netns/*", "/run/snapd/*",
                  "/var/lib/docker/*", "/var/lib/containers/*", "/snap/*")


class TooMany(Exception):
    pass


_NAMES = {}


def _name(lookup, ident):
    key = (lookup, ident)
    if key not in _NAMES:
        try:
            _NAMES[key] = lookup(ident)[0]
        except KeyError:
            _NAMES[key] = str(ident)
    return _NAMES[key]


HASH_BLOCK = 1 << 20  # one read for nearly every file under /etc; larger ones in 1 MiB blocks


def sha256(path, size=None):
    """Hex SHA-256 of a file; ``size`` (from a stat already made) lets a small file be read in one call."""
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as handle:
        if size is not None and size < HASH_BLOCK:
            digest.update(handle.read(size + 1))
            rest = handle.read(HASH_BLOCK)  # grew since the stat
            while rest:
                digest.update(rest)
                rest = handle.read(HASH_BLOCK)
            return digest.hexdigest()
        block = bytearray(HASH_BLOCK)
        view = memoryview(block)
        got = handle.readinto(block)
        while got:
            digest.update(view[:got])
            got = handle.readinto(block)
    return digest.hexdigest()


KNOWN_DIGITS = 16


class Texts(object):
    """The redacted text of small text files, for the controller's unified diffs.

    Only a regular file that every user may read (a file kept from other users is treated as
    secret: only its digest travels), of at most ``max_bytes``, UTF-8 without NUL bytes, is kept;
    secret-looking lines are redacted here, on the host (module_utils/redact.py). A file whose
    SHA-256 is the one in ``known`` (the controller holds its text already) is not sent again; one
    ``known`` marks ``-`` (the baseline has its digest but no text: no diff can be made) is never
    sent. Digests in ``known`` are the first :data:`KNOWN_DIGITS` hex digits (a false match costs
    a diff, never a finding: the controller compares whole digests).
    ``budget`` bounds the bytes of text one snapshot carries; files past it get no text
    (counted in ``skipped``)."""

    def __init__(self, max_bytes=0, budget=0, known=None):
        self.max_bytes, self.budget, self.known = max_bytes, budget, dict(known or {})
        self.kept, self.used, self.skipped = {}, 0, 0

    def wants(self, st):
        return bool(self.max_bytes > 0 and stat.S_ISREG(st.st_mode) and st.st_size <= self.max_bytes
                    and st.st_mode & stat.S_IROTH)

    def offer(self, shown, raw, digest):
        known = self.known.get(shown)
        if known is not None and (known.startswith("-") or known == digest[:KNOWN_DIGITS]) or b"\0" in raw:
            return
        try:
            text = redact(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return
        size = len(text.encode("utf-8"))
        if self.used + size > self.budget:
            self.skipped += 1
            return
        self.kept[shown] = text
        self.used += size


def file_entry(path, texts=None, shown=None, st=None):
    """One file's record; a directory or socket is left out (None). ``st`` is its lstat when
    the caller has it already (os.scandir's cached entry)."""
    if st is None:
        st = os.lstat(path)
    mode = st.st_mode
    if stat.S_ISREG(mode):
        out = {"mode": "%04o" % stat.S_IMODE(mode), "owner": _name(pwd.getpwuid, st.st_uid),
               "group": _name(grp.getgrgid, st.st_gid), "size": st.st_size}
        try:
            if texts is not None and texts.wants(st):
                # small: read once, for the digest and the text
                with open(path, "rb", buffering=0) as handle:
                    raw = handle.read(texts.max_bytes + 1)
                if len(raw) > texts.max_bytes:  # grew since lstat: too large for a text
                    out["sha256"] = sha256(path)
                else:
                    out["sha256"] = hashlib.sha256(raw).hexdigest()
                    texts.offer(shown or path, raw, out["sha256"])
            else:
                out["sha256"] = sha256(path, st.st_size)
        except (IOError, OSError) as exc:
            out["sha256"] = "unreadable: %s" % (exc.strerror or exc)
        return out
    if stat.S_ISLNK(mode):
        return {"mode": "%04o" % stat.S_IMODE(mode), "owner": _name(pwd.getpwuid, st.st_uid),
                "group": _name(grp.getgrgid, st.st_gid), "target": os.readlink(path)}
    return None


def snapshot_files(paths, excludes=(), max_files=20000, root="/", texts=None):
    """{host path: record} of the files and symlinks under ``paths``; TooMany past ``max_files``.
    ``texts`` (a :class:`Texts`) collects the redacted text of small text files on the way.

    One lstat per entry (os.scandir's, cached), one compiled pattern for the excludes, one read
    for a small file's digest: the per-file cost is what a snapshot of /etc is made of."""
    out = {}
    skip = _matcher(tuple(excludes))

    def add(real, shown, st=None):
        if skip is not None and skip.match(shown):
            return
        entry = file_entry(real, texts, shown, st)
        if entry is not None:
            if len(out) >= max_files:
                raise TooMany(shown)
            out[shown] = entry

    def walk(real_dir, shown_dir):
        try:
            entries = sorted(os.scandir(real_dir), key=lambda e: e.name)
        except OSError:
            return
        subdirs = []
        for entry in entries:
            shown = shown_dir.rstrip("/") + "/" + entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_dir:  # a symlink to a directory is recorded as a link, never followed
                if skip is None or not skip.match(shown):
                    subdirs.append((entry.path, shown))
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            add(entry.path, shown, st)
        for real_sub, shown_sub in subdirs:
            walk(real_sub, shown_sub)

    for top in paths:
        real_top = os.path.join(root, top.lstrip("/"))
        if not os.path.lexists(real_top):
            continue
        if not os.path.isdir(real_top) or os.path.islink(real_top):
            add(real_top, top)
            continue
        rel = os.path.relpath(real_top, root)
        walk(real_top, "/" if rel == "." else "/" + rel)
    return out


def snapshot_packages(root="/"):
    text = read_optional(os.path.join(root, DPKG_STATUS.lstrip("/")))
    return None if text is None else parse_dpkg_installed(text)


def snapshot_accounts(root="/"):
    """users and groups: {"user:NAME": {...}, "group:NAME": {...}}; a user's ``groups`` are the
    groups that list it as a member (its primary group is its ``gid``)."""
    out, member_of = {}, {}
    for line in (read_optional(os.path.join(root, "etc/group")) or "").splitlines():
        f = line.split(":")
        if len(f) >= 4:
            members = sorted(m for m in f[3].split(",") if m)
            out["group:" + f[0]] = {"gid": f[2], "members": ",".join(members)}
            for m in members:
                member_of.setdefault(m, []).append(f[0])
    for line in (read_optional(os.path.join(root, "etc/passwd")) or "").splitlines():
        f = line.split(":")
        if len(f) >= 7:
            out["user:" + f[0]] = {"uid": f[2], "gid": f[3], "home": f[5], "shell": f[6],
                                   "groups": ",".join(sorted(member_of.get(f[0], ())))}
    return out


def snapshot_kmods(root="/"):
    """{module: {"state": Live}} of the loaded kernel modules; None without /proc/modules
    (a kernel built without modules; reference counts and users change by themselves)."""
    text = read_optional(os.path.join(root, "proc/modules"))
    if text is None:
        return None
    out = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 5:
            out[f[0]] = {"state": f[4]}
    return out


def _unescape(field):
    # mountinfo writes space, tab, newline and backslash as octal escapes
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def snapshot_mounts(excludes=(), root="/"):
    """{mount point: {"fstype", "source", "options"}} from /proc/self/mountinfo, the last (visible)
    mount of each point; pseudo file systems and runtime mount points left out. ``options`` are
    the per-mount and the file system's options, sorted."""
    text = read_optional(os.path.join(root, "proc/self/mountinfo"))
    if text is None:
        return None
    patterns = tuple(MOUNT_VOLATILE) + tuple(excludes)
    out = {}
    for line in text.splitlines():
        head, sep, tail = line.partition(" - ")
        f, t = head.split(), tail.split()
        if not sep or len(f) < 6 or len(t) < 2:
            continue
        point, fstype = _unescape(f[4]), t[0]
        if fstype in PSEUDO_FS or any(fnmatch.fnmatch(point, p) for p in patterns):
            continue
        options = set(f[5].split(",")) | set((t[2] if len(t) > 2 else "").split(","))
        out[point] = {"fstype": fstype, "source": _unescape(t[1]),
                      "options": ",".join(sorted(o for o in options if o))}
    return out


def snapshot_sudo(root="/"):
    """{"%sudo": {"rules": [...]}, "Defaults": {...}} (see module_utils/sudoers.py); None
    without /etc/sudoers (sudo not installed)."""
    if not os.path.exists(os.path.join(root, "etc/sudoers")):
        return None
    return dict((who, {"rules": rules}) for who, rules in sudo_rights(root).items())


def _matcher(patterns):
    """One compiled regex for shell patterns (fnmatch per key per pattern costs more than the read)."""
    if not patterns:
        return None
    return re.compile("|".join("(?:%s)" % fnmatch.translate(p) for p in patterns))


def snapshot_sysctl(excludes=(), root="/"):
    base = os.path.join(root, "proc/sys")
    skip = _matcher(tuple(SYSCTL_VOLATILE) + tuple(excludes))
    # whole subtrees the built-in list leaves out are not even walked
    pruned = frozenset(p[:-2] for p in SYSCTL_VOLATILE if p.endswith(".*") and "*" not in p[:-2])
    out = {}
    stack = [(base, "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            key = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                if key not in pruned:
                    stack.append((entry.path, key + "."))
                continue
            if skip is not None and skip.match(key):
                continue
            try:
                with open(entry.path, "rb") as handle:
                    value = handle.read(65536)
            except (IOError, OSError):  # write-only (route.flush) or refused
                continue
            out[key] = " ".join(value.decode("utf-8", "replace").split())
    return dict(sorted(out.items()))


def snapshot_ports(root="/"):
    """{"tcp/0.0.0.0:22": {"process": "sshd"}} of the listening TCP and unconnected UDP sockets."""
    return dict(("%s/%s" % (e["proto"].rstrip("6"), shown(e)), {"process": e["process"]})
                for e in listening(root))


def snapshot_services(runner=run_cmd):
    """{unit: {"enabled": state, "active": state}} of services and timers; None without systemd."""
    out = {}
    rc, text, err = runner(["systemctl", "list-unit-files", "--type=service,timer", "--no-legend",
                            "--no-pager", "--plain"])
    if rc != 0:
        raise CheckError("systemctl list-unit-files: %s" % " ".join(err.split()))
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 2 and "@" not in f[0]:
            out[f[0]] = {"enabled": f[1], "active": "inactive"}
    rc, text, err = runner(["systemctl", "list-units", "--type=service,timer", "--all", "--no-legend",
                            "--no-pager", "--plain"])
    for line in text.splitlines() if rc == 0 else ():
        f = line.split()
        if len(f) >= 4 and f[0] in out:
            out[f[0]]["active"] = f[2]
    return out


def snapshot_cron(services, root="/"):
    """crontabs and /etc/cron.* (by digest) and systemd timers (by enabled state)."""
    out = {}
    for pattern in CRON_GLOBS:
        for path in sorted(glob.glob(os.path.join(root, pattern))):
            if os.path.isfile(path):
                shown = "/" + os.path.relpath(path, root)
                try:
                    out[shown] = {"sha256": sha256(path)}
                except (IOError, OSError) as exc:
                    out[shown] = {"sha256": "unreadable: %s" % (exc.strerror or exc)}
    for unit, state in (services or {}).items():
        if unit.endswith(".timer"):
            out["timer:" + unit] = dict(state)
    return out


def snapshot(params, root="/", runner=run_cmd):
    """(finding of DRFT-SNAP-001, snapshot or None)."""
    wanted = set(params.get("categories") or CATEGORY_IDS)
    texts = Texts(params.get("text_max_bytes") or 0, params.get("text_budget") or 0, params.get("known"))
    try:
        files = snapshot_files(params["paths"], params["excludes"], params["max_files"], root, texts) \
            if "files" in wanted else None
    except TooMany as exc:
        return finding(SNAP["id"], SNAP["title"], SNAP["severity"], "fail",
                       {"reason": "more than %d files under %s (at %s): nothing recorded"
                        % (params["max_files"], ", ".join(params["paths"]), exc), "max_files": params["max_files"]},
                       SNAP["remediation"]), None
    notes = {}
    units = None
    if not wanted & {"services", "cron"}:
        pass  # systemctl only for what needs it
    elif root == "/" and probe().systemd:
        try:
            units = snapshot_services(runner)
        except CheckError as exc:
            notes["services"] = str(exc)
    else:
        notes["services"] = "systemd is not running"
    takers = {"files": lambda: files, "packages": lambda: snapshot_packages(root),
              "accounts": lambda: snapshot_accounts(root),
              "sysctl": lambda: snapshot_sysctl(params["sysctl_exclude"], root), "ports": lambda: snapshot_ports(root),
              "cron": lambda: snapshot_cron(units, root), "kmods": lambda: snapshot_kmods(root),
              "mounts": lambda: snapshot_mounts(params.get("mount_exclude") or (), root),
              "sudo": lambda: snapshot_sudo(root),
              "services": lambda: None if units is None else dict(
                  (u, s) for u, s in units.items() if u.endswith(".service"))}
    data = dict((key, take()) for key, take in takers.items() if key in wanted)
    if units is None:
        data.pop("services", None)
    for key in list(data):
        if data[key] is None:
            notes[key] = "not available on this host"
            del data[key]
    counts = dict((key, len(value)) for key, value in data.items())
    evidence = {"paths": list(params["paths"]), "items": counts,
                "texts": {"sent": len(texts.kept), "bytes": texts.used, "over_budget": texts.skipped}}
    if texts.kept:
        data["texts"] = texts.kept
    settings = dict((k, dict(params[k])) for k in ("severity", "baseline_from") if params.get(k))
    if settings:
        data["settings"] = settings
    if notes:
        evidence["not_recorded"] = notes
    return finding(SNAP["id"], SNAP["title"], SNAP["severity"], "pass", evidence, SNAP["remediation"]), data


QUIET = ("pass", "not_applicable")  # hardening audit statuses that are no desired-state drift


def desired_state(audit):
    """The hardening audit's result as a snapshot carries it: how many controls it judged and its
    findings that are not passing or not applicable, trimmed to what the controller judges."""
    keep = ("id", "title", "severity", "status", "evidence")
    findings = [dict((k, f.get(k)) for k in keep) for f in audit.get("findings") or ()
                if isinstance(f, dict) and f.get("status") not in QUIET]
    return {"controls": int(audit.get("controls") or 0), "findings": findings}


def run(params, root="/", runner=run_cmd):
    found, data = snapshot(params, root, runner)
    out = payload("drift", [found])
    if data is not None:
        if params.get("desired") is not None:
            data[DESIRED] = desired_state(params["desired"])
        out["fleetcare"]["data"] = data
    return out


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if module.params["max_files"] < 1:
        module.fail_json(msg="max_files: must be at least 1, not %d" % module.params["max_files"])
    for option in ("text_max_bytes", "text_budget"):
        if module.params[option] < 0:
            module.fail_json(msg="%s: must not be negative, not %d" % (option, module.params[option]))
    problems = drift_problems(module.params)
    if problems:
        module.fail_json(msg=problems[0][1])
    module.exit_json(changed=False, **run(module.params))


if __name__ == "__main__":
    main()

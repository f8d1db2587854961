# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

"""What every fleetcare.ops module asks of the host it runs on, asked once.

- :func:`probe`: is this a container (and which engine, and what said so), is
  systemd PID 1, which OS release, is ``/proc/sys`` mounted writable. Cached per
  root for the life of the module run, so every check and every module of the
  collection answers these questions the same way.
- :func:`run_cmd` and :func:`read_text`: commands in the C locale on a fixed
  search path, and file text.
- parsers of Linux interfaces more than one module reads (``/proc/mounts``,
  ``key=value`` property lists).

``root`` parameters exist for tests, which build a fake file tree; on a host
they are ``/``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import shutil
import subprocess

from ansible_collections.fleetcare.ops.plugins.module_utils.findings import CheckError, ToolMissing

CMD_TIMEOUT = 20
SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Substrings of PID 1's cgroup path that only container engines leave.
CGROUP_HINTS = ("docker", "lxc", "kubepods", "libpod")


def read_text(path):
    with open(path, "r") as handle:
        return handle.read()


def read_optional(path):
    """File text, or None when it cannot be read (missing, unreadable)."""
    try:
        return read_text(path)
    except (IOError, OSError):
        return None


def run_cmd(argv, timeout=CMD_TIMEOUT, env=None):
    """Run a command in the C locale; returns (rc, stdout, stderr). ToolMissing when not installed.
    ``env`` adds variables to its environment (such as the file restic reads its password from)."""
    exe = shutil.which(argv[0], path=SEARCH_PATH)
    if exe is None:
        raise ToolMissing("%s is not installed" % argv[0])
    env = dict(os.environ, LC_ALL="C", LANG="C", SYSTEMD_PAGER="", SYSTEMD_COLORS="0", **(env or {}))
    proc = subprocess.run([exe] + list(argv[1:]), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env, timeout=timeout, universal_newlines=True)
    return proc.returncode, proc.stdout, proc.stderr


def user_name(uid):
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


# --------------------------------------------------------------------------- the probe


def detect_container(root="/", runner=run_cmd):
    """(engine, what_said_so): the container technology ('' on a VM or bare metal), uncached.

    Marker files first (systemd's, podman's, docker's), then PID 1's environment and cgroup,
    then ``systemd-detect-virt -c`` (only on the real root).
    """
    join = os.path.join
    marker = (read_optional(join(root, "run/systemd/container")) or "").strip()
    if marker:
        return marker, "/run/systemd/container: %s" % marker
    for rel, engine in (("run/.containerenv", "podman"), (".dockerenv", "docker")):
        if os.path.exists(join(root, rel)):
            return engine, "/" + rel
    for item in (read_optional(join(root, "proc/1/environ")) or "").split("\0"):
        if item.startswith("container="):
            return item.split("=", 1)[1] or "container", "PID 1 environment: %s" % item
    cgroup = read_optional(join(root, "proc/1/cgroup")) or ""
    for hint in CGROUP_HINTS:
        if hint in cgroup:
            return hint, "PID 1 cgroup names %s" % hint
    if root != "/":
        return "", "no container marker"
    try:
        rc, out, _err = runner(["systemd-detect-virt", "-c"])
    except (CheckError, OSError, subprocess.SubprocessError):
        return "", "no container marker"
    if rc == 0 and out.strip() and out.strip() != "none":
        return out.strip(), "systemd-detect-virt -c: %s" % out.strip()
    return "", "systemd-detect-virt -c: none"


def systemd_booted(root="/"):
    """Same test as sd_booted(3): systemd is PID 1."""
    return os.path.isdir(os.path.join(root, "run/systemd/system"))


def parse_os_release(text):
    """/etc/os-release -> {KEY: value} with the quotes taken off."""
    out = {}
    for line in text.splitlines():
        match = re.match(r"^\s*([A-Z0-9_]+)=(.*)$", line)
        if match:
            value = match.group(2).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            out[match.group(1)] = value
    return out


def proc_sys_writable(root="/"):
    """Whether /proc/sys is mounted read-write (an application container's engine mounts it read-only)."""
    try:
        return not os.statvfs(os.path.join(root, "proc/sys")).f_flag & os.ST_RDONLY
    except OSError:
        return False


class Probe(object):
    """The answers of :func:`probe` (attributes, and :meth:`as_dict` for a module's result)."""

    def __init__(self, root="/", runner=run_cmd):
        self.container, self.container_detected_by = detect_container(root, runner)
        self.systemd = systemd_booted(root)
        self.os_release = parse_os_release(read_optional(os.path.join(root, "etc/os-release")) or "")
        self.proc_sys_writable = proc_sys_writable(root)

    @property
    def codename(self):
        return self.os_release.get("VERSION_CODENAME", "")

    def as_dict(self):
        return {"container": self.container, "container_detected_by": self.container_detected_by,
                "systemd": self.systemd, "os_id": self.os_release.get("ID", ""),
                "os_version_id": self.os_release.get("VERSION_ID", ""), "os_codename": self.codename,
                "proc_sys_writable": self.proc_sys_writable}


_PROBES = {}


def probe(root="/", runner=run_cmd):
    """The host probe, computed once per root and process (one module run)."""
    if root not in _PROBES:
        _PROBES[root] = Probe(root, runner)
    return _PROBES[root]


# --------------------------------------------------------------------------- shared parsers


def unescape_mount(field):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mounts(text):
    """/proc/mounts (or /proc/self/mounts) -> [{source, mount, fstype, options}] in mount order,
    octal escapes decoded."""
    out = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        out.append({"source": unescape_mount(fields[0]), "mount": unescape_mount(fields[1]),
                    "fstype": fields[2], "options": fields[3].split(",") if len(fields) > 3 else []})
    return out


def parse_properties(text, separator="="):
    """``Key=value`` lines (systemctl show, timedatectl show; ``Key : value`` for chronyc with
    separator ':') -> {key: value}, both stripped."""
    out = {}
    for line in text.splitlines():
        if separator in line:
            key, value = line.split(separator, 1)
            out[key.strip()] = value.strip()
    return out

# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

"""Debian knowledge shared by the modules of fleetcare.ops (hardening, health, patching, ...).

- dpkg: the status database (package -> state);
- APT: the enabled ``deb`` sources of one-line ``.list`` and deb822 ``.sources`` files, and
  the origin of each downloaded package list (its ``Release`` file: Origin, Label, Suite),
  which tells a security suite from the others;
- reboot: ``/var/run/reboot-required`` and the packages that asked for it, and the running
  kernel against the newest one installed.

Parsers take text, readers take a ``root`` (``/`` on a host, a fake tree in tests).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os
import re
import subprocess
import time

from ansible_collections.fleetcare.ops.plugins.module_utils.host import ToolMissing, read_optional, run_cmd

DPKG_STATUS = "/var/lib/dpkg/status"
APT_LISTS = "/var/lib/apt/lists"


# --------------------------------------------------------------------------- dpkg


def dpkg_paragraphs(text):
    """The status database's paragraphs as {Field: value} (continuation lines left out)."""
    for para in text.split("\n\n"):
        fields = {}
        for line in para.splitlines():
            if line[:1].isspace() or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        if fields:
            yield fields


def parse_dpkg_status(text):
    """package name -> dpkg state word (installed, config-files, unpacked, ...)."""
    out = {}
    for fields in dpkg_paragraphs(text):
        name = fields.get("Package")
        words = fields.get("Status", "").split()
        state = words[-1] if words else None
        # Multi-arch: an installed instance of any architecture counts.
        if name and state and out.get(name) != "installed":
            out[name] = state
    return out


def parse_dpkg_installed(text):
    """The installed packages: {"name:arch": {version, arch, hold}} (hold: the selection is hold)."""
    out = {}
    for fields in dpkg_paragraphs(text):
        words = fields.get("Status", "").split()
        if not fields.get("Package") or not words or words[-1] != "installed":
            continue
        arch = fields.get("Architecture", "")
        out["%s:%s" % (fields["Package"], arch)] = {"version": fields.get("Version", ""), "arch": arch,
                                                   "hold": words[0] == "hold"}
    return out


# --------------------------------------------------------------------------- APT


def _deb822_stanzas(text):
    """deb822 text (.sources, Release) -> [{lower-case field: value}] (continuation lines joined)."""
    stanzas = []
    for block in re.split(r"\n\s*\n", text):
        fields, last = {}, None
        for line in block.splitlines():
            if line.startswith("#"):
                continue
            if line[:1].isspace() and last:
                fields[last] += " " + line.strip()
                continue
            if ":" not in line:
                continue
            key, _, value = line.partition(":")
            last = key.strip().lower()
            fields[last] = value.strip()
        if fields:
            stanzas.append(fields)
    return stanzas


def parse_apt_sources(files):
    """Enabled `deb` entries of one-line (.list) and deb822 (.sources) files: [(file, uri, suite)]."""
    entries = []
    for name, text in files:
        if name.endswith(".sources"):
            for fields in _deb822_stanzas(text):
                if fields.get("enabled", "yes").lower() == "no" or "deb" not in fields.get("types", "").split():
                    continue
                for uri in fields.get("uris", "").split():
                    for suite in fields.get("suites", "").split():
                        entries.append((name, uri, suite))
            continue
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if not words or words[0] != "deb":
                continue
            words = words[1:]
            if words and words[0].startswith("["):  # [arch=amd64 signed-by=...]
                while words and not words[0].endswith("]"):
                    words = words[1:]
                words = words[1:]
            if len(words) >= 2:
                entries.append((name, words[0], words[1]))
    return entries


def read_apt_sources(root="/"):
    """[(file, text)] of /etc/apt/sources.list and sources.list.d/*.{list,sources}, in APT's order."""
    files = []
    main = read_optional(os.path.join(root, "etc/apt/sources.list"))
    if main is not None:
        files.append(("/etc/apt/sources.list", main))
    for path in sorted(glob.glob(os.path.join(root, "etc/apt/sources.list.d/*"))):
        if path.endswith((".list", ".sources")):
            with open(path, "r") as handle:
                files.append(("/etc/apt/sources.list.d/" + os.path.basename(path), handle.read()))
    return files


def parse_release(text):
    """A Release/InRelease file -> {origin, label, suite, codename} (empty strings when absent)."""
    stanzas = _deb822_stanzas(text.split("-----BEGIN PGP SIGNATURE-----")[0])
    fields = stanzas[0] if stanzas else {}
    if "hash" in fields and len(stanzas) > 1:  # the PGP armour header came first
        fields = stanzas[1]
    return dict((key, fields.get(key, "")) for key in ("origin", "label", "suite", "codename"))


def is_security_origin(release):
    """Whether a parsed Release names a security suite (Debian's is Label Debian-Security)."""
    return "security" in (release.get("label", "") + " " + release.get("suite", "")).lower()


def apt_origins(root="/"):
    """{list file name: parsed Release} of the package lists APT has downloaded."""
    out = {}
    for path in sorted(glob.glob(os.path.join(root, APT_LISTS.lstrip("/"), "*Release"))):
        text = read_optional(path)
        if text is not None:
            out[os.path.basename(path)] = parse_release(text)
    return out


# --------------------------------------------------------------------------- reboot and kernels


def reboot_required(root="/"):
    """(flagged, packages): /var/run/reboot-required exists, and the packages in its .pkgs file."""
    flag = os.path.join(root, "var/run/reboot-required")
    if not os.path.exists(flag):
        return False, []
    return True, sorted(set((read_optional(flag + ".pkgs") or "").split()))


def kernel_key(release):
    """Sort key for kernel releases such as 6.1.0-18-amd64 or 5.10.0-28-cloud-amd64."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.\-+~]", release)]


def newest_kernel(releases):
    releases = [r for r in releases if r and r[0].isdigit()]
    if not releases:
        return None
    return max(releases, key=kernel_key)


def installed_kernels(root="/"):
    """Kernel releases with an image in /boot (or, failing that, a module tree in /lib/modules)."""
    found = set()
    for path in glob.glob(os.path.join(root, "boot", "vmlinuz-*")):
        found.add(os.path.basename(path)[len("vmlinuz-"):])
    if not found:
        moddir = os.path.join(root, "lib", "modules")
        if os.path.isdir(moddir):
            for name in os.listdir(moddir):
                if os.path.exists(os.path.join(moddir, name, "modules.dep")):
                    found.add(name)
    return sorted(found)


def running_kernel():
    return os.uname()[2]


def newer_kernel_installed(running, root="/"):
    """(newest installed release or None, whether it is newer than the running one)."""
    newest = newest_kernel(installed_kernels(root))
    return newest, bool(newest and newest != running and kernel_key(newest) > kernel_key(running))


# --------------------------------------------------------------------------- pending updates (patching)


def parse_dpkg_held(text):
    """Names of the packages dpkg has on hold (``Status: hold ...``), sorted."""
    held = set()
    for para in text.split("\n\n"):
        name = None
        for line in para.splitlines():
            if line.startswith("Package:"):
                name = line.split(":", 1)[1].strip()
        status = next((line for line in para.splitlines() if line.startswith("Status:")), "")
        words = status.split(":", 1)[1].split() if status else []
        if name and words and words[0] == "hold":
            held.add(name)
    return sorted(held)


def installed_packages(text):
    """Names of the installed packages in a dpkg status text, sorted."""
    return sorted(name for name, state in parse_dpkg_status(text).items() if state == "installed")


# apt-cache policy abbreviates the Release fields it prints after each package file.
_POLICY_RELEASE_KEYS = {"o": "origin", "l": "label", "a": "suite", "n": "codename"}


def _policy_source(words):
    """The ``URI SUITE/COMPONENT`` key of a package file line of apt-cache policy (without the
    priority, the architecture and 'Packages'), or None for the dpkg status file."""
    if len(words) >= 3 and words[-1] == "Packages":
        return "%s %s" % (words[1], words[2])
    return None


def parse_policy_files(text):
    """``apt-cache policy`` (no arguments) -> {'URI SUITE/COMPONENT': parsed Release}, the origin
    of each package list APT uses, as APT itself read it from the list's Release file."""
    out, current = {}, None
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0].isdigit() or (words[0].startswith("-") and words[0][1:].isdigit()):
            current = _policy_source(words)
            if current:
                out[current] = dict((key, "") for key in _POLICY_RELEASE_KEYS.values())
        elif words[0] == "release" and current:
            for item in " ".join(words[1:]).split(","):
                key, _, value = item.partition("=")
                if key in _POLICY_RELEASE_KEYS:
                    out[current][_POLICY_RELEASE_KEYS[key]] = value
        elif line.startswith("Pinned packages"):
            break
    return out


def parse_policy_packages(text):
    """``apt-cache policy PKG...`` -> {package: {installed, candidate, sources: {version: [key]}}}
    where each key is a ``URI SUITE/COMPONENT`` of :func:`parse_policy_files`; a version missing
    from APT's view is None (``(none)``)."""
    out, pkg, version = {}, None, None
    for line in text.splitlines():
        if line and not line[0].isspace() and line.rstrip().endswith(":"):
            pkg, version = line.rstrip()[:-1], None
            out[pkg] = {"installed": None, "candidate": None, "sources": {}}
            continue
        if pkg is None:
            continue
        stripped = line.strip()
        for field in ("Installed", "Candidate"):
            if stripped.startswith(field + ":"):
                value = stripped.split(":", 1)[1].strip()
                out[pkg][field.lower()] = None if value == "(none)" else value
        words = stripped.split()
        if not words or stripped.startswith(("Installed:", "Candidate:", "Version table:")):
            continue
        if words[0] == "***":
            words = words[1:]
        if len(words) == 2 and words[1].lstrip("-").isdigit() and not words[0].isdigit():
            version = words[0]
            out[pkg]["sources"].setdefault(version, [])
        elif version and words[0].lstrip("-").isdigit():
            source = _policy_source(words)
            if source:
                out[pkg]["sources"][version].append(source)
    return out


def pending_updates(policy, origins, held=()):
    """[{package, installed, candidate, security, origins, held}] for each installed package whose
    candidate differs from the installed version. ``security``: the candidate comes from a
    security suite (:func:`is_security_origin` on the origin of a list offering it)."""
    out = []
    for name in sorted(policy):
        info = policy[name]
        installed, candidate = info["installed"], info["candidate"]
        if not installed or not candidate or installed == candidate:
            continue
        sources = info["sources"].get(candidate, [])
        releases = dict((key, origins.get(key, {})) for key in sources)
        out.append({"package": name, "installed": installed, "candidate": candidate,
                    "security": any(is_security_origin(r) for r in releases.values()),
                    "origins": sorted(set(r.get("label") or r.get("origin") or key
                                          for key, r in releases.items())),
                    "held": name in held})
    return out


def apt_lists_updated(root="/"):
    """Epoch seconds of the last successful ``apt-get update``, or None when there are no lists:
    the newest of APT::Periodic's success stamp and the change time of the Release files (a
    change time, because APT may keep the server's modification time on the file)."""
    times = []
    stamp = os.path.join(root, "var/lib/apt/periodic/update-success-stamp")
    if os.path.exists(stamp):
        times.append(os.stat(stamp).st_mtime)
    for path in glob.glob(os.path.join(root, APT_LISTS.lstrip("/"), "*Release")):
        times.append(os.stat(path).st_ctime)
    return max(times) if times else None


def apt_lists_present(root="/"):
    """Whether APT holds at least one downloaded package index (``*_Packages``, compressed or
    not). An image that emptied ``/var/lib/apt/lists`` (or never had it) holds none, although
    the directory's fresh change time makes a cache age check believe the lists are new."""
    return bool(glob.glob(os.path.join(root, APT_LISTS.lstrip("/"), "*_Packages*")))


def apt_lists_refresh_reason(max_age, now, root="/"):
    """Why the package lists must be refreshed before an install, or None when they will do:
    missing or empty whatever ``max_age`` says; older than ``max_age`` seconds when it is > 0."""
    if not apt_lists_present(root):
        return "no package lists under %s" % APT_LISTS
    updated = apt_lists_updated(root)
    if max_age and (updated is None or now - updated > max_age):
        return "package lists older than %d s" % max_age
    return None


def refresh_apt_lists(max_age, timeout, check_mode, root="/", runner=run_cmd, now=time.time):
    """(changed, reason, error): error is the failure's message, or None."""
    reason = apt_lists_refresh_reason(max_age, now(), root)
    if reason is None or check_mode:
        return reason is not None, reason or "", None
    try:
        rc, out, err = runner(["apt-get", "-q", "update"], timeout=timeout, env={"NEEDRESTART_SUSPEND": "1"})
    except ToolMissing as exc:
        return True, reason, str(exc)
    except subprocess.TimeoutExpired:
        return True, reason, "apt-get update took more than %d s" % timeout
    last = ((err or out).strip().splitlines() or [""])[-1]
    if rc != 0:
        return True, reason, "apt-get update exited %d: %s" % (rc, last)
    if not apt_lists_present(root):
        return True, reason, "apt-get update left no package lists: %s" % (last or "no source enabled?")
    return True, reason, None


def parse_apt_config(text):
    """``apt-config dump`` -> {Option::Name: value} (the last value of a list option wins)."""
    out = {}
    for line in text.splitlines():
        match = re.match(r'^(\S+)\s+"(.*)";$', line.strip())
        if match:
            out[match.group(1)] = match.group(2)
    return out


def reboot_state(running, container="", root="/"):
    """(pending, evidence): the reboot-required flag and its packages, and (outside a container,
    whose running kernel is the engine host's) the running kernel against the newest installed."""
    flagged, packages = reboot_required(root)
    evidence = {"reboot_required_flag": flagged, "packages": packages, "running_kernel": running}
    kernel_newer = False
    if container:
        evidence["note"] = ("in a %s container the running kernel is the host's; judged by "
                            "/var/run/reboot-required only" % container)
    else:
        evidence["newest_installed_kernel"], kernel_newer = newer_kernel_installed(running, root)
    evidence["newer_kernel_installed"] = kernel_newer
    reasons = []
    if flagged:
        reasons.append("/var/run/reboot-required (%s)" % (", ".join(packages) or "no package named"))
    if kernel_newer:
        reasons.append("running kernel %s is older than the installed %s"
                       % (running, evidence["newest_installed_kernel"]))
    evidence["reason"] = "; ".join(reasons)
    return bool(reasons), evidence


# --------------------------------------------------------------------------- after an upgrade (patching)


def parse_needrestart_batch(text):
    """``needrestart -b`` -> {services: [unit], containers: [...], sessions: [...], kernel_status}.
    Batch lines are ``NEEDRESTART-KEY: value``; KSTA is 0 unknown, 1 current, 2 ABI-compatible
    upgrade pending, 3 newer version pending."""
    out = {"services": [], "containers": [], "sessions": [], "kernel_status": None, "version": None}
    keys = {"NEEDRESTART-SVC": "services", "NEEDRESTART-CONT": "containers", "NEEDRESTART-SESS": "sessions"}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        value = value.strip()
        if key in keys and value:
            out[keys[key]].append(value)
        elif key == "NEEDRESTART-KSTA" and value.isdigit():
            out["kernel_status"] = int(value)
        elif key == "NEEDRESTART-VER":
            out["version"] = value
    for key in keys.values():
        out[key] = sorted(set(out[key]))
    return out


def _is_library(path):
    base = os.path.basename(path)
    return ".so" in base and not path.startswith(("/dev/", "/memfd:", "/SYSV", "/run/", "/tmp/", "/dev/shm"))


def parse_deleted_maps(text):
    """The deleted shared objects a /proc/PID/maps text maps (``/usr/lib/x.so.1 (deleted)``), sorted."""
    found = set()
    for line in text.splitlines():
        if not line.endswith(" (deleted)"):
            continue
        parts = line[:-len(" (deleted)")].split(None, 5)
        if len(parts) == 6 and parts[5].startswith("/") and _is_library(parts[5]):
            found.add(parts[5])
    return sorted(found)


def unit_of_cgroup(text):
    """The systemd unit of a /proc/PID/cgroup text (``0::/system.slice/ssh.service``), or None."""
    for line in text.splitlines():
        path = line.split(":", 2)[-1]
        for part in reversed(path.split("/")):
            if part.endswith((".service", ".scope")) and not part.startswith("init.scope"):
                return part
    return None


def processes_with_deleted_libraries(root="/"):
    """[{pid, command, unit, libraries}] of the processes under ``root``/proc that map a deleted
    shared library: they run code an upgrade replaced on disk (needrestart's fallback)."""
    out = []
    proc = os.path.join(root, "proc")
    for name in sorted((n for n in os.listdir(proc) if n.isdigit()), key=int) if os.path.isdir(proc) else []:
        maps = read_optional(os.path.join(proc, name, "maps"))
        libraries = parse_deleted_maps(maps or "")
        if not libraries:
            continue
        command = (read_optional(os.path.join(proc, name, "comm")) or "").strip()
        out.append({"pid": int(name), "command": command,
                    "unit": unit_of_cgroup(read_optional(os.path.join(proc, name, "cgroup")) or ""),
                    "libraries": libraries})
    return out


DPKG_UPDATES = "/var/lib/dpkg/updates"
DPKG_LOCKS = ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock")


def dpkg_pending_journal(root="/"):
    """Names of dpkg's journal files left in /var/lib/dpkg/updates (an interrupted dpkg run)."""
    path = os.path.join(root, DPKG_UPDATES.lstrip("/"))
    if not os.path.isdir(path):
        return []
    return sorted(n for n in os.listdir(path) if n.isdigit())


def lock_holder(path):
    """{pid, command, file} of the process holding a write lock on ``path`` (APT and dpkg take
    fcntl locks), or None when it is free or missing. Asks with F_GETLK, so it never takes the lock."""
    import fcntl
    import struct

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        # struct flock on Linux: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid
        fmt = "hhqqi"
        query = struct.pack(fmt, fcntl.F_WRLCK, 0, 0, 0, 0) + b"\0" * 8  # room for the C padding
        try:
            answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
        except OSError:
            return None
        l_type, _, _, _, pid = struct.unpack(fmt, answer[:struct.calcsize(fmt)])
    finally:
        os.close(fd)
    if l_type == fcntl.F_UNLCK:
        return None
    holder = {"file": path, "pid": pid if pid > 0 else None, "command": None}
    if pid > 0:
        cmdline = read_optional("/proc/%d/cmdline" % pid)
        if cmdline:
            holder["command"] = " ".join(cmdline.split("\0")).strip()
    return holder


def dpkg_lock_holders(root="/"):
    """The holders of dpkg's frontend lock and its database lock under ``root`` (see lock_holder)."""
    found = []
    for lock in DPKG_LOCKS:
        holder = lock_holder(os.path.join(root, lock.lstrip("/")))
        if holder:
            holder["file"] = lock
            found.append(holder)
    return found


UU_LOG = "/var/log/unattended-upgrades/unattended-upgrades.log"
_UU_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:,\d+)? (\w+) (.*)$")
_UU_DONE = ("All upgrades installed", "No packages found that can be upgraded unattended")


def parse_uu_log(text):
    """unattended-upgrades' log -> {last_success, last_error, last_line}: times as 'YYYY-MM-DD HH:MM:SS'
    (the host's local time, as the log writes them). A run succeeded when it logged that all
    upgrades were installed or that none could be."""
    out = {"last_success": None, "last_error": None, "last_error_message": None}
    for line in text.splitlines():
        match = _UU_LINE.match(line)
        if not match:
            continue
        stamp, level, message = match.groups()
        if level == "INFO" and message.startswith(_UU_DONE):
            out["last_success"] = stamp
        elif level in ("ERROR", "CRITICAL"):
            out["last_error"], out["last_error_message"] = stamp, message[:200]
    return out

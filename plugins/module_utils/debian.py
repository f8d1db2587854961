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

from ansible_collections.fleetcare.ops.plugins.module_utils.host import read_optional

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

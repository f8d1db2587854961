"""The machine running the containers kept its own kernel settings.

prepare.yml sampled the controller's ``sysctl -a`` twice, a second apart, at
the start of the scenario; keys that differ between those two samples change
on their own (counters, random state) and are left out. Per-interface
network keys come and go with the veth ends of containers (other tests' labs
too) and are left out; ``all``, ``default`` and ``lo`` stay compared.
"""

import os
import re
import subprocess
from pathlib import Path

import pytest

PER_INTERFACE = re.compile(r"^net\.ipv[46]\.(conf|neigh)\.(?!all\.|default\.|lo\.)")
# Counters and state of the running system, not settings; they may rest
# during the one-second sample and move later.
COUNTERS = re.compile(
    r"^(fs\.(dentry-state|file-nr|inode-nr|inode-state|aio-nr|quota\.)|kernel\.(ns_last_pid|pty\.nr|random\.)"
    r"|net\.netfilter\.nf_conntrack_count)"
)
SCOPES = ("kernel.", "fs.", "vm.", "net.")


def _parse(text: str) -> dict[str, str]:
    """key -> value; a key that sysctl prints on several lines (fs.pipe-keep on this machine's
    kernel) gets all its values, sorted: prepare.yml's samples are sorted, the one here is not."""
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(" = ")
        if sep and key.startswith(SCOPES) and not PER_INTERFACE.match(key) and not COUNTERS.match(key):
            values.setdefault(key, []).append(" ".join(value.split()))
    return {key: " | ".join(sorted(found)) for key, found in values.items()}


def test_host_sysctls_unchanged():
    ephemeral = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY")
    if not ephemeral:
        pytest.fail("MOLECULE_EPHEMERAL_DIRECTORY is not set: run through `molecule verify -s hardening`")
    first = _parse(Path(ephemeral, "host-sysctl-before.txt").read_text())
    second = _parse(Path(ephemeral, "host-sysctl-before-2.txt").read_text())
    assert len(first) > 200, "the snapshot from prepare.yml is missing or empty"
    volatile = {key for key in first if first[key] != second.get(key)}
    now = _parse(subprocess.run(["sysctl", "-a"], capture_output=True, text=True, check=False).stdout)
    changed = {key: (first[key], now.get(key)) for key in first
               if key not in volatile and key in now and now[key] != first[key]}
    assert changed == {}, f"the host's kernel settings changed: {changed}"
    kernel_wide = [k for k in first if k.startswith(("kernel.", "fs.", "vm."))]
    assert all(k in now for k in kernel_wide), "kernel-wide keys disappeared"

"""Hardening and a reboot on a lab VM: the kernel-level controls for real.

One Debian 12 qemu VM (fleetcare_lab/vm.py; TCG on the CI machine). In a
container the kernel's sysctls, module blacklists, audit rules, mount options,
AppArmor and process accounting are the engine host's and ``not_applicable``;
here they apply, and each is proven on the host itself, not only by the audit:

- check mode first on the fresh VM changes nothing;
- ``fleetcare harden``: the audit passes every enabled kernel-level control,
  and one SSH command reads what the kernel says (``sysctl``, ``modprobe -n -v``,
  ``auditctl -l``, ``findmnt``);
- a newer kernel (a .deb baked into the image) is installed and
  ``fleetcare patch --update security`` with the smart reboot policy reboots the
  VM (module_utils/reboot.py): PTCH-REBOOT-002 proves the boot ID changed and
  the VM runs the new kernel;
- after the reboot the same proof and ``fleetcare audit`` pass again, and root
  and the sudo user still log in.

The image is partitioned as the benchmarks ask (/home, /var, /var/log and
/var/log/audit of their own), so the mount controls of those partitions apply:
their options are proven live and in fstab (its labels kept), across the reboot.

Every process start in an emulated guest costs ~21 ms, so each proof is one
SSH command. ``lab down`` leaves no qemu and no VM disk.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import fleetcare_lab as lab
from fleetcare_lab import vm

pytestmark = [pytest.mark.lab, pytest.mark.vm]
ROOT = Path(__file__).resolve().parents[2]
HOST = "vm12-1"
PROVEN_KINDS = ("sysctl", "module_blacklist", "audit_rule", "mount_option")
# the image's own file systems (the benchmarks' layout): mount point -> label
PARTITIONS = {mount: label for mount, label, _ in vm.PARTITIONS}


def kernel_controls() -> list[dict]:
    """The enabled controls a container cannot have: what this VM must pass."""
    catalog = yaml.safe_load((ROOT / "roles/hardening/vars/catalog.yml").read_text())["__hardening_catalog"]
    return [c for c in catalog if not c["applies_in_container"] and not c["disruptive"]]


@pytest.fixture(scope="module")
def machine(tmp_path_factory):
    state = tmp_path_factory.mktemp("lab")
    try:
        inventory = lab.up(0, "12", state_dir=state, vms=1)
        (host,) = lab.status(state)
        assert host["kind"] == "vm" and host["state"] == "running"
        yield state, inventory, host["port"]
    finally:
        lab.down(state)
        # nothing left: no qemu of this lab, no disk, no state
        assert not (state / "vms").exists()
        assert not [p for p in Path("/proc").glob("[0-9]*/cmdline")
                    if str(state) in p.read_bytes().decode(errors="replace")]
        assert vm.image_path("12").exists()


def fleetcare(state: Path, data: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_DATA_HOME": str(data), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run([sys.executable, str(ROOT / "runner.py"), *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1500)


def report(data: Path) -> dict[str, dict]:
    runs = sorted((data / "fleetcare" / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
    return {f["id"]: f for f in json.loads((runs[-1] / "report.json").read_text())["findings"]}


def ssh(state: Path, port: int, command: str, user: str = "root") -> subprocess.CompletedProcess:
    return subprocess.run([*lab.ssh_command(state / lab.KEY_NAME, port, user), "-o", "ControlPath=none",
                           command], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                          check=False)


def fingerprint(state: Path, port: int) -> str:
    """What hardening would change, read in one command."""
    files = "/etc/sysctl.d /etc/modprobe.d /etc/audit /etc/fstab /etc/ssh /etc/pam.d /etc/login.defs /etc/apt"
    keys = " ".join(c["params"]["key"] for c in kernel_controls() if c["kind"] == "sysctl")
    proc = ssh(state, port, f"find {files} -type f -exec sha256sum {{}} + | sort; sysctl {keys} 2>&1; "
                            "findmnt -rno TARGET,OPTIONS; auditctl -l; cat /proc/modules | cut -d' ' -f1 | sort; "
                            "systemctl is-enabled acct auditd apparmor")
    return proc.stdout


def kernel_proof(state: Path, port: int) -> dict[str, str]:
    """Each kernel-level control as the kernel sees it, from ONE SSH command: control ID -> what failed
    ('' when it holds)."""
    checks = []
    for c in kernel_controls():
        p, cid = c["params"], c["id"]
        if c["kind"] == "sysctl":
            want = " ".join(str(p["value"]).split())
            key = p["key"]
            checks.append(f"v=$(sysctl -n {key} 2>&1 | tr -s ' \\t' '  '); [ \"$v\" = {shlex.quote(want)} ] "
                          f"|| echo '{cid} live '\"$v\"; grep -rqsE '^\\s*{key}\\s*=' /etc/sysctl.d "
                          f"|| echo '{cid} not in sysctl.d'")
        elif c["kind"] == "module_blacklist":
            module = p["module"]
            checks.append(f"modprobe -n -v {module} 2>&1 | grep -q 'install /bin/false' "
                          f"|| echo '{cid} modprobe would load {module}'")
        elif c["kind"] == "audit_rule":
            key = p["rule"].split(" -k ")[-1].split()[0]
            checks.append(f"grep -qE -- '(-k |key=){key}( |$)' /tmp/.rules || echo '{cid} no loaded rule {key}'")
        elif c["kind"] == "mount_option" and (not p.get("optional") or p["mount"] in PARTITIONS):
            checks.append(f"findmnt -no OPTIONS {p['mount']} | tr , '\\n' | grep -qx {p['option']} "
                          f"|| echo '{cid} {p['mount']} not {p['option']}'")
            if p["mount"] in PARTITIONS:  # the image's fstab line, its source kept
                checks.append(f"findmnt --fstab -no SOURCE {p['mount']} | grep -qx LABEL={PARTITIONS[p['mount']]} "
                              f"|| echo '{cid} {p['mount']} fstab source changed'")
    script = "auditctl -l > /tmp/.rules; " + "; ".join(checks) + "; rm -f /tmp/.rules"
    proc = ssh(state, port, script)
    assert proc.returncode == 0, proc.stderr
    found = {c["id"]: "" for c in kernel_controls() if c["kind"] in PROVEN_KINDS}
    for line in proc.stdout.splitlines():
        cid, _, what = line.partition(" ")
        found[cid] = what
    return {cid: what for cid, what in found.items() if what}


def logins(state: Path, port: int) -> dict[str, bool]:
    return {user: ssh(state, port, "id -un && sudo -n true", user).stdout.split()[:1] == [user]
            for user in ("root", "fleetcare")}


def test_harden_and_reboot_prove_the_kernel_level_controls(machine, tmp_path):
    state, inventory, port = machine
    data = tmp_path / "data"
    controls = kernel_controls()
    assert {c["kind"] for c in controls} >= set(PROVEN_KINDS)

    # check mode first, on the fresh VM: nothing changes
    before = fingerprint(state, port)
    proc = fleetcare(state, data, "harden", "-i", str(inventory), "--check", "-q")
    assert proc.returncode in (0, 1), (proc.stdout + proc.stderr)[-3000:]
    assert fingerprint(state, port) == before

    proc = fleetcare(state, data, "harden", "-i", str(inventory), "-q")
    assert proc.returncode in (0, 1), (proc.stdout + proc.stderr)[-3000:]
    found = report(data)
    failing = {c["id"]: found[c["id"]]["status"] for c in controls if found[c["id"]]["status"] != "pass"}
    assert not failing, {cid: found[cid]["evidence"] for cid in failing}
    assert kernel_proof(state, port) == {}
    assert logins(state, port) == {"root": True, "fleetcare": True}

    # a newer kernel, then the patching role's reboot (smart: a newer kernel is installed)
    (deb,) = ssh(state, port, f"ls {vm.GUEST_KERNEL_CACHE}/*.deb").stdout.split()
    install = ssh(state, port, f"dpkg -i {deb} >/dev/null && uname -r && cat /proc/sys/kernel/random/boot_id")
    assert install.returncode == 0, install.stderr[-2000:]
    old_kernel, old_boot = install.stdout.split()
    # the gate judges critical findings: the guest reaches no time server, so its clock is
    # unsynchronised (HLTH-TIME-001, major) and a [critical, major] gate would skip the host
    proc = fleetcare(state, data, "patch", "-i", str(inventory), "--update", "security", "-q",
                     "-e", "patching_reboot=smart", "-e", "patching_gate_severities=[critical]",
                     "--fail-on", "critical")
    assert proc.returncode in (0, 1), (proc.stdout + proc.stderr)[-3000:]
    proof = report(data)["PTCH-REBOOT-002"]
    assert proof["status"] == "pass", proof
    new_kernel = proof["evidence"]["running_kernel"]
    assert proof["evidence"]["boot_id_before"] == old_boot != proof["evidence"]["boot_id_after"]
    assert new_kernel != old_kernel and new_kernel == proof["evidence"]["newest_installed_kernel"]
    assert ssh(state, port, "uname -r").stdout.strip() == new_kernel

    # after the reboot: the same proof, the audit, and both logins
    assert kernel_proof(state, port) == {}
    assert logins(state, port) == {"root": True, "fleetcare": True}
    proc = fleetcare(state, data, "audit", "-i", str(inventory), "-q")
    assert proc.returncode in (0, 1), (proc.stdout + proc.stderr)[-3000:]
    found = report(data)
    failing = {c["id"]: found[c["id"]]["status"] for c in controls if found[c["id"]]["status"] != "pass"}
    assert not failing, {cid: found[cid]["evidence"] for cid in failing}

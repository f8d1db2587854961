"""qemu virtual machines in the lab: lab hosts with a kernel of their own.

A container shares this machine's kernel, so the kernel-level controls of
hardening (sysctls of ``kernel.*``, module blacklists, audit rules, mount
options, AppArmor) and a reboot into a new kernel cannot be proven in one.  A
lab VM can: it is a Debian host booted by qemu from a disk image built here,
reachable over SSH on a port of 127.0.0.1, in the same inventory as the
containers (groups ``lab``, ``debianN`` and ``vm``; root with the lab key, the
sudo user ``fleetcare``).

The image (:func:`build_image`) is made without a registry, a loop device or a
mount: ``debootstrap`` plus ``apt-get`` in a chroot give a tree, ``mkfs.ext4
-d`` writes it into the partitions of a raw file, and GRUB's ``boot.img``
and a ``core.img`` made by ``grub-mkimage`` go in front of them with plain
writes.  The disk is laid out as the CIS and ANSSI benchmarks ask a server to
be provisioned (:data:`PARTITIONS`): ``/home``, ``/var``, ``/var/log`` and
``/var/log/audit`` are file systems of their own (logical partitions), with
the default options a fresh install gives them, so the hardening role's mount
controls for them apply and are proven here.  GRUB boots ``/vmlinuz`` and ``/initrd.img`` from that file system:
the symlinks Debian's kernel packages move to the kernel they install, so a
kernel installed inside the VM is the one its next boot runs.  The packages
the hardening role installs are baked in (:data:`HARDENING_PACKAGES`), so no
package is installed under emulation, and the guest's network is restricted
(it reaches nothing; SSH in works).  A newer kernel than the installed one is
kept as a ``.deb`` in :data:`GUEST_KERNEL_CACHE` for tests of a reboot into a
new kernel.  The image is cached under :func:`image_dir` with a hash of its
recipe and rebuilt only when that changes.

Each VM runs on a copy-on-write overlay of the image (qemu-img), with a small
raw "seed" disk holding its host name and the lab's public key, which a unit
of the image reads at every boot.  qemu is the VM's supervisor: a guest reboot
is a reset inside the same qemu process, so the VM keeps its SSH port; the port
is recorded in the VM's state and reused when a stopped VM starts again.
KVM is tried first and TCG is used when KVM does not work (said in the output).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fleetcare_lab import (
    MIRROR,
    SUITES,
    LabError,
    _check_distros,
    _last_line,
    _locked,
    _require,
    _require_root,
    _unmount_below,
    _wait_ssh,
)

# What roles/hardening's package_present controls install by default (the
# non-disruptive ones; tests/unit checks this list against the catalog), baked
# into the image so that hardening a VM installs nothing under emulation.  Not
# apparmor-profiles (disruptive, off by default): compiling its hundred
# profiles kept a boot under emulation waiting for minutes.
HARDENING_PACKAGES = (
    "acct", "aide", "aide-common", "apparmor", "apparmor-utils", "apt-listchanges", "apt-show-versions",
    "audispd-plugins", "auditd", "chkrootkit", "chrony", "debsums", "fail2ban", "libpam-pwquality",
    "libpam-tmpdir", "logrotate", "netbase", "nftables", "python3-systemd", "rsyslog", "sudo", "sysstat",
    "unattended-upgrades",
)
# The judges of benchmarks/hardening.py (the guest reaches no mirror), which
# change nothing on the host until they run.
SCANNER_PACKAGES = ("lynis", "openscap-scanner")
# Debian 11 ships oscap in libopenscap8 (openscap-scanner came with 12).
SCANNER_PACKAGES_BY_RELEASE = {"11": ("lynis", "libopenscap8")}
# A booting systemd host with sshd and what Ansible needs.
BASE_PACKAGES = (
    "systemd", "systemd-sysv", "udev", "dbus", "openssh-server", "python3", "python3-apt", "sudo",
    "zstd", "initramfs-tools", "kmod", "linux-image-cloud-amd64", "cron", "iproute2", "procps",
    "ca-certificates",
)
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
# the security archive's own address: what the Debian installer writes into sources.list
INSTALLER_SECURITY = "http://security.debian.org/debian-security"
IMAGE_SIZE = 6 * 1024**3
PART_OFFSET = 1024 * 1024
GUEST_KERNEL_CACHE = "/var/cache/fleetcare/kernels"
MEMORY_MB = int(os.environ.get("FLEETCARE_VM_MEMORY", "1536"))
CPUS = int(os.environ.get("FLEETCARE_VM_CPUS", "1"))
BOOT_WAIT_SECONDS = 300.0
VM_DIR = "vms"
SEED_SERIAL = "fcseed"
IMAGE_RECIPE = 2
# The file systems besides the root (partition 1), as logical partitions 5-8 of
# an extended partition 2 at the end of the disk: mount point, label, size.
PARTITIONS = (
    ("/home", "home", 256 * 1024**2),
    ("/var", "var", 2 * 1024**3),
    ("/var/log", "varlog", 512 * 1024**2),
    ("/var/log/audit", "varaudit", 256 * 1024**2),
)
SECTOR = 512
ALIGN_SECTORS = PART_OFFSET // SECTOR

# Run in the chroot after debootstrap; $1 = suite, $2 = the packages.
_CHROOT_SCRIPT = r"""
set -eu
export DEBIAN_FRONTEND=noninteractive LC_ALL=C
suite=$1; shift
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 0755 /usr/sbin/policy-rc.d
apt-get update -qq
wanted=""
for p in "$@"; do
    if apt-cache show "$p" >/dev/null 2>&1; then wanted="$wanted $p"; else echo "not in $suite: $p"; fi
done
apt-get install -y -qq --no-install-recommends $wanted >/dev/null
# The newest kernel of the security archive, when newer than the installed one:
# kept as a .deb for a test of a reboot into a new kernel (never installed here).
installed=$(dpkg-query -W -f='${Version}' linux-image-cloud-amd64)
echo "deb __SECURITY__ $suite-security main" > /etc/apt/sources.list.d/fleetcare-kernels.list
apt-get update -qq || true
newer=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)/\1/p' | head -n1)
candidate=$(apt-cache policy linux-image-cloud-amd64 | sed -n 's/^ *Candidate: //p')
mkdir -p __KCACHE__
if [ -n "$newer" ] && dpkg --compare-versions "$candidate" gt "$installed"; then
    (cd __KCACHE__ && apt-get download -qq "$newer")
fi
rm -f /etc/apt/sources.list.d/fleetcare-kernels.list
apt-get update -qq
apt-get clean
# The security suite in the sources, as the Debian installer writes them; its lists are
# not fetched (the guest reaches no mirror, and the packages stay as installed).
echo "deb __INSTALLER_SECURITY__ $suite-security main" >> /etc/apt/sources.list
rm -f /usr/sbin/policy-rc.d

# the operator account of every lab host
useradd --create-home --shell /bin/bash --password '*' fleetcare
printf 'fleetcare ALL=(ALL:ALL) NOPASSWD: ALL\n' > /etc/sudoers.d/fleetcare
chmod 0440 /etc/sudoers.d/fleetcare
passwd -l root >/dev/null
printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n' > /etc/systemd/network/10-lab.network
systemctl enable systemd-networkd fleetcare-seed.service ssh.service >/dev/null 2>&1
# nothing waits for a network it cannot reach; no timer spends the CPU of an emulated host
systemctl mask systemd-networkd-wait-online.service e2scrub_all.timer e2scrub_reap.service \
    apt-daily.timer apt-daily-upgrade.timer man-db.timer fstrim.timer >/dev/null 2>&1 || true
rm -f /etc/ssh/ssh_host_* /var/lib/dbus/machine-id
: > /etc/machine-id
echo localhost > /etc/hostname
"""  # noqa: E501

# Every boot: the host name and the lab key from the seed disk; the host keys
# on first boot (ed25519 only: RSA takes half a minute under emulation).
_SEED_SCRIPT = r"""#!/bin/sh
set -eu
dev=/dev/disk/by-id/virtio-__SERIAL__
i=0
while [ ! -e "$dev" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
seed=$(tr -d '\000' < "$dev")
name=$(printf '%s\n' "$seed" | sed -n 's/^hostname //p')
key=$(printf '%s\n' "$seed" | sed -n 's/^key //p')
if [ -n "$name" ]; then
    echo "$name" > /etc/hostname
    hostname "$name"
fi
for home in /root /home/fleetcare; do
    install -d -m 0700 "$home/.ssh"
    printf '%s\n' "$key" > "$home/.ssh/authorized_keys"
    chmod 0600 "$home/.ssh/authorized_keys"
done
chown -R fleetcare:fleetcare /home/fleetcare/.ssh
[ -e /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
"""

_SEED_UNIT = """[Unit]
Description=fleetcare lab: host name, lab key and host key from the seed disk
Before=ssh.service ssh.socket
After=systemd-udevd.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/fleetcare-seed
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
"""

_GRUB_CFG = """set timeout=0
menuentry "Debian (lab VM)" {
    linux /vmlinuz root=/dev/vda1 ro console=ttyS0,115200
    initrd /initrd.img
}
menuentry "Debian (lab VM, previous kernel)" {
    linux /vmlinuz.old root=/dev/vda1 ro console=ttyS0,115200
    initrd /initrd.img.old
}
"""

_GRUB_EARLY = """set root=(hd0,msdos1)
set prefix=(hd0,msdos1)/boot/grub
configfile (hd0,msdos1)/boot/grub/grub.cfg
"""
GRUB_MODULES = ("biosdisk", "part_msdos", "ext2", "normal", "linux", "configfile", "echo", "test", "boot")
GRUB_DIR = Path("/usr/lib/grub/i386-pc")


def image_dir() -> Path:
    """Where VM images are cached ($FLEETCARE_VM_IMAGES or /var/cache/fleetcare/vm)."""
    return Path(os.environ.get("FLEETCARE_VM_IMAGES", "/var/cache/fleetcare/vm"))


def image_path(distro: str) -> Path:
    return image_dir() / f"debian{distro}.raw"


def packages(distro: str) -> list[str]:
    """What the image of Debian ``distro`` installs (those its archive lacks are left out and said)."""
    scanners = SCANNER_PACKAGES_BY_RELEASE.get(distro, SCANNER_PACKAGES)
    return sorted(set(BASE_PACKAGES + HARDENING_PACKAGES + scanners))


def recipe_hash(distro: str) -> str:
    recipe = {
        "suite": SUITES[distro],
        "mirror": MIRROR,
        "security": SECURITY_MIRROR,
        "packages": packages(distro),
        "scripts": [_CHROOT_SCRIPT, _SEED_SCRIPT, _SEED_UNIT, _GRUB_CFG, _GRUB_EARLY, list(GRUB_MODULES)],
        "size": IMAGE_SIZE,
        "partitions": [list(part) for part in PARTITIONS],
        "recipe": IMAGE_RECIPE,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def _run(argv: list[str], what: str, log: Path | None = None, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    if log is not None:
        with log.open("a") as out:
            out.write(f"$ {' '.join(argv)}\n{proc.stdout}{proc.stderr}")
    if proc.returncode != 0:
        raise LabError(f"{what} failed: {_last_line(proc.stderr or proc.stdout)}")
    return proc


def _chroot(rootfs: Path, argv: list[str], what: str, log: Path) -> None:
    mounts = []
    try:
        for point, args in (("proc", ["-t", "proc", "proc"]), ("sys", ["-t", "sysfs", "sys"]),
                            ("dev", ["--bind", "/dev"]), ("dev/pts", ["--bind", "/dev/pts"])):
            target = rootfs / point
            target.mkdir(exist_ok=True)
            _run(["mount", *args, str(target)], f"mount {point}")
            mounts.append(target)
        _run(["chroot", str(rootfs), *argv], what, log)
    finally:
        for target in reversed(mounts):
            subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)


def _make_rootfs(distro: str, rootfs: Path, log: Path, progress: Callable[[str], None]) -> None:
    suite = SUITES[distro]
    started = time.monotonic()
    progress(f"vm debian {distro}: debootstrap {suite} ...")
    _run(["debootstrap", "--variant=minbase", suite, str(rootfs), MIRROR], f"debootstrap {suite}", log)
    progress(f"vm debian {distro}: debootstrap done in {time.monotonic() - started:.0f}s; installing packages")
    seed = rootfs / "usr/local/sbin/fleetcare-seed"
    seed.write_text(_SEED_SCRIPT.replace("__SERIAL__", SEED_SERIAL))
    seed.chmod(0o755)
    (rootfs / "etc/systemd/system/fleetcare-seed.service").write_text(_SEED_UNIT)
    script = (_CHROOT_SCRIPT.replace("__SECURITY__", SECURITY_MIRROR).replace("__KCACHE__", GUEST_KERNEL_CACHE)
              .replace("__INSTALLER_SECURITY__", INSTALLER_SECURITY))
    _chroot(rootfs, ["sh", "-c", script, "fleetcare-vm", suite, *packages(distro)], "package installation", log)
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("not in "):
            progress(f"vm debian {distro}: {line}")
    (rootfs / "etc/fstab").write_text(fstab())
    (rootfs / "boot/grub").mkdir(parents=True, exist_ok=True)
    (rootfs / "boot/grub/grub.cfg").write_text(_GRUB_CFG)
    for link in ("vmlinuz", "initrd.img"):
        if not (rootfs / link).exists():
            raise LabError(f"the image has no /{link} symlink to boot")
    progress(f"vm debian {distro}: tree ready in {time.monotonic() - started:.0f}s")


def layout() -> list[tuple[str, str, int, int]]:
    """The disk's file systems: (mount point, label, first sector, sectors), the root first.

    The root is partition 1 from 1 MiB; an extended partition 2 fills the end of the disk
    with the :data:`PARTITIONS` as logical partitions 5 onwards, each 1 MiB after its own
    extended boot record (so every file system starts on a MiB)."""
    total = IMAGE_SIZE // SECTOR
    logical = sum(ALIGN_SECTORS + size // SECTOR for _, _, size in PARTITIONS)
    extended = total - logical
    out = [("/", "root", ALIGN_SECTORS, extended - ALIGN_SECTORS)]
    ebr = extended
    for mount, label, size in PARTITIONS:
        out.append((mount, label, ebr + ALIGN_SECTORS, size // SECTOR))
        ebr += ALIGN_SECTORS + size // SECTOR
    return out


def fstab() -> str:
    """The guest's /etc/fstab: every file system by its label, with a fresh install's options."""
    lines = []
    for mount, label, _, _ in layout():
        options, passno = ("errors=remount-ro", 1) if mount == "/" else ("defaults", 2)
        lines.append(f"LABEL={label} {mount} ext4 {options} 0 {passno}")
    return "\n".join(lines) + "\n"


def _entry(boot: int, kind: int, first: int, count: int) -> bytes:
    # status, CHS start (LBA only), type, CHS end, first sector, sector count
    return struct.pack("<B3sB3sII", boot, b"\xfe\xff\xff", kind, b"\xfe\xff\xff", first, count)


def partition_records(boot: bytes) -> dict[int, bytes]:
    """Sector -> its 512 bytes: the MBR (GRUB's boot code, a bootable Linux partition 1 and an
    extended partition 2) and the chain of extended boot records, one per logical partition
    (its entry relative to the record itself, the link to the next relative to partition 2)."""
    parts = layout()
    (_, _, root_first, root_count), logical = parts[0], parts[1:]
    extended = root_first + root_count
    records = {0: boot[:440] + bytes(6) + _entry(0x80, 0x83, root_first, root_count)
               + _entry(0, 0x05, extended, IMAGE_SIZE // SECTOR - extended) + bytes(32) + b"\x55\xaa"}
    for i, (_, _, first, count) in enumerate(logical):
        ebr = first - ALIGN_SECTORS
        link = bytes(16)
        if i + 1 < len(logical):
            nxt_first, nxt_count = logical[i + 1][2], logical[i + 1][3]
            link = _entry(0, 0x05, nxt_first - ALIGN_SECTORS - extended, nxt_count + ALIGN_SECTORS)
        records[ebr] = bytes(446) + _entry(0, 0x83, ALIGN_SECTORS, count) + link + bytes(32) + b"\x55\xaa"
    return records


def _split_tree(rootfs: Path, workdir: Path) -> dict[str, Path]:
    """Each :data:`PARTITIONS` mount point's subtree moved out of ``rootfs`` (deepest first), an
    empty mount point with the same mode and owner left in its place."""
    trees = {"/": rootfs}
    for mount, label, _ in sorted(PARTITIONS, key=lambda part: part[0].count("/"), reverse=True):
        inside = rootfs / mount.lstrip("/")
        tree = workdir / f"part-{label}"
        inside.mkdir(parents=True, exist_ok=True)
        meta = inside.stat()
        inside.rename(tree)
        inside.mkdir()
        os.chmod(inside, meta.st_mode & 0o7777)
        os.chown(inside, meta.st_uid, meta.st_gid)
        trees[mount] = tree
    return trees


def _write_disk(rootfs: Path, disk: Path, workdir: Path, log: Path) -> None:
    with disk.open("wb") as out:
        out.truncate(IMAGE_SIZE)
    trees = _split_tree(rootfs, workdir)
    for mount, label, first, count in layout():
        _run(["mkfs.ext4", "-q", "-F", "-L", label, "-E", f"offset={first * SECTOR},nodiscard", "-d", str(trees[mount]),
              str(disk), f"{count * SECTOR // 1024}k"], f"mkfs.ext4 of {mount}", log)
    early = workdir / "early.cfg"
    early.write_text(_GRUB_EARLY)
    core = workdir / "core.img"
    _run(["grub-mkimage", "-O", "i386-pc", "-o", str(core), "-c", str(early),
          "-p", "(hd0,msdos1)/boot/grub", *GRUB_MODULES], "grub-mkimage", log)
    if core.stat().st_size > PART_OFFSET - SECTOR:
        raise LabError("GRUB's core.img does not fit before the partition")
    with disk.open("r+b") as out:
        for sector, record in sorted(partition_records((GRUB_DIR / "boot.img").read_bytes()).items()):
            out.seek(sector * SECTOR)
            out.write(record)
        out.seek(SECTOR)
        out.write(core.read_bytes())


def build_image(distro: str = "12", force: bool = False, progress: Callable[[str], None] = print) -> Path:
    """The cached VM image of Debian ``distro``, built when missing or when its recipe changed."""
    (distro,) = _check_distros([distro])
    _require_root()
    target = image_path(distro)
    stamp = target.with_suffix(".recipe")
    want = recipe_hash(distro)
    image_dir().mkdir(parents=True, exist_ok=True)
    with _locked(image_dir() / f".lock-{distro}"):
        if not force and target.exists() and stamp.exists() and stamp.read_text().strip() == want:
            progress(f"vm debian {distro}: {target} is up to date")
            return target
        _require("debootstrap", "mkfs.ext4", "grub-mkimage")
        if not (GRUB_DIR / "boot.img").exists():
            raise LabError(f"{GRUB_DIR}/boot.img is missing (try: apt-get install -y grub-pc-bin)")
        started = time.monotonic()
        workdir = Path(tempfile.mkdtemp(prefix=f"fleetcare-vm{distro}-", dir="/var/tmp"))
        log = image_dir() / f"debian{distro}.build.log"
        log.write_text("")
        try:
            rootfs = workdir / "rootfs"
            _make_rootfs(distro, rootfs, log, progress)
            partial = target.with_suffix(".partial")
            _write_disk(rootfs, partial, workdir, log)
            partial.replace(target)
            stamp.write_text(want + "\n")
        finally:
            _unmount_below(workdir)
            shutil.rmtree(workdir, ignore_errors=True)
            target.with_suffix(".partial").unlink(missing_ok=True)
        progress(f"vm debian {distro}: {target} built in {time.monotonic() - started:.0f}s")
        return target


# --------------------------------------------------------------------------
# VMs


def host_name(distro: str, index: int) -> str:
    """The inventory name of the lab's VM ``index`` of Debian ``distro``."""
    return f"vm{distro}-{index}"


def _vm_root(state: Path) -> Path:
    return state / VM_DIR


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pid_alive(pid: int, disk: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return str(disk) in cmdline


def _pid(vmdir: Path) -> int | None:
    try:
        pid = int((vmdir / "qemu.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid, vmdir / "disk.qcow2") else None


def _describe(vmdir: Path) -> dict[str, Any]:
    meta = json.loads((vmdir / "vm.json").read_text())
    meta["state"] = "running" if _pid(vmdir) else "stopped"
    return meta


def vms(state: Path) -> list[dict[str, Any]]:
    """The VMs of the lab in ``state``, each as ``status`` describes them."""
    root = _vm_root(state)
    if not root.is_dir():
        return []
    found = [_describe(d) for d in root.iterdir() if (d / "vm.json").exists()]
    return sorted(found, key=lambda h: (int(h["distro"]), h["index"]))


_ACCEL: list[str] = []


def _qemu_argv(vmdir: Path, port: int, accel: str) -> list[str]:
    return [
        "qemu-system-x86_64", "-name", vmdir.name, "-machine", "q35" if accel == "kvm" else "pc",
        *(["-accel", "kvm", "-cpu", "host"] if accel == "kvm" else ["-accel", "tcg,tb-size=256"]),
        "-m", str(MEMORY_MB), "-smp", str(CPUS), "-display", "none", "-nodefaults",
        "-serial", f"file:{vmdir / 'serial.log'}", "-monitor", f"unix:{vmdir / 'monitor.sock'},server,nowait",
        "-daemonize", "-pidfile", str(vmdir / "qemu.pid"),
        # bootindex: the BIOS boots this disk, and GRUB's (hd0) is this disk, never the seed
        "-drive", f"file={vmdir / 'disk.qcow2'},if=none,id=disk,format=qcow2,cache=unsafe,discard=unmap",
        "-device", "virtio-blk-pci,drive=disk,bootindex=0",
        "-drive", f"file={vmdir / 'seed.raw'},if=none,id=seed,format=raw,readonly=on",
        "-device", f"virtio-blk-pci,drive=seed,serial={SEED_SERIAL}",
        "-netdev", f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-device", "virtio-net-pci,netdev=n0", "-device", "virtio-rng-pci",
    ]


def _launch(vmdir: Path, port: int, progress: Callable[[str], None]) -> str:
    """Start qemu for ``vmdir``; KVM first, TCG when KVM does not run. Returns the accelerator."""
    order = _ACCEL or (["kvm", "tcg"] if os.access("/dev/kvm", os.R_OK | os.W_OK) else ["tcg"])
    detail = kvm_failed = ""
    for accel in order:
        (vmdir / "serial.log").unlink(missing_ok=True)
        proc = subprocess.run(_qemu_argv(vmdir, port, accel), capture_output=True, text=True, check=False)
        pid = _pid(vmdir) if proc.returncode == 0 else None
        if pid and accel == "kvm":
            # KVM may accept the machine and fail on the first guest instructions
            time.sleep(3)
            pid = _pid(vmdir)
        if pid:
            if kvm_failed:
                progress(f"{vmdir.name}: KVM does not work here ({kvm_failed}); using TCG")
            _ACCEL[:] = [accel]
            return accel
        detail = _last_line(proc.stderr or proc.stdout or "qemu exited")
        if "hostfwd" in detail or "host forwarding" in detail:
            raise LabError(f"cannot start {vmdir.name}: 127.0.0.1:{port} is busy; run `fleetcare lab down`")
        if accel == "kvm":
            serial = (vmdir / "serial.log").read_text(errors="replace") if (vmdir / "serial.log").exists() else ""
            kvm_failed = detail if proc.returncode else _last_line(serial or "qemu exited at once")
    raise LabError(f"qemu for {vmdir.name} failed: {detail}")


def _seed(vmdir: Path, name: str, public_key: str) -> None:
    data = f"hostname {name}\nkey {public_key}\n".encode()
    size = (len(data) // 512 + 1) * 512
    (vmdir / "seed.raw").write_bytes(data.ljust(size, b"\0"))


def _start(vmdir: Path, public_key: str, progress: Callable[[str], None]) -> None:
    meta = json.loads((vmdir / "vm.json").read_text())
    _seed(vmdir, meta["host"], public_key)
    accel = _launch(vmdir, int(meta["port"]), progress)
    meta["accel"] = accel
    (vmdir / "vm.json").write_text(json.dumps(meta, indent=1) + "\n")
    how = "KVM" if accel == "kvm" else "TCG (software emulation)"
    progress(f"{meta['host']}: qemu started with {how}, SSH on 127.0.0.1:{meta['port']}")


def _create(state: Path, distro: str, index: int, image: Path) -> Path:
    name = host_name(distro, index)
    vmdir = _vm_root(state) / name
    vmdir.mkdir(parents=True, exist_ok=True)
    _run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(image), str(vmdir / "disk.qcow2")],
         f"qemu-img create for {name}")
    meta = {"name": name, "host": name, "distro": distro, "index": index, "kind": "vm",
            "port": _free_port(), "address": "127.0.0.1", "image": str(image),
            "recipe": recipe_hash(distro)}
    (vmdir / "vm.json").write_text(json.dumps(meta, indent=1) + "\n")
    return vmdir


def up(count: int, distro: str, state: Path, key: Path, progress: Callable[[str], None] = print) -> None:
    """Bring up ``count`` VMs of Debian ``distro`` in the lab ``state`` (idempotent), until they answer SSH.

    The caller holds the lab's lock and has made its key.
    """
    _require("qemu-system-x86_64", "qemu-img")
    image = build_image(distro, progress=progress)
    public_key = key.with_suffix(".pub").read_text(encoding="utf-8").strip()
    waiting = []
    for index in range(1, count + 1):
        vmdir = _vm_root(state) / host_name(distro, index)
        if not (vmdir / "vm.json").exists():
            vmdir = _create(state, distro, index, image)
        if _pid(vmdir) is None:
            _start(vmdir, public_key, progress)
        meta = _describe(vmdir)
        waiting.append((meta["host"], int(meta["port"])))
    started = time.monotonic()
    _wait_ssh(waiting, key, timeout=BOOT_WAIT_SECONDS)
    progress(f"{len(waiting)} VM(s) answer SSH ({time.monotonic() - started:.0f}s)")


def stop(vmdir: Path, timeout: float = 20.0) -> None:
    """Stop a VM's qemu (SIGTERM, then SIGKILL) and wait until it is gone."""
    pid = _pid(vmdir)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_alive(pid, vmdir / "disk.qcow2"):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                deadline += timeout
            time.sleep(0.1)
    (vmdir / "qemu.pid").unlink(missing_ok=True)


def down(state: Path) -> None:
    """Stop every VM of the lab and remove their disks and state (the cached image stays)."""
    root = _vm_root(state)
    if not root.is_dir():
        return
    for vmdir in root.iterdir():
        stop(vmdir)
        shutil.rmtree(vmdir)
    root.rmdir()


def find(state: Path, name: str) -> Path | None:
    vmdir = _vm_root(state) / name
    return vmdir if (vmdir / "vm.json").exists() else None


def start(vmdir: Path, key: Path, wait: bool = True, progress: Callable[[str], None] = print) -> None:
    if _pid(vmdir) is None:
        _start(vmdir, key.with_suffix(".pub").read_text(encoding="utf-8").strip(), progress)
    if wait:
        meta = _describe(vmdir)
        _wait_ssh([(meta["host"], int(meta["port"]))], key, timeout=BOOT_WAIT_SECONDS)

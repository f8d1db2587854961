"""A podman fleet on loopback SSH, for demos, tests and benchmarks.

The lab is a handful of Debian containers running systemd as PID 1 and sshd,
each publishing port 22 on a free port of 127.0.0.1.  Ansible reaches them
over plain SSH (pipelining, ControlPersist), exactly as it reaches a customer
fleet, through an inventory that :func:`up` writes.

Images are built here, never pulled: ``debootstrap --variant=minbase`` makes a
base tree that ``podman import`` turns into ``localhost/fleetcare-debian-base:N``,
then ``podman build`` runs ``fleetcare_lab/images/Containerfile`` on top of it to
give ``localhost/fleetcare-debian:N`` (N = 11, 12, 13).  Both carry a label
with a hash of what they were built from, so they are rebuilt only when that
changes.

A lab belongs to a state directory (``$FLEETCARE_LAB_DIR`` or
``~/.local/share/fleetcare/lab``) holding its SSH key and inventory.  Its
containers carry that directory in a label and a short id derived from it in
their names, so several labs (a developer's, a test run's) can live side by
side and ``down`` removes only its own.

Containers are unprivileged system containers, as LXC and Incus make them
(:data:`SYSTEM_CONTAINER`): a user namespace maps their root to an unprivileged
range of this machine, and they own their network stack.  So a host in the lab
can harden what a real host hardens in its own network namespace (``net.*``
sysctls, a packet filter), while the kernel-wide ``kernel.*``, ``fs.*`` and
``vm.*`` keys stay the HOST's and read-only: the kernel shows them owned by
nobody and refuses the write.  (In a privileged container such a write
succeeds and changes this machine's kernel; that is never done.)

This package is a library of its own, outside the product's import path: the
``fleetcare lab`` command imports it only when it is asked for, tests and
benchmarks call it directly.  Every podman call sets ``CONTAINERS_CONF`` to the project's own
configuration; nothing under /etc is changed.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "CONTAINERS_CONF",
    "LabError",
    "build_images",
    "down",
    "exec_in",
    "start_host",
    "status",
    "stop_host",
    "up",
]

# The image definitions sit beside this module (package data), so the lab works
# from an installed copy as well as from a checkout.
IMAGES_DIR: Path = Path(__file__).resolve().parent / "images"
CONTAINERS_CONF: Path = IMAGES_DIR / "containers.conf"
# An OCI prestart hook (podman --hooks-dir) for containers annotated
# org.fleetcare.system-container=1: it hands the container's systemd cgroup to
# the container's mapped root, without which systemd cannot run in a user
# namespace on a cgroup v1 or hybrid host.  podman needs the directory on every
# call that may start such a container (run, start), so _podman always passes it.
HOOKS_DIR: Path = IMAGES_DIR / "hooks.d"
CONTAINERFILE: Path = IMAGES_DIR / "Containerfile"

IMAGE_REPO = "localhost/fleetcare-debian"
BASE_REPO = "localhost/fleetcare-debian-base"
SUITES: dict[str, str] = {"11": "bullseye", "12": "bookworm", "13": "trixie"}
MIRROR = "http://deb.debian.org/debian"
BASE_INCLUDE = ("python3", "sudo")

LABEL_BUILD = "org.fleetcare.build-hash"
LABEL_LAB = "org.fleetcare.lab"
LABEL_DIR = "org.fleetcare.lab.dir"
LABEL_DISTRO = "org.fleetcare.lab.distro"
LABEL_INDEX = "org.fleetcare.lab.index"
LABEL_HOST = "org.fleetcare.lab.host"

KEY_NAME = "id_ed25519"
INVENTORY_NAME = "inventory.yml"
SSH_WAIT_SECONDS = 120.0
# A lab container's systemd, journald and logind hold 4-5 inotify instances (counted on Debian
# 11-13 lab hosts), all charged to the user running podman; past the kernel's per-user limit
# (fs.inotify.max_user_instances, 128 on Debian) a container's systemd fails to start its units
# and the host never answers SSH. Six per host keeps a margin.
INOTIFY_PER_HOST = 6
INOTIFY_LIMIT = Path("/proc/sys/fs/inotify/max_user_instances")

# Lab hosts are throwaway and get new host keys whenever they are recreated on
# a port that another lab host used before: never record or check them.
SSH_COMMON_ARGS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes"

# Written into a container through `podman exec -i`, the public key on stdin.
_AUTHORISE_SCRIPT = r"""
set -e
key=$(cat)
for home in /root /home/fleetcare; do
    install -d -m 0700 "$home/.ssh"
    printf '%s\n' "$key" > "$home/.ssh/authorized_keys"
    chmod 0600 "$home/.ssh/authorized_keys"
done
chown -R fleetcare:fleetcare /home/fleetcare/.ssh
"""


class LabError(Exception):
    """Something the user must fix; the message is one line saying what."""


# --------------------------------------------------------------------------
# processes


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["CONTAINERS_CONF"] = str(CONTAINERS_CONF)
    return env


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _podman(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run podman with the project's CONTAINERS_CONF; LabError on failure."""
    proc = subprocess.run(
        ["podman", f"--hooks-dir={HOOKS_DIR}", *args],
        env=_env(),
        input=input,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and proc.returncode != 0:
        raise LabError(f"podman {args[0]} failed: {_last_line(proc.stderr or proc.stdout)}")
    return proc


def _require(*tools: str) -> None:
    hints = {
        "podman": "apt-get install -y podman runc",
        "debootstrap": "apt-get install -y debootstrap",
        "ssh": "apt-get install -y openssh-client",
        "ssh-keygen": "apt-get install -y openssh-client",
    }
    for tool in tools:
        if shutil.which(tool) is None:
            raise LabError(f"{tool} is not installed (try: {hints.get(tool, tool)})")


def _require_root() -> None:
    # Rootless podman has other port, cgroup and ulimit behaviour, and
    # debootstrap needs root anyway: only the rootful setup is tested.
    if os.geteuid() != 0:
        raise LabError("the lab needs root (rootful podman and debootstrap); run it as root")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` (a file or a directory)."""
    flags = os.O_RDONLY | os.O_DIRECTORY if path.is_dir() else os.O_RDWR | os.O_CREAT
    fd = os.open(path, flags, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# --------------------------------------------------------------------------
# images


def _check_distros(distros: Sequence[str]) -> list[str]:
    wanted = [str(d) for d in distros]
    unknown = [d for d in wanted if d not in SUITES]
    if unknown:
        raise LabError(f"unknown Debian release {', '.join(unknown)}; known: {', '.join(SUITES)}")
    return wanted


def image_name(distro: str) -> str:
    """The local image name of the lab/Molecule image for a Debian release."""
    return f"{IMAGE_REPO}:{distro}"


def _base_hash(distro: str) -> str:
    recipe = {
        "suite": SUITES[distro],
        "mirror": MIRROR,
        "variant": "minbase",
        "include": list(BASE_INCLUDE),
        "recipe": 1,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def _image_hash(distro: str) -> str:
    digest = hashlib.sha256(_base_hash(distro).encode())
    for path in sorted(IMAGES_DIR.iterdir()):
        # containers.conf configures podman itself, not what goes into an image.
        if not path.is_file() or path == CONTAINERS_CONF:
            continue
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _image_label(image: str, label: str) -> str | None:
    proc = _podman("image", "inspect", image, check=False)
    if proc.returncode != 0:
        return None
    info = json.loads(proc.stdout or "[]")
    if not info:
        return None
    labels = (info[0].get("Config") or {}).get("Labels") or info[0].get("Labels") or {}
    return labels.get(label)


def _image_id(image: str) -> str | None:
    proc = _podman("image", "inspect", "--format", "{{.Id}}", image, check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def _drop_replaced(old_id: str | None, image: str) -> None:
    """Remove the image a rebuild replaced, unless something still uses it."""
    if old_id and old_id != _image_id(image):
        _podman("rmi", old_id, check=False)


def _unmount_below(path: Path) -> None:
    # debootstrap mounts /proc and /sys in the target while it runs; an
    # interrupted run can leave them, and rmtree must never walk into them.
    prefix = str(path.resolve()) + "/"
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        points = [line.split()[1] for line in mounts]
    for point in sorted((p for p in points if p.startswith(prefix)), reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def _build_base(distro: str, progress: Callable[[str], None]) -> None:
    suite = SUITES[distro]
    base = f"{BASE_REPO}:{distro}"
    old_id = _image_id(base)
    started = time.monotonic()
    progress(f"debian {distro}: debootstrap {suite} (minbase) ...")
    workdir = Path(tempfile.mkdtemp(prefix=f"fleetcare-{suite}-", dir="/var/tmp"))
    try:
        rootfs = workdir / "rootfs"
        log = workdir / "debootstrap.out"
        with log.open("w") as out:
            proc = subprocess.run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(BASE_INCLUDE)}",
                    suite,
                    str(rootfs),
                    MIRROR,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if proc.returncode != 0:
            raise LabError(f"debootstrap {suite} failed: {_last_line(log.read_text(errors='replace'))}")
        progress(f"debian {distro}: debootstrap done in {time.monotonic() - started:.0f}s")
        # The Containerfile runs `apt-get update` itself.
        for leftover in (rootfs / "var/lib/apt/lists").glob("*_*"):
            leftover.unlink()
        tar = subprocess.Popen(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."],
            stdout=subprocess.PIPE,
        )
        try:
            imported = subprocess.run(
                [
                    "podman",
                    "import",
                    "--change",
                    f"LABEL {LABEL_BUILD}={_base_hash(distro)}",
                    "--change",
                    'CMD ["/bin/bash"]',
                    "-",
                    base,
                ],
                stdin=tar.stdout,
                env=_env(),
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            assert tar.stdout is not None
            tar.stdout.close()
            tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            raise LabError(f"podman import of {suite} failed: {_last_line(imported.stderr)}")
    finally:
        _unmount_below(workdir)
        shutil.rmtree(workdir, ignore_errors=True)
    _drop_replaced(old_id, base)
    progress(f"debian {distro}: {base} imported ({time.monotonic() - started:.0f}s)")


def build_images(
    distros: Sequence[str] = ("11", "12", "13"),
    force: bool = False,
    progress: Callable[[str], None] = print,
) -> list[str]:
    """Build the lab/Molecule images ``localhost/fleetcare-debian:<N>``.

    Each image comes from a debootstrap minbase base image plus
    ``fleetcare_lab/images/Containerfile``.  An image whose build-hash label
    matches its current definition is kept as it is, unless ``force``.
    Progress lines go to ``progress``.  Returns the image names, in the order
    of ``distros``.  Raises :class:`LabError` for anything the user must fix.
    """
    wanted = _check_distros(distros)
    _require_root()
    _require("podman")
    names: list[str] = []
    lock = Path(tempfile.gettempdir()) / "fleetcare-lab-images.lock"
    with _locked(lock):
        for distro in wanted:
            image = image_name(distro)
            names.append(image)
            want = _image_hash(distro)
            if not force and _image_label(image, LABEL_BUILD) == want:
                progress(f"debian {distro}: {image} is up to date")
                continue
            started = time.monotonic()
            base = f"{BASE_REPO}:{distro}"
            if force or _image_label(base, LABEL_BUILD) != _base_hash(distro):
                _require("debootstrap")
                _build_base(distro, progress)
            else:
                progress(f"debian {distro}: {base} is up to date")
            progress(f"debian {distro}: podman build {image} ...")
            old_id = _image_id(image)
            args = [
                "build",
                "--pull=never",
                "--build-arg",
                f"BASE={base}",
                "--label",
                f"{LABEL_BUILD}={want}",
                "--file",
                str(CONTAINERFILE),
                "--tag",
                image,
            ]
            if force:
                args.append("--no-cache")
            proc = _podman(*args, str(IMAGES_DIR), check=False)
            if proc.returncode != 0:
                raise LabError(f"podman build of {image} failed: {_last_line(proc.stderr or proc.stdout)}")
            _drop_replaced(old_id, image)
            progress(f"debian {distro}: {image} built in {time.monotonic() - started:.0f}s")
    return names


# --------------------------------------------------------------------------
# the lab


def _state_dir(state_dir: Path | None) -> Path:
    if state_dir is None:
        env = os.environ.get("FLEETCARE_LAB_DIR")
        state_dir = Path(env) if env else Path.home() / ".local" / "share" / "fleetcare" / "lab"
    return Path(state_dir).expanduser().resolve()


def _lab_id(state: Path) -> str:
    return hashlib.sha256(str(state).encode()).hexdigest()[:6]


def host_name(distro: str, index: int) -> str:
    """The inventory name of the lab's container ``index`` of Debian ``distro``."""
    return f"debian{distro}-{index}"


def _container_name(state: Path, distro: str, index: int) -> str:
    return f"fleetcare-lab-{_lab_id(state)}-{host_name(distro, index)}"


def _containers(state: Path | None) -> list[dict[str, Any]]:
    """``podman inspect`` of this lab's containers (of every lab if None)."""
    label = f"{LABEL_DIR}={state}" if state is not None else f"{LABEL_LAB}=1"
    ids = _podman("ps", "--all", "--quiet", "--filter", f"label={label}").stdout.split()
    if not ids:
        return []
    proc = _podman("container", "inspect", *ids, check=False)
    if proc.returncode == 0:
        return list(json.loads(proc.stdout or "[]"))
    # Another lab's container can be removed between `ps` and `inspect` (labs live side by
    # side, and `down` runs in parallel): inspect one by one and leave out the vanished.
    found: list[dict[str, Any]] = []
    for one in ids:
        single = _podman("container", "inspect", one, check=False)
        if single.returncode == 0:
            found += json.loads(single.stdout or "[]")
    return found


def _labels(info: dict[str, Any]) -> dict[str, str]:
    return dict((info.get("Config") or {}).get("Labels") or {})


def _ssh_port(info: dict[str, Any]) -> int | None:
    # A stopped container has no live NetworkSettings; the binding chosen at
    # creation is kept in HostConfig.
    for source in (
        (info.get("NetworkSettings") or {}).get("Ports"),
        (info.get("HostConfig") or {}).get("PortBindings"),
    ):
        for binding in (source or {}).get("22/tcp") or []:
            if binding.get("HostPort"):
                return int(binding["HostPort"])
    return None


def _describe(info: dict[str, Any]) -> dict[str, Any]:
    labels = _labels(info)
    return {
        "name": str(info.get("Name", "")).lstrip("/"),
        "host": labels.get(LABEL_HOST, ""),
        "distro": labels.get(LABEL_DISTRO, ""),
        "index": int(labels.get(LABEL_INDEX, "0") or 0),
        "state": (info.get("State") or {}).get("Status", "unknown"),
        "port": _ssh_port(info),
        "address": "127.0.0.1",
        "image": (info.get("Config") or {}).get("Image") or info.get("ImageName", ""),
    }


def _ensure_key(state: Path) -> Path:
    key = state / KEY_NAME
    if not key.exists():
        _require("ssh-keygen")
        for stale in (key, key.with_suffix(".pub")):
            stale.unlink(missing_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fleetcare-lab", "-f", str(key)],
            check=True,
            capture_output=True,
        )
    key.chmod(0o600)
    return key


# How every lab and Molecule container is run (molecule/*/molecule.yml repeat it
# in the driver's terms; tests/integration/test_lab.py checks both):
# - --uidmap/--gidmap: container root is host uid 1000000, not root, so the
#   host's kernel-wide sysctls are not writable from inside, whatever is mounted;
# - unmask=/proc/sys: /proc/sys is writable as far as the kernel allows, that
#   is, the container's own network namespace;
# - NET_ADMIN, which in a user namespace covers only the container's own
#   network namespace: its sysctls and its nftables ruleset;
# - the annotation that selects the cgroup hook in HOOKS_DIR.
SYSTEM_CONTAINER = (
    "--annotation=org.fleetcare.system-container=1",
    "--uidmap=0:1000000:65536",
    "--gidmap=0:1000000:65536",
    "--cap-add=NET_ADMIN",
    "--security-opt=unmask=/proc/sys",
)


def _run_container(state: Path, distro: str, index: int) -> None:
    name = _container_name(state, distro, index)
    host = host_name(distro, index)
    labels = {
        LABEL_LAB: "1",
        LABEL_DIR: str(state),
        LABEL_DISTRO: distro,
        LABEL_INDEX: str(index),
        LABEL_HOST: host,
    }
    # Never --privileged: a privileged container shares the host's kernel-wide
    # sysctls, and a role's `sysctl -w` there would change the host.
    # "127.0.0.1::22" lets podman pick a free port; it is recorded in the
    # container's configuration and kept across stop/start.
    args = [
        "run",
        "--detach",
        "--name",
        name,
        "--hostname",
        host,
        "--systemd=always",
        "--stop-timeout",
        "10",
        "--publish",
        "127.0.0.1::22",
        *SYSTEM_CONTAINER,
    ]
    for key, value in labels.items():
        args += ["--label", f"{key}={value}"]
    proc = _podman(*args, image_name(distro), "/sbin/init", check=False)
    if proc.returncode != 0:
        _podman("rm", "--force", name, check=False)
        raise LabError(f"podman run {name} failed: {_last_line(proc.stderr)}")


# Where podman's CNI plugin keeps one file per address it handed out, holding the container's ID.
CNI_RESERVATIONS = Path("/var/lib/cni/networks")
_DUPLICATE = re.compile(r'unable to start container "([0-9a-f]{64})".* has been allocated to ([0-9a-f]{64}), '
                        r"duplicate allocation")


def _own_duplicate(detail: str) -> str | None:
    """The container's ID when podman refused to start it because CNI still holds an address
    for that very container ("duplicate allocation"), else None."""
    found = _DUPLICATE.search(detail)
    return found.group(1) if found and found.group(1) == found.group(2) else None


def _release_own_address(container: str) -> None:
    """Remove the CNI reservations that name ``container`` (a container being started holds
    none legitimately). A reservation of any other container is never touched."""
    for reservation in CNI_RESERVATIONS.glob("*/*.*.*.*"):
        try:
            if reservation.read_text().split()[:1] == [container]:
                reservation.unlink()
        except OSError:
            continue


def _start(name: str) -> None:
    """``podman start``. After a ``podman stop`` whose network teardown did not finish (seen
    under load with podman 4.3 and CNI), the stopped container's address stays reserved for the
    container itself and its next start fails with "duplicate allocation"; podman's cleanup of
    that failed start usually releases the reservation (seen here), so the start is tried once
    more, after removing any reservation of that container still left."""
    proc = _podman("start", name, check=False)
    container = _own_duplicate(proc.stderr) if proc.returncode != 0 else None
    if container:
        _release_own_address(container)
        proc = _podman("start", name, check=False)
    if proc.returncode != 0:
        detail = _last_line(proc.stderr)
        if "address already in use" in detail:
            raise LabError(f"cannot start {name}: its SSH port is busy; free it or run `fleetcare lab down`")
        raise LabError(f"cannot start {name}: {detail}")


def _authorise(name: str, public_key: str) -> None:
    proc = _podman("exec", "-i", name, "sh", "-c", _AUTHORISE_SCRIPT, input=public_key, check=False)
    if proc.returncode != 0:
        raise LabError(f"cannot install the lab key in {name}: {_last_line(proc.stderr)}")


def ssh_command(key: Path, port: int, user: str = "root") -> list[str]:
    """The ``ssh`` argv prefix reaching one lab host (append a command)."""
    return [
        "ssh",
        *SSH_COMMON_ARGS.split(),
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=3",
        "-o",
        "LogLevel=ERROR",
        "-i",
        str(key),
        "-p",
        str(port),
        f"{user}@127.0.0.1",
    ]


def _wait_ssh(hosts: list[tuple[str, int]], key: Path, timeout: float = SSH_WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    for name, port in hosts:
        while True:
            proc = subprocess.run(
                [*ssh_command(key, port), "true"],
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                check=False,
            )
            if proc.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise LabError(
                    f"{name} does not answer SSH on 127.0.0.1:{port} after {timeout:.0f}s: "
                    f"{_last_line(proc.stderr)}"
                )
            time.sleep(0.3)


def _inotify_in_use(uid: int) -> int:
    """The inotify instances processes of ``uid`` hold now."""
    count = 0
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and proc.stat().st_uid == uid:
                count += _inotify_fds(proc)
        except OSError:  # gone meanwhile
            continue
    return count


def _inotify_fds(proc: Path) -> int:
    """How many inotify instances the process at ``proc`` (/proc/PID) holds: each is an fd on
    anon_inode:inotify."""
    try:
        fds = list((proc / "fd").iterdir())
    except OSError:  # gone meanwhile, or not ours to read
        return 0
    count = 0
    for fd in fds:
        try:
            count += os.readlink(fd) == "anon_inode:inotify"
        except OSError:
            continue
    return count


def _check_inotify(starting: int, limit_file: Path = INOTIFY_LIMIT, in_use: int | None = None) -> None:
    """Refuse, before any container starts, a lab the kernel's inotify limit cannot hold; the
    limit is the machine's own setting, so it is named, never changed."""
    if starting <= 0:
        return
    try:
        limit = int(limit_file.read_text(encoding="ascii"))
    except (OSError, ValueError):
        return  # no such limit to honour here
    used = _inotify_in_use(os.getuid()) if in_use is None else in_use
    need = starting * INOTIFY_PER_HOST
    if used + need > limit:
        enough = 1 << max(10, (used + need - 1).bit_length())
        raise LabError(f"{starting} more lab hosts need about {need} inotify instances, and "
                       f"fs.inotify.max_user_instances is {limit} with {used} in use: raise it first "
                       f"(sysctl -w fs.inotify.max_user_instances={enough})")


def _yaml(value: str | int) -> str:
    # JSON strings and numbers are valid YAML scalars.
    return json.dumps(value)


def _write_inventory(state: Path, key: Path, hosts: list[dict[str, Any]]) -> Path:
    lines = [
        "---",
        "# Written by fleetcare_lab (`fleetcare lab up`); rewritten on every `up`.",
        "all:",
        "  children:",
        "    lab:",
        "      hosts:" if hosts else "      hosts: {}",
    ]
    for host in hosts:
        lines += [
            f"        {host['host']}:",
            "          ansible_host: 127.0.0.1",
            f"          ansible_port: {host['port']}",
            "          ansible_user: root",
            f"          ansible_ssh_private_key_file: {_yaml(str(key))}",
            f"          ansible_ssh_common_args: {_yaml(SSH_COMMON_ARGS)}",
            "          ansible_python_interpreter: /usr/bin/python3",
            f"          fleetcare_lab_{host.get('kind', 'container')}: {_yaml(host['name'])}",
        ]
    distros = sorted({host["distro"] for host in hosts}, key=int)
    if distros:
        lines.append("      children:")
    for distro in distros:
        lines += [f"        debian{distro}:", "          hosts:"]
        lines += [f"            {h['host']}:" for h in hosts if h["distro"] == distro]
    machines = [h for h in hosts if h.get("kind") == "vm"]
    if machines:
        lines += ["        vm:", "          hosts:"]
        lines += [f"            {h['host']}:" for h in machines]
    inventory = state / INVENTORY_NAME
    tmp = inventory.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(inventory)
    return inventory


def up(
    hosts: int,
    distro: str = "12",
    state_dir: Path | None = None,
    vms: int = 0,
    progress: Callable[[str], None] = print,
) -> Path:
    """Bring up ``hosts`` lab containers of Debian ``distro``; return the inventory.

    Idempotent: containers of this lab that exist are reused (stopped ones are
    started), missing ones up to ``hosts`` are created, extra ones are kept.
    Containers of other releases in the same lab stay, so a mixed fleet is
    made with one ``up`` per release.  Builds the image if it is missing
    (:func:`build_images` refreshes one whose definition changed; running
    containers keep the image they were created from).
    ``vms`` qemu VMs of the same release come up beside the containers
    (:mod:`fleetcare_lab.vm`; ``hosts`` may then be 0).
    Returns once every host of the lab answers SSH, with the path of
    ``<state_dir>/inventory.yml`` (group ``lab``, one child group per release,
    and ``vm`` for the VMs).
    """
    if hosts < 0 or vms < 0 or hosts + vms < 1:
        raise LabError(f"a lab needs at least one host, not {hosts + vms}")
    (distro,) = _check_distros([distro])
    _require_root()
    _require("ssh", "ssh-keygen")
    if hosts:
        _require("podman")
    if hosts and _image_id(image_name(distro)) is None:
        build_images([distro])
    state = _state_dir(state_dir)
    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o700)
    with _locked(state):
        key = _ensure_key(state)
        public_key = key.with_suffix(".pub").read_text(encoding="utf-8").strip()
        if vms:
            from fleetcare_lab import vm

            vm.up(vms, distro, state, key, progress)
        existing = {(h["distro"], h["index"]): h for h in map(_describe, _containers(state))} if hosts else {}
        _check_inotify(sum(1 for index in range(1, hosts + 1)
                           if existing.get((distro, index), {}).get("state") != "running"))
        for index in range(1, hosts + 1):
            host = existing.get((distro, index))
            if host is None:
                _run_container(state, distro, index)
            elif host["state"] != "running":
                _start(host["name"])
        lab = _lab_hosts(state) if hosts or _has_containers(state) else []
        missing = [h["name"] for h in lab if h["port"] is None]
        if missing:
            raise LabError(f"no SSH port published for {', '.join(missing)}")

        def ready(host: dict[str, Any]) -> None:
            if host["state"] != "running":
                _start(host["name"])
            _authorise(host["name"], public_key)
            _wait_ssh([(host["name"], host["port"])], key)

        # Hosts boot in parallel anyway; checking them in parallel keeps a
        # 20-host `up` about as fast as a 2-host one.
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(ready, lab))
        lab = _lab_hosts(state) if lab else []
        return _write_inventory(state, key, lab + _vm_hosts(state))


def _lab_hosts(state: Path) -> list[dict[str, Any]]:
    hosts = map(_describe, _containers(state))
    return sorted(hosts, key=lambda h: (int(h["distro"] or 0), h["index"]))


def _has_containers(state: Path) -> bool:
    return shutil.which("podman") is not None and bool(_containers(state))


def _vm_hosts(state: Path) -> list[dict[str, Any]]:
    if not (state / "vms").is_dir():
        return []
    from fleetcare_lab import vm

    return vm.vms(state)


def status(state_dir: Path | None = None) -> list[dict[str, Any]]:
    """One dict per container of the lab in ``state_dir``.

    Keys: ``name`` (container), ``host`` (inventory name), ``distro``,
    ``index``, ``state`` (podman's: running, exited, ...; a VM's: running,
    stopped), ``port`` (SSH on ``address``), ``address`` (always 127.0.0.1),
    ``image``, ``kind`` (container or vm).  VMs come after the containers.
    """
    state = _state_dir(state_dir)
    containers = [dict(h, kind="container") for h in _lab_hosts(state)] if _has_containers(state) else []
    return containers + _vm_hosts(state)


def down(state_dir: Path | None = None) -> None:
    """Remove the lab in ``state_dir``: its containers, key and inventory.

    Its VMs are stopped and their disks removed.  Images are kept.  The
    state directory itself goes too when nothing else is left in it.
    """
    state = _state_dir(state_dir)
    if (state / "vms").is_dir():
        from fleetcare_lab import vm

        vm.down(state)
    names = [_describe(info)["name"] for info in _containers(state)] if _has_containers(state) else []
    # A container whose processes are still being killed can leave its /dev/shm
    # mount busy for a moment ("unlinkat .../userdata/shm: device or resource
    # busy"); podman finishes the removal on a second call.
    for attempt in range(4):
        if not names:
            break
        proc = _podman("rm", "--force", "--volumes", "--time", "5", *names, check=False)
        names = [_describe(info)["name"] for info in _containers(state)]
        if names and attempt == 3:
            raise LabError(f"podman rm failed: {_last_line(proc.stderr or proc.stdout)}")
        if names:
            time.sleep(1)
    for leftover in (KEY_NAME, KEY_NAME + ".pub", INVENTORY_NAME, INVENTORY_NAME + ".tmp"):
        (state / leftover).unlink(missing_ok=True)
    if state.is_dir() and not any(state.iterdir()):
        state.rmdir()


def _resolve(name: str, state_dir: Path | None) -> dict[str, Any]:
    """Find a lab container by container name, or by inventory host name."""
    hosts = [_describe(info) for info in _containers(None)]
    for host in hosts:
        if host["name"] == name:
            return host
    state = _state_dir(state_dir)
    for host in map(_describe, _containers(state)):
        if host["host"] == name:
            return host
    raise LabError(f"no lab host named {name}")


def _vm_dir(name: str, state_dir: Path | None) -> Path | None:
    state = _state_dir(state_dir)
    if not (state / "vms").is_dir():
        return None
    from fleetcare_lab import vm

    return vm.find(state, name)


def stop_host(name: str, state_dir: Path | None = None) -> None:
    """Stop one lab host (container, VM or inventory name), as if it went down."""
    vmdir = _vm_dir(name, state_dir)
    if vmdir is not None:
        from fleetcare_lab import vm

        vm.stop(vmdir)
        return
    host = _resolve(name, state_dir)
    _podman("stop", "--time", "5", host["name"])


def start_host(name: str, state_dir: Path | None = None, wait: bool = True) -> None:
    """Start a stopped lab host again; with ``wait``, until it answers SSH."""
    vmdir = _vm_dir(name, state_dir)
    if vmdir is not None:
        from fleetcare_lab import vm

        vm.start(vmdir, _state_dir(state_dir) / KEY_NAME, wait=wait)
        return
    host = _resolve(name, state_dir)
    if host["state"] != "running":
        _start(host["name"])
    if wait:
        info = json.loads(_podman("container", "inspect", host["name"]).stdout)[0]
        key = Path(_labels(info)[LABEL_DIR]) / KEY_NAME
        _wait_ssh([(host["name"], _describe(info)["port"])], key)


def exec_in(
    name: str,
    argv: Sequence[str],
    input: str | None = None,
    check: bool = False,
    state_dir: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as root inside a lab host (container or inventory name).

    For tests that break a host on purpose (``systemctl stop ssh``, fill a
    disk...).  Returns the finished process; with ``check``, a non-zero exit
    raises :class:`LabError`.  A VM is reached over SSH as root.
    """
    vmdir = _vm_dir(name, state_dir)
    if vmdir is not None:
        port = json.loads((vmdir / "vm.json").read_text())["port"]
        key = _state_dir(state_dir) / KEY_NAME
        proc = subprocess.run([*ssh_command(key, port), " ".join(map(shlex.quote, argv))], input=input,
                              capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise LabError(f"{' '.join(argv)} in {name} failed: {_last_line(proc.stderr)}")
        return proc
    host = _resolve(name, state_dir)
    proc = _podman("exec", "-i", host["name"], *argv, input=input, check=False)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(argv)} in {host['name']} failed: {_last_line(proc.stderr)}")
    return proc

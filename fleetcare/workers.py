"""Worker nodes: where a run's shards go (``--workers``), and how a worker is set up.

A worker is a command that speaks ansible-runner's streaming protocol on its standard input and
output: it reads an ``ansible-runner transmit`` payload and answers with ``ansible-runner
worker``'s stream. fleetcare knows two ways to reach one:

- ``ssh:[USER@]HOST[:PORT][,...]``: ``ansible-runner worker`` in the environment
  ``fleetcare worker setup`` installed, over SSH (one worker per host listed);
- ``inventory:FILE``: every host of an Ansible inventory file is a worker, reached over SSH with
  its ``ansible_host``, ``ansible_port``, ``ansible_user`` and ``ansible_ssh_private_key_file``;
- ``cmd:COMMAND``: any command that carries the stream (a local ``ansible-runner worker``, a
  Receptor mesh's ``receptorctl work submit``, a pipe through a bastion).

Specs are checked before any host is contacted (:func:`parse`); the executing itself is
``fleetcare.execute.execute_workers``.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fleetcare import wheelhouse
from fleetcare.errors import InputError

SSH_OPTIONS = ("-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "LogLevel=ERROR", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3")
# what runs at the far end of an SSH worker: the runner of the environment `worker setup` made
REMOTE_WORKER = (f'PATH="$HOME/{wheelhouse.REMOTE_VENV}/bin:$PATH"; export PATH; '
                 f'exec ansible-runner worker')


@dataclass(frozen=True)
class Worker:
    name: str  # w1, w2, ...: how reports and messages name it
    spec: str  # as the user wrote it
    argv: tuple[str, ...]  # the command that carries the stream


@dataclass(frozen=True)
class SshTarget:
    host: str
    user: str | None = None
    port: int | None = None
    key: str | None = None

    def argv(self, *remote: str) -> tuple[str, ...]:
        args = ["ssh", *SSH_OPTIONS]
        if self.port:
            args += ["-p", str(self.port)]
        if self.key:
            args += ["-i", self.key, "-o", "IdentitiesOnly=yes"]
        args.append(f"{self.user}@{self.host}" if self.user else self.host)
        return (*args, *remote)

    def label(self) -> str:
        who = f"{self.user}@{self.host}" if self.user else self.host
        return f"{who}:{self.port}" if self.port else who


def parse(specs: Sequence[str]) -> tuple[Worker, ...]:
    """The workers ``--workers`` names, in order; InputError (one line) on a bad spec."""
    found: list[Worker] = []
    for spec in specs:
        kind, sep, rest = spec.partition(":")
        if not sep or kind not in ("ssh", "cmd", "inventory"):
            raise InputError(f"--workers {spec!r}: expected ssh:HOST[,HOST...], inventory:FILE or cmd:COMMAND")
        if kind == "cmd":
            try:
                argv = tuple(shlex.split(rest))
            except ValueError as exc:
                raise InputError(f"--workers {spec!r}: {exc}") from None
            if not argv:
                raise InputError(f"--workers {spec!r}: cmd: needs a command")
            if shutil.which(argv[0]) is None:
                raise InputError(f"--workers {spec!r}: {argv[0]}: command not found")
            found.append(Worker(f"w{len(found) + 1}", spec, argv))
            continue
        targets = ssh_targets(spec) if kind == "ssh" else inventory_targets(spec, rest)
        for target in targets:
            found.append(Worker(f"w{len(found) + 1}", f"ssh:{target.label()}", target.argv(REMOTE_WORKER)))
    if not found:
        raise InputError("--workers: no worker given")
    return tuple(found)


def ssh_targets(spec: str) -> list[SshTarget]:
    _, _, rest = spec.partition(":")
    targets = []
    for item in rest.split(","):
        item = item.strip()
        user, at, hostport = item.rpartition("@")
        host, colon, port = hostport.partition(":")
        if not host or (at and not user) or any(c.isspace() for c in item) or item.startswith("-"):
            raise InputError(f"--workers {spec!r}: {item!r} is not [USER@]HOST[:PORT]")
        if colon and not (port.isdigit() and 0 < int(port) < 65536):
            raise InputError(f"--workers {spec!r}: {port!r} is not a port")
        targets.append(SshTarget(host, user or None, int(port) if colon else None))
    return targets


def inventory_targets(spec: str, path: str) -> list[SshTarget]:
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    file = Path(path).expanduser()
    if not file.is_file():
        raise InputError(f"--workers {spec!r}: {file}: no such file")
    try:
        inventory = InventoryManager(loader=DataLoader(), sources=[str(file.resolve())])
    except Exception as exc:  # Ansible's own parse errors
        raise InputError(f"--workers {spec!r}: {file}: {exc}") from None
    targets = []
    for host in inventory.get_hosts():
        hostvars = host.get_vars()
        port = hostvars.get("ansible_port")
        key = hostvars.get("ansible_ssh_private_key_file") or hostvars.get("ansible_private_key_file")
        targets.append(SshTarget(str(hostvars.get("ansible_host") or host.name),
                                 str(hostvars["ansible_user"]) if hostvars.get("ansible_user") else None,
                                 int(port) if port else None, str(key) if key else None))
    if not targets:
        raise InputError(f"--workers {spec!r}: {file}: no hosts")
    return targets


def shards(hosts: Sequence[str], count: int) -> list[tuple[str, ...]]:
    """``hosts`` in ``count`` contiguous shards as even as can be (empty ones at the end)."""
    size, extra = divmod(len(hosts), count)
    out, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        out.append(tuple(hosts[start:end]))
        start = end
    return out


# -- fleetcare worker setup ---------------------------------------------------------
REMOTE_WHEELHOUSE = ".cache/fleetcare-wheelhouse"


# what a worker needs at the least: every payload carries the fleetcare.ops collection itself;
# the `ansible` bundle (fleetcare's own dependency) adds the collections the hardening role uses
RUNNER_ONLY = ("ansible-runner", "ansible-core")


def setup(spec: str, house: Path | None = None, log=print, packages: tuple[str, ...] = ("fleetcare",)) -> list[str]:
    """Install what a worker needs (by default fleetcare itself, which brings ansible-runner,
    ansible-core, the collection and the `ansible` bundle; :data:`RUNNER_ONLY` for the least)
    on each SSH worker ``spec`` names, from a wheelhouse built here: the wheels are copied over SSH
    and installed with no index, so the worker needs no network. Returns the workers set up."""
    if spec.startswith("cmd:"):
        raise InputError(f"{spec!r}: a cmd: worker is set up by whoever runs its command")
    kind = spec.partition(":")[0]
    if kind not in ("ssh", "inventory"):
        spec = f"ssh:{spec}"  # a bare HOST
        kind = "ssh"
    targets = ssh_targets(spec) if kind == "ssh" else inventory_targets(spec, spec.partition(":")[2])
    house = wheelhouse.build(house)
    done = []
    for target in targets:
        log(f"worker {target.label()}: copying the wheelhouse ({house})")
        tar = subprocess.Popen(["tar", "-C", str(house), "-cf", "-", "."], stdout=subprocess.PIPE)
        copy = subprocess.run(target.argv(f"rm -rf {REMOTE_WHEELHOUSE} && mkdir -p {REMOTE_WHEELHOUSE} && "
                                          f"tar -C {REMOTE_WHEELHOUSE} -xf -"),
                              stdin=tar.stdout, capture_output=True, text=True, check=False)
        tar.stdout.close()
        tar.wait()
        if copy.returncode != 0:
            raise InputError(f"worker {target.label()}: copying the wheelhouse failed: {_tail(copy.stderr)}")
        log(f"worker {target.label()}: installing (no index)")
        script = wheelhouse.install_script(REMOTE_WHEELHOUSE, packages=packages)
        proc = subprocess.run(target.argv("sh -s"), input=script, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise InputError(f"worker {target.label()}: installing failed: {_tail(proc.stderr)}")
        check = subprocess.run(target.argv(REMOTE_WORKER.replace("exec ansible-runner worker",
                                                                  "ansible-runner --version")),
                               capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise InputError(f"worker {target.label()}: ansible-runner does not start: {_tail(check.stderr)}")
        log(f"worker {target.label()}: ready (ansible-runner {check.stdout.strip()})")
        done.append(target.label())
    return done


def _tail(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"

"""The only module that imports ansible_runner.

It runs a :class:`~fleetcare.jobs.Job` inside a run directory that follows
ansible-runner's directory contract (``<run_dir>/runner/{env,inventory,
artifacts/<ident>}``) and hands each event, as a plain dict, to a callback.
Everything above this module speaks fleetcare's own types.
"""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fleetcare.jobs import ROOT, Job
from fleetcare.results import PAYLOAD_EVENT

EventSink = Callable[[dict[str, Any]], None]

# How often (seconds) the runner loop looks at the cancel flag when Ansible is quiet.
_POLL = 0.25

# The findings channel: plugins/callback/findings.py appends one line per payload here.
FINDINGS_FILE = "fleetcare_findings.jsonl"
_CHANNEL_CALLBACK = "fleetcare.ops.findings"

# What of the wrapper's environment reaches Ansible: what a run on a laptop or a
# jump host needs (the ssh-agent, locale, Ansible's own settings), nothing else.
_ENV_NAMES = frozenset({"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR",
                        "SSH_AUTH_SOCK", "SSH_AGENT_PID", "KRB5CCNAME"})
_ENV_PREFIXES = ("LC_", "XDG_", "ANSIBLE_")
# A name that says it holds a secret: kept out of the environment unless it names a
# file (ANSIBLE_VAULT_PASSWORD_FILE points at the password, it is not the password)
# and out of artifacts when it is a variable's name.
_SECRET_NAME = re.compile(r"pass|secret|token|credential|private_key|api_key", re.IGNORECASE)
_PATH_NAME = re.compile(r"_(file|path|dir)$", re.IGNORECASE)
MASK = "********"


# Bounded artifacts: a run over more hosts than this keeps a file per event only for the events
# that explain a failure (the results take everything else as it streams by); a worker run
# always does. The runner writes one file per event: 5-6 per host, inodes without bound.
EVENT_FILES_MAX_HOSTS = 16
_FAILURE_EVENTS = frozenset({"runner_on_failed", "runner_on_unreachable", "runner_item_on_failed",
                             "playbook_on_stats", "error", "warning"})


def keep_event_file(event: Mapping[str, Any], every: bool) -> bool:
    """Whether the runner keeps this event as a file under job_events/."""
    if every:
        return True
    kind = str(event.get("event") or "")
    res = (event.get("event_data") or {}).get("res")
    return kind in _FAILURE_EVENTS or (isinstance(res, dict) and bool(res.get("failed")))


def runner_dir(run_dir: Path) -> Path:
    return run_dir / "runner"


def execute(job: Job, run_dir: Path, ident: str, on_event: EventSink,
            cancelled: Callable[[], bool]) -> str:
    """Run the job; return the runner status (successful, failed, canceled, error).

    Besides the runner's events, ``on_event`` receives each line of the
    findings channel as a :data:`~fleetcare.results.PAYLOAD_EVENT`, read as
    the events arrive and once more at the end.

    Secrets: ansible-playbook gets only the allowed part of the environment,
    and the runner's ``command`` record keeps variable names, not values. The
    user's variables (``runner/env/extravars``) are removed once Ansible has
    read them and again at the end, whatever happens. Module arguments echoed
    in results are dropped from every event before it is written; values under
    secret-looking keys of those variables are masked in every event and, at
    the end, in every file of the runner's directory."""
    from ansible_runner.interface import init_runner

    private = runner_dir(run_dir)
    ensure_private(private)
    artifacts = private / "artifacts" / ident
    channel = _Channel(artifacts / FINDINGS_FILE)
    secrets = secret_values(job.extravars)
    every_event = len(job.hosts) <= EVENT_FILES_MAX_HOSTS

    def deliver(event: dict[str, Any]) -> None:
        drop_invocation(event)
        on_event(mask(event, secrets) if secrets else event)

    def handler(event: dict[str, Any]) -> bool:
        if event.get("event") == "playbook_on_start":
            # ansible-playbook read them when it built its variable manager and
            # inventory, before any playbook starts; only a playbook that refreshes
            # its inventory (meta: refresh_inventory) would read them again, and
            # none of the collection's does
            forget_variables(private)
        for record in channel.read():
            deliver(record)
        deliver(event)  # cleans in place: the job_events file the runner writes is clean too
        return keep_event_file(event, every_event)

    def on_status(data: dict[str, Any], runner_config: Any = None) -> None:
        if data.get("status") == "running":
            strip_command_env(artifacts)

    stop = _GracefulStop(cancelled)
    cmdline = ["--forks", str(job.forks)]
    if job.check:
        cmdline.append("--check")
    try:
        runner = init_runner(
            private_data_dir=str(private),
            project_dir=str(ROOT),
            ident=ident,
            playbook=str(job.playbook),
            inventory=str(job.inventory),
            limit=job.limit,
            extravars=dict(job.extravars),
            cmdline=" ".join(cmdline),
            event_handler=handler,
            status_handler=on_status,
            cancel_callback=stop,
            settings={"pexpect_timeout": _POLL, "suppress_ansible_output": True},
            quiet=True,
            rotate_artifacts=0,
        )
        runner.config.env = run_environment(os.environ, runner.config.env, {
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            # the runner's own stdout is the record; colour codes make it unreadable
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_LOCALHOST_WARNING": "false",
            # ansible-playbook from the same environment as fleetcare, activated or not
            "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
            "ANSIBLE_CALLBACKS_ENABLED": _callbacks_enabled(os.environ),
            "FLEETCARE_FINDINGS_FILE": str(artifacts / FINDINGS_FILE),
        })
        runner.run()
        status = str(runner.status)
        # Events Ansible wrote but the runner never read back from its stdout
        # (a run cancelled by SIGTERM stops reading at once) are still on disk as
        # partial event files; hand them on too, so nothing collected is lost.
        for event in leftover_events(artifacts):
            deliver(event)
        for record in channel.read():
            deliver(record)
    finally:
        forget_variables(private)
        strip_command_env(artifacts)
        clean_partials(artifacts)
        if secrets:
            mask_files(private, secrets)
    return status


def run_environment(parent: Mapping[str, str], prepared: Mapping[str, Any],
                    ours: Mapping[str, str]) -> dict[str, str]:
    """The environment ansible-playbook gets: the allowed part of ``parent``,
    what the runner set itself (``prepared`` started as a copy of ``parent``),
    then ``ours``."""
    env = {k: v for k, v in parent.items() if env_allowed(k)}
    env.update((k, str(v)) for k, v in prepared.items() if parent.get(k) != v)
    env.update(ours)
    return env


def env_allowed(name: str) -> bool:
    if name not in _ENV_NAMES and not name.startswith(_ENV_PREFIXES):
        return False
    return not _SECRET_NAME.search(name) or bool(_PATH_NAME.search(name))


def _callbacks_enabled(parent: Mapping[str, str]) -> str:
    """The callbacks the user or ansible.cfg enabled, plus the findings channel."""
    names = parent.get("ANSIBLE_CALLBACKS_ENABLED")
    if names is None:
        cfg = configparser.ConfigParser(interpolation=None)
        cfg.read(ROOT / "ansible.cfg", encoding="utf-8")
        names = cfg.get("defaults", "callbacks_enabled", fallback="")
    listed = [n.strip() for n in names.split(",") if n.strip()]
    return ",".join([*listed, _CHANNEL_CALLBACK] if _CHANNEL_CALLBACK not in listed else listed)


class _Channel:
    """Reads the findings file as it grows; only whole lines count."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def read(self) -> list[dict[str, Any]]:
        try:
            size = self.path.stat().st_size
        except OSError:
            return []
        if size <= self.offset:
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read(size - self.offset)
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        out = []
        for line in chunk[:end].splitlines():
            with contextlib.suppress(ValueError):
                out.append({"event": PAYLOAD_EVENT, "event_data": json.loads(line)})
        return out


# -- secrets ----------------------------------------------------------------------
def forget_variables(private: Path) -> None:
    """Remove the user's variables (and any passwords) from the runner's env/ folder."""
    for name in ("extravars", "passwords", "ssh_key"):
        with contextlib.suppress(FileNotFoundError):
            (private / "env" / name).unlink()


def strip_command_env(artifacts: Path) -> None:
    """The runner records ansible-playbook's whole environment in ``command``;
    keep the command and the variable names, never their values."""
    path = artifacts / "command"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(data, dict) or "env" not in data:
        return
    data["env_names"] = sorted(data.pop("env") or ())
    _rewrite(path, json.dumps(data).encode("utf-8"))


def drop_invocation(event: dict[str, Any]) -> bool:
    """Remove the arguments a module result echoes (``invocation.module_args``):
    they hold whatever the play passed in, vault-decrypted values and inventory
    secrets included, which no mask by name or value can know. Nothing of
    fleetcare reads them. True when something was removed."""
    res = (event.get("event_data") or {}).get("res")
    if not isinstance(res, dict):
        return False
    removed = False
    for item in [res, *(i for i in res.get("results") or () if isinstance(i, dict))]:
        if "invocation" in item:
            del item["invocation"]
            removed = True
    return removed


def clean_partials(artifacts: Path) -> None:
    """Event files the runner never took in (an interrupted run) are the record
    of those events: keep them, without module arguments."""
    for path in (artifacts / "job_events").glob("*-partial.json"):
        try:
            event = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(event, dict) and drop_invocation(event):
            _rewrite(path, json.dumps(event).encode("utf-8"))


def secret_values(variables: Mapping[str, Any]) -> frozenset[str]:
    """Values under secret-looking keys, at any depth (``db_password``, ``api_token`` ...)."""
    found: set[str] = set()

    def walk(node: Any, secret: bool) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                walk(value, secret or bool(_SECRET_NAME.search(str(key))))
        elif isinstance(node, list | tuple):
            for item in node:
                walk(item, secret)
        elif secret and isinstance(node, str):
            found.add(node)

    walk(variables, False)
    # numbers and very short strings under such keys are settings (password_max_days: 365),
    # and masking "365" everywhere would garble the record
    return frozenset(v for v in found if len(v) >= 4)


def mask(node: Any, secrets: Iterable[str]) -> Any:
    """``node`` with every secret value replaced by MASK, strings and dicts changed in place."""
    if isinstance(node, str):
        for value in secrets:
            if value in node:
                node = node.replace(value, MASK)
        return node
    if isinstance(node, dict):
        for key, value in node.items():
            node[key] = mask(value, secrets)
    elif isinstance(node, list):
        node[:] = [mask(item, secrets) for item in node]
    return node


def mask_files(top: Path, secrets: Iterable[str]) -> None:
    """Mask secret values in every file under ``top``, as written and as JSON escapes them."""
    forms = sorted({f.encode("utf-8") for s in secrets for f in (s, json.dumps(s)[1:-1])},
                   key=len, reverse=True)
    for path in top.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        masked = data
        for form in forms:
            masked = masked.replace(form, MASK.encode())
        if masked != data:
            _rewrite(path, masked)


def _rewrite(path: Path, data: bytes) -> None:
    """Replace a file of ours in place of the old one, keeping it private."""
    tmp = path.with_name(path.name + ".fleetcare-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


class _GracefulStop:
    """The runner's cancel callback. On the first request it sends SIGINT to
    ansible-playbook, which then stops its own workers (they run in sessions
    of their own, out of reach of the runner's process-group kill); only if
    Ansible has not gone after a grace period does the runner kill it."""

    GRACE = 5.0

    def __init__(self, cancelled: Callable[[], bool]) -> None:
        self.cancelled = cancelled
        self.asked: float | None = None

    def __call__(self) -> bool:
        if not self.cancelled():
            return False
        if self.asked is None:
            self.asked = time.monotonic()
            for pid in _children_named("ansible-playbook"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGINT)
        return time.monotonic() - self.asked > self.GRACE


def _children_named(name: str) -> list[int]:
    """Direct children of this process whose command line runs ``name``."""
    me, found = os.getpid(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) != me:
                continue
            argv = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if any(os.path.basename(a.decode(errors="replace")) == name for a in argv[:2]):
            found.append(int(stat.parent.name))
    return found


def leftover_events(artifact_dir: Path) -> list[dict[str, Any]]:
    """Events the runner did not process, in the order Ansible emitted them."""
    events = []
    for path in (artifact_dir / "job_events").glob("*-partial.json"):
        try:
            events.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue  # a file cut short by the kill: nothing usable in it
    events.sort(key=lambda e: e.get("counter", 0))
    return events


def ensure_private(path: Path, *, new: bool = False) -> None:
    """Create the directory ``path`` with mode 0700 (artifacts may hold host details).

    An existing directory is left as it is, mode and all: fleetcare sets modes only
    on what it creates (``--output-dir /tmp`` must not become drwx------). With
    ``new``, ``path`` must not exist yet (a run directory is always new).
    """
    path.mkdir(parents=True, exist_ok=not new, mode=0o700)


# -- workers: the same job, sharded over ansible-runner workers ---------------------
# What a shard's payload carries of the collection: the project a worker runs in.
_PROJECT_PARTS = ("galaxy.yml", "meta", "plugins", "roles", "playbooks")
_STOP_GRACE = 10.0  # seconds a stopped worker gets to send back what it has


def _stage(job: Job, stage: Path) -> tuple[str, str]:
    """A private data directory for ``ansible-runner transmit``: ``project/`` (the playbooks, an
    ansible.cfg and the collection beside them, so a worker runs exactly the controller's
    collection) and ``inventory/`` (a copy of the job's inventory). Returns the playbook and the
    inventory, relative as the worker wants them."""
    import shutil

    ensure_private(stage, new=True)
    project = stage / "project"
    target = project / "collections" / "ansible_collections" / "fleetcare" / "ops"
    plain = shutil.ignore_patterns("__pycache__", "*.pyc")

    def ignore(folder: str, names: list[str]) -> set[str]:
        # playbooks/collections links back to the repository root (the collection beside the
        # playbooks, as AWX finds it): following it would copy the tree into itself
        left = set(plain(folder, names))
        return left | {"collections"} if Path(folder).name == "playbooks" else left

    for part in _PROJECT_PARTS:
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, target / part, ignore=ignore)
        elif src.is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / part)
    shutil.copytree(ROOT / "playbooks", project / "playbooks", ignore=ignore)
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / "ansible.cfg", encoding="utf-8")
    cfg.set("defaults", "collections_path", "collections")
    cfg.set("defaults", "roles_path", "collections/ansible_collections/fleetcare/ops/roles")
    cfg.remove_option("defaults", "inventory")
    with open(project / "ansible.cfg", "w", encoding="utf-8") as fh:
        cfg.write(fh)
    inventory = stage / "inventory"
    inventory.mkdir(mode=0o700)
    src = Path(job.inventory)
    if src.is_dir():
        shutil.copytree(src, inventory / src.name, ignore=ignore)
    else:
        shutil.copy2(src, inventory / src.name)
    # absolute inside the payload: transmit sends them relative to it
    return str(project / job.playbook.relative_to(ROOT)), str(inventory / src.name)


def execute_workers(job: Job, run_dir: Path, ident: str, on_event: EventSink,
                    cancelled: Callable[[], bool], workers: Sequence[Any],
                    shards: Sequence[Sequence[str]]) -> tuple[str, dict[str, tuple[str, ...]]]:
    """Run the job as one shard per worker: each shard is sent as an ``ansible-runner transmit``
    payload to the worker's command (``ansible-runner worker`` at the other end of any byte
    stream), and read back with the runner's ``process`` side. Events of every worker reach
    ``on_event`` one at a time, cleaned as :func:`execute` cleans them; the findings channel
    comes back with each worker's artifacts.

    Returns the overall status (``canceled`` once ``cancelled()`` said so) and, for each worker
    lost on the way (its stream ended before its end of job, or it exited with an error), the
    hosts of its shard. Only what the results need is kept: no per-event files."""
    import shutil
    import subprocess
    import threading

    from ansible_runner.interface import run as runner_run

    private = runner_dir(run_dir)
    ensure_private(private)
    stage = run_dir / "stage"
    playbook, inventory = _stage(job, stage)
    secrets = secret_values(job.extravars)
    lock = threading.Lock()
    cmdline = ["--forks", str(job.forks)]
    if job.check:
        cmdline.append("--check")
    results: dict[str, dict[str, Any]] = {}

    def envvars(shard_ident: str) -> dict[str, str]:
        return {
            "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_LOCALHOST_WARNING": "false",
            "ANSIBLE_CONFIG": "ansible.cfg",  # the payload's own, in the project
            "ANSIBLE_CALLBACKS_ENABLED": _callbacks_enabled(os.environ),
            # relative to the project, where ansible-playbook runs: lands in the worker's
            # artifacts, which it streams back at the end
            "FLEETCARE_FINDINGS_FILE": f"../artifacts/{shard_ident}/{FINDINGS_FILE}",
        }

    def deliver(event: dict[str, Any]) -> None:
        drop_invocation(event)
        with lock:
            on_event(mask(event, secrets) if secrets else event)

    def one(worker: Any, hosts: Sequence[str], proc: subprocess.Popen) -> None:
        shard_ident = f"{ident}-{worker.name}"
        artifacts = private / "artifacts" / shard_ident
        state = results[worker.name]

        # a payload folder of its own (hard links to the staged files): transmit writes the
        # shard's env/ files (its variables and environment) into it
        mine = run_dir / f"stage-{worker.name}"
        shutil.copytree(stage, mine, copy_function=os.link)

        def send() -> None:
            try:
                runner_run(streamer="transmit", _output=proc.stdin, private_data_dir=str(mine),
                           ident=shard_ident, playbook=playbook.replace(str(stage), str(mine), 1),
                           inventory=inventory.replace(str(stage), str(mine), 1),
                           limit=",".join(hosts), extravars=dict(job.extravars), cmdline=" ".join(cmdline),
                           envvars=envvars(shard_ident), settings={"suppress_ansible_output": True},
                           quiet=True).run()
            except (OSError, ValueError):
                state["lost"] = True  # the worker went away while its payload was on its way
            finally:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
                shutil.rmtree(mine, ignore_errors=True)

        def on_status(data: dict[str, Any], runner_config: Any = None) -> None:
            state["status"] = data.get("status")
            if data.get("job_explanation"):
                state["explanation"] = str(data["job_explanation"])

        def handler(event: dict[str, Any]) -> bool:
            deliver(event)
            return keep_event_file(event, False)  # the results took the rest

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        processor = runner_run(streamer="process", _input=proc.stdout, private_data_dir=str(private),
                               ident=shard_ident, event_handler=handler, status_handler=on_status,
                               cancel_callback=lambda: False, quiet=True)
        try:
            processor.run()
        except Exception as exc:  # a stream cut inside an artifacts zip, say
            state["status"], state["explanation"] = "error", f"{type(exc).__name__}: {exc}"
        state["rc"] = proc.wait()
        sender.join(timeout=5)
        for record in _Channel(artifacts / FINDINGS_FILE).read():
            deliver(record)
        strip_command_env(artifacts)
        with contextlib.suppress(OSError):
            (artifacts / "job_events").rmdir()  # when empty

    procs: list[tuple[Any, subprocess.Popen]] = []
    threads = []
    status = "error"
    try:
        for worker, hosts in zip(workers, shards, strict=True):
            if not hosts:
                continue
            log = open(private / f"worker-{worker.name}.log", "wb")  # noqa: SIM115 - closed below
            try:
                # the allowed part of the environment only, as for a local run
                env = {k: v for k, v in os.environ.items() if env_allowed(k) and k != "ANSIBLE_CONFIG"}
                proc = subprocess.Popen(list(worker.argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=log, start_new_session=True, env=env)
            except OSError as exc:
                log.close()
                results[worker.name] = {"status": "error", "lost": True, "hosts": tuple(hosts),
                                        "explanation": str(exc)}
                continue
            results[worker.name] = {"hosts": tuple(hosts), "log": log}
            procs.append((worker, proc))
            thread = threading.Thread(target=one, args=(worker, hosts, proc), daemon=True)
            thread.start()
            threads.append(thread)
        stopped_at: float | None = None
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=_POLL / len(threads))
            if cancelled() and stopped_at is None:
                stopped_at = time.monotonic()
                for _, proc in procs:
                    _signal_group(proc, signal.SIGTERM)
            if stopped_at is not None and time.monotonic() - stopped_at > _STOP_GRACE:
                for _, proc in procs:
                    _signal_group(proc, signal.SIGKILL)
        if cancelled():
            status = "canceled"
        else:
            statuses = [r.get("status") for r in results.values()]
            status = "successful" if all(s == "successful" for s in statuses) else (
                "failed" if all(s in ("successful", "failed") for s in statuses) else "error")
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                _signal_group(proc, signal.SIGKILL)
                with contextlib.suppress(Exception):
                    proc.wait(timeout=5)
        for r in results.values():
            if r.get("log"):
                r.pop("log").close()
        for folder in (stage, *(run_dir / f"stage-{w.name}" for w in workers)):
            shutil.rmtree(folder, ignore_errors=True)
        forget_variables(private)
        if secrets:
            mask_files(private, secrets)
    lost = {}
    if status != "canceled":
        for name, r in results.items():
            if r.get("lost") or r.get("status") not in ("successful", "failed"):
                lost[name] = r["hosts"]
    return status, lost


def _signal_group(proc: Any, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)

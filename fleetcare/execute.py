"""The only module that imports ansible_runner.

It runs a :class:`~fleetcare.jobs.Job` inside a run directory that follows
ansible-runner's directory contract (``<run_dir>/runner/{env,inventory,
artifacts/<ident>}``) and hands each event, as a plain dict, to a callback.
Everything above this module speaks fleetcare's own types.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fleetcare.jobs import ROOT, Job

EventSink = Callable[[dict[str, Any]], None]

# How often (seconds) the runner loop looks at the cancel flag when Ansible is quiet.
_POLL = 0.25


def runner_dir(run_dir: Path) -> Path:
    return run_dir / "runner"


def execute(job: Job, run_dir: Path, ident: str, on_event: EventSink,
            cancelled: Callable[[], bool]) -> str:
    """Run the job; return the runner status (successful, failed, canceled, error)."""
    import ansible_runner

    ensure_private(runner_dir(run_dir))

    def handler(event: dict[str, Any]) -> bool:
        on_event(event)
        return True  # keep every event under artifacts/<ident>/job_events as well

    stop = _GracefulStop(cancelled)
    cmdline = ["--forks", str(job.forks)]
    if job.check:
        cmdline.append("--check")
    envvars = {
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        # the runner's own stdout is the record; colour codes make it unreadable
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        # ansible-playbook from the same environment as fleetcare, activated or not
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
    }
    result = ansible_runner.run(
        private_data_dir=str(runner_dir(run_dir)),
        project_dir=str(ROOT),
        ident=ident,
        playbook=str(job.playbook),
        inventory=str(job.inventory),
        limit=job.limit,
        extravars=dict(job.extravars),
        envvars=envvars,
        cmdline=" ".join(cmdline),
        event_handler=handler,
        cancel_callback=stop,
        settings={"pexpect_timeout": _POLL, "suppress_ansible_output": True},
        quiet=True,
        rotate_artifacts=0,
    )
    # Events Ansible wrote but the runner never read back from its stdout
    # (a run cancelled by SIGTERM stops reading at once) are still on disk as
    # partial event files; hand them on too, so nothing collected is lost.
    for event in leftover_events(runner_dir(run_dir) / "artifacts" / ident):
        on_event(event)
    return str(result.status)


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

"""The only module that imports ansible_runner.

It runs a :class:`~fleetcare.jobs.Job` inside a run directory that follows
ansible-runner's directory contract (``<run_dir>/runner/{env,inventory,
artifacts/<ident>}``) and hands each event, as a plain dict, to a callback.
Everything above this module speaks fleetcare's own types.
"""

from __future__ import annotations

import os
import sys
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
        cancel_callback=cancelled,
        settings={"pexpect_timeout": _POLL, "suppress_ansible_output": True},
        quiet=True,
        rotate_artifacts=0,
    )
    return str(result.status)


def ensure_private(path: Path) -> None:
    """Create ``path`` with mode 0700 (artifacts may hold host details)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)

"""The library behind each command, usable and tested without the CLI.

Data flows one way: job -> execute (events) -> results -> history -> reports.
"""

from __future__ import annotations

import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from fleetcare import data_dir, reports
from fleetcare.errors import InputError
from fleetcare.execute import ensure_private, execute
from fleetcare.history import History
from fleetcare.jobs import Job
from fleetcare.results import MalformedResult, Run, new_run_id


def default_output_dir() -> Path:
    return data_dir() / "runs"


def check_writable(directory: Path, what: str = "output directory") -> Path:
    """Fail early, with the path, when run directories cannot be created there."""
    directory = directory.expanduser()
    try:
        ensure_private(directory)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".probe-"):
            pass
    except OSError as exc:
        raise InputError(f"{directory}: {what} is not writable ({exc.strerror})") from None
    return directory


class Progress:
    """hosts done/total and failures so far, redrawn in place on a terminal;
    silent when the stream is not a TTY (CI logs, cron)."""

    def __init__(self, stream: TextIO | None, total: int) -> None:
        self.stream = stream if stream is not None and stream.isatty() else None
        self.total = total
        self._last = ""

    def update(self, run: Run) -> None:
        if self.stream is None:
            return
        hosts = run.hosts.values()
        done = sum(1 for h in hosts if h.done)
        down = sum(1 for h in hosts if h.status in ("unreachable", "failed"))
        failing = sum(1 for f in run.findings() if f.failing)
        width = 20
        filled = width * done // max(self.total, 1)
        line = (f"[{'#' * filled}{'-' * (width - filled)}] {done}/{self.total} hosts"
                f" · {down} unreachable/failed · {failing} failing")
        if line != self._last:
            self.stream.write("\r" + line)
            self.stream.flush()
            self._last = line

    def close(self) -> None:
        if self.stream is not None and self._last:
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class Outcome:
    run: Run
    run_dir: Path
    reports: dict[str, Path]


class _Interrupt:
    """SIGINT/SIGTERM set a flag that the runner polls; the run then stops
    cleanly and keeps what it collected."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> _Interrupt:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        self.signum = signum

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)

    def __call__(self) -> bool:
        return self.signum is not None


def run_job(job: Job, history: History, output_dir: Path, fail_on: str = "major",
            progress_stream: TextIO | None = sys.stderr,
            on_start: Callable[[Run, Path], None] | None = None) -> Outcome:
    """Execute a job end to end: run directory, events, history, reports."""
    output_dir = check_writable(output_dir)
    run = Run(id=new_run_id(), command=job.command, fail_on=fail_on,
              inventory=job.inventory_label, limit=job.limit, check=job.check)
    for name in job.hosts:
        run.host(name)
    run_dir = output_dir / run.id
    ensure_private(run_dir)
    history.begin(run)
    if on_start:
        on_start(run, run_dir)
    progress = Progress(progress_stream, len(job.hosts))

    def on_event(event: dict[str, Any]) -> None:
        _feed(run, event)
        progress.update(run)

    status = "error"
    with _Interrupt() as interrupt:
        try:
            status = execute(job, run_dir, run.id, on_event, interrupt)
        except KeyboardInterrupt:
            interrupt.signum = signal.SIGINT
        finally:
            progress.close()
            interrupted = interrupt() or status == "canceled"
            if status in ("error", "failed") and not interrupted and not any(
                    h.done for h in run.hosts.values()):
                _explain_runner_failure(run, run_dir)
            run.finish(interrupted=interrupted)
            history.save(run)
            written = reports.write_all(run, run_dir)
    return Outcome(run, run_dir, written)


def _feed(run: Run, event: dict[str, Any]) -> None:
    try:
        run.feed(event)
    except MalformedResult as exc:
        host = run.host((event.get("event_data") or {}).get("host") or "?")
        host.status, host.message = "failed", str(exc)


def _explain_runner_failure(run: Run, run_dir: Path) -> None:
    """Ansible stopped before any host answered (a syntax error, a missing
    collection): keep the last lines of its output as every host's message."""
    tail = ""
    for path in sorted(run_dir.glob("runner/artifacts/*/stdout")):
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
        tail = " | ".join(lines[-3:])
    for host in run.hosts.values():
        if host.status == "pending":
            host.status = "failed"
            host.message = f"Ansible stopped before this host answered: {tail}"[:500]


def rebuild_report(history: History, run_ref: str, fmt: str) -> str:
    if fmt not in reports.FORMATS:
        raise InputError(f"--format: {fmt!r} is not one of {', '.join(reports.FORMATS)}")
    return reports.render(history.load(run_ref), fmt)


def import_results(path: Path, history: History, output_dir: Path, fail_on: str = "major") -> Outcome:
    """Read back a run made without the wrapper (an ansible-runner artifact directory, or the
    ansible.posix.json callback's output; see :mod:`fleetcare.ingest`) into history and reports.
    The run is named after its playbook's command, or ``import`` when the playbook is not one."""
    from fleetcare import commands, ingest

    recorded = ingest.read(path)
    output_dir = check_writable(output_dir)
    known = commands.by_playbook(recorded.playbook)
    run = Run(id=new_run_id(), command=known.name if known else "import", fail_on=fail_on,
              inventory=str(path))
    for event in recorded.events:
        _feed(run, event)
    if not run.hosts:
        raise InputError(f"{path}: the run recorded there has no host results")
    run.finish()
    run_dir = output_dir / run.id
    ensure_private(run_dir)
    history.save(run)
    return Outcome(run, run_dir, reports.write_all(run, run_dir))

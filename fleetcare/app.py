"""The library behind each command, usable and tested without the CLI.

Data flows one way: job -> execute (events) -> results -> history -> reports.
"""

from __future__ import annotations

import signal
import sys
import tempfile
import time
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
    silent when the stream is not a TTY (CI logs, cron).

    Each update costs O(1): the counts come from the run's tallies, and the
    line is redrawn at most every ``INTERVAL`` seconds (a terminal write and
    flush per event would cost more than the event itself); ``close`` draws
    the final counts."""

    INTERVAL = 0.1

    def __init__(self, stream: TextIO | None, total: int) -> None:
        self.stream = stream if stream is not None and stream.isatty() else None
        self.total = total
        self._last = ""
        self._shown: tuple[int, int, int] | None = None
        self._pending: tuple[int, int, int] | None = None
        self._drawn_at = 0.0

    def update(self, run: Run) -> None:
        if self.stream is None:
            return
        counts = run.tally()  # kept by the run as events arrive
        if counts == self._shown:
            self._pending = None
            return
        now = time.monotonic()
        if now - self._drawn_at < self.INTERVAL:
            self._pending = counts
            return
        self._draw(counts, now)

    def _draw(self, counts: tuple[int, int, int], now: float) -> None:
        assert self.stream is not None
        done, down, failing = counts
        width = 20
        filled = width * done // max(self.total, 1)
        line = (f"[{'#' * filled}{'-' * (width - filled)}] {done}/{self.total} hosts"
                f" · {down} unreachable/failed · {failing} failing")
        self.stream.write("\r" + line)
        self.stream.flush()
        self._last, self._shown, self._pending, self._drawn_at = line, counts, None, now

    def close(self) -> None:
        if self.stream is None:
            return
        if self._pending is not None:
            self._draw(self._pending, time.monotonic())
        if self._last:
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
        try:
            run.feed(event)
        except MalformedResult as exc:
            run.set_status((event.get("event_data") or {}).get("host") or "?", "failed", str(exc))
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

"""The library behind each command, usable and tested without the CLI.

Data flows one way: job -> execute (events) -> results -> history -> reports.
"""

from __future__ import annotations

import json
import os
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
from fleetcare.history import History, HistoryError
from fleetcare.jobs import Job
from fleetcare.results import EXIT_HISTORY, MalformedResult, Run, SchemaError, bulk, new_run_id, validate


def default_output_dir() -> Path:
    return data_dir() / "runs"


def check_writable(directory: Path, what: str = "output directory") -> Path:
    """Fail early, with the path, when run directories cannot be created there.
    A directory that exists keeps its mode; a missing one is created 0700."""
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
    history_error: str | None = None  # one line: the run is not in history, the reports are

    @property
    def exit_code(self) -> int | None:
        return EXIT_HISTORY if self.history_error else self.run.exit_code


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


@dataclass(frozen=True)
class Rules:
    """What judges a run beyond its findings: the policy (service levels, waiver limits) and the
    waivers of a ``--waivers FILE``. Loaded, and so validated, before any host is contacted."""

    policy: Any = None  # fleetcare.policy.Policy; None: the shipped defaults
    waivers: tuple[Any, ...] = ()  # fleetcare.waivers.Waiver from the file
    fail_on_overdue: bool = False

    @classmethod
    def load(cls, policy_file: Path | None = None, waivers_file: Path | None = None,
             fail_on_overdue: bool = False) -> Rules:
        from fleetcare import policy, waivers

        at = waivers.now()  # a bad FLEETCARE_NOW stops here
        rules = policy.load(policy_file)
        found = tuple(waivers.load_file(waivers_file, rules, at)) if waivers_file else ()
        return cls(rules, found, fail_on_overdue)


def check_workers(specs, inventory: str | None) -> tuple[Any, ...]:
    """The workers of --workers, checked before any host is contacted; () for a local run."""
    if not specs:
        return ()
    from fleetcare import commands

    if inventory is None:
        raise InputError("--workers: needs an inventory (-i); without one fleetcare runs on this machine")
    return commands.WORKERS.check(tuple(specs))


def judge_lifecycle(run: Run, history: History, rules: Rules | None = None, *, replay: bool = False,
                    against: str | None = None) -> Run:
    """The one place a built run meets its lifecycle, before history saves it and the reports are
    written: waivers (history's and the file's) applied, the comparison with the previous run
    (or ``against``), service levels from first_seen, and the exit code drawn again from what
    still counts.

    ``replay``: the run is a past one loaded from history (``fleetcare report``): its findings keep
    the status they were recorded with, history's waivers are those given before it ended, and a
    comparison that cannot be made is an error rather than left out."""
    with bulk():
        return _judge(run, history, rules or Rules(), replay, against)


def _judge(run: Run, history: History, rules: Rules, replay: bool, against: str | None) -> Run:
    from fleetcare import lifecycle, policy, service_levels, waivers

    chosen = rules.policy or policy.defaults()
    run.fail_on_overdue = rules.fail_on_overdue or run.fail_on_overdue
    try:
        stored = waivers.from_history(history)
    except HistoryError:
        if replay:
            raise
        stored = []  # history unreadable: its waivers cannot apply, the findings fail (safe side)
    if replay:
        until = run.finished or run.started
        stored = [w for w in stored if not w.created or w.created <= until]
    waivers.apply(run, [*stored, *rules.waivers], chosen)
    if replay:
        lifecycle.annotate(run, history, against, chosen.recurring)
    else:
        _compare(run, history, chosen.recurring)
    service_levels.annotate(run, chosen)
    run.rejudge()
    return run


def run_job(job: Job, history: History, output_dir: Path, fail_on: str = "major",
            progress_stream: TextIO | None = sys.stderr,
            on_start: Callable[[Run, Path], None] | None = None,
            judge: Callable[[Run], None] | None = None, rules: Rules | None = None,
            workers: tuple[Any, ...] = ()) -> Outcome:
    """Execute a job end to end: run directory, events, reports, history.

    With ``workers`` (fleetcare.workers.Worker), the hosts are split into one shard per worker
    and the streams merged into this one run; the unfinished hosts of a worker lost on the way
    are unreachable, with that reason.

    The reports are written from the run in memory before history is saved, so
    a history that fails at the end (locked, full disk) loses no run: the
    outcome carries the error and the run directory can be imported later.
    """
    output_dir = check_writable(output_dir)
    run = Run(id=new_run_id(), command=job.command, fail_on=fail_on,
              inventory=job.inventory_label, limit=job.limit, check=job.check)
    for name in job.hosts:
        run.host(name)
    history.begin(run)  # first: a history that refuses the run leaves no run directory behind
    run_dir = output_dir / run.id
    ensure_private(run_dir, new=True)
    if on_start:
        on_start(run, run_dir)
    progress = Progress(progress_stream, len(job.hosts))

    def on_event(event: dict[str, Any]) -> None:
        _feed(run, event)
        progress.update(run)

    status = "error"
    with _Interrupt() as interrupt:
        try:
            if workers:
                status = _execute_sharded(job, run, run_dir, on_event, interrupt, workers)
            else:
                status = execute(job, run_dir, run.id, on_event, interrupt)
        except KeyboardInterrupt:
            interrupt.signum = signal.SIGINT
        finally:
            progress.close()
            interrupted = interrupt() or status == "canceled"
            if status in ("error", "failed") and not interrupted and not any(
                    h.done for h in run.hosts.values()):
                _explain_runner_failure(run, run_dir)
            if judge and not interrupted:
                judge(run)  # controller-side findings (drift), after results and before reports
            run.finish(interrupted=interrupted)
            history_error = None
            judge_lifecycle(run, history, rules)
            try:
                written = reports.write_all(run, run_dir)
            finally:
                try:
                    history.save(run)
                except HistoryError as exc:
                    history_error = (f"exit {EXIT_HISTORY}: the run is not in history ({exc}); its reports are "
                                     f"kept: record it with 'fleetcare import {run_dir}'")
    return Outcome(run, run_dir, written, history_error)


def _execute_sharded(job: Job, run: Run, run_dir: Path, on_event: Callable[[dict[str, Any]], None],
                     cancelled: Callable[[], bool], workers: tuple[Any, ...]) -> str:
    from fleetcare import workers as workers_mod
    from fleetcare.execute import execute_workers

    shards = workers_mod.shards(list(job.hosts), len(workers))
    status, lost = execute_workers(job, run_dir, run.id, on_event, cancelled, workers, shards)
    for name, hosts in lost.items():
        for host in hosts:
            if not run.hosts[host].done:
                run.set_status(host, "unreachable", f"worker {name} lost")
            elif run.hosts[host].status == "pending":
                # its findings arrived; the play's recap, which says "ok", went down with the worker
                run.set_status(host, "ok", f"findings kept; worker {name} lost before the end of the play")
    return status


def _feed(run: Run, event: dict[str, Any]) -> None:
    try:
        run.feed(event)
    except MalformedResult as exc:
        run.set_status((event.get("event_data") or {}).get("host") or "?", "failed", str(exc))


def _explain_runner_failure(run: Run, run_dir: Path) -> None:
    """Ansible stopped before any host answered (a syntax error, a missing
    collection): keep the last lines of its output as every host's message."""
    tail = ""
    for path in sorted(run_dir.glob("runner/artifacts/*/stdout")):
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
        tail = " | ".join(lines[-3:])
    for host in run.hosts.values():
        if host.status == "pending":
            run.set_status(host.name, "failed", f"Ansible stopped before this host answered: {tail}"[:500])


def check_exports(junit: Path | None, prometheus_dir: Path | None) -> None:
    """Before any host is contacted: the --junit file's directory and the --prometheus-dir
    must exist and be writable (fleetcare creates neither: a typo must not go unnoticed)."""
    for option, directory in (("--junit", junit and junit.expanduser().parent),
                              ("--prometheus-dir", prometheus_dir and prometheus_dir.expanduser())):
        if directory is None:
            continue
        if option == "--junit" and junit.expanduser().is_dir():
            raise InputError(f"--junit: {junit} is a directory, not a file")
        if not directory.is_dir():
            raise InputError(f"{option}: {directory} is not a directory")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise InputError(f"{option}: {directory} is not writable")


def write_exports(run: Run, junit: Path | None = None, prometheus_dir: Path | None = None) -> tuple[Path, ...]:
    """The run's JUnit file (0600 when new) and Prometheus textfile, each replaced atomically."""
    from fleetcare.reports import prometheus

    written = []
    if junit is not None:
        written.append(reports.replace_file(junit.expanduser(), reports.render(run, "junit")))
    if prometheus_dir is not None:
        written.append(prometheus.write(run, prometheus_dir.expanduser()))
    return tuple(written)


def _compare(run: Run, history: History, recurring=None) -> None:
    # the lifecycle is read from history: a history that fails here costs the comparison only
    from fleetcare import lifecycle

    try:
        lifecycle.annotate(run, history, recurring=recurring)
    except HistoryError:
        run.comparison = None


def rebuild_report(history: History, run_ref: str, fmt: str, against: str | None = None,
                   rules: Rules | None = None) -> str:
    """A past run's report, compared with ``against`` (a run reference) or else with the
    previous run of the same command over the same hosts. Findings keep the status they were
    recorded with; history's waivers given before the run ended and those of ``rules`` (a
    --waivers FILE), if active at the run's start, waive those still failing; the service levels
    are those of ``rules``' policy."""
    if fmt not in (*reports.FORMATS, *reports.EXPORTS):
        raise InputError(f"--format: {fmt!r} is not one of {', '.join((*reports.FORMATS, *reports.EXPORTS))}")
    from fleetcare import trends

    run = history.load(run_ref)
    trends.annotate(run, history)
    run = judge_lifecycle(run, history, rules, replay=True, against=against)
    return reports.render(run, fmt)


def write_output(path: Path, text: str) -> None:
    """Write ``text`` to a file the user named (``report -o``): created 0600 like
    the run's own reports when it does not exist; an existing file keeps its mode."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
    except OSError as exc:
        raise InputError(f"{path}: cannot write the report ({exc.strerror})") from None


def list_runs(history: History, last: int = 20) -> list[dict[str, Any]]:
    """The newest runs, after marking those whose wrapper died ``abandoned``."""
    history.mark_abandoned()
    return history.runs(last)


def is_run_dir(path: Path) -> bool:
    """A fleetcare run directory or its report.json (re-imported by :func:`import_run`), as
    opposed to results recorded without the wrapper (:func:`import_results`): a directory
    holding a report.json, or one holding no ansible-runner events at all."""
    path = Path(path).expanduser()
    if path.name == "report.json" or (path / "report.json").is_file():
        return True
    return path.is_dir() and not any(path.glob("job_events")) and not any(
        path.glob("artifacts/*/job_events")) and not any(path.glob("runner/artifacts/*/job_events"))


def import_run(run_dir: Path, history: History) -> Run:
    """Record a finished run in history from its directory's ``report.json``
    (the source of truth), checked against the report schema first. Importing
    the same run again replaces it with the same content."""
    run_dir = Path(run_dir).expanduser()
    path = run_dir / "report.json" if run_dir.is_dir() else run_dir
    try:
        doc = json.loads(path.read_text(encoding="utf-8"), parse_constant=_not_finite)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file (a fleetcare run directory holds report.json), "
                         "and no ansible-runner artifacts here either") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the report ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: the report is not UTF-8 text") from None
    except ValueError as exc:
        raise InputError(f"{path}: not a JSON report ({exc})") from None
    try:
        validate(doc)
    except SchemaError as exc:
        raise InputError(f"{path}: {exc}") from None
    run = Run.from_report(doc)
    history.save(run)
    return run


def _not_finite(name: str) -> float:
    raise ValueError(f"{name} is not a finite number")


def role_judge(command: str) -> Callable[[History, Run], None] | None:
    """The controller-side findings a command's roles owe, judged from history after the results
    and before the lifecycle, for a run and for an imported run alike: the health role's
    capacity forecast (HLTH-CAP-001, fleetcare.trends)."""
    from fleetcare import commands, trends

    known = commands.COMMANDS.get(command)
    return trends.judge if known is not None and "health" in known.roles else None


def import_results(path: Path, history: History, output_dir: Path, fail_on: str = "major",
                   rules: Rules | None = None, host: str | None = None) -> Outcome:
    """Read back a run made without the wrapper (an ansible-runner artifact directory, or the
    ansible.posix.json callback's output; see :mod:`fleetcare.ingest`) into history and reports.
    The run is named after its playbook's command, or ``import`` when the playbook is not one (a
    scanner's result, whose findings are recorded under ``host`` when it is given)."""
    from fleetcare import commands, ingest

    recorded = ingest.read(path, host=host)
    output_dir = check_writable(output_dir)
    known = commands.by_playbook(recorded.playbook)
    run = Run(id=new_run_id(), command=known.name if known else "import", fail_on=fail_on,
              inventory=str(path))
    for event in recorded.events:
        _feed(run, event)
    if not run.hosts:
        raise InputError(f"{path}: the run recorded there has no host results")
    run.finish()
    judge = role_judge(run.command)
    if judge is not None:
        judge(history, run)
    judge_lifecycle(run, history, rules)
    run_dir = output_dir / run.id
    ensure_private(run_dir, new=True)
    written = reports.write_all(run, run_dir)  # reports first: a history failure loses nothing
    history.save(run)
    return Outcome(run, run_dir, written)

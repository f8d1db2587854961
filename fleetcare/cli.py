"""The ``fleetcare`` command (``runner.py`` at the repository root is the same).

A thin layer: parse arguments, call the library in ``fleetcare.app`` (or
``fleetcare_lab``, imported only by ``fleetcare lab``), print, and turn known
errors into one line and exit 2. The commands themselves, their help, options
and playbooks, are declared in ``fleetcare.commands``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple, NoReturn

from fleetcare import __version__, commands, inputs
from fleetcare.errors import InputError
from fleetcare.results import EXIT_INTERRUPTED, EXIT_USAGE, SEVERITIES
from fleetcare.term import safe

EXIT_HELP = commands.exit_help()
_RAW = argparse.RawDescriptionHelpFormatter


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # one line, not argparse's usage block: the user can ask for --help
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def _fail_on(value: str) -> str:
    if value not in SEVERITIES:
        raise argparse.ArgumentTypeError(f"{value!r} is not a severity ({'|'.join(SEVERITIES)})")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Subcommands from the registry (fleetcare.commands): every run command gets the run
    options and its own; the other commands add their arguments and handler in :data:`_TOOLS`."""
    parser = _Parser(
        prog="fleetcare",
        description="Inspect, harden, patch, back up and keep server fleets consistent, "
                    "and prove it with reports.",
        epilog=EXIT_HELP, formatter_class=_RAW)
    parser.add_argument("--version", action="version", version=f"fleetcare {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    common = _Parser(add_help=False)
    common.add_argument("--db", type=Path, metavar="PATH",
                        help="history database (default: ~/.local/share/fleetcare/history.db)")

    for command in commands.COMMANDS.values():
        tool = None if command.runs else _TOOLS[command.name]
        p = sub.add_parser(command.name, parents=[common] if tool is None or tool.history else [], help=command.help,
                           description=command.description or None,
                           epilog=EXIT_HELP if command.runs else None, formatter_class=_RAW)
        if command.runs:
            _run_options(p, command.example)
            for option in command.options:
                if option.metavar:
                    p.add_argument(option.flag, action="append", default=[], metavar=option.metavar,
                                   help=option.help)
                else:
                    p.add_argument(option.flag, action="store_true", help=option.help)
            if command.name == "drift":
                _drift_arguments(p)
            if command.name == "backup":
                _backup_arguments(p)
        else:
            tool.arguments(p)
    return parser


def _run_options(p: argparse.ArgumentParser, example: str) -> None:
    p.add_argument("-i", "--inventory", metavar="INVENTORY",
                   help="Ansible inventory (file or directory); default: this machine")
    p.add_argument("-l", "--limit", metavar="PATTERN", help="Ansible host pattern within the inventory")
    p.add_argument("-e", "--var", dest="vars", action="append", default=[], metavar="KEY=VALUE",
                   help=f"role variable such as {example} (repeatable)")
    p.add_argument("--vars-file", action="append", default=[], metavar="FILE",
                   help="YAML file of role variables (repeatable)")
    _report_options(p)
    p.add_argument("--junit", type=Path, metavar="FILE", help="also write the run as JUnit XML here (for CI)")
    p.add_argument("--prometheus-dir", type=Path, metavar="DIR",
                   help="also write fleetcare_<command>.prom here (node_exporter's textfile directory)")
    p.add_argument("--forks", type=int, default=16, help="hosts worked on at once (default 16)")


def _report_options(p: argparse.ArgumentParser) -> None:
    # what a run and an imported run share: how the verdict is drawn and where reports go
    p.add_argument("--fail-on", type=_fail_on, default="major", metavar="SEVERITY",
                   help="exit 1 when a finding at or above this severity fails "
                        "(critical|major|minor|info; default major)")
    p.add_argument("--output-dir", type=Path, metavar="DIR",
                   help="where run directories go (default: ~/.local/share/fleetcare/runs)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the report paths and the exit line")


def _explain_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("control", metavar="ID", help="a finding ID such as HARD-SSH-001")


def _report_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN")
    p.add_argument("--format", default="md", metavar="FORMAT", help="json, html, md or junit (default md)")
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here instead of stdout")
    p.add_argument("--against", metavar="OTHER",
                   help="compare with this run (default: the previous run of the same command over the same hosts)")


def _history_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", "--last", type=int, default=20, metavar="N", help="how many runs (default 20)")


def _import_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", type=Path, metavar="PATH",
                   help="a fleetcare run directory (or its report.json), an ansible-runner artifact "
                        "directory (or a private data directory holding one), or a file written by the "
                        "ansible.posix.json callback")
    _report_options(p)


def _lab_arguments(lab: argparse.ArgumentParser) -> None:
    labsub = lab.add_subparsers(dest="lab_command", metavar="ACTION", parser_class=_Parser)
    labsub.required = True
    p = labsub.add_parser("images", help="build the lab images (cached, rebuilt on change)")
    p.add_argument("--distro", action="append", choices=("11", "12", "13"),
                   help="Debian release (repeatable; default all three)")
    p.add_argument("--force", action="store_true", help="rebuild even when cached")
    p = labsub.add_parser("up", help="start N hosts and write an inventory (idempotent)")
    p.add_argument("--hosts", type=int, default=3, metavar="N", help="number of hosts (default 3)")
    p.add_argument("--distro", choices=("11", "12", "13"), default="12", help="Debian release (default 12)")
    labsub.add_parser("status", help="list the lab's containers")
    labsub.add_parser("down", help="remove every lab container and the lab's key and inventory")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        inputs.check_locale()
        return _dispatch(args)
    except BrokenPipeError:
        # `fleetcare explain ID | head`: the reader left; no traceback, and no
        # second error when Python flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except InputError as exc:
        print(f"fleetcare: {safe(exc)}", file=sys.stderr)  # may quote a file's keys or values
        return EXIT_USAGE
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM before a run started (a slow inventory): nothing ran, nothing is left
        print("fleetcare: interrupted before any host was contacted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (UnicodeError, RecursionError, MemoryError) as exc:
        # input fleetcare.inputs did not foresee; still one line, never a traceback
        print(f"fleetcare: unusable input: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}",
              file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        # errors that carry a user-facing line (history, lab) end the same way
        from fleetcare.history import HistoryError

        lab_error = _lab_error_type()
        if isinstance(exc, HistoryError) or (lab_error and isinstance(exc, lab_error)):
            print(f"fleetcare: {safe(exc)}", file=sys.stderr)
            return EXIT_USAGE
        raise


def _lab_error_type() -> type[Exception] | None:
    # a LabError can only come from a lab that was imported; never import it for that
    return getattr(sys.modules.get("fleetcare_lab"), "LabError", None)


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "drift":
        return _drift(args)
    if args.command == "backup":
        return _backup(args)
    if commands.get(args.command).runs:
        return _run(args)
    return _TOOLS[args.command].handler(args)


def _explain(args: argparse.Namespace) -> int:
    from fleetcare import catalog

    print(catalog.explain(args.control))
    return 0


def _open_history(args: argparse.Namespace):
    from fleetcare.history import History

    return History(args.db)


def _run(args: argparse.Namespace, judge=None) -> int:
    """A run command; ``judge(history, run)`` adds controller-side findings before the reports."""
    from fleetcare import app, jobs

    options = {o.dest: getattr(args, o.dest) for o in commands.get(args.command).options}
    job = jobs.build(args.command, inventory=args.inventory, limit=args.limit,
                     vars_files=tuple(args.vars_file), var_pairs=tuple(args.vars), forks=args.forks,
                     **options)
    output_dir = app.check_writable(args.output_dir or app.default_output_dir())
    app.check_exports(args.junit, args.prometheus_dir)
    with _open_history(args) as history:
        def started(run, run_dir):
            if not args.quiet:
                where = "this machine" if job.local else f"{len(job.hosts)} hosts"
                mode = " · check mode: nothing is changed" if job.check else ""
                print(f"{job.command} · {where} · run {run.id}{mode}", flush=True)

        outcome = app.run_job(job, history, output_dir, fail_on=args.fail_on, on_start=started,
                              judge=(lambda run: judge(history, run)) if judge else None)
    exports = app.write_exports(outcome.run, args.junit, args.prometheus_dir)
    return _outcome(outcome, args.quiet, exports)


def _import(args: argparse.Namespace) -> int:
    from fleetcare import app

    if app.is_run_dir(args.path):
        # a fleetcare run directory (say after exit 5): its report.json is the record
        with _open_history(args) as history:
            run = app.import_run(args.path, history)
        print(f"imported run {run.id} ({run.command}, {run.status}, exit {run.exit_code})")
        return 0
    with _open_history(args) as history:
        outcome = app.import_results(args.path, history, args.output_dir or app.default_output_dir(),
                                     fail_on=args.fail_on)
    if not args.quiet:
        print(f"{outcome.run.command} · imported {args.path} · run {outcome.run.id}")
    return _outcome(outcome, args.quiet)


def _outcome(outcome, quiet: bool, exports: tuple[Path, ...] = ()) -> int:
    run = outcome.run
    if not quiet:
        _print_findings(run)
    stem = outcome.run_dir / "report"
    print(f"reports: {safe(stem)}.{{{','.join(sorted(p.suffix[1:] for p in outcome.reports.values()))}}}")
    for path in exports:
        print(f"written: {safe(path)}")
    print(_exit_line(run), flush=True)
    if outcome.history_error:
        print(f"fleetcare: {safe(outcome.history_error)}", file=sys.stderr)
    return outcome.exit_code if outcome.exit_code is not None else EXIT_USAGE


TERMINAL_HOSTS = 3  # host names shown per group of hosts that ended the same way


def _print_findings(run, limit: int = 25) -> None:
    from fleetcare.reports.view import first_hosts, host_problems

    for h in run.hosts.values():
        if h.changes:
            verb = "would change" if run.check else "changed"
            more = f"; ... {len(h.changes) - 6} more" if len(h.changes) > 6 else ""
            shown = "; ".join(h.changes[:6]) + more
            print(f" {verb} {safe(h.name)}: {safe(shown)}")
    failing = run.failing("info")
    for f in failing[:limit]:
        print(f" {f.severity:<8} {safe(f.id):<16} {safe(f.host):<20} {_evidence_text(f.evidence)}")
    if len(failing) > limit:
        print(f" ... and {len(failing) - limit} more in the reports")
    for g in host_problems(run):
        message = f": {safe(g.message)}" if g.message else ""
        if len(g.hosts) == 1:
            print(f" {g.label:<11} {safe(g.hosts[0])}{message}")
        else:
            names = first_hosts([safe(n) for n in g.hosts], TERMINAL_HOSTS)
            print(f" {g.label:<11} {len(g.hosts):,} hosts{message} ({names})")


def _evidence_text(evidence: dict, width: int = 90) -> str:
    text = safe(", ".join(f"{k}={v}" for k, v in evidence.items() if not isinstance(v, (list, dict))))
    return text if len(text) <= width else text[: width - 3] + "..."


def _exit_line(run) -> str:
    from fleetcare.reports.view import answered, first_hosts

    hosts = run.hosts.values()
    seen = f"{sum(1 for h in hosts if answered(h))} hosts done"
    down = [safe(h.name) for h in hosts if h.status in ("unreachable", "failed")]
    if down:
        seen += f", {len(down):,} unreachable or failed: {first_hosts(down, 5)}"
    unfinished = [safe(h.name) for h in hosts if h.status == "pending" and not answered(h)]
    if unfinished:
        seen += f", {len(unfinished):,} not finished: {first_hosts(unfinished, 5)}"
    why = commands.exit_meaning(run.exit_code, run.fail_on)
    return f"exit {run.exit_code}: {why} ({seen})"


def _drift_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", metavar="ACTION",
                   help="none: compare with the baseline; baseline: take it; accept HOST [ITEM ...]; log HOST")
    p.add_argument("words", nargs="*", metavar="HOST [ITEM ...]", help="for accept and log")
    p.add_argument("--reason", help="why the drift is accepted (accept)")
    p.add_argument("--by", help="who accepts it (accept; default: the login name)")


def _backup_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", metavar="ACTION",
                   help="none: enforce and audit; drill: also restore a sample of each set's latest "
                        "snapshot on each host and compare it (BKUP-DRILL-001)")


def _backup(args: argparse.Namespace) -> int:
    if args.action not in (None, "drill"):
        raise InputError(f"backup: unknown action {args.action!r} (drill)")
    if args.action == "drill":
        if args.check:
            raise InputError("backup drill: --check changes nothing, and a drill restores files; leave one out")
        # the same run, with the drill before the audit (the role variable a user could set too)
        args.vars = [*args.vars, "backup_drill_run=true"]
    return _run(args)


def _drift(args: argparse.Namespace) -> int:
    from fleetcare import drift

    action, words = args.action, list(args.words)
    if action not in (None, "baseline", "accept", "log"):
        raise InputError(f"drift: unknown action {action!r} (baseline, accept HOST, log HOST)")
    if action in (None, "baseline"):
        if words:
            raise InputError(f"drift {action or ''}: unexpected argument {words[0]!r}".replace("  ", " "))
        if action is None:
            return _run(args, judge=drift.judge)
        return _run(args, judge=lambda history, run: drift.take_baseline(history, run, args.by))
    if not words:
        raise InputError(f"drift {action}: name the HOST")
    with _open_history(args) as history:
        if action == "accept":
            version, items = drift.accept(history, words[0], words[1:], args.reason or "", args.by)
            print(safe(f"{words[0]}: baseline version {version}, {len(items)} items accepted: {', '.join(items)}"))
            return 0
        if len(words) > 1:
            raise InputError(f"drift log: unexpected argument {words[1]!r}")
        for r in drift.log(history, words[0]):
            items = f" · {len(r['items'])} items: {', '.join(r['items'])}" if r["items"] else ""
            print(safe(f"v{r['version']}  {r['taken']}  {r['kind']:<8} by {r['by']}: {r['reason']}{items}"))
    return 0


def _report(args: argparse.Namespace) -> int:
    from fleetcare import app

    with _open_history(args) as history:
        text = app.rebuild_report(history, args.run, args.format, args.against)
    if args.output:
        app.write_output(args.output, text)
        print(args.output)
    else:
        sys.stdout.write(text)
    return 0


def _history(args: argparse.Namespace) -> int:
    from fleetcare import app

    with _open_history(args) as history:
        rows = app.list_runs(history, args.last)
    if not rows:
        print("no runs yet: try 'fleetcare inspect'")
    for r in rows:
        # a database written by something else may hold anything
        print(safe(f"{r['id']}  {r['started']}  {r['command']:<8} {r['status']:<11} exit {r['exit_code']}"
                   f"  {r['hosts']} hosts  {r['failing']} failing"))
    return 0


def _lab(args: argparse.Namespace) -> int:
    import fleetcare_lab as lab

    if args.lab_command == "images":
        for name in lab.build_images(tuple(args.distro or ("11", "12", "13")), force=args.force):
            print(name)
    elif args.lab_command == "up":
        if args.hosts < 1:
            raise InputError(f"--hosts: must be at least 1, not {args.hosts}")
        print(lab.up(args.hosts, args.distro))
    elif args.lab_command == "status":
        rows = lab.status()
        if not rows:
            print("no lab containers")
        for r in rows:
            print("  ".join(str(r.get(k, "")) for k in ("name", "distro", "state", "address", "port")))
    else:
        lab.down()
    return 0


class _Tool(NamedTuple):
    """What the CLI adds to a registry command that runs no playbook."""

    arguments: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[argparse.Namespace], int]
    history: bool  # takes --db


_TOOLS: dict[str, _Tool] = {
    "explain": _Tool(_explain_arguments, _explain, history=False),
    "report": _Tool(_report_arguments, _report, history=True),
    "history": _Tool(_history_arguments, _history, history=True),
    "import": _Tool(_import_arguments, _import, history=True),
    "lab": _Tool(_lab_arguments, _lab, history=False),
}


if __name__ == "__main__":
    sys.exit(main())

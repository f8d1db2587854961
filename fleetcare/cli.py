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
    p.add_argument(commands.WORKERS.flag, action="append", default=[], metavar=commands.WORKERS.metavar,
                   help=commands.WORKERS.help)


def _report_options(p: argparse.ArgumentParser) -> None:
    # what a run and an imported run share: how the verdict is drawn and where reports go
    p.add_argument("--fail-on", type=_fail_on, default="major", metavar="SEVERITY",
                   help="exit 1 when a finding at or above this severity fails "
                        "(critical|major|minor|info; default major)")
    p.add_argument("--output-dir", type=Path, metavar="DIR",
                   help="where run directories go (default: ~/.local/share/fleetcare/runs)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the report paths and the exit line")
    p.add_argument("--lang", metavar="LANG",
                   help="language of the HTML and Markdown reports and of the lines printed after a run: "
                        "en or zh-CN (default: from LANGUAGE/LC_ALL/LC_MESSAGES/LANG, else en)")
    _lifecycle_options(p)
    p.add_argument("--fail-on-overdue", action="store_true",
                   help="exit 1 only on findings past their service level's resolve-by time, not on "
                        "merely failing ones (for scheduled compliance runs)")


def _lifecycle_options(p: argparse.ArgumentParser) -> None:
    # what judges a run beyond its findings (fleetcare.app.Rules); runs and `report` take them
    p.add_argument("--waivers", type=Path, metavar="FILE",
                   help="YAML file of waivers (e.g. kept in your repository), applied with history's")
    p.add_argument("--policy", type=Path, metavar="FILE",
                   help="service-level policy overriding the shipped defaults (respond/resolve per "
                        "severity, waiver limits)")


def _rules(args: argparse.Namespace):
    """--policy, --waivers and --fail-on-overdue, read and checked before any host is contacted."""
    from fleetcare import app

    return app.Rules.load(args.policy, args.waivers, bool(getattr(args, "fail_on_overdue", False)))


def _explain_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("control", metavar="ID", help="a finding ID such as HARD-SSH-001")
    p.add_argument("--hosts", type=int, default=25, metavar="N",
                   help="hosts listed in its history, most recurrences first (default 25; 0: all)")


def _note_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("finding", metavar="ID", help="the finding ID, such as HLTH-DISK-001")
    p.add_argument("--host", default="*", metavar="PATTERN",
                   help="hosts the note applies to, shell-style such as 'web-*' (default: every host)")
    p.add_argument("--cause", metavar="TEXT", help="what caused the finding (required)")
    p.add_argument("--fix", metavar="TEXT", help="how it was fixed (required)")
    p.add_argument("--by", metavar="NAME", help="who writes it (default: the login name)")


def _notes_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("finding", nargs="?", metavar="ID", help="only the notes on this finding ID")


def _report_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN")
    p.add_argument("--format", default="md", metavar="FORMAT", help="json, html, md or junit (default md)")
    p.add_argument("--lang", metavar="LANG",
                   help="language of the HTML and Markdown reports and of the lines printed after a run: "
                        "en or zh-CN (default: from LANGUAGE/LC_ALL/LC_MESSAGES/LANG, else en)")
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here instead of stdout")
    p.add_argument("--against", metavar="OTHER",
                   help="compare with this run (default: the previous run of the same command over the same hosts)")
    _lifecycle_options(p)


def _history_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", "--last", type=int, default=20, metavar="N", help="how many runs (default 20)")


def _import_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", type=Path, metavar="PATH",
                   help="a fleetcare run directory (or its report.json), an ansible-runner artifact "
                        "directory (or a private data directory holding one), an AWX job's events (the JSON of "
                        "/api/v2/jobs/N/job_events/, all pages), a file written by the ansible.posix.json callback, "
                        "or a scanner's result: a Lynis report (lynis-report.dat) or an OpenSCAP XCCDF result or "
                        "ARF report")
    p.add_argument("--host", metavar="NAME",
                   help="record a scanner's findings under this inventory name (default: the host the "
                        "file names; a scan made from outside the host names the scanning machine)")
    _report_options(p)


def _lab_arguments(lab: argparse.ArgumentParser) -> None:
    labsub = lab.add_subparsers(dest="lab_command", metavar="ACTION", parser_class=_Parser)
    labsub.required = True
    p = labsub.add_parser("images", help="build the lab images (cached, rebuilt on change)")
    p.add_argument("--distro", action="append", choices=("11", "12", "13"),
                   help="Debian release (repeatable; default all three)")
    p.add_argument("--force", action="store_true", help="rebuild even when cached")
    p.add_argument("--vm", action="store_true", help="build the qemu VM images instead of the container images")
    p = labsub.add_parser("up", help="start N hosts and write an inventory (idempotent)")
    p.add_argument("--hosts", type=int, default=None, metavar="N",
                   help="number of containers (default 3, or 0 with --vm)")
    p.add_argument("--vm", type=int, default=0, metavar="N",
                   help="number of qemu VMs with their own kernel (group vm; default 0)")
    p.add_argument("--distro", choices=("11", "12", "13"), default="12", help="Debian release (default 12)")
    labsub.add_parser("status", help="list the lab's containers and VMs")
    labsub.add_parser("down", help="remove every lab container and VM and the lab's key and inventory")


def _schedule_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--on-calendar", metavar="SPEC",
                   help="when: a systemd calendar spec such as daily, 'Mon..Fri 06:00' or '*-*-* *:00/30' (required)")
    p.add_argument("--name", metavar="NAME", help="the schedule's name: units fleetcare-NAME.* (default: the command)")
    p.add_argument("--user", metavar="USER", help="the user the run runs as (default: you)")
    p.add_argument("--random-delay", default="", metavar="SPAN",
                   help="start up to this long after the time (RandomizedDelaySec=, e.g. 15min; default none)")


def _schedule_arguments(p: argparse.ArgumentParser) -> None:
    ssub = p.add_subparsers(dest="schedule_command", metavar="ACTION", parser_class=_Parser)
    ssub.required = True
    add = ssub.add_parser("add", help="install a schedule: COMMAND [its options] --on-calendar SPEC")
    _schedule_options(add)
    add.add_argument("words", nargs=argparse.REMAINDER, metavar="COMMAND [OPTIONS]",
                     help="a run command and its options, as you would run it")
    ssub.add_parser("list", help="the schedules fleetcare installed: next and last run, last exit code")
    rm = ssub.add_parser("remove", help="delete a schedule's units (or cron entry)")
    rm.add_argument("name", metavar="NAME")


def _schedule(args: argparse.Namespace) -> int:
    import pwd

    from fleetcare import schedule

    if args.schedule_command == "list":
        rows = schedule.listing()
        if not rows:
            print("no schedules: add one with 'fleetcare schedule add COMMAND ... --on-calendar SPEC'")
        for r in rows:
            extra = (f"  next {r['next']}  last {r['last']}  exit {r['exit']}" if r["kind"] == "systemd"
                     else "  (cron: last runs are in 'fleetcare history' and syslog)")
            print(safe(f"{r['name']}  {r['kind']}  {r['calendar']}  as {r['user']}: {r['command']}{extra}"))
        return 0
    if args.schedule_command == "remove":
        for path in schedule.remove(args.name):
            print(safe(f"removed {path}"))
        return 0
    # options of the schedule itself may come after the command's, which pass through unchanged
    own = _Parser(add_help=False, allow_abbrev=False)
    _schedule_options(own)
    later, words = own.parse_known_args(args.words)
    for key in ("on_calendar", "name", "user", "random_delay"):
        if getattr(later, key):
            setattr(args, key, getattr(later, key))
    if not words or words[0].startswith("-"):
        raise InputError("schedule add: name the COMMAND to run (e.g. 'schedule add inspect -i hosts.yml ...')")
    if not args.on_calendar:
        raise InputError("schedule add: --on-calendar SPEC is required (e.g. daily, 'Mon..Fri 06:00')")
    name = schedule.check_name(args.name or words[0])
    user = schedule.check_user(args.user or pwd.getpwuid(os.getuid()).pw_name)
    delay = schedule.check_delay(args.random_delay)
    normalized = schedule.normalize_calendar(args.on_calendar)
    schedule.check_command(words)
    plan = schedule.Schedule(name, tuple(words), args.on_calendar, normalized, user, os.getcwd(), delay)
    kind, files = schedule.add(plan)
    if kind == "cron":
        print(safe(f"schedule {name}: systemd is not running here, so a cron entry instead: {files[0]} "
                   f"({normalized}; cron does not catch up missed runs; output goes to syslog via logger)"))
    else:
        print(safe(f"schedule {name}: {files[1].name} on {normalized}, runs {files[0].name} as {user} "
                   f"(see 'fleetcare schedule list'; output: journalctl -t fleetcare-{name})"))
    return 0


def _worker_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="worker_command", metavar="ACTION", parser_class=_Parser)
    sub.required = True
    s = sub.add_parser("setup", help="install ansible-runner and the collection on worker nodes, offline")
    s.add_argument("host", metavar="HOST", help="[USER@]HOST[:PORT], ssh:HOST[,HOST...] or inventory:FILE")
    s.add_argument("--wheelhouse", type=Path, metavar="DIR",
                   help="the wheelhouse to build and copy (default: ~/.local/share/fleetcare/wheelhouse)")
    s.add_argument("--runner-only", action="store_true",
                   help="install only ansible-runner and ansible-core (each run sends the collection; "
                        "harden needs the full install, which brings the collections its role uses)")
    w = sub.add_parser("wheelhouse", help="build the wheelhouse only (pip wheel of fleetcare and its dependencies)")
    w.add_argument("--wheelhouse", type=Path, metavar="DIR",
                   help="where (default: ~/.local/share/fleetcare/wheelhouse)")


def _worker(args: argparse.Namespace) -> int:
    from fleetcare import wheelhouse, workers

    if args.worker_command == "wheelhouse":
        print(safe(wheelhouse.build(args.wheelhouse)))
        return 0
    workers.setup(args.host, args.wheelhouse, log=lambda line: print(safe(line), flush=True),
                  packages=workers.RUNNER_ONLY if args.runner_only else ("fleetcare",))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    environ = dict(os.environ)  # the user's locale, before check_locale may set LC_ALL for Ansible
    try:
        inputs.check_locale()
        if os.environ.get("FLEETCARE_NOW"):
            from fleetcare import waivers

            waivers.now()  # a pinned clock that is not a time: one line, before anything
        return _dispatch(args, environ)
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


def _dispatch(args: argparse.Namespace, environ: dict[str, str] | None = None) -> int:
    from fleetcare import i18n

    # --lang (or the locale) for the whole command: reports rendered and lines printed after a run
    with i18n.use(i18n.choose(getattr(args, "lang", None), environ)):
        return _command(args)


def _command(args: argparse.Namespace) -> int:
    if args.command == "drift":
        return _drift(args)
    if args.command == "backup":
        return _backup(args)
    if commands.get(args.command).runs:
        # the health role's metrics make trends and the capacity forecast (HLTH-CAP-001)
        from fleetcare import app

        return _run(args, judge=app.role_judge(args.command))
    return _TOOLS[args.command].handler(args)


def _explain(args: argparse.Namespace) -> int:
    from fleetcare import knowledge

    print(knowledge.explain(args.control, args.db, hosts_shown=args.hosts))
    return 0


def _note(args: argparse.Namespace) -> int:
    from fleetcare import knowledge
    from fleetcare.history import default_path

    # bad input is refused before a database is opened, let alone created
    knowledge.check_note(args.finding, args.cause, args.fix, args.host, args.by)
    if not (args.db or default_path()).expanduser().is_file():
        knowledge.finding_id(args.finding)  # only history could know an ID the roles do not
    with _open_history(args) as history:
        note = knowledge.add_note(history, args.finding, args.cause, args.fix, args.host, args.by)
    print(safe(f"note #{note['id']} on {note['finding']} (hosts {note['host']}) recorded by {note['author']}"))
    return 0


def _notes(args: argparse.Namespace) -> int:
    from fleetcare import knowledge
    from fleetcare.history import default_path

    path = (args.db or default_path()).expanduser()
    rows = []
    if path.is_file():  # listing never creates a database
        with _open_history(args) as history:
            rows = knowledge.notes(history, args.finding)
    elif args.finding:
        knowledge.finding_id(args.finding)  # an unknown ID is still an error
    if not rows:
        print("no notes yet: add one with 'fleetcare note ID --cause TEXT --fix TEXT'")
    for n in rows:
        print(safe(f"#{n['id']}  {n['created']}  {n['finding']}  hosts {n['host']}  by {n['author']}"))
        print(safe(f"    cause: {' '.join(n['cause'].split())}"))
        print(safe(f"    fix:   {' '.join(n['fix'].split())}"))
    return 0


def _open_history(args: argparse.Namespace):
    from fleetcare.history import History

    return History(args.db)


def _run(args: argparse.Namespace, judge=None, prepare=None) -> int:
    """A run command; ``judge(history, run)`` adds controller-side findings before the reports;
    ``prepare(history, job)`` returns extra variables the job takes from history (drift's known texts)."""
    import dataclasses

    from fleetcare import app, jobs

    rules = _rules(args)
    options = {o.dest: getattr(args, o.dest) for o in commands.get(args.command).options}
    workers = app.check_workers(args.workers, args.inventory)
    job = jobs.build(args.command, inventory=args.inventory, limit=args.limit,
                     vars_files=tuple(args.vars_file), var_pairs=tuple(args.vars), forks=args.forks,
                     **options)
    output_dir = app.check_writable(args.output_dir or app.default_output_dir())
    app.check_exports(args.junit, args.prometheus_dir)
    with _open_history(args) as history:
        if prepare:
            job = dataclasses.replace(job, extravars={**job.extravars, **prepare(history, job)})

        def started(run, run_dir):
            if not args.quiet:
                _ = _tr()
                where = _("this machine") if job.local else _("{count} hosts", count=len(job.hosts))
                if workers:
                    where += " · " + _("{count} workers", count=len(workers))
                mode = " · " + _("check mode: nothing is changed") if job.check else ""
                print(f"{job.command} · {where} · {_('run {id}', id=run.id)}{mode}", flush=True)

        outcome = app.run_job(job, history, output_dir, fail_on=args.fail_on, on_start=started,
                              judge=(lambda run: judge(history, run)) if judge else None, rules=rules,
                              workers=workers)
    exports = app.write_exports(outcome.run, args.junit, args.prometheus_dir)
    return _outcome(outcome, args.quiet, exports)


def _import(args: argparse.Namespace) -> int:
    from fleetcare import app

    rules = _rules(args)
    if app.is_run_dir(args.path):
        # a fleetcare run directory (say after exit 5): its report.json is the record
        with _open_history(args) as history:
            run = app.import_run(args.path, history)
        print(f"imported run {run.id} ({run.command}, {run.status}, exit {run.exit_code})")
        return 0
    with _open_history(args) as history:
        outcome = app.import_results(args.path, history, args.output_dir or app.default_output_dir(),
                                     fail_on=args.fail_on, rules=rules, host=args.host)
    if not args.quiet:
        print(f"{outcome.run.command} · imported {args.path} · run {outcome.run.id}")
    return _outcome(outcome, args.quiet)


def _tr():
    from fleetcare import i18n

    return i18n.translator()


def _outcome(outcome, quiet: bool, exports: tuple[Path, ...] = ()) -> int:
    run = outcome.run
    _ = _tr()
    if not quiet:
        _print_findings(run)
    stem = outcome.run_dir / "report"
    suffixes = ",".join(sorted(p.suffix[1:] for p in outcome.reports.values()))
    print(_("reports: {path}", path=f"{safe(stem)}.{{{suffixes}}}"))
    for path in exports:
        print(_("written: {path}", path=safe(path)))
    print(_exit_line(run), flush=True)
    if outcome.history_error:
        print(f"fleetcare: {safe(outcome.history_error)}", file=sys.stderr)
    return outcome.exit_code if outcome.exit_code is not None else EXIT_USAGE


TERMINAL_HOSTS = 3  # host names shown per group of hosts that ended the same way


def _print_findings(run, limit: int = 25) -> None:
    from fleetcare.reports.view import first_hosts, host_problems

    _ = _tr()
    for h in run.hosts.values():
        if h.changes:
            verb = _("would change") if run.check else _("changed")
            more = "; ... " + _("{count} more", count=len(h.changes) - 6) if len(h.changes) > 6 else ""
            shown = "; ".join(h.changes[:6]) + more
            print(f" {verb} {safe(h.name)}: {safe(shown)}")
    failing = run.failing("info")
    for f in failing[:limit]:
        print(f" {_.label(f.severity):<8} {safe(f.id):<16} {safe(f.host):<20} {_evidence_text(f.evidence)}")
    if len(failing) > limit:
        print(" ... " + _("and {count} more in the reports", count=len(failing) - limit))
    _print_lifecycle(run, _)
    for g in host_problems(run):
        message = f": {safe(g.message)}" if g.message else ""
        label = _.label(g.label)
        if len(g.hosts) == 1:
            print(f" {label:<11} {safe(g.hosts[0])}{message}")
        else:
            names = first_hosts([safe(n) for n in g.hosts], TERMINAL_HOSTS, _)
            count = _("{count} hosts", count=f"{len(g.hosts):,}")
            print(f" {label:<11} {count}{message} ({names})")


def _print_lifecycle(run, _, shown: int = 3) -> None:
    """One line each: findings waived, waivers expiring soon or lapsed, findings overdue."""
    section = run.waivers or {}
    if section.get("waived"):
        print(" " + _("waived      {count} findings under {waivers} waivers", count=f"{section['waived']:,}",
                      waivers=f"{len(section['used']):,}"))
    expiring = [w for w in section.get("used", ()) if w["state"] == "expiring"]
    if expiring:
        names = ", ".join(safe(f"{w['finding']} ({w['expires'][:10]})") for w in expiring[:shown])
        more = _(" and {count} more", count=len(expiring) - shown) if len(expiring) > shown else ""
        print(" " + _("expiring    {count} waivers within {days} days: {names}", count=f"{len(expiring):,}",
                      days=section["warn_days"], names=names + more))
    lapsed = section.get("lapsed") or ()
    if lapsed:
        names = ", ".join(safe(f"{w['finding']} ({_.label(w['state'])})") for w in lapsed[:shown])
        more = _(" and {count} more", count=len(lapsed) - shown) if len(lapsed) > shown else ""
        print(" " + _("lapsed      {count} waivers no longer cover failing findings: {names}",
                      count=f"{len(lapsed):,}", names=names + more))
    levels = run.service_levels or {}
    overdue = [e for e in levels.get("findings", ()) if e["overdue"]]
    if overdue:
        first = overdue[0]
        print(" " + _("overdue     {count} findings past their resolve-by time (first: {id} on {host}, due {due})",
                      count=f"{len(overdue):,}", id=safe(first["id"]), host=safe(first["host"]),
                      due=first["resolve_by"]))


def _evidence_text(evidence: dict, width: int = 90) -> str:
    text = safe(", ".join(f"{k}={v}" for k, v in evidence.items() if not isinstance(v, (list, dict))))
    return text if len(text) <= width else text[: width - 3] + "..."


def _exit_line(run) -> str:
    from fleetcare.reports.view import answered, first_hosts

    _ = _tr()
    hosts = run.hosts.values()
    seen = _("{count} hosts done", count=sum(1 for h in hosts if answered(h)))
    down = [safe(h.name) for h in hosts if h.status in ("unreachable", "failed")]
    if down:
        seen += _(", {count} unreachable or failed: {names}", count=f"{len(down):,}",
                  names=first_hosts(down, 5, _))
    unfinished = [safe(h.name) for h in hosts if h.status == "pending" and not answered(h)]
    if unfinished:
        seen += _(", {count} not finished: {names}", count=f"{len(unfinished):,}",
                  names=first_hosts(unfinished, 5, _))
    why = commands.exit_meaning(run.exit_code, run.fail_on, _, run.fail_on_overdue)
    return _("exit {code}: {why} ({seen})", code=run.exit_code, why=why, seen=seen)


def _drift_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", metavar="ACTION",
                   help="none: compare with the baseline; baseline: take it; accept HOST [ITEM ...]; log HOST")
    p.add_argument("words", nargs="*", metavar="HOST [ITEM ...]", help="for accept and log")
    p.add_argument("--reason", help="why the drift is accepted (accept)")
    p.add_argument("--by", help="who accepts it (accept; default: the login name)")
    p.add_argument("--as", dest="as_name", metavar="group:NAME",
                   help="baseline: store the one host's snapshot as the declared baseline of a group "
                        "(hosts hold categories against it with drift_baseline_from)")


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
    if args.desired and action is not None:
        raise InputError(f"--desired: only with 'drift' itself, not 'drift {action}' (a baseline records "
                         "the host as it is; desired-state drift is never accepted into one)")
    if action in (None, "baseline"):
        if words:
            raise InputError(f"drift {action or ''}: unexpected argument {words[0]!r}".replace("  ", " "))
        import shutil
        import tempfile

        if args.as_name and action != "baseline":
            raise InputError("--as: only with 'drift baseline'")
        if args.as_name:
            drift.check_baseline_name(args.as_name)
        known = tempfile.mkdtemp(prefix="fleetcare-drift-")  # 0700: digests of the baselines' files
        try:
            def prepare(history, job):
                if args.as_name:
                    drift.check_baseline_name(args.as_name, job.hosts)
                return drift.write_known(history, job.hosts, Path(known), baseline=action == "baseline")

            if action is None:
                return _run(args, judge=drift.judge, prepare=prepare)
            return _run(args, judge=lambda history, run: drift.take_baseline(history, run, args.by, args.as_name),
                        prepare=prepare)
        finally:
            shutil.rmtree(known, ignore_errors=True)
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

    rules = _rules(args)
    with _open_history(args) as history:
        text = app.rebuild_report(history, args.run, args.format, args.against, rules)
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


def _waive_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("finding", metavar="ID", help="a finding ID (HARD-SSH-001) or a pattern of IDs (HARD-SSH-*)")
    p.add_argument("--host", default="*", metavar="PATTERN", help="hosts it covers, a shell pattern (default: all)")
    p.add_argument("--reason", help="why the finding is accepted (required)")
    p.add_argument("--owner", help="who answers for it (required)")
    p.add_argument("--expires", metavar="DATE",
                   help="when it ends: YYYY-MM-DD (00:00 UTC that day) or an ISO 8601 time (required)")
    p.add_argument("--policy", type=Path, metavar="FILE", help="policy whose waivers.max_days applies")


def _waive(args: argparse.Namespace) -> int:
    from fleetcare import policy, waivers

    at = waivers.now()
    rules = policy.load(args.policy)
    w = waivers.check({"id": args.finding, "host": args.host, "reason": args.reason, "owner": args.owner,
                       "expires": args.expires}, "waive", rules, at, "history", "", future=True)
    with _open_history(args) as history:
        wid = history.add_waiver(w.finding, w.host, w.reason, w.owner, waivers.iso(w.expires), waivers.iso(at))
    print(safe(f"waiver {wid}: {w.label()} until {waivers.iso(w.expires)}, owner {w.owner}: {w.reason}"))
    return 0


def _waivers_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--waivers", type=Path, metavar="FILE", help="also list the waivers of this YAML file")
    p.add_argument("--policy", type=Path, metavar="FILE", help="policy whose waivers.warn_days applies")


def _waivers(args: argparse.Namespace) -> int:
    from fleetcare import policy, waivers

    at = waivers.now()
    rules = policy.load(args.policy)
    found = waivers.load_file(args.waivers, rules, at) if args.waivers else []
    with _open_history(args) as history:
        rows = waivers.listing([*waivers.from_history(history), *found], at, rules.waivers.warn_days)
    if not rows:
        print("no waivers: add one with 'fleetcare waive ID --reason TEXT --owner NAME --expires DATE'")
    labels = {"expiring": "expiring soon"}
    for r in rows:
        wid = r["ref"] if r["source"] == "history" else f"file {r['ref']}"
        host = "" if r["host"] == "*" else f" on {r['host']}"
        state = labels.get(r["state"], r["state"]) + (f" {r['revoked']}" if r["revoked"] else "")
        print(safe(f"{wid:<4} {state:<14} {r['finding']}{host}  until {r['expires']}  owner {r['owner']}: "
                   f"{r['reason']}"))
    return 0


def _unwaive_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="WAIVER_ID|ID", help="a waiver id (a number) or a finding ID or pattern")
    p.add_argument("--host", metavar="PATTERN", help="only the waivers given for this host pattern")


def _unwaive(args: argparse.Namespace) -> int:
    from fleetcare import waivers

    at = waivers.now()
    target = args.target.strip()
    with _open_history(args) as history:
        rows = [w for w in waivers.from_history(history) if w.active(at)]
        if target.isdigit():
            chosen = [w for w in rows if w.ref == target]
            what = f"waiver {target}"
        else:
            wanted = target.upper()
            chosen = [w for w in rows if w.finding == wanted and (args.host is None or w.host == args.host)]
            what = f"waiver of {target!r}" + (f" on {args.host!r}" if args.host else "")
        if not chosen:
            raise InputError(f"unwaive: no active {what} (see 'fleetcare waivers')")
        done = history.revoke_waivers([int(w.ref) for w in chosen], waivers.iso(at))
    for w in chosen:
        if int(w.ref) in done:
            print(safe(f"waiver {w.ref} revoked: {w.label()}"))
    return 0


def _lab(args: argparse.Namespace) -> int:
    import fleetcare_lab as lab

    if args.lab_command == "images" and args.vm:
        from fleetcare_lab import vm

        for distro in args.distro or ("12",):
            print(vm.build_image(distro, force=args.force))
    elif args.lab_command == "images":
        for name in lab.build_images(tuple(args.distro or ("11", "12", "13")), force=args.force):
            print(name)
    elif args.lab_command == "up":
        hosts = args.hosts if args.hosts is not None else (0 if args.vm else 3)
        if args.vm < 0:
            raise InputError(f"--vm: must be at least 0, not {args.vm}")
        if hosts < 0 or hosts + args.vm < 1:
            raise InputError(f"--hosts: must be at least 1, not {hosts}")
        print(lab.up(hosts, args.distro, vms=args.vm))
    elif args.lab_command == "status":
        rows = lab.status()
        if not rows:
            print("no lab hosts")
        for r in rows:
            print("  ".join(str(r.get(k, "")) for k in ("name", "kind", "distro", "state", "address", "port")))
    else:
        lab.down()
    return 0


class _Tool(NamedTuple):
    """What the CLI adds to a registry command that runs no playbook."""

    arguments: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[argparse.Namespace], int]
    history: bool  # takes --db


_TOOLS: dict[str, _Tool] = {
    "explain": _Tool(_explain_arguments, _explain, history=True),
    "note": _Tool(_note_arguments, _note, history=True),
    "notes": _Tool(_notes_arguments, _notes, history=True),
    "report": _Tool(_report_arguments, _report, history=True),
    "history": _Tool(_history_arguments, _history, history=True),
    "import": _Tool(_import_arguments, _import, history=True),
    "waive": _Tool(_waive_arguments, _waive, history=True),
    "waivers": _Tool(_waivers_arguments, _waivers, history=True),
    "unwaive": _Tool(_unwaive_arguments, _unwaive, history=True),
    "schedule": _Tool(_schedule_arguments, _schedule, history=False),
    "worker": _Tool(_worker_arguments, _worker, history=False),
    "lab": _Tool(_lab_arguments, _lab, history=False),
}


if __name__ == "__main__":
    sys.exit(main())

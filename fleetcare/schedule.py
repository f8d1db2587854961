"""Scheduled runs: ``fleetcare schedule add|list|remove``.

A schedule is a fleetcare run command with its options, started by the host's own scheduler:
a systemd service and timer (``fleetcare-NAME.service`` / ``fleetcare-NAME.timer`` in
/etc/systemd/system, ``Persistent=true``, an optional ``RandomizedDelaySec=``, ``User=``, its
output in the journal under the identifier ``fleetcare-NAME``), or, where systemd is not
running, a cron entry in /etc/cron.d/fleetcare-NAME (said so when it is written).

Every file this module writes starts with :data:`MARK`; list and remove only ever look at files
that carry it, so a unit or cron file that fleetcare did not write is never changed or removed.

Nothing is written before everything is checked: the name, the user, the calendar spec
(``systemd-analyze calendar``), and the command's own options, parsed by the command's own
parser and built into a job as the run itself would (:func:`fleetcare.jobs.build`). The unit
carries no secret: fleetcare passes no environment into it, and a secret-looking ``-e``
variable is refused (a ``--vars-file`` readable by the user is named by path instead).
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fleetcare.errors import InputError

MARK = "# Written by 'fleetcare schedule add'; 'fleetcare schedule remove {name}' deletes it."
PREFIX = "fleetcare-"
UNIT_DIR = "etc/systemd/system"
CRON_DIR = "etc/cron.d"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,47}")
_DELAY = re.compile(r"\d+(s|min|m|h)?")
_CRON_DOW = {"Sun": "0", "Mon": "1", "Tue": "2", "Wed": "3", "Thu": "4", "Fri": "5", "Sat": "6"}


@dataclass(frozen=True)
class Schedule:
    name: str
    command: tuple[str, ...]  # the fleetcare command line after 'fleetcare'
    on_calendar: str  # as given (systemd) ...
    normalized: str  # ... and as systemd-analyze normalizes it
    user: str
    workdir: str
    random_delay: str = ""  # a systemd time span: 300, 5min, 1h

    @property
    def unit(self) -> str:
        return f"{PREFIX}{self.name}"


def systemd_running(root: Path = Path("/")) -> bool:
    """sd_booted(): systemd is PID 1 when /run/systemd/system exists."""
    return (root / "run/systemd/system").is_dir()


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name or ""):
        raise InputError(f"schedule: --name {name!r}: lowercase letters, digits, '-' and '_' only, "
                         "starting with a letter or digit (at most 48)")
    return name


def check_user(user: str) -> str:
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise InputError(f"schedule: --user {user!r}: no such user on this machine") from None
    return user


def check_delay(delay: str) -> str:
    if delay and not _DELAY.fullmatch(delay):
        raise InputError(f"schedule: --random-delay {delay!r}: a time span such as 300, 90s, 15min or 1h")
    return delay


def normalize_calendar(spec: str) -> str:
    """The calendar spec as ``systemd-analyze calendar`` normalizes it; InputError if it refuses it."""
    tool = shutil.which("systemd-analyze")
    if not tool:
        raise InputError("schedule: --on-calendar: systemd-analyze is not installed (Debian package systemd), "
                         "so the spec cannot be checked")
    if not spec.strip() or "\n" in spec:
        raise InputError(f"schedule: --on-calendar {spec!r}: not a calendar spec")
    proc = subprocess.run([tool, "calendar", spec], capture_output=True, text=True, check=False,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"})
    if proc.returncode != 0:
        why = " ".join((proc.stderr or proc.stdout).split()) or f"exit {proc.returncode}"
        raise InputError(f"schedule: --on-calendar {spec!r}: systemd-analyze refuses it ({why})")
    for line in proc.stdout.splitlines():
        key, _, value = line.strip().partition(": ")
        if key == "Normalized form":
            return value.strip()
    raise InputError(f"schedule: --on-calendar {spec!r}: systemd-analyze printed no normalized form")


def check_command(argv: Sequence[str]) -> None:
    """The command and its options, checked as ``fleetcare COMMAND ...`` itself checks them:
    the same parser, then the same job building, without contacting any host."""
    from fleetcare import app, cli, commands, execute, jobs

    if not argv or argv[0] not in commands.COMMANDS or not commands.get(argv[0]).runs:
        names = ", ".join(c.name for c in commands.run_commands())
        raise InputError(f"schedule add: {argv[0] if argv else ''!r} is not a run command ({names})")
    import contextlib
    import io

    parser = cli.build_parser()
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said), contextlib.redirect_stdout(said):
            args = parser.parse_args(list(argv))
    except SystemExit:  # argparse's own line, given as the one line of this error
        line = " ".join(said.getvalue().split()).removeprefix("fleetcare ").removeprefix("fleetcare: ")
        raise InputError(f"schedule add: {line or f'the options of {argv[0]!r} are not valid'}") from None
    if getattr(args, "action", None) is not None:
        raise InputError(f"schedule add: {argv[0]} {args.action}: only plain runs can be scheduled")
    app.Rules.load(args.policy, args.waivers, bool(args.fail_on_overdue))
    spec = commands.get(args.command)
    options = {o.dest: getattr(args, o.dest) for o in spec.options}
    job = jobs.build(args.command, inventory=args.inventory, limit=args.limit, vars_files=tuple(args.vars_file),
                     var_pairs=tuple(args.vars), forks=args.forks, **options)
    for pair in args.vars:
        key, value = jobs.parse_var(pair)
        if execute.secret_values({key: value}):
            raise InputError(f"schedule add: -e {key}: a secret would be written into the schedule's unit; "
                             "put it in a --vars-file that only the schedule's user can read")
    del job


def fleetcare_argv() -> list[str]:
    """How the scheduler starts this same fleetcare: this interpreter, the CLI module."""
    return [sys.executable, "-m", "fleetcare.cli"]


def _systemd_quote(word: str) -> str:
    # ExecStart= splits on whitespace and honours double quotes and C escapes; % starts a
    # specifier and $ a variable, so both are doubled
    text = word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{text}"' if not text or re.search(r"[\s\"';]", word) else text


def service_text(s: Schedule) -> str:
    exec_start = " ".join(_systemd_quote(w) for w in [*fleetcare_argv(), *s.command])
    return "\n".join([
        MARK.format(name=s.name),
        "[Unit]",
        f"Description=fleetcare {s.command[0]} (schedule {s.name})",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        f"User={s.user}",
        f"WorkingDirectory={_systemd_quote(s.workdir)}",
        # exit 1 means findings: the run worked, and 'schedule list' shows the code
        "SuccessExitStatus=1",
        f"SyslogIdentifier={s.unit}",
        "StandardOutput=journal",
        "StandardError=journal",
        f"ExecStart={exec_start}",
        "",
    ])


def timer_text(s: Schedule) -> str:
    lines = [
        MARK.format(name=s.name),
        "[Unit]",
        f"Description=fleetcare {s.command[0]} on {s.on_calendar} (schedule {s.name})",
        "",
        "[Timer]",
        f"OnCalendar={s.normalized}",
        "Persistent=true",
    ]
    if s.random_delay:
        lines.append(f"RandomizedDelaySec={s.random_delay}")
    lines += [f"Unit={s.unit}.service", "", "[Install]", "WantedBy=timers.target", ""]
    return "\n".join(lines)


def _cron_seconds(delay: str) -> int:
    number = int(re.match(r"\d+", delay).group()) if delay else 0
    unit = delay.lstrip("0123456789")
    return number * {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600}[unit]


def cron_fields(normalized: str) -> str:
    """The five cron time fields of a normalized systemd calendar spec
    (``[DOW ]YYYY-MM-DD HH:MM:SS[ TZ]``); InputError when cron cannot express it."""
    words = normalized.split()
    if words and words[-1] == "UTC":
        words = words[:-1]
    dow = "*"
    if len(words) == 3:
        dow = ",".join(_cron_dow(part) for part in words[0].split(","))
        words = words[1:]
    if len(words) != 2 or words[0].count("-") != 2 or words[1].count(":") != 2:
        raise InputError(f"schedule: --on-calendar {normalized!r}: cron cannot express it (no systemd here)")
    year, month, day = words[0].split("-")
    hour, minute, second = words[1].split(":")
    if year != "*" or second not in ("00", "0") or "~" in day:
        raise InputError(f"schedule: --on-calendar {normalized!r}: cron cannot express it (no systemd here: "
                         "years, seconds and last days of a month need a systemd timer)")
    parts = ((minute, 59), (hour, 23), (day, 31), (month, 12))
    return " ".join(_cron_part(p, normalized, top) for p, top in parts) + f" {dow}"


def _cron_part(part: str, spec: str, top: int) -> str:
    if not re.fullmatch(r"[*0-9,./]+", part):
        raise InputError(f"schedule: --on-calendar {spec!r}: cron cannot express {part!r}")
    out = []
    for item in part.split(","):
        base, _, step = item.partition("/")
        if ".." in base:
            lo, hi = base.split("..")
            base = f"{int(lo)}-{int(hi)}"
        elif base != "*":
            base = str(int(base))
        if step and base in ("*", "0"):
            base = f"*/{int(step)}"
        elif step:
            base = f"{base}-{top}/{int(step)}" if "-" not in base else f"{base}/{int(step)}"
        out.append(base)
    return ",".join(out)


def _cron_dow(part: str) -> str:
    if ".." in part:
        lo, hi = part.split("..")
        return f"{_CRON_DOW[lo]}-{_CRON_DOW[hi]}"
    return _CRON_DOW[part]


def cron_text(s: Schedule) -> str:
    run = " ".join(shlex.quote(w) for w in [*fleetcare_argv(), *s.command])
    delay = _cron_seconds(s.random_delay)
    sleep = f"sleep $(shuf -i 0-{delay} -n 1); " if delay else ""
    line = (f"cd {shlex.quote(s.workdir)} && {{ {sleep}{run}; }} 2>&1 | logger -t {s.unit}")
    # cron turns every unescaped % into a newline
    return "\n".join([
        MARK.format(name=s.name),
        f"# fleetcare {s.command[0]} on {s.on_calendar} ({s.normalized}); cron runs no missed runs",
        "SHELL=/bin/sh",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        f"{cron_fields(s.normalized)} {s.user} {line.replace('%', chr(92) + '%')}",
        "",
    ])


def _owned(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as fh:
            return fh.readline().startswith(MARK.split("'fleetcare schedule remove")[0])
    except (OSError, UnicodeDecodeError):
        return False


def _systemctl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["systemctl", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        why = " ".join((proc.stderr or proc.stdout).split())
        raise InputError(f"schedule: systemctl {' '.join(args)} failed: {why}")
    return proc


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(0o644)
    tmp.replace(path)


def add(s: Schedule, root: Path = Path("/"), systemd: bool | None = None) -> tuple[str, list[Path]]:
    """Install the schedule; return ("systemd"|"cron", files written). Refuses to replace a
    file fleetcare did not write."""
    systemd = systemd_running(root) if systemd is None else systemd
    if systemd:
        files = [root / UNIT_DIR / f"{s.unit}.service", root / UNIT_DIR / f"{s.unit}.timer"]
        texts = [service_text(s), timer_text(s)]
    else:
        files = [root / CRON_DIR / s.unit]
        texts = [cron_text(s)]
    for path in files:
        if path.exists() and not _owned(path):
            raise InputError(f"schedule add: {path} exists and was not written by fleetcare; choose another --name")
    for path in files:
        folder = path.parent
        while not folder.exists():
            folder = folder.parent
        if not os.access(folder, os.W_OK):
            raise InputError(f"schedule add: cannot write {path.parent} (run as root)")
    for path, text in zip(files, texts, strict=True):
        _write(path, text)
    if systemd and root == Path("/"):
        _systemctl("daemon-reload")
        _systemctl("enable", "--now", f"{s.unit}.timer")
    return ("systemd" if systemd else "cron"), files


def _owned_names(root: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for folder, pattern in ((root / UNIT_DIR, f"{PREFIX}*.timer"), (root / UNIT_DIR, f"{PREFIX}*.service"),
                            (root / CRON_DIR, f"{PREFIX}*")):
        for path in sorted(folder.glob(pattern)) if folder.is_dir() else ():
            if _owned(path):
                name = path.name.removeprefix(PREFIX).removesuffix(".timer").removesuffix(".service")
                found.setdefault(name, []).append(path)
    return found


def listing(root: Path = Path("/"), systemd: bool | None = None) -> list[dict[str, str]]:
    """One row per schedule fleetcare wrote: its name, kind, calendar, user, command, and for a
    timer its next and last run and the service's last exit code (from systemctl show)."""
    systemd = systemd_running(root) if systemd is None else systemd
    rows = []
    for name, paths in sorted(_owned_names(root).items()):
        row = {"name": name, "kind": "cron" if paths[0].parent.name == "cron.d" else "systemd",
               "calendar": "", "user": "", "command": "", "next": "", "last": "", "exit": ""}
        for path in paths:
            for line in path.read_text(encoding="utf-8").splitlines():
                key, _, value = line.partition("=")
                if key == "OnCalendar":
                    row["calendar"] = value
                elif key == "User":
                    row["user"] = value
                elif key == "ExecStart":
                    row["command"] = value.split("fleetcare.cli ", 1)[-1]
                elif row["kind"] == "cron" and line.startswith("# fleetcare "):
                    row["calendar"] = line.split(" on ", 1)[-1].rsplit(" (", 1)[0]
                elif row["kind"] == "cron" and line[:1] in "0123456789*" and line:
                    fields = line.split()
                    row["user"] = fields[5] if len(fields) > 5 else ""
                    row["command"] = line.split("fleetcare.cli ", 1)[-1].split(";", 1)[0]
        if row["kind"] == "systemd" and systemd and root == Path("/"):
            timer = _show(f"{PREFIX}{name}.timer", "NextElapseUSecRealtime", "LastTriggerUSec")
            service = _show(f"{PREFIX}{name}.service", "ExecMainStatus", "ExecMainExitTimestamp", "Result")
            row["next"] = timer.get("NextElapseUSecRealtime", "") or "-"
            row["last"] = timer.get("LastTriggerUSec", "") or "never"
            ran = service.get("ExecMainExitTimestamp", "")
            row["exit"] = f"{service.get('ExecMainStatus', '')} ({service.get('Result', '')})" if ran else "-"
        rows.append(row)
    return rows


def _show(unit: str, *props: str) -> dict[str, str]:
    proc = _systemctl("show", unit, *(f"--property={p}" for p in props), check=False)
    out = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        out[key] = "" if value in ("n/a", "0") and key != "ExecMainStatus" else value
    return out


def remove(name: str, root: Path = Path("/"), systemd: bool | None = None) -> list[Path]:
    """Remove what fleetcare wrote for the schedule ``name``; InputError if there is none."""
    check_name(name)
    systemd = systemd_running(root) if systemd is None else systemd
    paths = _owned_names(root).get(name)
    if not paths:
        raise InputError(f"schedule remove: no schedule {name!r} written by fleetcare (see 'fleetcare schedule list')")
    unit = f"{PREFIX}{name}"
    live = systemd and root == Path("/") and any(p.suffix == ".timer" for p in paths)
    if live:
        _systemctl("disable", "--now", f"{unit}.timer", check=False)
        _systemctl("stop", f"{unit}.service", check=False)
    for path in paths:
        path.unlink()
    if live:
        _systemctl("daemon-reload")
        _systemctl("reset-failed", f"{unit}.service", f"{unit}.timer", check=False)
    return paths

"""Every command fleetcare knows, written once.

Each :class:`Command` declares what the rest of the wrapper needs to know about it: its help
text, and for a command that runs a playbook its playbook, the roles whose variables it takes,
its report's title and its own options (the role variable each sets and how its values are
checked). Everything that names a command reads this table:

- ``fleetcare.cli`` builds the subcommands from it and sends every run command to one handler;
- ``fleetcare.jobs`` turns a command and its options into a :class:`~fleetcare.jobs.Job`;
- ``fleetcare.reports.html`` takes the report title from it;
- ``docs/gen_readme.py`` writes the README's command and exit code tables from it.

The meaning of each exit code lives here too (:data:`EXIT_CODES`), for ``--help``, the exit line
after a run, the HTML report and the README. This module imports nothing heavier than the
results model's constants, so ``fleetcare --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fleetcare.results import EXIT_FINDINGS, EXIT_HISTORY, EXIT_HOSTS, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE


@dataclass(frozen=True)
class Option:
    """An option of one run command. It either sets a role variable (``var``: a list, one item
    per use, each value first passed to ``check``, which raises InputError on a bad one; without a
    metavar, a switch that sets the boolean role variable to true: drift's ``--desired``), or is a
    switch that sets a field of the job (``job``: harden's ``--check`` sets ``Job.check``)."""

    flag: str
    help: str
    metavar: str = ""  # empty: a switch that takes no value
    var: str = ""
    check: Callable[[Sequence[str]], object] | None = None
    job: str = ""

    def __post_init__(self) -> None:
        if bool(self.var) == bool(self.job) or (self.check and not self.metavar):
            raise ValueError(f"{self.flag}: an option sets a role variable or a job field; only one with a "
                             "value (a metavar) is checked")

    @property
    def dest(self) -> str:
        """Its name in parsed arguments and in ``jobs.build(**options)``."""
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class Command:
    name: str
    help: str  # one line: the list of commands in --help and the README table
    description: str = ""  # the command's own --help
    playbook: str = ""  # a run command: relative to the collection root
    roles: tuple[str, ...] = ()  # roles whose variables -e and --vars-file take
    title: str = ""  # the title of its reports
    example: str = ""  # a role variable shown in the help of -e
    options: tuple[Option, ...] = ()

    @property
    def runs(self) -> bool:
        """True for a command that runs a playbook against hosts."""
        return bool(self.playbook)


def _control_patterns(patterns: Sequence[str]) -> object:
    # a pattern that matches no control stops the run before any host is contacted
    from fleetcare import catalog

    return catalog.match(patterns)


CONTROLS = Option("--controls", "only controls matching this ID or tag pattern, e.g. 'HARD-SSH-*' (repeatable)",
                  metavar="PATTERN", var="hardening_controls_only", check=_control_patterns)
SKIP = Option("--skip", "leave out controls matching this ID or tag pattern (repeatable)",
              metavar="PATTERN", var="hardening_controls_skip", check=_control_patterns)
def _update_kinds(kinds: Sequence[str]) -> None:
    from fleetcare.errors import InputError

    bad = [k for k in kinds if k not in ("security", "all")]
    if bad:
        raise InputError(f"{bad[0]!r} is not security or all")


def _batch_size(values: Sequence[str]) -> None:
    from fleetcare.errors import InputError

    for value in values:
        if not value.isdigit() or int(value) < 1:
            raise InputError(f"{value!r} is not a number of hosts (1 or more)")


def _worker_specs(specs: Sequence[str]) -> object:
    from fleetcare import workers

    return workers.parse(specs)


# Taken by every run command (fleetcare.cli adds it with the other run options).
WORKERS = Option("--workers", "run the hosts in shards on these workers, merged into one run: "
                 "ssh:[USER@]HOST[:PORT][,...] (set up with 'fleetcare worker setup'), inventory:FILE "
                 "(its hosts are the workers), or cmd:COMMAND (any command carrying ansible-runner's "
                 "worker stream, e.g. a Receptor mesh); repeatable", metavar="SPEC", job="workers",
                 check=_worker_specs)


def _fail_percent(values: Sequence[str]) -> None:
    from fleetcare.errors import InputError

    for value in values:
        if not value.isdigit() or int(value) > 100:
            raise InputError(f"{value!r} is not a percentage of a batch's hosts (0 to 100)")


CHECK = Option("--check", "change nothing; report what would change", job="check")

COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command(
        "inspect", "health inspection of this machine or a fleet",
        "Run the health inspection (one round trip per host: load, CPU, memory, swap, disks, I/O, "
        "network errors, failed units, time sync, certificates, pending reboot, OOM kills, journal "
        "errors) and write JSON, HTML and Markdown reports. Without -i, inspects this machine.",
        playbook="playbooks/inspect.yml", roles=("health",), title="Inspection report",
        example="health_disk_warn_pct=85"),
    Command(
        "audit", "evaluate the hardening controls, changing nothing",
        "Evaluate every enabled hardening control on each host in one module call, read-only, and "
        "report pass/fail with evidence. Without -i, audits this machine.",
        playbook="playbooks/audit.yml", roles=("hardening",), title="Hardening audit report",
        example="hardening_overrides=...", options=(CONTROLS, SKIP)),
    Command(
        "harden", "apply the hardening controls, then audit them",
        "Apply the enabled hardening controls (disruptive ones only when enabled), refusing any sshd "
        "change that would lock out the user this run connects as, then audit. With --check, changes "
        "nothing and reports what would change.",
        playbook="playbooks/harden.yml", roles=("hardening",), title="Hardening report",
        example="hardening_controls_enable_disruptive=[HARD-SSH-010]", options=(CONTROLS, SKIP, CHECK)),
    Command(
        "drift", "whole-host snapshots held against an approved baseline",
        "Snapshot each host in one read-only module call (files under drift_paths with SHA-256, mode, "
        "owner, group, size, link target; packages; services; users and groups; sysctl; listening "
        "sockets; cron jobs and timers; kernel modules; mounts; sudo rights) and report one finding per "
        "item that differs from the host's approved baseline, kept on this machine in history, with a "
        "unified diff for text files (secrets redacted on the host). 'drift baseline' stores the "
        "snapshots as the new baselines ('--as group:NAME -l HOST' declares a group's baseline, which "
        "drift_baseline_from holds categories against); 'drift accept HOST [ITEM ...] --reason TEXT "
        "[--by NAME]' makes drifted items part of the host's own baseline; 'drift log HOST' shows a "
        "host's baseline versions. With --desired, the hardening audit also runs (read-only, with the "
        "run's hardening_* settings) and each control that fails is drift from the desired state "
        "(DRFT-DESIRED-001), in the same report.",
        playbook="playbooks/drift.yml", roles=("drift", "hardening"), title="Drift report",
        example="drift_paths=[/etc,/usr/local/bin]",
        options=(Option("--desired", "also report drift from the desired state: the hardening controls "
                        "that fail on each host (read-only)", var="drift_desired"),)),
    Command(
        "patch", "audit pending updates; install security or all updates in health-gated batches",
        "Audit pending updates in one module call per host (security vs other from the host's own APT "
        "lists, with CVE IDs from debsecan; held packages, list age, pending reboot with its reason, "
        "services to restart, interrupted dpkg, dpkg lock, unattended-upgrades, the last run's record). "
        "With --update security|all, inside the host's maintenance window only: pre hooks, apt that "
        "never prompts (held packages stay), post hooks, a run record on the host, the reboot policy, "
        "then audit again; a host already unhealthy before is skipped; --batch N patches N hosts at a "
        "time and stops the rollout when a host's health gets worse or, with --max-fail PERCENT, when "
        "more than that share of a batch failed. With --check, install nothing. Without -i, patches this machine.",
        playbook="playbooks/patch.yml", roles=("patching",), title="Patching report",
        example="patching_lists_max_age_days=7",
        options=(Option("--update", "install these pending updates: security or all (default: audit only)",
                        metavar="KIND", var="patching_update", check=_update_kinds),
                 Option("--batch", "patch N hosts at a time, health-gated: a host whose health gets worse "
                        "stops the later batches", metavar="N", var="patching_batch", check=_batch_size),
                 Option("--max-fail", "with --batch: when more than PERCENT of a batch's hosts fail, leave the "
                        "later batches untouched", metavar="PERCENT", var="patching_max_fail", check=_fail_percent),
                 CHECK)),
    Command(
        "backup", "restic backups on systemd timers, then audit them",
        "Install restic from the Debian package, one systemd service and timer per backup set, a "
        "forget/prune timer and the job's status record, then audit each host in one module call: age "
        "of the last successful snapshot against the RPO, last run and check results, timers, "
        "repository reachable, stale locks, the last restore drill. Never initialises a repository "
        "unless backup_init=true. 'backup drill' also restores a sample of each set's latest snapshot "
        "into a scratch directory on each host, compares the SHA-256 of every file with the snapshot "
        "and the unchanged live file, and removes the scratch directory.",
        playbook="playbooks/backup.yml", roles=("backup",), title="Backup report",
        example="backup_rpo_hours=26", options=(CHECK,)),
    Command("explain", "print what a finding ID checks, why, how to fix it, references, and its history",
            "Print what a finding ID checks, why and how to fix it, with references; then its history from "
            "the history database: the hosts it failed on, when it was first and last seen, how often it "
            "recurred on each host, and the notes left on it (newest first)."),
    Command("note", "record the cause and the fix of a finding (the knowledge base)",
            "Record a cause and a fix against a finding ID, for every host or the hosts a shell-style "
            "--host pattern matches. 'fleetcare explain ID' and every report show it beside the finding."),
    Command("notes", "list the notes of the knowledge base, newest first",
            "List the notes recorded with 'fleetcare note', newest first: all, or those on one finding ID."),
    Command("report", "rebuild a report of a past run from history",
            "Rebuild a report from history. RUN is a run id, a unique prefix of one, or 'latest'."),
    Command("history", "list past runs, newest first",
            "List past runs, newest first. A run left 'running' by a wrapper that was killed on this "
            "machine is marked 'abandoned'."),
    Command("import", "record a run in history: a run directory, or results of a run made outside fleetcare",
            "Record a run in history. PATH is a fleetcare run directory (its report.json, checked against "
            "the report schema, e.g. after exit 5; importing it again changes nothing), or the results of "
            "a run made without the wrapper, read into history with reports written: an ansible-runner "
            "artifact directory (an AWX execution environment's run too), an AWX job's events as its API "
            "gives them (/api/v2/jobs/N/job_events/: every page), or the output of ansible-playbook with "
            "ANSIBLE_STDOUT_CALLBACK=ansible.posix.json (see the README)."),
    Command("waive", "waive a finding for a while, with a reason, an owner and an expiry",
            "Waive a finding: ID is a finding ID (HARD-SSH-001) or a pattern of IDs (HARD-SSH-*), on the "
            "hosts matching --host (default all). Until it expires (--expires DATE: 00:00 UTC that day, or "
            "an ISO 8601 time; at most the policy's waivers.max_days away) a failing finding it covers has "
            "status waived and does not count for --fail-on. Kept in history; see docs/waivers.md."),
    Command("waivers", "list waivers: expiring soon, active, expired, revoked",
            "List the waivers in history (and those of --waivers FILE), expiring soon first, then active, "
            "expired and revoked."),
    Command("unwaive", "revoke a waiver (kept in history, marked revoked)",
            "Revoke waivers: by waiver id (a number, from 'fleetcare waivers'), or every active waiver of a "
            "finding ID or pattern (only those for --host PATTERN when given). A revoked waiver is kept, "
            "marked revoked, and waives nothing from then on."),
    Command("schedule", "run a command on a systemd timer (or cron where no systemd runs): add, list, remove",
            "'schedule add COMMAND [its options] --on-calendar SPEC' installs a systemd service and timer "
            "(fleetcare-NAME.service/.timer: Persistent=true, --random-delay, run as --user, output in the "
            "journal) that runs that fleetcare command with those options, checked first as the command "
            "itself checks them and the spec with systemd-analyze calendar. Where systemd is not running, a "
            "cron entry in /etc/cron.d/fleetcare-NAME instead. 'schedule list' shows each schedule with its "
            "next and last run and last exit code; 'schedule remove NAME' deletes what fleetcare wrote, and "
            "nothing it did not."),
    Command("worker", "set up worker nodes (ansible-runner and the collection), installed offline",
            "'worker setup HOST' installs what a worker node needs for --workers (ansible-runner, "
            "ansible-core and the collection, with fleetcare itself) into a virtual environment on HOST "
            "([USER@]HOST[:PORT], ssh:HOST[,HOST...] or inventory:FILE), from a wheelhouse this machine "
            "builds (pip wheel, into ~/.local/share/fleetcare/wheelhouse or --wheelhouse DIR) and copies "
            "over SSH: the worker needs no package index. 'worker wheelhouse' only builds the wheelhouse."),
    Command("lab", "a podman fleet on loopback SSH for demos, tests and benchmarks",
            "Debian 11/12/13 systemd containers reachable by SSH on 127.0.0.1, built locally (no registry)."),
)}


def get(name: str) -> Command:
    return COMMANDS[name]


def run_commands() -> list[Command]:
    return [c for c in COMMANDS.values() if c.runs]


def by_playbook(path: str) -> Command | None:
    """The run command whose playbook is ``path`` (a file path, or a collection name such as
    ``fleetcare.ops.inspect``), judged by the playbook's name."""
    stem = path.rsplit("/", 1)[-1].removesuffix(".yml").removesuffix(".yaml").rsplit(".", 1)[-1]
    return next((c for c in run_commands() if c.playbook.rsplit("/", 1)[-1] == f"{stem}.yml"), None)


def title(command: str) -> str:
    """The title of a run's reports."""
    known = COMMANDS.get(command)
    return known.title if known and known.title else f"{command} report".capitalize()


@dataclass(frozen=True)
class ExitCode:
    code: int
    short: str  # the exit line after a run and the HTML report; {fail_on} is the run's severity
    long: str  # --help and the README


EXIT_CODES: tuple[ExitCode, ...] = (
    ExitCode(EXIT_OK, "clean", "clean: no failing finding at or above --fail-on (with --fail-on-overdue: "
             "no finding past its resolve-by time)"),
    ExitCode(EXIT_FINDINGS, "findings at or above {fail_on}",
             "findings at or above --fail-on (default major; critical, major, minor, info); waived findings "
             "do not count; with --fail-on-overdue, only findings past their service level's resolve-by time"),
    ExitCode(EXIT_USAGE, "usage or input error",
             "usage or input error: one line naming the file or option and the key, never a traceback"),
    ExitCode(EXIT_HOSTS, "hosts unreachable or failed",
             "hosts unreachable or failed (the other hosts' findings are kept)"),
    ExitCode(EXIT_INTERRUPTED, "interrupted; partial results kept",
             "interrupted (Ctrl-C or SIGTERM): the run stops cleanly, keeps what it collected, marked interrupted"),
    ExitCode(EXIT_HISTORY, "reports written, but not recorded in history",
             "the run finished and its reports are written, but history could not record it "
             "(record it later with `fleetcare import RUN_DIR`)"),
)


def exit_meaning(code: int | None, fail_on: str = "--fail-on", tr=None, overdue: bool = False) -> str:
    """What an exit code means, in the words of the exit line (translated by ``tr``, a
    :class:`fleetcare.i18n.Translator`, when given; ``overdue``: a --fail-on-overdue run)."""
    if tr is None:
        from fleetcare import i18n

        tr = i18n.translator("en")
    if overdue and code == EXIT_FINDINGS:
        return tr("overdue findings (--fail-on-overdue)")
    if overdue and code == EXIT_OK:
        return tr("clean: no finding overdue")
    known = next((e for e in EXIT_CODES if e.code == code), None)
    return tr(known.short, fail_on=tr.label(fail_on)) if known else tr("not finished")


def exit_help() -> str:
    """The exit code table as --help prints it."""
    return "exit codes:\n" + "".join(f"  {e.code}  {e.long}\n" for e in EXIT_CODES)

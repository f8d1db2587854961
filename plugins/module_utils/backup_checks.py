# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

"""The checks of the backup role, as data: one record per finding ID (the shape of
``health_checks``), which ``backup_audit`` takes its texts from and ``fleetcare explain BKUP-...``
prints. ``options`` are the module options (role variables ``backup_<option>``) that tune a check.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.fleetcare.ops.plugins.module_utils.health_checks import _check

RESTIC_EXIT_CODES = "https://restic.readthedocs.io/en/stable/075_scripting.html#exit-codes"

CHECKS = (
    _check("BKUP-AGE-001", "Age of the last successful backup", "major", ("rpo_hours", "sets"),
           """A set whose last successful snapshot is older than the recovery point objective loses
           everything written since, should the host be lost now. Only a run that exited 0 moves "last
           success": an incomplete snapshot (restic exit 3) or a failed one never does. The oldest set
           names the finding; a set that never succeeded fails.""",
           """Read the set's status record and journal (journalctl -u fleetcare-backup-SET.service), fix
           the cause and run the service (systemctl start fleetcare-backup-SET.service).""",
           (RESTIC_EXIT_CODES,)),
    _check("BKUP-RUN-001", "Result of the last backup run", "major", ("sets",),
           """The last run of each set, from the status record its job wrote: exit code and its meaning
           in restic's documented codes. A failing pre hook fails the run before restic starts; exit 3
           (some source files could not be read, the snapshot is incomplete) fails as minor; any other
           non-zero code fails as major. The unreadable paths of an incomplete snapshot are named. A
           failing post hook (cleanup after the backup) fails as minor: the snapshot stands.""",
           """Read the error in the set's journal, fix it (hook, unreadable paths, repository, password)
           and run the set again.""",
           (RESTIC_EXIT_CODES,)),
    _check("BKUP-TIMER-001", "Backup timers active", "major", ("sets",),
           """Each set's timer and the forget/prune timer must be enabled and active, or backups silently
           stop. The next run of each timer is reported.""",
           """Enable and start the timers (systemctl enable --now fleetcare-backup-SET.timer) or converge
           the backup role again.""",
           ()),
    _check("BKUP-UNIT-001", "Last systemd result of the backup services", "major", ("sets",),
           """systemd's own result of each backup and forget service's last run (Result, exit status),
           independent of the status record: a job killed before it could write its record shows here.""",
           """Read the journal of the failed service (journalctl -u UNIT) and fix its cause.""",
           ()),
    _check("BKUP-REPO-001", "Backup repository reachable", "critical", ("repository",),
           """The repository is opened read-only (restic cat config, no lock) with the role's password
           file: a missing repository, a wrong password or an unreadable path stops every backup. The
           role never initialises a repository unless backup_init is set.""",
           """Restore the repository or its path, fix the password file, or initialise a new repository
           on purpose with backup_init=true.""",
           (RESTIC_EXIT_CODES,)),
    _check("BKUP-PRUNE-001", "Result of the last forget/prune run", "major", ("keep_last", "keep_daily",
                                                                           "keep_weekly", "keep_monthly"),
           """The retention job (restic forget --prune with the keep-* policy) must succeed, or the
           repository grows without bound. Not applicable until it has run once.""",
           """Read its journal (journalctl -u fleetcare-backup-forget.service) and fix the cause.""",
           (RESTIC_EXIT_CODES,)),
    _check("BKUP-CHECK-001", "Result of the last repository check", "major", ("check_subset_total",),
           """restic check after each forget/prune verifies the repository's structure and reads one
           rotating subset of the data (--read-data-subset=n/t, n moving on after each passing check,
           so every t checks read every pack; after a failing check the same subset is read again).
           Not applicable until a check has run.""",
           """Run restic check by hand and repair or replace the repository if it reports errors.""",
           (RESTIC_EXIT_CODES,)),
)

CHECKS = CHECKS + (
    _check("BKUP-LOCK-001", "Stale and wedging repository locks", "major", ("stale_lock_minutes",),
           """Each job first lists the repository's locks (restic list locks, cat lock). A lock of this
           host whose process is gone, or of another host not refreshed for 30 minutes, older than
           backup_stale_lock_minutes, is removed with restic unlock (which never removes a live
           lock). A removal in the last seven days fails as minor, naming the lock; a job that failed
           because the repository was locked (a wedged forget/prune) or a stale lock restic kept fails
           as major.""",
           """Find the process or host named by the lock; if it is gone, the next job removes the lock;
           a lock restic keeps needs restic unlock --remove-all while no restic runs. A repository
           that cannot be opened is BKUP-REPO-001's finding.""",
           (RESTIC_EXIT_CODES,)),
    _check("BKUP-DRILL-001", "Restore drill", "major", ("drill_max_age_days", "drill_files"),
           """fleetcare backup drill (or the drill timer) restores a sample of each set's latest
           snapshot (its drill_paths, or backup_drill_files random files) into a scratch directory,
           compares the SHA-256 of every restored file with the snapshot's content (restic dump) and
           with the live file where its size and mtime are those of the snapshot, and removes the
           scratch directory. A mismatch, an unreadable file or snapshot fails as major with the files
           named; a drill older than backup_drill_max_age_days fails as minor. Not applicable before
           the first drill.""",
           """Run restic check --read-data on the repository, find the damaged packs or the changed
           files named in the evidence, and back up again; run fleetcare backup drill.""",
           ()),
)

BY_ID = dict((record["id"], record) for record in CHECKS)

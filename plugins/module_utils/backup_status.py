# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

"""The status records the backup role's job writes on the host, and the one reader of them.

The wrapper the role installs (``roles/backup/files/fleetcare-backup``) writes one JSON record
per job into :data:`STATUS_DIR` after every run, atomically (a temporary file renamed over the
old one): ``<set>.json`` for a backup set, ``_forget.json`` for forget/prune and ``_check.json``
for the repository check, ``_drill.json`` for the restore drill and ``_locks.json`` for the
stale-lock sweep each job starts with. A record holds ``set``, ``action``, ``start``/``end`` (Unix seconds),
``duration``, ``exit_code`` and ``meaning``, ``ok``, ``snapshot_id`` and the counts restic
reported, and ``last_success`` (the end time of the last run that exited 0, carried over
unchanged by a run that did not).

Both ``backup_audit`` and ``health_inspect`` (HLTH-BKUP-001) read them through this module.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

STATUS_DIR = "/var/lib/fleetcare/backup"
JOB_RECORDS = ("_forget", "_check", "_drill", "_locks")  # not backup sets


def status_dir(root="/"):
    return os.path.join(root, STATUS_DIR.lstrip("/"))


def read_record(name, root="/"):
    """One job's record as a dict, or None when the job never wrote one. A record that cannot be
    parsed raises ValueError (a check turns that into status error)."""
    path = os.path.join(status_dir(root), "%s.json" % name)
    try:
        with open(path, "r") as handle:
            text = handle.read()
    except (IOError, OSError) as exc:
        if getattr(exc, "errno", None) == 2:
            return None
        raise
    try:
        record = json.loads(text)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        raise ValueError("%s is not a JSON status record" % path)
    return record


def set_names(root="/"):
    """The backup sets that wrote a record on this host, sorted."""
    try:
        names = os.listdir(status_dir(root))
    except (IOError, OSError):
        return []
    return sorted(n[:-5] for n in names
                  if n.endswith(".json") and not n.startswith(".") and n[:-5] not in JOB_RECORDS)


def success_age_hours(record, now):
    """Hours since the record's last success, or None when the set never succeeded."""
    last = (record or {}).get("last_success")
    if not isinstance(last, (int, float)):
        return None
    return max(0.0, (now - last) / 3600.0)

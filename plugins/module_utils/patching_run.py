# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

"""The record every patch run leaves on the host, its one writer and its one reader.

``patching_apply`` writes :data:`LAST_RUN` atomically (a temporary file in the same directory,
flushed, renamed over the old one) and appends the same record as one line to :data:`HISTORY`
(the newest :data:`HISTORY_KEEP` lines kept). A record holds ``version``, ``start``/``end``
(Unix seconds, the host's clock), ``kind`` (security or all), ``result`` (one of
:data:`RESULTS`), ``reason``, ``packages`` (``package``, ``from``, ``to``, ``planned``), the
``hooks`` that ran (``phase``, ``command``, ``rc``, ``output``) and ``apt`` (``rc``, ``output``).
``patching_audit`` (PTCH-RUN-001) reads it back.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import tempfile

RECORD_DIR = "/var/lib/fleetcare/patching"
LAST_RUN = "last-run.json"
HISTORY = "runs.jsonl"
HISTORY_KEEP = 200
RECORD_VERSION = 1
# result -> whether the run did what it was asked
RESULTS = {
    "success": True,            # the planned updates are installed
    "nothing_to_do": True,      # nothing was pending for this kind
    "refused": False,           # outside the maintenance window or inside a blackout
    "stopped": False,           # a rolling run stopped before this host: a health gate failed
    "unhealthy": False,         # the health gate before failed: the host was skipped
    "blocked": False,           # dpkg interrupted or its lock held: apt never ran
    "pre_hook_failed": False,   # a pre-patch hook exited non-zero: apt never ran
    "failed": False,            # apt failed
    "post_hook_failed": False,  # installed, but a post-patch hook exited non-zero
}


def record_dir(root="/", directory=RECORD_DIR):
    return os.path.join(root, directory.lstrip("/"))


def write_record(record, root="/", directory=RECORD_DIR):
    """Write ``record`` as last-run.json (atomically) and append it to runs.jsonl. Returns the path."""
    path = record_dir(root, directory)
    if not os.path.isdir(path):
        os.makedirs(path, 0o755)
    text = json.dumps(record, sort_keys=True)
    fd, tmp = tempfile.mkstemp(prefix=".last-run.", dir=path)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.rename(tmp, os.path.join(path, LAST_RUN))
    except Exception:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    history = os.path.join(path, HISTORY)
    lines = []
    if os.path.exists(history):
        with open(history, "r") as handle:
            lines = [line for line in handle.read().splitlines() if line.strip()]
    lines = (lines + [text])[-HISTORY_KEEP:]
    fd, tmp = tempfile.mkstemp(prefix=".runs.", dir=path)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o644)
    os.rename(tmp, history)
    return os.path.join(path, LAST_RUN)


def read_record(root="/", directory=RECORD_DIR):
    """The last run's record, or None when no run wrote one; ValueError when it is not a record."""
    path = os.path.join(record_dir(root, directory), LAST_RUN)
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
    if not isinstance(record, dict) or "result" not in record:
        raise ValueError("%s is not a patch run record" % path)
    return record

# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

"""Maintenance windows and blackout dates of the patching role, judged in the host's own time.

A window is ``{days: [mon, ...], start: "HH:MM", end: "HH:MM"}`` (days default to every day;
an end at or before the start runs past midnight, and then the day named is the day it starts).
A blackout is a date ``YYYY-MM-DD`` or an inclusive range ``YYYY-MM-DD..YYYY-MM-DD``. No windows
means always open; a blackout beats every window. Pure Python: the wrapper's validation and the
module on the host use the same functions.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _minutes(text):
    match = _TIME.match(str(text))
    return int(match.group(1)) * 60 + int(match.group(2)) if match else None


def _date(text):
    try:
        return datetime.datetime.strptime(str(text), "%Y-%m-%d").date()
    except ValueError:
        return None


def window_problems(windows, blackouts):
    """Messages about unusable windows and blackouts; [] when all are usable."""
    problems = []
    if not isinstance(windows, list):
        return ["must be a list of {days, start, end}"]
    for n, window in enumerate(windows):
        if not isinstance(window, dict):
            problems.append("item %d: must be a mapping with start and end" % n)
            continue
        extra = set(window) - {"days", "start", "end"}
        if extra:
            problems.append("item %d: unknown key %s" % (n, sorted(extra)[0]))
        for key in ("start", "end"):
            if _minutes(window.get(key)) is None:
                problems.append("item %d: %s must be HH:MM (00:00-23:59), got %r" % (n, key, window.get(key)))
        days = window.get("days", list(DAYS))
        if not isinstance(days, list) or not days or any(str(d).lower()[:3] not in DAYS for d in days):
            problems.append("item %d: days must be a list of %s, got %r" % (n, ", ".join(DAYS), days))
    if not isinstance(blackouts, list):
        return problems + ["blackouts must be a list of YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD"]
    for n, item in enumerate(blackouts):
        first, _, last = str(item).partition("..")
        a, b = _date(first), _date(last or first)
        if a is None or b is None or b < a:
            problems.append("blackout %d: must be YYYY-MM-DD or FIRST..LAST, got %r" % (n, item))
    return problems


def describe(window):
    days = ",".join(str(d).lower()[:3] for d in window.get("days", DAYS))
    return "%s %s-%s" % (days, window["start"], window["end"])


def state(windows, blackouts, local):
    """(open, reason) at ``local`` (a naive datetime in the host's time)."""
    today = local.date()
    for item in blackouts:
        first, _, last = str(item).partition("..")
        if _date(first) <= today <= _date(last or first):
            return False, "inside the blackout %s" % item
    if not windows:
        return True, "no maintenance window set: always open"
    now = local.hour * 60 + local.minute
    weekday = DAYS[local.weekday()]
    yesterday = DAYS[(local.weekday() - 1) % 7]
    for window in windows:
        days = [str(d).lower()[:3] for d in window.get("days", DAYS)]
        start, end = _minutes(window["start"]), _minutes(window["end"])
        if start < end:
            inside = weekday in days and start <= now < end
        else:  # past midnight: the evening of a listed day, or the morning after it
            inside = (weekday in days and now >= start) or (yesterday in days and now < end)
        if inside:
            return True, "inside the window %s" % describe(window)
    return False, "outside the maintenance windows (%s)" % "; ".join(describe(w) for w in windows)

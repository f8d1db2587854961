# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

"""What a role's options must satisfy beyond their types, written once.

The module runs these checks before it measures anything, and the fleetcare
wrapper runs the same functions on the merged role variables (defaults, the
inventory's vars, ``-e`` and ``--vars-file``) before Ansible starts, so a bad
threshold is refused once, with the key, instead of failing on every host.

Pure Python without imports from Ansible: it runs on the managed hosts'
Python (3.9+) and is imported by the wrapper as a plain module.

A check function takes the options by their module names (the role variable
is ``<role>_<option>``) and returns a list of problems, each a pair
``(options, message)``: the options the problem involves, the first one
the one it is about, and a sentence that names them through ``name``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math

from ansible_collections.fleetcare.ops.plugins.module_utils.drift_checks import CATEGORY_IDS
from ansible_collections.fleetcare.ops.plugins.module_utils.findings import SEVERITIES
from ansible_collections.fleetcare.ops.plugins.module_utils.health_services import (
    BOUNDS as SERVICE_BOUNDS, PAIRS as SERVICE_PAIRS, services_problems)

# (warn, critical, upper bound): warn and critical thresholds of one check; None = no bound / no pair
HEALTH_PAIRS = (
    ("load_warn_per_core", "load_critical_per_core", None),
    ("cpu_steal_warn_pct", "cpu_steal_critical_pct", 100),
    ("cpu_iowait_warn_pct", "cpu_iowait_critical_pct", 100),
    ("mem_warn_pct", "mem_critical_pct", 100),
    ("swap_warn_pct", "swap_critical_pct", 100),
    ("disk_warn_pct", "disk_critical_pct", 100),
    ("inode_warn_pct", "inode_critical_pct", 100),
    ("disk_io_warn_pct", "disk_io_critical_pct", 100),
    ("net_error_warn_pct", None, 100),
    ("net_error_critical_pct", None, 100),
    ("log_warn_count", "log_critical_count", None),
    ("fd_warn_pct", "fd_critical_pct", 100),
    ("conntrack_warn_pct", "conntrack_critical_pct", 100),
    ("ssh_failed_warn_per_hour", "ssh_failed_critical_per_hour", None),
) + SERVICE_PAIRS
# (option, lowest, highest) for the options outside a pair
HEALTH_BOUNDS = (
    ("sample_seconds", 0, 5),
    ("log_window_minutes", 1, None),
    ("cert_warn_days", 0, None),
    ("cert_critical_days", 0, None),
    ("oom_warn_count", 0, None),
    ("backup_max_age_hours", 0, None),
    ("capacity_days", 0, None),
    ("cert_probe_timeout", 0.05, 10),
    ("cert_probe_max_ports", 0, 65535),
    ("edac_ce_warn_count", 0, None),
    ("kernel_log_window_hours", 0.1, None),
    ("zombie_warn_count", 1, None),
    ("ssh_window_minutes", 1, None),
) + SERVICE_BOUNDS


def module_name(role):
    """How a module names an option in its messages: ``disk_warn_pct (health_disk_warn_pct)``."""
    return lambda option: "%s (%s_%s)" % (option, role, option)


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _bounds(params, option, low, high, name):
    value = params[option]
    if not _number(value):
        return []
    if isinstance(value, float) and not math.isfinite(value):
        return [((option,), "%s must be a finite number, got %s" % (name(option), value))]
    if value < low or (high is not None and value > high):
        span = "between %g and %g" % (low, high) if high is not None else "at least %g" % low
        return [((option,), "%s must be %s, got %g" % (name(option), span, value))]
    return []


def _unknown_checks(skip, name):
    from ansible_collections.fleetcare.ops.plugins.module_utils.health_checks import BY_ID

    unknown = [c for c in skip if c not in BY_ID]
    if not unknown:
        return []
    return [(("checks_skip",), "%s: unknown check %s (one of %s)"
             % (name("checks_skip"), ", ".join(repr(c) for c in unknown), ", ".join(sorted(BY_ID))))]


def health_problems(params, name=None):
    """Problems of the health_inspect options; [] when they are all usable."""
    name = name or module_name("health")
    problems = []
    for warn, crit, top in HEALTH_PAIRS:
        found = []
        for option in (warn, crit):
            if option is not None:
                found.extend(_bounds(params, option, 0, top, name))
        problems.extend(found)
        if crit is not None and not found and params[crit] < params[warn]:
            problems.append(((crit, warn), "%s must not be below %s (%g < %g)"
                             % (name(crit), name(warn), params[crit], params[warn])))
    for option, low, high in HEALTH_BOUNDS:
        problems.extend(_bounds(params, option, low, high, name))
    problems.extend(_unknown_checks(params.get("checks_skip") or (), name))
    days = ("cert_critical_days", "cert_warn_days")
    if not any(o in options for options, _ in problems for o in days) \
            and params["cert_critical_days"] > params["cert_warn_days"]:
        problems.append((days, "%s must not exceed %s (%g > %g)"
                         % (name(days[0]), name(days[1]), params[days[0]], params[days[1]])))
    problems.extend((("services",), "%s: %s" % (name("services"), message))
                    for message in services_problems(params.get("services")))
    return problems


# the value of drift_baseline_from that means "the host's own last approved snapshot"
OWN_BASELINE = "own"


def _categories(mapping, option, name, what):
    """Problems of a {category: value} option: unknown categories; ``what(value)`` -> message or None."""
    problems = []
    if not isinstance(mapping, dict):
        return problems  # the argument spec's type check names it
    for category in sorted(mapping, key=str):
        if category not in CATEGORY_IDS:
            problems.append(((option,), "%s: unknown category %r (one of %s)"
                             % (name(option), category, ", ".join(sorted(CATEGORY_IDS)))))
            continue
        bad = what(mapping[category])
        if bad:
            problems.append(((option,), "%s: %s: %s" % (name(option), category, bad)))
    return problems


def drift_problems(params, name=None):
    """Problems of the drift_snapshot options beside their types: ``severity`` maps categories to
    severities, ``baseline_from`` categories to a golden host, a group's declared baseline
    (``group:NAME``) or ``own``."""
    name = name or module_name("drift")

    def severity(value):
        return None if value in SEVERITIES else "%r is not a severity (%s)" % (value, "|".join(SEVERITIES))

    def source(value):
        if not isinstance(value, str) or not value.strip() or value != value.strip() or value in ("group:",):
            return "%r is not a host name, group:NAME or %s" % (value, OWN_BASELINE)
        return None

    problems = []
    for category in params.get("categories") or ():
        if category not in CATEGORY_IDS:
            problems.append((("categories",), "%s: unknown category %r (one of %s)"
                             % (name("categories"), category, ", ".join(sorted(CATEGORY_IDS)))))
    if params.get("categories") == []:
        problems.append((("categories",), "%s: names no category; nothing would be recorded" % name("categories")))
    problems += _categories(params.get("severity") or {}, "severity", name, severity)
    problems += _categories(params.get("baseline_from") or {}, "baseline_from", name, source)
    return problems


def _gate_problems(options, name):
    """Problems of the health gate's options (patching_gate_options): each must be an option of
    the health checks, and together with their defaults pass the health role's own checks."""
    import difflib

    from ansible_collections.fleetcare.ops.plugins.module_utils.health_inspection import ARGUMENT_SPEC

    if not isinstance(options, dict):
        return []  # the argument spec's type check says so
    for key in options:
        if key not in ARGUMENT_SPEC or key == "sample_seconds":
            near = difflib.get_close_matches(str(key), [k for k in ARGUMENT_SPEC if k != "sample_seconds"], n=1)
            return [(("gate_options",), "%s: %r is not an option of the health checks%s"
                     % (name("gate_options"), key, " (did you mean %s?)" % near[0] if near else ""))]
    params = dict((k, spec.get("default")) for k, spec in ARGUMENT_SPEC.items())
    params.update(options)
    return [(("gate_options",), "%s: %s" % (name("gate_options"), message)) for _, message in
            health_problems(params, name=lambda option: option)]


def patching_problems(params, name=None):
    """Problems of the patching options: the maintenance windows, blackout dates, the share of a
    batch that may fail (a percentage) and the health gate's options."""
    from ansible_collections.fleetcare.ops.plugins.module_utils.patching_window import window_problems

    name = name or module_name("patching")
    windows, blackouts = params.get("windows", []), params.get("blackouts", [])
    problems = []
    for message in window_problems(windows, blackouts):
        option = "blackouts" if message.startswith("blackout") else "windows"
        problems.append(((option,), "%s: %s" % (name(option), message)))
    for value in params.get("max_fail") or []:
        if not str(value).isdigit() or int(value) > 100:
            problems.append((("max_fail",), "%s: %r is not a percentage of a batch's hosts (0 to 100)"
                             % (name("max_fail"), value)))
    problems.extend(_gate_problems(params.get("gate_options") or {}, name))
    return problems


# role -> its check; a role without an entry has only the type checks of its argument spec
CHECKS = {"health": health_problems, "drift": drift_problems, "patching": patching_problems}

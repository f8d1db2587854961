# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache License 2.0

"""Controller-side code of the hardening catalog, shared by its two readers.

- the filter ``fleetcare.ops.select_controls`` (enforcement: the selection goes
  on into Jinja loops, one task file per kind);
- the action plugin ``fleetcare.ops.hardening_audit`` (audit: the selection goes
  straight into ONE module call, without passing through Jinja).

Both apply the role's switches with :func:`select_controls`, so a control is
enabled or switched off for the same reason whichever engine asks. Errors are
:class:`SelectionError`; each plugin turns them into its own Ansible error.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
from fnmatch import fnmatchcase

from ansible.module_utils.common.text.converters import to_text

CATALOG_KEY = "__hardening_catalog"

# What the module fleetcare.ops.hardening_audit reads of a record (audit_one() for an enabled
# control, audit() for a switched-off one). Everything else (rationale, tags, disruptive) is
# prose or selection input the module never looks at, so it does not travel to the host.
AUDIT_KEYS = ("id", "title", "severity", "kind", "params", "applies_in_container", "remediation", "references")
SKIPPED_KEYS = ("id", "title", "severity", "remediation", "references")

# path -> ((mtime_ns, size), records): a worker that audits several hosts, or a
# second audit in the same process, reads and parses the catalog once.
_CACHE = {}


class SelectionError(ValueError):
    """A catalog or a switch that cannot be applied; the message says which."""


def _names(record):
    return [to_text(record["id"])] + [to_text(tag) for tag in record.get("tags") or []]


def _matches(record, patterns):
    return any(fnmatchcase(name, pattern) for pattern in patterns for name in _names(record))


def _strings(name, value):
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise SelectionError("%s must be a list of IDs or patterns" % name)
    return [to_text(v) for v in value]


def select_controls(catalog, skip=None, only=None, enable_disruptive=None, overrides=None):
    """Return ``{"enabled": [...], "skipped": [...]}`` for the switches given.

    Enabled records keep the catalog's order and get the overrides for their ID merged
    (shallowly) over their ``params``; switched-off records get a ``reason`` naming the switch.
    The catalog's records are never modified. A pattern or override that matches no control
    raises SelectionError, so a mistyped ID stops the run before anything changes.
    """
    if not isinstance(catalog, (list, tuple)):
        raise SelectionError("the catalog must be a list of control records")
    skip = _strings("skip", skip)
    only = _strings("only", only)
    enable_disruptive = _strings("enable_disruptive", enable_disruptive)
    overrides = overrides or {}
    if not isinstance(overrides, dict):
        raise SelectionError("overrides must be a mapping of control ID to params")

    ids = []
    for record in catalog:
        if not isinstance(record, dict) or not record.get("id"):
            raise SelectionError("every catalog record needs an id")
        ids.append(to_text(record["id"]))

    unknown = []
    for name, patterns in (("hardening_controls_skip", skip), ("hardening_controls_only", only),
                           ("hardening_controls_enable_disruptive", enable_disruptive)):
        unknown.extend("%s: %s" % (name, p) for p in patterns if not any(_matches(r, [p]) for r in catalog))
    unknown.extend("hardening_overrides: %s" % key for key in overrides if to_text(key) not in ids)
    for key, value in overrides.items():
        if not isinstance(value, dict):
            raise SelectionError("hardening_overrides[%s] must be a mapping of params" % key)
    if unknown:
        raise SelectionError("no control of the catalog matches %s" % "; ".join(unknown))

    enabled, skipped = [], []
    for record in catalog:
        control_id = to_text(record["id"])
        reason = None
        if _matches(record, skip):
            reason = "switched off (hardening_controls_skip)"
        elif only and not _matches(record, only):
            reason = "switched off (not in hardening_controls_only)"
        elif record.get("disruptive") and not _matches(record, enable_disruptive):
            reason = "switched off (disruptive; enable with hardening_controls_enable_disruptive)"
        if reason:
            entry = dict(record)
            entry["reason"] = reason
            skipped.append(entry)
            continue
        entry = dict(record)
        params = dict(record.get("params") or {})
        params.update(overrides.get(control_id) or {})
        entry["params"] = params
        enabled.append(entry)
    return {"enabled": enabled, "skipped": skipped}


def trim(record, keys):
    """The record with only ``keys`` (those it has)."""
    return dict((key, record[key]) for key in keys if key in record)


def audit_selection(catalog, skip=None, only=None, enable_disruptive=None, overrides=None):
    """The module arguments ``controls`` and ``skipped`` of one audit: the selection of
    :func:`select_controls`, each record trimmed to what the audit module reads."""
    selection = select_controls(catalog, skip=skip, only=only, enable_disruptive=enable_disruptive,
                                overrides=overrides)
    return {"controls": [trim(r, AUDIT_KEYS) for r in selection["enabled"]],
            "skipped": [trim(r, SKIPPED_KEYS) for r in selection["skipped"]]}


def _yaml_loader():
    import yaml

    # libyaml's loader parses the 150 kB catalog about eight times faster than the pure Python one.
    return getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader


def load_catalog(path):
    """The records of a catalog file (the list under ``__hardening_catalog``), parsed once per
    process and file version. Callers must not modify what they get (select_controls does not)."""
    import yaml

    try:
        st = os.stat(path)
    except OSError as exc:
        raise SelectionError("cannot read the catalog %s: %s" % (path, exc.strerror or exc)) from None
    version = (st.st_mtime_ns, st.st_size)
    cached = _CACHE.get(path)
    if cached and cached[0] == version:
        return cached[1]
    try:
        with open(path, "rb") as handle:
            doc = yaml.load(handle, Loader=_yaml_loader())
    except (OSError, yaml.YAMLError) as exc:
        raise SelectionError("cannot load the catalog %s: %s" % (path, exc)) from None
    records = doc.get(CATALOG_KEY) if isinstance(doc, dict) else None
    if not isinstance(records, list):
        raise SelectionError("%s has no list %s" % (path, CATALOG_KEY))
    _CACHE[path] = (version, records)
    return records

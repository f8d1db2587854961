# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache License 2.0

"""Controller-side code of the hardening catalog: the one loader, the one matcher, the selection.

Readers:

- the filter ``fleetcare.ops.select_controls`` (enforcement: the selection goes
  on into Jinja loops, one task file per kind);
- the action plugin ``fleetcare.ops.hardening_audit`` (audit: the selection goes
  straight into ONE module call, without passing through Jinja);
- the wrapper (``fleetcare/catalog.py``: explain, ``--controls``/``--skip``), the docs
  generator and the tests, through ``ansible_collections.fleetcare.ops.plugins.plugin_utils``.

:func:`load_catalog` reads a catalog file and validates every record against
``catalog.schema.json`` beside this file (one branch per kind). :func:`matches` is the one
meaning of a pattern: a shell glob matched, ignoring case, against a control's ID, its tags
and its kind. Both engines apply the role's switches with :func:`select_controls`, so a
control is enabled or switched off for the same reason whichever engine asks. Errors are
:class:`SelectionError`; each reader turns them into its own error.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
from fnmatch import fnmatchcase

from ansible.module_utils.common.text.converters import to_text

CATALOG_KEY = "__hardening_catalog"
SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "catalog.schema.json")
# ansible-playbook --tags values that select every task rather than name controls.
ALL_TAGS = ("all", "tagged")

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


def names(record):
    """What a pattern may name of a control: its ID, its tags and its kind."""
    return ([to_text(record["id"])] + [to_text(tag) for tag in record.get("tags") or []]
            + ([to_text(record["kind"])] if record.get("kind") else []))


def matches(record, patterns):
    """Whether any shell-style pattern (``HARD-SSH-*``, ``pam``) names the control, ignoring case."""
    wanted = [to_text(p).lower() for p in patterns]
    return any(fnmatchcase(name.lower(), pattern) for pattern in wanted for name in names(record))


def _strings(name, value):
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise SelectionError("%s must be a list of IDs or patterns" % name)
    return [to_text(v) for v in value]


def run_tags(tags):
    """The --tags of an ansible-playbook run (``ansible_run_tags``) that name controls; [] for all."""
    tags = _strings("tags", tags)
    return [] if not tags or any(t in ALL_TAGS for t in tags) else tags


def select_controls(catalog, skip=None, only=None, enable_disruptive=None, overrides=None, tags=None,
                    skip_tags=None):
    """Return ``{"enabled": [...], "skipped": [...]}`` for the switches given.

    Enabled records keep the catalog's order and get the overrides for their ID merged
    (shallowly) over their ``params``; switched-off records get a ``reason`` naming the switch.
    The catalog's records are never modified. A pattern or override that matches no control
    raises SelectionError, so a mistyped ID stops the run before anything changes.

    ``tags`` and ``skip_tags`` are the run's ``--tags`` and ``--skip-tags`` (``ansible_run_tags``,
    ``ansible_skip_tags``): a control runs only when a tag names it and none of the skipped ones
    does, as docs/controls.md says tags mean. They may name other roles' tags too, so a tag that
    names no control is not an error.
    """
    if not isinstance(catalog, (list, tuple)):
        raise SelectionError("the catalog must be a list of control records")
    skip = _strings("skip", skip)
    only = _strings("only", only)
    enable_disruptive = _strings("enable_disruptive", enable_disruptive)
    tags = run_tags(tags)
    skip_tags = _strings("skip_tags", skip_tags)
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
        unknown.extend("%s: %s" % (name, p) for p in patterns if not any(matches(r, [p]) for r in catalog))
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
        if matches(record, skip):
            reason = "switched off (hardening_controls_skip)"
        elif only and not matches(record, only):
            reason = "switched off (not in hardening_controls_only)"
        elif skip_tags and matches(record, skip_tags):
            reason = "switched off (--skip-tags)"
        elif tags and not matches(record, tags):
            reason = "switched off (not selected by --tags)"
        elif record.get("disruptive") and not matches(record, enable_disruptive):
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


def audit_selection(catalog, skip=None, only=None, enable_disruptive=None, overrides=None, tags=None,
                    skip_tags=None):
    """The module arguments ``controls`` and ``skipped`` of one audit: the selection of
    :func:`select_controls`, each record trimmed to what the audit module reads."""
    selection = select_controls(catalog, skip=skip, only=only, enable_disruptive=enable_disruptive,
                                overrides=overrides, tags=tags, skip_tags=skip_tags)
    return {"controls": [trim(r, AUDIT_KEYS) for r in selection["enabled"]],
            "skipped": [trim(r, SKIPPED_KEYS) for r in selection["skipped"]]}


def _yaml_loader():
    import yaml

    # libyaml's loader parses the 150 kB catalog about eight times faster than the pure Python one.
    return getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader


_VALIDATOR = []


def schema():
    """The JSON schema of one catalog record (``catalog.schema.json``)."""
    with open(SCHEMA_PATH, "r") as handle:
        return json.load(handle)


def kinds():
    """Every kind the schema knows -> the JSON schema of its params."""
    return dict(schema()["definitions"]["params"])


def _validator():
    if not _VALIDATOR:
        try:
            import fastjsonschema
        except ImportError:  # a controller without fastjsonschema: the module still checks each kind's params
            _VALIDATOR.append(None)
        else:
            _VALIDATOR.append((fastjsonschema.compile(schema()), fastjsonschema.JsonSchemaValueException))
    return _VALIDATOR[0]


def validate_record(record, where="catalog"):
    """SelectionError naming the record and the key when it does not fit the schema."""
    if not isinstance(record, dict) or not record.get("id"):
        raise SelectionError("%s: every record needs an id" % where)
    validator = _validator()
    if validator is None:
        return
    validate, invalid = validator
    try:
        validate(record)
    except invalid as exc:
        message = exc.message[len("data."):] if exc.message.startswith("data.") else exc.message
        raise SelectionError("%s: %s: %s" % (where, record["id"], message)) from None


def load_catalog(path):
    """The records of a catalog file (the list under ``__hardening_catalog``), each validated
    against the schema, parsed once per process and file version. Callers must not modify what
    they get (select_controls does not)."""
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
    seen = set()
    for record in records:
        validate_record(record, path)
        if record["id"] in seen:
            raise SelectionError("%s: %s: the ID is used twice" % (path, record["id"]))
        seen.add(record["id"])
    _CACHE[path] = (version, records)
    return records

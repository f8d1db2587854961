# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache License 2.0

"""Filter ``fleetcare.ops.select_controls``: the catalog and the role's switches in, the controls to run out."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: select_controls
author: fleetcare engineers
version_added: 0.1.0
short_description: Split the hardening catalog into enabled and switched-off controls
description:
  - Applies the switches of the C(fleetcare.ops.hardening) role to its catalog of controls, in the
    order of the catalog.
  - A control is switched off when it matches O(skip), when O(only) is not empty and it matches none
    of its patterns, or when it is disruptive and matches none of O(enable_disruptive).
  - Patterns are shell globs (C(HARD-SSH-*)), matched case-sensitively against the control IDs and
    against each control's C(tags) (so C(pam) names every control tagged C(pam)).
  - A pattern in O(skip), O(only) or O(enable_disruptive), or a key of O(overrides), that matches no
    control of the catalog is an error, so a mistyped ID fails the run before anything changes.
  - Each enabled control's C(params) are the record's merged with O(overrides) for its ID (a shallow
    merge; the override wins).
options:
  _input:
    description: The catalog, a list of control records (C(id), C(kind), C(params), C(disruptive), ...).
    type: list
    elements: dict
    required: true
  skip:
    description: IDs or patterns of controls neither applied nor audited.
    type: list
    elements: str
    default: []
  only:
    description: When not empty, only controls matching one of these patterns run.
    type: list
    elements: str
    default: []
  enable_disruptive:
    description: IDs or patterns of disruptive controls to turn on.
    type: list
    elements: str
    default: []
  overrides:
    description: Mapping of control ID to params merged over the record's C(params).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Compute the controls of this run
  ansible.builtin.set_fact:
    __hardening_selection: >-
      {{ __hardening_catalog | fleetcare.ops.select_controls(
           skip=hardening_controls_skip, only=hardening_controls_only,
           enable_disruptive=hardening_controls_enable_disruptive,
           overrides=hardening_overrides) }}
"""

RETURN = r"""
_value:
  description: The selection.
  type: dict
  contains:
    enabled:
      description: Enabled records, in catalog order, with overrides merged into C(params).
      type: list
      elements: dict
    skipped:
      description: Switched-off records, each with C(reason) saying which switch turned it off.
      type: list
      elements: dict
"""

from fnmatch import fnmatchcase

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text


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
        raise AnsibleFilterError("select_controls: %s must be a list of IDs or patterns" % name)
    return [to_text(v) for v in value]


def select_controls(catalog, skip=None, only=None, enable_disruptive=None, overrides=None):
    """Return ``{"enabled": [...], "skipped": [...]}`` for the switches given."""
    if not isinstance(catalog, (list, tuple)):
        raise AnsibleFilterError("select_controls: the catalog must be a list of control records")
    skip = _strings("skip", skip)
    only = _strings("only", only)
    enable_disruptive = _strings("enable_disruptive", enable_disruptive)
    overrides = overrides or {}
    if not isinstance(overrides, dict):
        raise AnsibleFilterError("select_controls: overrides must be a mapping of control ID to params")

    ids = []
    for record in catalog:
        if not isinstance(record, dict) or not record.get("id"):
            raise AnsibleFilterError("select_controls: every catalog record needs an id")
        ids.append(to_text(record["id"]))

    unknown = []
    for name, patterns in (("hardening_controls_skip", skip), ("hardening_controls_only", only),
                           ("hardening_controls_enable_disruptive", enable_disruptive)):
        unknown.extend("%s: %s" % (name, p) for p in patterns if not any(_matches(r, [p]) for r in catalog))
    unknown.extend("hardening_overrides: %s" % key for key in overrides if to_text(key) not in ids)
    for key, value in overrides.items():
        if not isinstance(value, dict):
            raise AnsibleFilterError("select_controls: hardening_overrides[%s] must be a mapping of params" % key)
    if unknown:
        raise AnsibleFilterError("select_controls: no control of the catalog matches %s" % "; ".join(unknown))

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


class FilterModule(object):
    """fleetcare hardening filters."""

    def filters(self):
        return {"select_controls": select_controls}

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
  - Patterns are shell globs (C(HARD-SSH-*)), matched ignoring case against the control IDs, each
    control's C(tags) (so C(pam) names every control tagged C(pam)) and its C(kind).
  - O(tags) and O(skip_tags) take the run's C(ansible_run_tags) and C(ansible_skip_tags), so
    C(--tags ssh) runs the controls tagged C(ssh) and C(--skip-tags ssh) leaves them out.
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
  tags:
    description: The run's C(--tags); unless they are V(all), only the controls they name run.
    type: list
    elements: str
    default: []
  skip_tags:
    description: The run's C(--skip-tags); the controls they name are switched off.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Compute the controls of this run
  ansible.builtin.set_fact:
    __hardening_selection: >-
      {{ __hardening_catalog | fleetcare.ops.select_controls(
           skip=hardening_controls_skip, only=hardening_controls_only,
           enable_disruptive=hardening_controls_enable_disruptive,
           overrides=hardening_overrides, tags=ansible_run_tags, skip_tags=ansible_skip_tags) }}
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

from ansible.errors import AnsibleFilterError
from ansible_collections.fleetcare.ops.plugins.plugin_utils import controls


def select_controls(catalog, skip=None, only=None, enable_disruptive=None, overrides=None, tags=None, skip_tags=None):
    """Return ``{"enabled": [...], "skipped": [...]}`` for the switches given.

    The selection itself is plugin_utils/controls.py, shared with the action plugin
    fleetcare.ops.hardening_audit, so enforcement and audit switch controls off alike."""
    try:
        return controls.select_controls(catalog, skip=skip, only=only, enable_disruptive=enable_disruptive,
                                        overrides=overrides, tags=tags, skip_tags=skip_tags)
    except controls.SelectionError as exc:
        raise AnsibleFilterError("select_controls: %s" % exc) from None


class FilterModule(object):
    """fleetcare hardening filters."""

    def filters(self):
        return {"select_controls": select_controls}

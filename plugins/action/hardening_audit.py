# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache License 2.0

"""Action plugin of ``fleetcare.ops.hardening_audit`` (the module holds DOCUMENTATION).

Given the role's switches (O(skip), O(only), O(enable_disruptive), O(overrides)) instead of a
O(controls) list, it reads the catalog on the controller, applies the switches with the same
code as the ``fleetcare.ops.select_controls`` filter (``plugin_utils/controls.py``), trims each
record to what the module reads, and runs the module once. The catalog therefore never passes
through Jinja, include_vars or set_fact: the audit costs one module round trip per host.

Given O(controls) (and O(skipped)), it hands them to the module as they are.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.fleetcare.ops.plugins.plugin_utils import controls

MODULE = "fleetcare.ops.hardening_audit"
SWITCHES = ("skip", "only", "enable_disruptive", "overrides", "catalog", "tags", "skip_tags")
# The collection's own catalog: <collection>/roles/hardening/vars/catalog.yml.
DEFAULT_CATALOG = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                               "roles", "hardening", "vars", "catalog.yml")

ARGUMENT_SPEC = dict(
    controls=dict(type="list", elements="dict"),
    skipped=dict(type="list", elements="dict"),
    in_container=dict(type="str", choices=["auto", "yes", "no"], default="auto"),
    skip=dict(type="list", elements="str"),
    only=dict(type="list", elements="str"),
    enable_disruptive=dict(type="list", elements="str"),
    overrides=dict(type="dict"),
    catalog=dict(type="str"),
    tags=dict(type="list", elements="str"),
    skip_tags=dict(type="list", elements="str"),
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    # As the generic action plugin (normal) that ran the module before this one existed.
    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp  # tmp no longer has any effect

        if "controls" in self._task.args:
            self.validate_argument_spec(ARGUMENT_SPEC, mutually_exclusive=[("controls", s) for s in SWITCHES])
            return self._run_module(result, dict(self._task.args), task_vars)

        _, args = self.validate_argument_spec(ARGUMENT_SPEC, required_by={"skipped": "controls"})
        catalog = args["catalog"]
        path = self._find_needle("vars", catalog) if catalog else DEFAULT_CATALOG
        try:
            module_args = controls.audit_selection(controls.load_catalog(path), skip=args["skip"],
                                                   only=args["only"], enable_disruptive=args["enable_disruptive"],
                                                   overrides=args["overrides"], tags=args["tags"],
                                                   skip_tags=args["skip_tags"])
        except controls.SelectionError as exc:
            raise AnsibleActionFail("hardening_audit: %s" % exc) from None
        module_args["in_container"] = args["in_container"]
        result = self._run_module(result, module_args, task_vars)
        # What the task was given, not the selection it expanded to: hundreds of records that
        # would be echoed into every callback and event otherwise.
        if "invocation" in result:
            given = dict((key, value) for key, value in args.items() if value is not None)
            result["invocation"] = {"module_args": dict(given, catalog=path)}
        return result

    def _run_module(self, result, module_args, task_vars):
        wrap_async = self._task.async_val and not self._connection.has_native_async
        result.update(self._execute_module(module_name=MODULE, module_args=module_args, task_vars=task_vars,
                                           wrap_async=wrap_async))
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

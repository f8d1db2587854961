#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: apt_lists
short_description: Refresh APT's package lists before an install when they are missing, empty or too old
description:
  - The one way the roles of fleetcare.ops that install packages (hardening, backup, patching)
    make sure APT can find them. C(apt-get update) runs when no package index is under
    C(/var/lib/apt/lists) (a host built from a container image that emptied its lists),
    whatever O(max_age) says, or when the lists are older than O(max_age) seconds.
  - A cache age alone is not enough there - the emptied directory itself is new, so
    M(ansible.builtin.apt)'s C(cache_valid_time) skips the update and the install then fails
    with "No package matching".
  - Fails when C(apt-get update) fails or leaves no package index, naming its last message.
version_added: "0.4.0"
author:
  - fleetcare engineers
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Says whether it would refresh; runs nothing.
  diff_mode:
    support: none
  platform:
    platforms: debian
options:
  max_age:
    description: Lists older than this many seconds are refreshed too; V(0) refreshes only missing or empty lists.
    type: int
    default: 0
  timeout:
    description: Seconds C(apt-get update) may take.
    type: int
    default: 600
"""

EXAMPLES = r"""
- name: Make sure APT has package lists
  fleetcare.ops.apt_lists:
    max_age: 86400
"""

RETURN = r"""
reason:
  description: Why the lists were (or would be) refreshed; empty when they were kept.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetcare.ops.plugins.module_utils.debian import refresh_apt_lists

ARGUMENT_SPEC = {"max_age": {"type": "int", "default": 0}, "timeout": {"type": "int", "default": 600}}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    changed, reason, error = refresh_apt_lists(module.params["max_age"], module.params["timeout"], module.check_mode)
    if error:
        module.fail_json(msg=error, reason=reason)
    module.exit_json(changed=changed, reason=reason)


if __name__ == "__main__":
    main()

# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
name: findings
type: aggregate
short_description: Write every fleetcare findings payload to a JSON Lines file
description:
  - Every task result that carries the C(fleetcare) result key (the findings and metrics of this
    collection's modules, see C(plugins/module_utils/findings.py)) is appended to O(path) as one
    JSON object on one line, with the inventory host name and the task uuid
    (keys C(host), C(task_uuid) and C(payload)).
  - This is the findings channel of the C(fleetcare) wrapper. It does not depend on the size of a
    result, unlike ansible-runner's event stream, which replaces any result larger than its event
    size limit (C(MAX_EVENT_RES)) with an empty one. The wrapper enables this callback for its own
    runs and sets O(path) inside the run's artifact directory.
  - Without O(path) the callback does nothing.
version_added: 0.2.0
requirements:
  - enable in configuration, see the examples
options:
  path:
    description:
      - The file to append payloads to. It is created with mode 0600 if missing.
    type: path
    env:
      - name: FLEETCARE_FINDINGS_FILE
    ini:
      - section: callback_fleetcare_findings
        key: path
"""

EXAMPLES = r"""
example: >
  Enable it in ansible.cfg with callbacks_enabled = fleetcare.ops.findings in the defaults
  section and path = /var/tmp/findings.jsonl in a callback_fleetcare_findings section; or for
  one run set ANSIBLE_CALLBACKS_ENABLED=fleetcare.ops.findings and
  FLEETCARE_FINDINGS_FILE=/var/tmp/findings.jsonl. The fleetcare wrapper does this itself.
"""

import json
import os

from ansible.module_utils.common.json import AnsibleJSONEncoder
from ansible.plugins.callback import CallbackBase

RESULT_KEY = "fleetcare"  # the key plugins/module_utils/findings.py puts its payload under


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "fleetcare.ops.findings"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super().__init__(display=display)
        self._fd = None

    def _write(self, record):
        path = self.get_option("path")
        if not path:
            return
        if self._fd is None:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        line = (json.dumps(record, cls=AnsibleJSONEncoder, separators=(",", ":")) + "\n").encode("utf-8")
        # one write per line on an O_APPEND file: a reader never sees half a
        # record followed by another one
        while line:
            line = line[os.write(self._fd, line):]

    def v2_runner_on_ok(self, result):
        payload = result._result.get(RESULT_KEY)
        if payload is None:
            return
        self._write({"host": result._host.get_name(), "task_uuid": str(result._task._uuid),
                     "payload": payload})

    def v2_playbook_on_stats(self, stats):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

"""`ansible-playbook --tags ssh` on the hardening role selects the controls tagged ssh (docs/controls.md).

Real ansible-playbook runs on this machine (connection local). Enforcement is proven on the
role's selection (tasks/select.yml) and on the tasks --tags leaves in the play; the audit entry
point runs for real, read-only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
CATALOG = yaml.safe_load((ROOT / "roles" / "hardening" / "vars" / "catalog.yml").read_text())["__hardening_catalog"]
SSH = {r["id"] for r in CATALOG if "ssh" in r["tags"]}

pytestmark = pytest.mark.slow


def playbook(tmp_path: Path, tasks: list[dict], *args: str) -> dict:
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump([{"name": "Play", "hosts": "all", "gather_facts": False, "tasks": tasks}]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0")
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                           "-e", f"ansible_python_interpreter={sys.executable}", str(path), *args],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout[proc.stdout.index("{"):]) if "--list-tasks" not in args else {"text": proc.stdout}


def task_result(out: dict, name: str) -> dict:
    for task in out["plays"][0]["tasks"]:
        if task["task"]["name"].split(" : ")[-1] == name:  # role tasks are named "ROLE : NAME"
            return task["hosts"]["localhost"]
    raise AssertionError(f"no task {name!r} ran")


SELECT = [
    {"name": "Select", "ansible.builtin.include_role": {"name": "fleetcare.ops.hardening", "tasks_from": "select",
                                                         "apply": {"tags": ["always"]}}, "tags": ["always"]},
    {"name": "Show", "tags": ["always"],
     "ansible.builtin.debug": {"msg": "{{ __hardening_selection.enabled | map(attribute='id') | list }}"}},
]


@pytest.mark.parametrize("args, wanted", [
    (("--tags", "ssh"), lambda i: i in SSH),
    (("--tags", "enforce,ssh"), lambda i: i in SSH),  # harden.yml's own tag beside a control tag
    (("--skip-tags", "ssh"), lambda i: i not in SSH),
])
def test_tags_select_the_controls_of_enforcement(tmp_path, args, wanted):
    enabled = task_result(playbook(tmp_path, SELECT, *args), "Show")["msg"]
    default_on = [r["id"] for r in CATALOG if not r["disruptive"]]
    assert enabled == [i for i in default_on if wanted(i)]
    assert enabled


def test_tags_leave_the_kind_task_files_in_the_play(tmp_path):
    harden = {"name": "Harden", "ansible.builtin.import_role": {"name": "fleetcare.ops.hardening"}}
    listed = playbook(tmp_path, [harden], "--list-tasks", "--tags", "ssh")["text"]
    for task in ("Check that the sshd options cannot lock this run out", "Apply the sshd_option controls",
                 "Apply the pam_module controls", "Find the controls that need a change"):
        assert task in listed, listed


def test_tags_select_the_controls_of_the_audit(tmp_path):
    tasks = [{"name": "Audit", "ansible.builtin.include_role": {"name": "fleetcare.ops.hardening",
                                                                "tasks_from": "audit"}, "tags": ["always"]}]
    out = playbook(tmp_path, tasks, "--tags", "ssh")
    findings = task_result(out, "Audit the hardening controls and report findings")["fleetcare"]["findings"]
    assert {f["id"] for f in findings} == {r["id"] for r in CATALOG}
    switched_off = {f["id"] for f in findings if f["evidence"].get("reason") == "switched off"}
    disruptive = {r["id"] for r in CATALOG if r["disruptive"]}
    assert switched_off == ({r["id"] for r in CATALOG} - SSH) | disruptive

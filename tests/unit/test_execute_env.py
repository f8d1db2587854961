"""What of the wrapper's environment and variables may reach the runner's files."""

from __future__ import annotations

import json

import pytest

from fleetcare import execute


@pytest.mark.parametrize(("name", "allowed"), [
    ("PATH", True), ("HOME", True), ("SSH_AUTH_SOCK", True), ("LC_ALL", True), ("XDG_RUNTIME_DIR", True),
    ("ANSIBLE_VAULT_PASSWORD_FILE", True), ("ANSIBLE_PRIVATE_KEY_FILE", True), ("ANSIBLE_ROLES_PATH", True),
    ("ANSIBLE_FORKS", True),
    ("ANSIBLE_VAULT_PASSWORD", False), ("ANSIBLE_BECOME_PASS", False), ("ANSIBLE_GALAXY_TOKEN", False),
    ("AWS_SECRET_ACCESS_KEY", False), ("GITHUB_TOKEN", False), ("PYTHONSTARTUP", False),
])
def test_environment_allow_list(name, allowed):
    assert execute.env_allowed(name) is allowed


def test_run_environment_keeps_what_the_runner_set_and_drops_the_rest():
    parent = {"PATH": "/bin", "AWS_SECRET_ACCESS_KEY": "k", "ANSIBLE_VAULT_PASSWORD": "pw", "HOME": "/root"}
    prepared = {**parent, "ANSIBLE_STDOUT_CALLBACK": "awx_display", "RUNNER_OMIT_EVENTS": False}
    env = execute.run_environment(parent, prepared, {"ANSIBLE_CONFIG": "/x/ansible.cfg"})
    assert env == {"PATH": "/bin", "HOME": "/root", "ANSIBLE_STDOUT_CALLBACK": "awx_display",
                   "RUNNER_OMIT_EVENTS": "False", "ANSIBLE_CONFIG": "/x/ansible.cfg"}


def test_secret_values_are_found_under_secret_keys_at_any_depth():
    found = execute.secret_values({"db_password": "hunter22", "health_disk_warn_pct": 80,
                                   "backup": {"repository": "/srv", "api_token": "tok-123"},
                                   "creds": [{"secret_key": "abc-def"}], "note": "plain",
                                   "hardening_password_max_days": 365})
    assert found == {"hunter22", "tok-123", "abc-def"}


def test_every_artifact_file_is_masked_in_place(tmp_path):
    secret = 'p"w\\d-42'
    events = tmp_path / "artifacts" / "x" / "job_events"
    events.mkdir(parents=True)
    (events / "1-a.json").write_text(json.dumps({"res": {"invocation": {"module_args": {"pw": secret}}}}))
    (tmp_path / "artifacts" / "x" / "stdout").write_text(f"ok: {secret}\n")
    execute.mask_files(tmp_path, {secret})
    assert json.loads((events / "1-a.json").read_text())["res"]["invocation"]["module_args"]["pw"] == execute.MASK
    assert (tmp_path / "artifacts" / "x" / "stdout").read_text() == f"ok: {execute.MASK}\n"
    assert all(secret.encode() not in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())


def test_events_are_masked_before_they_are_handed_on():
    event = {"event": "runner_on_ok", "event_data": {"res": {"msg": "login as admin:hunter22 ok"},
                                                      "list": ["hunter22"]}}
    execute.mask(event, {"hunter22"})
    assert event["event_data"] == {"res": {"msg": f"login as admin:{execute.MASK} ok"}, "list": [execute.MASK]}


def test_the_command_artifact_keeps_names_only(tmp_path):
    (tmp_path / "command").write_text(json.dumps({"command": ["ansible-playbook"], "cwd": "/",
                                                  "env": {"HOME": "/root", "PATH": "/bin"}}))
    execute.strip_command_env(tmp_path)
    assert json.loads((tmp_path / "command").read_text()) == {"command": ["ansible-playbook"], "cwd": "/",
                                                              "env_names": ["HOME", "PATH"]}


def test_module_arguments_echoed_in_results_are_dropped(tmp_path):
    event = {"event": "runner_on_ok", "event_data": {"res": {
        "invocation": {"module_args": {"units_ignore": ["decrypted"]}}, "changed": False,
        "results": [{"invocation": {"module_args": {"x": "decrypted"}}, "item": 1}]}}}
    assert execute.drop_invocation(event) is True
    assert event["event_data"]["res"] == {"changed": False, "results": [{"item": 1}]}
    assert execute.drop_invocation(event) is False
    partial = tmp_path / "job_events" / "abc-partial.json"
    partial.parent.mkdir()
    partial.write_text(json.dumps({"event_data": {"res": {"invocation": {"module_args": {"pw": "decrypted"}}}}}))
    execute.clean_partials(tmp_path)
    assert json.loads(partial.read_text()) == {"event_data": {"res": {}}}

"""No secret kept (issue 18, defect 5), for real on this machine.

One inspect with a known secret in each place a user puts one: the
environment (a cloud key, and an ANSIBLE_ variable holding a password), ``-e``,
a variables file and the inventory (plain, and ansible-vault encrypted, the
vault password given the proper way: a file named by
ANSIBLE_VAULT_PASSWORD_FILE). Afterwards not one byte of any secret is in any
file of the data directory: the run directory (runner env, artifacts, events,
stdout), every report, the history database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SECRETS = {
    "env": "S3cret-env-7f1c2a",
    "ansible_env": "S3cret-ansible-env-91d0",
    "extra": "S3cret-extra-var-55ab",
    "vars_file": "S3cret-vars-file-c3d2",
    "inventory": "S3cret-inventory-0e4b",
    "vault": "S3cret-vaulted-8a61",
    "vault_password": "S3cret-vault-pw-2b7e",
}


def vault_encrypt(password_file: Path, name: str, value: str) -> str:
    out = subprocess.run([str(BIN / "ansible-vault"), "encrypt_string", "--vault-password-file",
                          str(password_file), "--name", name, value], capture_output=True, text=True,
                         check=True, env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")})
    return out.stdout


@pytest.fixture(scope="module")
def secret_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """One real run, shared by the checks below."""
    tmp_path = tmp_path_factory.mktemp("secrets")
    password_file = tmp_path / "vault-pass"
    password_file.write_text(SECRETS["vault_password"] + "\n")
    # a vaulted value the run really uses: Ansible decrypts it into the module's arguments
    vaulted = vault_encrypt(password_file, "health_units_ignore", SECRETS["vault"])
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        "      ansible_python_interpreter: " + sys.executable + "\n"
        f"      service_password: {SECRETS['inventory']}\n")
    # the vaulted value sits in host_vars, where Ansible reads it with the vault password
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars" / "localhost.yml").write_text(
        vaulted.replace("health_units_ignore: !vault", "health_units_ignore:\n  - !vault")
        .replace("\n      ", "\n        "))
    vars_file = tmp_path / "vars.yml"
    vars_file.write_text(f"api_token: {SECRETS['vars_file']}\nhealth_disk_warn_pct: 0\n")
    data = tmp_path / "data"
    env = {**os.environ, "XDG_DATA_HOME": str(data),
           "AWS_SECRET_ACCESS_KEY": SECRETS["env"], "ANSIBLE_VAULT_PASSWORD": SECRETS["ansible_env"],
           "ANSIBLE_VAULT_PASSWORD_FILE": str(password_file)}
    proc = subprocess.run([sys.executable, str(ROOT / "runner.py"), "inspect", "-i", str(inventory),
                           "--vars-file", str(vars_file), "-e", f"db_password={SECRETS['extra']}",
                           "-e", "health_disk_critical_pct=99.9", "--fail-on", "critical"],
                          capture_output=True, text=True, env=env, timeout=300)
    return proc, data


def test_no_secret_reaches_any_file_of_the_run_the_reports_or_history(secret_run):
    proc, data = secret_run
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    (run_dir,) = (data / "fleetcare" / "runs").iterdir()
    report = json.loads((run_dir / "report.json").read_text())
    # the run really used what it was given: the variables file's threshold reached the host
    assert report["hosts"][0]["status"] == "ok"
    (disk,) = [f for f in report["findings"] if f["id"] == "HLTH-DISK-001"]
    assert disk["status"] == "fail"
    files = [p for p in data.rglob("*") if p.is_file()]
    assert any(p.name == "history.db" for p in files)
    assert any(p.name == "command" for p in files) and any(p.suffix == ".html" for p in files)
    leaks = [(name, str(p)) for p in files for name, value in SECRETS.items()
             if value.encode() in p.read_bytes()]
    assert leaks == []
    for text in (proc.stdout, proc.stderr):
        assert not any(v in text for v in SECRETS.values())


def test_the_runner_keeps_no_environment_values_and_no_variables(secret_run):
    _, data = secret_run
    (run_dir,) = (data / "fleetcare" / "runs").iterdir()
    (command,) = run_dir.glob("runner/artifacts/*/command")
    recorded = json.loads(command.read_text())
    assert "env" not in recorded
    names = set(recorded["env_names"])
    # what the run needs is passed (the vault password FILE among it), secrets are not
    assert {"PATH", "HOME", "ANSIBLE_VAULT_PASSWORD_FILE", "ANSIBLE_CONFIG"} <= names
    assert not names & {"AWS_SECRET_ACCESS_KEY", "ANSIBLE_VAULT_PASSWORD"}
    assert sorted(p.name for p in (run_dir / "runner" / "env").iterdir()) == ["cmdline", "settings"]


def test_variables_are_removed_when_ansible_fails_before_reading_them(tmp_path):
    """A playbook Ansible cannot parse: no playbook ever starts, the variables
    still leave runner/env when the run ends."""
    from fleetcare import execute, jobs

    broken = tmp_path / "broken.yml"
    broken.write_text("- hosts: all\n  tasks: [\n")
    job = jobs.build("inspect", var_pairs=(f"db_password={SECRETS['extra']}",))
    job = jobs.Job(job.command, broken, job.roles, job.inventory, job.hosts, extravars=job.extravars)
    run_dir = tmp_path / "run"
    status = execute.execute(job, run_dir, "ident-1", lambda event: None, lambda: False)
    assert status == "failed"
    assert not (run_dir / "runner" / "env" / "extravars").exists()
    assert [p for p in run_dir.rglob("*") if p.is_file() and SECRETS["extra"].encode() in p.read_bytes()] == []

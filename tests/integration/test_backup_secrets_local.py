"""The repository password never reaches a status record, the journal's lines, an artifact, a
report or the history database, for real on this machine (issue 11).

The backup role's job wrapper runs with the Debian restic (apt-get install restic) against a
scratch repository whose password is planted, and with hooks that print that password (as a
careless dump script might): two backups, forget/prune, check and a restore drill write their
status records. Then ``ansible-playbook`` runs the real ``fleetcare.ops.backup_audit`` module on
localhost (this machine has no systemd as PID 1, so the role's units cannot run here; Molecule
runs them), the ansible.posix.json callback's output is imported with ``fleetcare import``, and
every file of the data directory (run directory, reports, history.db), every record and all
output is scanned for the password."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WRAPPER = ROOT / "roles" / "backup" / "files" / "fleetcare-backup"
STATUS_DIR = Path("/var/lib/fleetcare/backup")  # where the audit module reads the records
PASSWORD = "S3cret-restic-pw-4e9d71"


@pytest.fixture(scope="module")
def backup_run(tmp_path_factory):
    if not shutil.which("restic"):
        pytest.fail("restic is not installed: apt-get install -y restic", pytrace=False)
    if STATUS_DIR.exists():
        pytest.fail(f"{STATUS_DIR} exists on this machine: this test writes and removes it", pytrace=False)
    tmp = tmp_path_factory.mktemp("backup-secret")
    conf, repo, data = tmp / "conf", tmp / "repo", tmp / "data"
    (conf / "sets").mkdir(parents=True)
    data.mkdir()
    for i in range(5):
        (data / f"f{i}.txt").write_text(f"data {i}\n" * 50)
    password_file = tmp / "password"
    password_file.write_text(PASSWORD + "\n")
    password_file.chmod(0o600)
    version = subprocess.run(["restic", "version"], capture_output=True, text=True).stdout.split()[1]
    (conf / "repository.json").write_text(json.dumps({
        "repository": str(repo), "password_file": str(password_file), "restic_version": version,
        "keep_last": 2, "stale_lock_minutes": 60, "check_subset_total": 2, "drill_files": 3,
        "drill_dir": str(tmp), "cache_dir": str(tmp / "cache")}))
    leak = f"cat {password_file}"
    (conf / "sets" / "good.json").write_text(json.dumps({"paths": [str(data)], "pre_hook": leak,
                                                          "post_hook": f"{leak}; exit 5"}))
    (conf / "sets" / "leaky.json").write_text(json.dumps({"paths": [str(data)], "pre_hook": f"{leak}; exit 9"}))
    env = {**os.environ, "FLEETCARE_BACKUP_CONFIG_DIR": str(conf), "FLEETCARE_BACKUP_STATUS_DIR": str(STATUS_DIR),
           "RESTIC_REPOSITORY": str(repo), "RESTIC_PASSWORD_FILE": str(password_file),
           "RESTIC_CACHE_DIR": str(tmp / "cache")}
    outputs = []
    try:
        init = subprocess.run(["restic", "init"], capture_output=True, text=True, env=env, timeout=120)
        assert init.returncode == 0, init.stderr
        codes = {}
        for argv in (("backup", "good"), ("backup", "leaky"), ("forget",), ("check",), ("drill", "good")):
            job = subprocess.run([sys.executable, str(WRAPPER), *argv], capture_output=True, text=True,
                                 env=env, timeout=300)
            codes[argv] = job.returncode
            outputs += [job.stdout, job.stderr]
        assert codes == {("backup", "good"): 0, ("backup", "leaky"): 1, ("forget",): 0, ("check",): 0,
                         ("drill", "good"): 0}, outputs
        playbook = tmp / "audit.yml"
        playbook.write_text(
            "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
            "    - name: Audit the backups\n      fleetcare.ops.backup_audit:\n"
            f"        sets: [good, leaky]\n        repository: {repo}\n        password_file: {password_file}\n")
        inventory = tmp / "inventory.yml"
        inventory.write_text("all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
                             f"      ansible_python_interpreter: {sys.executable}\n")
        ansible_env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
                       "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
                       "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.json"}
        played = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), str(playbook)],
                                capture_output=True, text=True, env=ansible_env, cwd=ROOT, timeout=300)
        assert played.returncode == 0, played.stdout[-2000:] + played.stderr
        results = tmp / "audit.json"
        results.write_text(played.stdout)
        home = tmp / "home"
        imported = subprocess.run([sys.executable, str(ROOT / "runner.py"), "import", str(results)],
                                  capture_output=True, text=True, env={**os.environ, "XDG_DATA_HOME": str(home)},
                                  timeout=300)
        outputs += [played.stderr, imported.stdout, imported.stderr]
        records = {p.name: p.read_bytes() for p in STATUS_DIR.iterdir()}
    finally:
        shutil.rmtree(STATUS_DIR, ignore_errors=True)
        if not any(STATUS_DIR.parent.iterdir()):
            STATUS_DIR.parent.rmdir()
    return imported, home, results, records, outputs


def test_the_audit_saw_the_hooks_output_without_the_password(backup_run):
    imported, home, _, _, _ = backup_run
    assert imported.returncode in (0, 1), imported.stdout + imported.stderr
    (run_dir,) = (home / "fleetcare" / "runs").iterdir()
    report = json.loads((run_dir / "report.json").read_text())
    found = {f["id"]: f for f in report["findings"]}
    run = found["BKUP-RUN-001"]
    assert run["status"] == "fail" and run["evidence"]["failed"] == ["leaky"]
    # the hooks printed the password: the evidence keeps their output, redacted
    assert run["evidence"]["runs"]["leaky"]["pre_hook_output"].strip() == "********"
    assert run["evidence"]["runs"]["good"]["post_hook_output"].strip() == "********"
    assert found["BKUP-DRILL-001"]["status"] == "pass", found["BKUP-DRILL-001"]["evidence"]
    assert found["BKUP-REPO-001"]["status"] == "pass"


def test_the_password_is_in_no_file_record_or_output(backup_run):
    _, home, results, records, outputs = backup_run
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "history.db" for p in files) and any(p.suffix == ".html" for p in files)
    assert {"good.json", "leaky.json", "_forget.json", "_check.json", "_drill.json", "_locks.json"} <= set(records)
    leaks = [str(p) for p in [*files, results] if PASSWORD.encode() in p.read_bytes()]
    leaks += [name for name, body in records.items() if PASSWORD.encode() in body]
    assert leaks == []
    assert not [text for text in outputs if PASSWORD in text]
    # and the scan can fail: the password file itself holds it
    assert any(b"********" in body for body in records.values())

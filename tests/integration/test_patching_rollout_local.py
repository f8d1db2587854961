"""`fleetcare patch --batch 2` for real through ansible-runner: four hosts of the inventory, all
this machine over the local connection, each with its own record directory and its own
certificate folder for the health gate. The pre hook of every host exits 1, so apt never runs
on this machine (the real apt is proven in molecule/patching); on web-2 it first drops a
certificate that expires tomorrow into web-2's folder, so web-2's health gets worse during its
patch (HLTH-CERT-001, critical). The rollout must stop after the first batch: web-3 and web-4
are not patched (their hooks never run) and say why; the exit code is non-zero.

The second run proves the gate before each host and `--max-fail`: a host already unhealthy is
skipped (its hooks never run) and the others go on; a batch in which more than that share of
the hosts failed leaves the later batches untouched.

All four "hosts" are this shared machine: the gate judges critical findings only (this
machine's clock may be unsynchronised, HLTH-TIME-001 major), with the load thresholds raised
and the database probes off (another engineer's PostgreSQL may be running here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def fleetcare(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    return subprocess.run([sys.executable, str(ROOT / "runner.py"), *argv], capture_output=True, text=True,
                          env=env, timeout=600)


def expiring_cert(tmp_path: Path) -> Path:
    soon = tmp_path / "soon.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "1", "-subj", "/CN=expires-tomorrow", "-keyout", str(tmp_path / "k.pem"),
                    "-out", str(soon)], check=True, capture_output=True)
    return soon


def gate_options(tmp_path: Path, name: str) -> dict:
    return {"cert_paths": [f"{tmp_path}/certs/{name}/*.pem"], "cert_critical_days": 7,
            "load_warn_per_core": 10000, "load_critical_per_core": 10000,
            "postgresql_enabled": False, "mysql_enabled": False, "redis_enabled": False}


def report_of(tmp_path: Path) -> dict:
    (run_dir,) = (tmp_path / "data" / "fleetcare" / "runs").iterdir()
    report = json.loads((run_dir / "report.json").read_text())
    return {(f["host"], f["id"]): f for f in report["findings"]}, report


def test_a_failed_health_gate_stops_the_later_batches(tmp_path: Path):
    soon = expiring_cert(tmp_path)
    hooks = tmp_path / "hooks"
    hosts = {}
    for n in range(1, 5):
        name = f"web-{n}"
        (tmp_path / "certs" / name).mkdir(parents=True)
        drop = f"cp {soon} {tmp_path}/certs/{name}/ && " if n == 2 else ""
        hosts[name] = {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "patching_record_dir": str(tmp_path / "records" / name),
            "patching_gate_options": gate_options(tmp_path, name),
            "patching_pre_hooks": [f"mkdir -p {hooks} && touch {hooks}/{name}", f"{drop}exit 1"],
        }
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"hosts": hosts, "vars": {"patching_lock_timeout": 5,
                                                                       "patching_gate_severities": ["critical"]}}}))
    proc = fleetcare(tmp_path, "patch", "-i", str(inventory), "--update", "security", "--batch", "2")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "Traceback" not in proc.stderr
    by, report = report_of(tmp_path)
    # web-2's health got worse: its gate fails naming the check
    gate = by[("web-2", "PTCH-GATE-001")]
    assert gate["status"] == "fail", gate
    assert [f["id"] for f in gate["evidence"]["new_failures"]] == ["HLTH-CERT-001"]
    assert by[("web-1", "PTCH-GATE-001")]["status"] == "pass"
    # the later batch was not patched: no hook ran, the record and the report say why
    assert sorted(p.name for p in hooks.iterdir()) == ["web-1", "web-2"]
    for name in ("web-3", "web-4"):
        run = by[(name, "PTCH-RUN-001")]
        assert run["status"] == "fail" and run["evidence"]["result"] == "stopped", run
        assert "health gate failed on web-2: HLTH-CERT-001" in run["evidence"]["reason"]
        assert by[(name, "PTCH-GATE-001")]["status"] == "not_applicable"
        record = json.loads((tmp_path / "records" / name / "last-run.json").read_text())
        assert record["result"] == "stopped" and record["hooks"] == []
    for name in ("web-1", "web-2"):
        assert by[(name, "PTCH-RUN-001")]["evidence"]["result"] == "pre_hook_failed"
    # the gate's own health findings stay out of the patch report
    assert not [f for f in report["findings"] if f["id"].startswith("HLTH-")]


def test_an_unhealthy_host_is_skipped_and_max_fail_stops_the_later_batches(tmp_path: Path):
    soon = expiring_cert(tmp_path)
    hooks = tmp_path / "hooks"
    hosts = {}
    for n in range(1, 7):
        name = f"web-{n}"
        (tmp_path / "certs" / name).mkdir(parents=True)
        hosts[name] = {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "patching_record_dir": str(tmp_path / "records" / name),
            "patching_gate_options": gate_options(tmp_path, name),
            "patching_pre_hooks": [f"mkdir -p {hooks} && touch {hooks}/{name}", "exit 1"],
        }
    (tmp_path / "certs" / "web-1" / "soon.pem").write_bytes(soon.read_bytes())  # unhealthy before
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"hosts": hosts, "vars": {"patching_lock_timeout": 5,
                                                                       "patching_gate_severities": ["critical"]}}}))
    proc = fleetcare(tmp_path, "patch", "-i", str(inventory), "--update", "security", "--batch", "2",
                     "--max-fail", "50")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "Traceback" not in proc.stderr
    by, _ = report_of(tmp_path)
    # web-1 was unhealthy before: skipped, reported with the reason, nothing ran on it
    run = by[("web-1", "PTCH-RUN-001")]
    assert run["status"] == "fail" and run["evidence"]["result"] == "unhealthy", run
    assert "unhealthy before patching (HLTH-CERT-001)" in run["evidence"]["reason"]
    gate = by[("web-1", "PTCH-GATE-001")]
    assert gate["status"] == "fail" and gate["evidence"]["failing_before"] == ["HLTH-CERT-001"], gate
    # batch 1: 1 of 2 failed (web-2's hook; the skipped host is no failure), not more than 50%:
    # batch 2 goes on; there both fail, more than 50%: batch 3 is untouched
    assert sorted(p.name for p in hooks.iterdir()) == ["web-2", "web-3", "web-4"]
    for name in ("web-2", "web-3", "web-4"):
        assert by[(name, "PTCH-RUN-001")]["evidence"]["result"] == "pre_hook_failed"
        assert by[(name, "PTCH-GATE-001")]["status"] == "pass"  # healthy before, no worse after
    for name in ("web-5", "web-6"):
        run = by[(name, "PTCH-RUN-001")]
        assert run["status"] == "fail" and run["evidence"]["result"] == "stopped", run
        assert ("2 of 2 hosts of a batch failed (web-3: pre_hook_failed, web-4: pre_hook_failed), "
                "more than --max-fail 50%") in run["evidence"]["reason"]
        record = json.loads((tmp_path / "records" / name / "last-run.json").read_text())
        assert record["result"] == "stopped" and record["hooks"] == []

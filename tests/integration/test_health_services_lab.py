"""The health role's service checks against real services in one lab host (Debian 12): PostgreSQL,
MariaDB, Redis (with a password) and nginx installed with apt inside the container, then
``fleetcare inspect`` with declared checks: running services pass with their counts, an HTTP
endpoint answering 500, a closed port, an inactive unit and a stopped PostgreSQL fail, and no
password reaches the run's artifacts, reports or history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import fleetcare_lab as lab

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
REDIS_PASSWORD = "Rds-pw-7c1e9a"  # a test secret, searched for in the artifacts
HTTP_PASSWORD = "Web-pw-3f5d20"
PACKAGES = ["postgresql", "mariadb-server", "redis-server", "nginx"]
NGINX_SITE = """server {
    listen 80 default_server;
    location = /ok { return 200 "ok"; }
    location = /broken { return 500 "broken"; }
}
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One lab host running the four services; removed when the module's tests end."""
    state = tmp_path_factory.mktemp("lab")
    try:
        inventory = lab.up(1, "12", state_dir=state)
        (host,) = [h["host"] for h in lab.status(state)]

        def sh(script):
            return lab.exec_in(host, ["sh", "-c", script], check=True, state_dir=state)

        sh(f"DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends {' '.join(PACKAGES)}")
        lab.exec_in(host, ["sh", "-c", "cat > /etc/nginx/sites-enabled/default"], input=NGINX_SITE, check=True,
                    state_dir=state)
        sh(f"printf 'requirepass {REDIS_PASSWORD}\\n' >> /etc/redis/redis.conf"
           " && systemctl restart redis-server nginx")
        # a role with a password in the database: the probe must never need or show one
        sh(f"runuser -u postgres -- psql -qc \"CREATE ROLE app LOGIN PASSWORD '{REDIS_PASSWORD}'\"")
        yield state, inventory, host
    finally:
        lab.down(state)


def inspect(data: Path, inventory: Path, tmp_path: Path, services: list[dict]) -> dict[str, dict]:
    varsfile = tmp_path / "vars.yml"
    varsfile.write_text(yaml.safe_dump({"health_services": services}))
    proc = subprocess.run([sys.executable, str(ROOT / "runner.py"), "inspect", "-i", str(inventory),
                           "--vars-file", str(varsfile), "-q"], capture_output=True, text=True,
                          env={**os.environ, "XDG_DATA_HOME": str(data)}, timeout=300)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    run_dir = sorted((data / "fleetcare" / "runs").iterdir())[-1]
    report = json.loads((run_dir / "report.json").read_text())
    return {f["id"]: f for f in report["findings"]}


DECLARED = [{"unit": "nginx.service"}, {"unit": "cron.service"}, {"tcp": 80}, {"tcp": 5999},
            {"http": "http://127.0.0.1/ok"}, {"http": f"http://probe:{HTTP_PASSWORD}@127.0.0.1/broken"},
            {"process": "nginx"}, {"process": "redis-server"}]


def test_running_services_pass_and_declared_faults_fail(served, tmp_path):
    state, inventory, host = served
    data = tmp_path / "data"
    found = inspect(data, inventory, tmp_path, DECLARED)

    pg = found["HLTH-DB-001"]
    assert pg["status"] == "pass", pg
    (cluster,) = pg["evidence"]["instances"]
    assert cluster["accepting"] and cluster["max_connections"] == 100 and cluster["connections"] >= 0
    assert cluster["in_recovery"] is False
    maria = found["HLTH-DB-002"]
    assert maria["status"] == "pass", maria
    assert maria["evidence"]["instances"][0]["max_connections"] == 151
    redis = found["HLTH-DB-003"]
    assert redis["status"] == "pass" and redis["evidence"]["ping"] == "PONG" and redis["evidence"]["auth"], redis

    assert found["HLTH-SVC-001"]["status"] == "pass", found["HLTH-SVC-001"]
    tcp = found["HLTH-SVC-002"]
    assert tcp["status"] == "fail" and tcp["evidence"]["failed"] == ["127.0.0.1:5999"], tcp
    http = found["HLTH-SVC-003"]
    assert http["status"] == "fail", http
    ok, broken = http["evidence"]["checks"]
    assert ok["status"] == 200 and ok["ok"] and broken["status"] == 500 and not broken["ok"]
    assert found["HLTH-SVC-004"]["status"] == "pass"
    assert found["HLTH-SVC-005"]["status"] == "not_applicable"

    served_ports = {(e["port"], e["process"]) for e in found["HLTH-PORT-001"]["evidence"]["listening"]}
    # root in the container lacks CAP_SYS_PTRACE: the fds of postgres and mariadbd stay unreadable
    assert {(22, "sshd"), (80, "nginx"), (6379, "redis-server")} <= served_ports
    # cross-check with ss inside the host: the same ports
    ss = lab.exec_in(host, ["ss", "-Hltn"], check=True, state_dir=state).stdout
    assert {int(line.split()[3].rsplit(":", 1)[1]) for line in ss.splitlines() if line.strip()} == {
        port for port, _ in served_ports} >= {22, 80, 3306, 5432, 6379}

    # no password anywhere the run left behind (artifacts, reports, history)
    for path in data.rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            assert REDIS_PASSWORD.encode() not in blob, path
            assert HTTP_PASSWORD.encode() not in blob, path


def test_stopped_postgresql_and_inactive_unit_fail(served, tmp_path):
    state, inventory, host = served
    lab.exec_in(host, ["systemctl", "stop", "postgresql@15-main.service", "nginx.service"], check=True,
                state_dir=state)
    try:
        found = inspect(tmp_path / "data", inventory, tmp_path, [{"unit": "nginx.service"}, {"tcp": 80}])
    finally:
        lab.exec_in(host, ["systemctl", "start", "postgresql@15-main.service", "nginx.service"], state_dir=state)
    pg = found["HLTH-DB-001"]
    assert (pg["status"], pg["severity"]) == ("fail", "critical"), pg
    assert pg["evidence"]["instances"][0]["accepting"] is False
    units = found["HLTH-SVC-001"]
    assert units["status"] == "fail" and units["evidence"]["checks"][0]["active_state"] in ("inactive", "failed")
    assert found["HLTH-SVC-002"]["status"] == "fail"

"""The health role's service checks against a running PostgreSQL in one lab host (Debian 12),
through ``fleetcare inspect`` and its run data: a running cluster passes with its connection
counts, declared checks pass on what runs and fail on a closed port, and no password (a database
role's, one in a declared URL) reaches the run's artifacts, reports or history.

What fails is proved by Molecule's ``molecule/health`` scenario, which is cheaper per fault: a
stopped PostgreSQL, an HTTP endpoint answering 500, a certificate served by nginx, the listening
sockets held against ``ss``. This test keeps what only a running database and a whole run show,
so it installs one package (PostgreSQL); the HTTP endpoint is Python's own server in the host."""

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
DB_PASSWORD = "Pg-pw-7c1e9a"  # test secrets, searched for in the run's data
HTTP_PASSWORD = "Web-pw-3f5d20"
HTTP_PORT = 8000


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One lab host running PostgreSQL and a small HTTP server; removed when the module's tests end."""
    state = tmp_path_factory.mktemp("lab")
    try:
        inventory = lab.up(1, "12", state_dir=state)
        (host,) = [h["host"] for h in lab.status(state)]

        def sh(script):
            return lab.exec_in(host, ["sh", "-c", script], check=True, state_dir=state)

        sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql")
        # a role with a password in the database: the probe must never need or show one
        sh(f"runuser -u postgres -- psql -qc \"CREATE ROLE app LOGIN PASSWORD '{DB_PASSWORD}'\"")
        sh(f"mkdir -p /srv/www && systemd-run --unit fc-http python3 -m http.server -b 127.0.0.1"
           f" -d /srv/www {HTTP_PORT} && for i in $(seq 50); do"
           f" python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {HTTP_PORT}))'"
           " 2>/dev/null && exit 0; sleep 0.2; done; exit 1")
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


DECLARED = [{"unit": "postgresql@15-main.service"}, {"tcp": 5432}, {"tcp": 5999},
            {"http": f"http://probe:{HTTP_PASSWORD}@127.0.0.1:{HTTP_PORT}/"}, {"process": "postgres"}]


def test_running_postgresql_passes_and_no_password_reaches_the_run_data(served, tmp_path):
    data = tmp_path / "data"
    found = inspect(data, served[1], tmp_path, DECLARED)

    pg = found["HLTH-DB-001"]
    assert pg["status"] == "pass", pg
    (cluster,) = pg["evidence"]["instances"]
    assert (cluster["cluster"], cluster["port"], cluster["accepting"]) == ("15/main", 5432, True), cluster
    assert cluster["max_connections"] == 100 and 0 <= cluster["connections"] < 100, cluster
    assert cluster["connections_pct"] == pytest.approx(cluster["connections"], abs=0.01)
    assert cluster["in_recovery"] is False
    # MariaDB and Redis are not installed: not_applicable, not a failure
    for check_id in ("HLTH-DB-002", "HLTH-DB-003"):
        assert found[check_id]["status"] == "not_applicable", found[check_id]

    assert found["HLTH-SVC-001"]["status"] == "pass", found["HLTH-SVC-001"]
    tcp = found["HLTH-SVC-002"]
    assert tcp["status"] == "fail" and tcp["evidence"]["failed"] == ["127.0.0.1:5999"], tcp
    http = found["HLTH-SVC-003"]
    assert http["status"] == "pass", http
    (answer,) = http["evidence"]["checks"]
    assert answer["status"] == 200 and HTTP_PASSWORD not in answer["check"], answer
    assert found["HLTH-SVC-004"]["status"] == "pass", found["HLTH-SVC-004"]

    # no password anywhere the run left behind (artifacts, reports, history)
    files = [path for path in data.rglob("*") if path.is_file()]
    assert any(path.name == "report.json" for path in files)
    for path in files:
        blob = path.read_bytes()
        assert DB_PASSWORD.encode() not in blob, path
        assert HTTP_PASSWORD.encode() not in blob, path

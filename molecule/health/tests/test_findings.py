"""The role's findings, held against the faults prepare.yml injected.

The broken instance must fail the checks that were broken, with the right
severity and evidence naming the culprit; the clean instances must pass those
same checks (or, for a service they do not run, be not_applicable). Other checks (load, clock) measure the container
host and may fail on a busy machine, so they are held to the contract only.
"""

import pytest
from conftest import clean_names, faulty_names

EXPIRING_CERT = "/etc/ssl/fleetcare/fleetcare-expiring.pem"
VALID_CERT = "/etc/ssl/fleetcare/fleetcare-valid.pem"
FAULT_UNIT = "fleetcare-fault.service"
FULL_MOUNT = "/mnt/fc-full"
NGINX_TLS_PORT = 8443
NGINX_CERT = "/etc/nginx/fleetcare-tls/soon.pem"
BROKEN_URL = "http://127.0.0.1:8080/broken"
MDSTAT_FIXTURE = "/etc/fleetcare-molecule/mdstat"

CHECK_IDS = [
    "HLTH-LOAD-001",
    "HLTH-CPU-001",
    "HLTH-CPU-002",
    "HLTH-MEM-001",
    "HLTH-SWAP-001",
    "HLTH-DISK-001",
    "HLTH-DISK-002",
    "HLTH-DISK-003",
    "HLTH-NET-001",
    "HLTH-UNIT-001",
    "HLTH-TIME-001",
    "HLTH-CERT-001",
    "HLTH-REBOOT-001",
    "HLTH-OOM-001",
    "HLTH-LOG-001",
    "HLTH-BKUP-001",
    "HLTH-SVC-001",
    "HLTH-SVC-002",
    "HLTH-SVC-003",
    "HLTH-SVC-004",
    "HLTH-SVC-005",
    "HLTH-PORT-001",
    "HLTH-DB-001",
    "HLTH-DB-002",
    "HLTH-DB-003",
    "HLTH-CERT-002",
    "HLTH-RAID-001",
    "HLTH-SMART-001",
    "HLTH-EDAC-001",
    "HLTH-KERN-001",
    "HLTH-FD-001",
    "HLTH-CONN-001",
    "HLTH-PROC-001",
    "HLTH-SSH-001",
]
FINDING_KEYS = {"id", "title", "severity", "status", "evidence", "remediation", "references"}


def test_one_instance_is_broken_and_the_others_are_clean():
    assert len(faulty_names()) == 1
    assert len(clean_names()) == 2


def test_every_host_reports_every_check_by_the_contract(inspection):
    for name, payload in inspection.items():
        assert (payload["contract"], payload["role"]) == (1, "health"), name
        assert [f["id"] for f in payload["findings"]] == CHECK_IDS, name
        for f in payload["findings"]:
            assert set(f) == FINDING_KEYS, (name, f["id"])
            assert f["severity"] in {"critical", "major", "minor", "info"}, (name, f)
            assert f["status"] in {"pass", "fail", "error", "not_applicable"}, (name, f)
            if f["status"] in {"error", "not_applicable"}:
                assert f["evidence"].get("reason"), (name, f)


def test_failed_unit_is_reported_by_name(findings, faulty_host):
    f = findings[faulty_host]["HLTH-UNIT-001"]
    assert (f["status"], f["severity"]) == ("fail", "major")
    assert f["evidence"]["failed_units"] == [FAULT_UNIT]
    assert f["evidence"]["failed_count"] == 1


def test_full_filesystem_is_reported_by_mount(findings, faulty_host):
    # A tmpfs, judged with the role's default filesystem types (no override).
    f = findings[faulty_host]["HLTH-DISK-001"]
    # Filled past 95%: the critical threshold, not only the warn one.
    assert (f["status"], f["severity"]) == ("fail", "critical")
    assert f["evidence"]["mount"] == FULL_MOUNT
    assert f["evidence"]["used_pct"] >= f["evidence"]["critical_pct"] == 95.0
    assert [o["mount"] for o in f["evidence"]["over_threshold"]] == [FULL_MOUNT]


def test_expiring_certificate_is_reported_by_path(findings, faulty_host):
    f = findings[faulty_host]["HLTH-CERT-001"]
    # 20 days left: inside the 30-day warning window, outside the 7-day critical one.
    assert (f["status"], f["severity"]) == ("fail", "major")
    assert f["evidence"]["path"] == EXPIRING_CERT
    assert 19 <= f["evidence"]["days_left"] <= 20
    assert f["evidence"]["expiring"] == [EXPIRING_CERT]
    assert sorted(c["path"] for c in f["evidence"]["certificates"]) == [EXPIRING_CERT, VALID_CERT]


def test_pending_reboot_is_reported(findings, faulty_host):
    f = findings[faulty_host]["HLTH-REBOOT-001"]
    assert (f["status"], f["severity"]) == ("fail", "major")
    assert f["evidence"]["reboot_required_flag"] is True
    assert f["evidence"]["packages"] == ["libc6"]


def test_nginx_certificate_in_use_is_reported_by_port_and_server(findings, faulty_host):
    f = findings[faulty_host]["HLTH-CERT-002"]
    # 10 days left: inside the 30-day warning window, outside the 7-day critical one.
    assert (f["status"], f["severity"]) == ("fail", "major"), f
    ev = f["evidence"]
    assert ev["subject_cn"] == "nginx.molecule.invalid"
    assert 9 <= ev["days_left"] <= 10
    assert f"127.0.0.1:{NGINX_TLS_PORT}" in ev["sources"]["tls_ports"]
    assert f"TLS port 127.0.0.1:{NGINX_TLS_PORT} (SNI nginx.molecule.invalid)" in ev["found_in"]
    assert any(s.startswith("nginx (pid ") and s.endswith(f"on port {NGINX_TLS_PORT}") for s in ev["served_by"]), ev
    # nginx's configuration names the same file
    assert any(w.startswith(f"{NGINX_CERT} (referenced by nginx /etc/nginx/sites-enabled/") for w in ev["found_in"]), ev
    assert [c["subject_cn"] for c in ev["expiring"]] == ["nginx.molecule.invalid"]


def test_declared_http_check_answering_500_fails(findings, faulty_host):
    f = findings[faulty_host]["HLTH-SVC-003"]
    assert (f["status"], f["severity"]) == ("fail", "major"), f
    (check,) = f["evidence"]["checks"]
    assert (check["check"], check["status"], check["ok"], check["expected_status"]) == (BROKEN_URL, 500, False, [200])
    assert f["evidence"]["failed"] == [BROKEN_URL]


def test_stopped_postgresql_fails(findings, faulty_host):
    f = findings[faulty_host]["HLTH-DB-001"]
    assert (f["status"], f["severity"]) == ("fail", "critical"), f
    (cluster,) = f["evidence"]["instances"]
    assert (cluster["accepting"], cluster["state"], cluster["port"]) == (False, "down", 5432), cluster


def test_degraded_raid_fixture_fails(findings, faulty_host):
    f = findings[faulty_host]["HLTH-RAID-001"]
    assert (f["status"], f["severity"]) == ("fail", "major"), f
    assert (f["evidence"]["source"], f["evidence"]["degraded"]) == (MDSTAT_FIXTURE, ["md0"])
    (md0,) = f["evidence"]["arrays"]
    assert (md0["disks"], md0["active"], md0["map"], md0["failed_members"]) == (2, 1, "U_", ["sdb1"])


@pytest.mark.parametrize(
    ("check_id", "reason"),
    [
        ("HLTH-SVC-003", "no http check declared"),
        ("HLTH-DB-001", "PostgreSQL is not installed"),
    ],
)
def test_clean_host_without_the_service_is_not_applicable(findings, clean_host, check_id, reason):
    f = findings[clean_host][check_id]
    assert f["status"] == "not_applicable", f
    assert f["evidence"]["reason"].startswith(reason), f


@pytest.mark.parametrize(
    ("check_id", "key", "expected"),
    [
        ("HLTH-UNIT-001", "failed_units", []),
        ("HLTH-DISK-001", "over_threshold", []),
        ("HLTH-CERT-001", "path", VALID_CERT),
        ("HLTH-REBOOT-001", "reboot_required_flag", False),
        ("HLTH-CERT-002", "expiring", []),
        ("HLTH-RAID-001", "degraded", []),
    ],
)
def test_clean_host_passes_the_checks_broken_elsewhere(findings, clean_host, check_id, key, expected):
    f = findings[clean_host][check_id]
    assert f["status"] == "pass", f
    assert f["evidence"][key] == expected, f


def test_clean_host_certificate_has_a_year_left(findings, clean_host):
    f = findings[clean_host]["HLTH-CERT-001"]
    assert 364 <= f["evidence"]["days_left"] <= 365
    assert f["evidence"]["expiring"] == []

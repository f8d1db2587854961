"""The hosts themselves, seen by testinfra: the faults are really there (only
on the broken instance), and the values the role reported match what the
system's own tools say."""

import datetime

import pytest
from test_findings import (
    BROKEN_URL,
    EXPIRING_CERT,
    FAULT_UNIT,
    FULL_MOUNT,
    MDSTAT_FIXTURE,
    NGINX_CERT,
    NGINX_TLS_PORT,
    VALID_CERT,
)

FAULT_FILES = [
    "/etc/systemd/system/fleetcare-fault.service",
    EXPIRING_CERT,
    f"{FULL_MOUNT}/ballast",
    "/var/run/reboot-required",
    "/var/run/reboot-required.pkgs",
    NGINX_CERT,
]


@pytest.mark.parametrize("path", FAULT_FILES)
def test_fault_files_exist_on_the_broken_instance_only(host, is_faulty, path):
    assert host.file(path).exists is is_faulty


def test_every_instance_has_the_long_lived_certificate(host):
    cert = host.file(VALID_CERT)
    assert cert.is_file
    assert (cert.user, cert.group, cert.mode) == ("root", "root", 0o644)


def test_fault_unit_is_failed_per_systemctl(host, is_faulty):
    unit = host.service(FAULT_UNIT)
    assert not unit.is_running
    state = host.run("systemctl is-failed %s", FAULT_UNIT).stdout.strip()
    assert state == ("failed" if is_faulty else "inactive")


def test_reported_failed_units_match_systemctl(host, host_name, findings):
    out = host.check_output("systemctl list-units --state=failed --all --no-legend --plain --no-pager")
    listed = [line.split()[0] for line in out.splitlines() if line.strip()]
    assert findings[host_name]["HLTH-UNIT-001"]["evidence"]["failed_units"] == listed


def test_full_mount_is_a_small_tmpfs_on_the_broken_instance_only(host, is_faulty):
    mount = host.mount_point(FULL_MOUNT)
    assert mount.exists is is_faulty
    if is_faulty:
        assert mount.filesystem == "tmpfs"


def test_reported_disk_use_matches_df(host, host_name, findings):
    f = findings[host_name]["HLTH-DISK-001"]
    mount = f["evidence"]["mount"]
    used, avail = map(int, host.check_output("df -B1 --output=used,avail %s | tail -n 1", mount).split())
    assert f["evidence"]["used_pct"] == pytest.approx(100.0 * used / (used + avail), abs=1.0)


def test_reported_certificate_expiry_matches_openssl(host, host_name, findings):
    certs = findings[host_name]["HLTH-CERT-001"]["evidence"]["certificates"]
    assert certs, "every instance has at least the long-lived certificate"
    for cert in certs:
        out = host.check_output("openssl x509 -noout -enddate -in %s", cert["path"])
        # notAfter=Dec 15 09:30:00 2026 GMT
        end = datetime.datetime.strptime(out.split("=", 1)[1], "%b %d %H:%M:%S %Y %Z")
        assert cert["not_after"] == end.strftime("%Y-%m-%dT%H:%M:%SZ"), cert["path"]


def _enddate(text: str) -> str:
    # notAfter=Dec 15 09:30:00 2026 GMT
    end = datetime.datetime.strptime(text.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y %Z")
    return end.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_reported_listening_ports_match_ss(host, host_name, findings):
    ss = host.check_output("ss -Hltn")
    ports = {int(line.split()[3].rsplit(":", 1)[1]) for line in ss.splitlines() if line.strip()}
    assert findings[host_name]["HLTH-PORT-001"]["evidence"]["ports"] == sorted(ports)


def test_nginx_serves_the_reported_certificate_per_ss_and_openssl(host, host_name, findings, is_faulty):
    ss = host.check_output(f"ss -Hltnp 'sport = :{NGINX_TLS_PORT}'")
    assert ('"nginx"' in ss) is is_faulty, ss
    if not is_faulty:
        return
    served = host.check_output(
        f"openssl s_client -connect 127.0.0.1:{NGINX_TLS_PORT} -servername nginx.molecule.invalid"
        " </dev/null 2>/dev/null | openssl x509 -noout -enddate"
    )
    f = findings[host_name]["HLTH-CERT-002"]
    (cert,) = [c for c in f["evidence"]["certificates"] if c["subject_cn"] == "nginx.molecule.invalid"]
    assert (
        cert["not_after"]
        == _enddate(served)
        == _enddate(host.check_output("openssl x509 -noout -enddate -in %s", NGINX_CERT))
    )


def test_broken_location_answers_500(host, is_faulty):
    code = host.run(
        "python3 -c 'import sys, urllib.request, urllib.error\n"
        "try: urllib.request.urlopen(sys.argv[1], timeout=5)\n"
        "except urllib.error.HTTPError as e: print(e.code)' %s",
        BROKEN_URL,
    )
    if is_faulty:
        assert code.stdout.strip() == "500", code
    else:
        assert code.rc != 0 and "Connection refused" in code.stderr, code


def test_postgresql_is_installed_and_stopped_per_systemctl(host, host_name, findings, is_faulty):
    assert host.package("postgresql").is_installed is is_faulty
    if not is_faulty:
        return
    (cluster,) = findings[host_name]["HLTH-DB-001"]["evidence"]["instances"]
    unit = f"postgresql@{cluster['cluster'].replace('/', '-')}.service"
    assert host.run("systemctl is-active %s", unit).stdout.strip() == "inactive"
    assert host.run("systemctl is-active nginx.service").stdout.strip() == "active"


def test_mdstat_fixture_is_degraded_on_the_broken_instance_only(host, is_faulty):
    # A fixture, not a real array (molecule.yml says why): the check reads what it says.
    assert ("[U_]" in host.file(MDSTAT_FIXTURE).content_string) is is_faulty

"""The hosts themselves, seen by testinfra: the faults are really there (only
on the broken instance), and the values the role reported match what the
system's own tools say."""

import datetime

import pytest
from test_findings import EXPIRING_CERT, FAULT_UNIT, FULL_MOUNT, VALID_CERT

FAULT_FILES = [
    "/etc/systemd/system/fleetcare-fault.service",
    EXPIRING_CERT,
    f"{FULL_MOUNT}/ballast",
    "/var/run/reboot-required",
    "/var/run/reboot-required.pkgs",
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

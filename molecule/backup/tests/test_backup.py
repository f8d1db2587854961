"""The backup role on the instances themselves (testinfra, podman backend)."""

import json

import pytest

ENV = "RESTIC_REPOSITORY=/var/backups/restic RESTIC_PASSWORD_FILE=/etc/fleetcare/backup/password"


def _json(host, path):
    return json.loads(host.file(path).content_string)


@pytest.mark.parametrize("unit", ["fleetcare-backup-data.timer", "fleetcare-backup-broken.timer",
                                  "fleetcare-backup-forget.timer"])
def test_timers_enabled_and_active(host, unit):
    assert host.service(unit).is_enabled
    assert host.service(unit).is_running
    timer = host.file("/etc/systemd/system/" + unit).content_string
    assert "Persistent=true" in timer and "RandomizedDelaySec=" in timer and "OnCalendar=" in timer


def test_password_file_is_root_only(host):
    secret = host.file("/etc/fleetcare/backup/password")
    assert secret.user == "root" and secret.mode == 0o600


def test_retention_left_keep_last_snapshots(host):
    out = host.check_output(ENV + " restic snapshots --json --tag fleetcare-set=data")
    snapshots = json.loads(out)
    assert len(snapshots) == 3  # five runs, keep-last 3
    record = _json(host, "/var/lib/fleetcare/backup/data.json")
    assert record["ok"] and record["exit_code"] == 0 and record["meaning"] == "success"
    # restic before 0.17 reports the short ID in its backup summary
    assert [s for s in snapshots if s["id"].startswith(record["snapshot_id"])]
    assert record["last_success"] == record["end"]


def test_excludes_apply(host):
    out = host.check_output(ENV + " restic ls --json latest --tag fleetcare-set=data")
    paths = {json.loads(line).get("path") for line in out.splitlines() if line.strip()}
    assert "/srv/fc-data/a.txt" in paths and "/srv/fc-data/skip.tmp" not in paths


def test_failing_pre_hook_fails_the_backup(host):
    record = _json(host, "/var/lib/fleetcare/backup/broken.json")
    assert record["ok"] is False and record["hook"]["exit_code"] == 7
    assert record["last_success"] is None and record["snapshot_id"] is None
    assert host.run("systemctl is-failed fleetcare-backup-broken.service").stdout.strip() == "failed"


def test_findings(host):
    body = _json(host, "/var/tmp/fc-backup-audit.json")
    found = {f["id"]: f for f in body["findings"]}
    assert body["expected"] == len(found) == 7
    assert found["BKUP-RUN-001"]["status"] == "fail"
    assert found["BKUP-RUN-001"]["evidence"]["failed"] == ["broken"]
    assert found["BKUP-AGE-001"]["status"] == "fail"
    assert found["BKUP-AGE-001"]["evidence"]["never_succeeded"] == ["broken"]
    assert found["BKUP-TIMER-001"]["status"] == "pass", found["BKUP-TIMER-001"]["evidence"]
    assert found["BKUP-REPO-001"]["status"] == "pass"
    assert found["BKUP-PRUNE-001"]["status"] == "pass"
    assert found["BKUP-CHECK-001"]["status"] == "pass"
    assert found["BKUP-UNIT-001"]["evidence"]["failed"] == ["fleetcare-backup-broken.service"]


def test_restic_version_is_the_debian_package(host):
    print("restic", host.package("restic").version)
    assert host.package("restic").is_installed

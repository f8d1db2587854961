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
    # listed before the faults corrupted the repository (side_effect.yml)
    out = host.file("/var/tmp/fc-ls-data.json").content_string
    paths = {json.loads(line).get("path") for line in out.splitlines() if line.strip()}
    assert "/srv/fc-data/a.txt" in paths and "/srv/fc-data/skip.tmp" not in paths


def test_failing_pre_hook_fails_the_backup(host):
    record = _json(host, "/var/lib/fleetcare/backup/broken.json")
    assert record["ok"] is False and record["hook"]["exit_code"] == 7
    assert record["last_success"] is None and record["snapshot_id"] is None
    assert host.run("systemctl is-failed fleetcare-backup-broken.service").stdout.strip() == "failed"


def _audit(host, phase):
    body = _json(host, f"/var/tmp/fc-audit-{phase}.json")
    return {f["id"]: f for f in body["findings"]}


def test_findings(host):
    body = _json(host, "/var/tmp/fc-backup-audit.json")
    found = {f["id"]: f for f in body["findings"]}
    assert body["expected"] == len(found) == 9
    assert found["BKUP-DRILL-001"]["status"] == "pass", found["BKUP-DRILL-001"]["evidence"]
    drilled = found["BKUP-DRILL-001"]["evidence"]["sets"]["data"]
    assert drilled["files"] == 2 and drilled["live_compared"] == 2
    assert found["BKUP-LOCK-001"]["status"] == "pass", found["BKUP-LOCK-001"]["evidence"]
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


def test_post_hooks_ran_and_were_told_the_result(host):
    assert host.file("/var/tmp/fc-post-hook").content_string.strip() == "0"
    # cleanup after runs even when the pre hook failed
    assert host.file("/var/tmp/fc-post-hook-broken").content_string.strip() == "1"


def test_drill_cleaned_up_its_scratch_directory(host):
    assert host.run("ls -d /var/tmp/fleetcare-drill.* 2>/dev/null").stdout.strip() == ""
    assert _json(host, "/var/lib/fleetcare/backup/_drill.json")["scratch_removed"] is True


def test_unreadable_source_file_gives_a_partial_snapshot(host):
    run = _audit(host, "partial")["BKUP-RUN-001"]
    assert run["status"] == "fail" and run["severity"] == "minor", run["evidence"]
    assert run["evidence"]["unreadable"] == {"partial": ["/srv/fc-data/locked.txt"]}
    record = _json(host, "/var/lib/fleetcare/backup/partial.json")
    assert record["exit_code"] == 3 and record["snapshot_id"] and record["last_success"] is None


def test_a_live_lock_wedges_forget_prune_visibly(host):
    found = _audit(host, "wedged")
    assert found["BKUP-PRUNE-001"]["status"] == "fail"
    assert found["BKUP-PRUNE-001"]["evidence"]["meaning"] == "failed to lock the repository"
    lock = found["BKUP-LOCK-001"]
    assert lock["status"] == "fail" and lock["severity"] == "major", lock["evidence"]
    assert "forget" in lock["evidence"]["wedged_jobs"]
    assert lock["evidence"]["removed_recently"] == []  # the live lock was left alone


def test_a_killed_restics_stale_lock_is_removed_and_reported(host):
    found = _audit(host, "stalelock")
    pid = host.file("/var/tmp/fc-killed-pid").content_string.strip()
    lock = found["BKUP-LOCK-001"]
    assert lock["status"] == "fail" and lock["severity"] == "minor", lock["evidence"]
    assert [t for t in lock["evidence"]["removed_recently"] if f", pid {pid}," in t]
    assert found["BKUP-PRUNE-001"]["status"] == "pass"  # no longer wedged
    assert host.check_output(ENV + " restic --no-lock list locks").strip() == ""


def test_a_corrupted_pack_fails_check_and_drill(host):
    found = _audit(host, "corrupt")
    assert found["BKUP-CHECK-001"]["status"] == "fail", found["BKUP-CHECK-001"]["evidence"]
    drill = found["BKUP-DRILL-001"]
    assert drill["status"] == "fail" and drill["severity"] == "major"
    failed = drill["evidence"]["failed"]["data"]
    assert failed["unreadable"] or failed["mismatched"] or failed["error"], failed


def test_a_wrong_password_is_recognised(host):
    repo = _audit(host, "password")["BKUP-REPO-001"]
    assert repo["status"] == "fail" and repo["evidence"]["problem"] == "wrong password", repo["evidence"]


def test_a_missing_repository_is_reported_not_initialised(host):
    repo = _audit(host, "missing")["BKUP-REPO-001"]
    assert repo["status"] == "fail", repo["evidence"]
    assert repo["evidence"]["problem"] == "repository does not exist", repo["evidence"]
    assert not host.file("/var/backups/fc-absent").exists

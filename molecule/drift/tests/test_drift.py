"""The second snapshot against the baseline, judged by the wrapper's own code."""

import json
import os
from pathlib import Path

from fleetcare import drift

HOSTS = ("drift-debian11", "drift-debian12", "drift-debian13")
INJECTED = "drift-debian12"


def snaps(host):
    base = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
    return [json.loads((base / f"{host}.{stage}.json").read_text())["data"] for stage in ("baseline", "after")]


def failing(host):
    before, after = snaps(host)
    return [f for f in drift.drift_findings(before, after, 1) if f["status"] == "fail"]


def test_a_host_left_alone_has_no_drift():
    for host in HOSTS:
        if host != INJECTED:
            assert failing(host) == [], host


def test_each_injected_drift_is_found_with_its_category_and_evidence():
    found = {f["evidence"]["item"]: f for f in failing(INJECTED)}
    expect = {"files:/etc/ssh/sshd_config": "DRFT-FILE-001", "packages:bash:amd64": "DRFT-PKG-001",
              "accounts:user:fcdrift": "DRFT-USER-001",
              "ports:tcp/0.0.0.0:47123": "DRFT-PORT-001", "cron:/etc/cron.d/fcdrift": "DRFT-CRON-001",
              "services:fcdrift.service": "DRFT-SVC-001", "sudo:fcdrift": "DRFT-SUDO-001",
              "mounts:/mnt/fcdrift": "DRFT-MOUNT-001", "files:/etc/fcdrift.conf": "DRFT-FILE-001"}
    missing = {item: fid for item, fid in expect.items() if item not in found}
    assert not missing, sorted(found)
    for item, fid in expect.items():
        assert found[item]["id"] == fid
    assert found["packages:bash:amd64"]["evidence"]["after"]["hold"] is True
    assert found["sudo:fcdrift"]["evidence"]["after"] == {"rules": ["ALL = (ALL) NOPASSWD: ALL"]}
    assert "nosuid" in found["mounts:/mnt/fcdrift"]["evidence"]["after"]["options"]


def test_a_drifted_text_file_has_a_diff_and_the_planted_secret_never_left_the_host():
    found = {f["evidence"]["item"]: f for f in failing(INJECTED)}
    diff = found["files:/etc/fcdrift.conf"]["evidence"]["diff"]
    assert "-workers = 4\n+workers = 8\n+password = <redacted>\n" in diff
    base = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
    payloads = sorted(base.glob("drift-debian*.json"))
    assert len(payloads) == 6
    for path in payloads:
        assert b"molecule-s3cret" not in path.read_bytes(), path


def test_the_snapshot_changed_nothing_on_the_host(host):
    """side_effect.yml touches /run/fcdrift.mark just before the second snapshot: nothing the
    snapshot reads (configuration, package database, crontabs, accounts) is newer than it."""
    newer = host.check_output("find /etc /var/lib/dpkg /var/spool/cron -newer /run/fcdrift.mark -print")
    assert newer == ""

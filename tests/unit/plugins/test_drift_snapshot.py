"""fleetcare.ops.drift_snapshot on a fake root directory, and the controller's comparison of
two snapshots (fleetcare.drift), no Ansible run."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

from fleetcare import drift

ROOT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("fleetcare_drift_snapshot", ROOT / "plugins/modules/drift_snapshot.py")
ds = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ds)

PARAMS = {"paths": ["/etc"], "excludes": ["/etc/skip*"], "max_files": 100, "sysctl_exclude": ["vm.*"]}
DPKG = """Package: curl
Status: install ok installed
Architecture: amd64
Version: 7.88.1-10

Package: vim
Status: hold ok installed
Architecture: amd64
Version: 2:9.0

Package: gone
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0
"""
# 0.0.0.0:22 listening, 127.0.0.1:631 established (not listed), udp [::]:53 unconnected
TCP = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
       "   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111\n"
       "   1: 0100007F:0277 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2222\n")
UDP6 = ("  sl  local_address                         remote_address                        st tx_queue rx_queue "
        "tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
        "  0: 00000000000000000000000000000000:0035 00000000000000000000000000000000:0000 07 00000000:00000000 "
        "00:00000000 00000000   101        0 3333 2 0000000000000000 0\n")


def fake_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    files = {
        "etc/ssh/sshd_config": "PermitRootLogin no\n",
        "etc/skipme": "changes by itself\n",
        "etc/passwd": "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n",
        "etc/group": "root:x:0:\nsudo:x:27:bob,alice\n",
        "etc/cron.d/backup": "0 1 * * * root /usr/local/bin/backup\n",
        "var/spool/cron/crontabs/alice": "@reboot echo hi\n",
        "var/lib/dpkg/status": DPKG,
        "proc/sys/net/ipv4/ip_forward": "0\n",
        "proc/sys/kernel/random/uuid": "random\n",
        "proc/sys/vm/swappiness": "60\n",
        "proc/net/tcp": TCP,
        "proc/net/udp6": UDP6,
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    os.chmod(root / "etc/ssh/sshd_config", 0o600)
    os.symlink("ssh/sshd_config", root / "etc/link")
    return root


def test_a_snapshot_of_a_fake_root_records_every_category(tmp_path):
    root = fake_root(tmp_path)
    out = ds.run(PARAMS, root=str(root))["fleetcare"]
    (found,) = out["findings"]
    assert (found["id"], found["status"]) == ("DRFT-SNAP-001", "pass")
    data = out["data"]
    sshd = data["files"]["/etc/ssh/sshd_config"]
    assert sshd["sha256"] == hashlib.sha256(b"PermitRootLogin no\n").hexdigest()
    assert (sshd["mode"], sshd["size"]) == ("0600", 19)
    assert data["files"]["/etc/link"]["target"] == "ssh/sshd_config"
    assert "/etc/skipme" not in data["files"]
    assert data["packages"] == {"curl:amd64": {"version": "7.88.1-10", "arch": "amd64", "hold": False},
                                "vim:amd64": {"version": "2:9.0", "arch": "amd64", "hold": True}}
    assert data["accounts"]["user:alice"] == {"uid": "1000", "gid": "1000", "home": "/home/alice", "shell": "/bin/sh"}
    assert data["accounts"]["group:sudo"]["members"] == "alice,bob"
    assert data["sysctl"] == {"net.ipv4.ip_forward": "0"}  # random values and excluded keys left out
    assert set(data["ports"]) == {"tcp/0.0.0.0:22", "udp/[::]:53"}
    assert set(data["cron"]) == {"/etc/cron.d/backup", "/var/spool/cron/crontabs/alice"}
    assert "services" not in data and found["evidence"]["not_recorded"]["services"]


def test_more_files_than_the_bound_is_a_clear_failure_with_no_snapshot(tmp_path):
    root = fake_root(tmp_path)
    out = ds.run(dict(PARAMS, max_files=3), root=str(root))["fleetcare"]
    (found,) = out["findings"]
    assert (found["id"], found["status"]) == ("DRFT-SNAP-001", "fail")
    assert "more than 3 files under /etc" in found["evidence"]["reason"]
    assert "data" not in out


def test_services_parse_enabled_and_active_state():
    def runner(argv):
        if argv[1] == "list-unit-files":
            return 0, "ssh.service enabled enabled\ncron.service disabled enabled\nfoo@.service static -\n" \
                      "apt-daily.timer enabled enabled\n", ""
        return 0, "ssh.service loaded active running OpenSSH\napt-daily.timer loaded active waiting x\n", ""

    units = ds.snapshot_services(runner)
    assert units == {"ssh.service": {"enabled": "enabled", "active": "active"},
                     "cron.service": {"enabled": "disabled", "active": "inactive"},
                     "apt-daily.timer": {"enabled": "enabled", "active": "active"}}
    assert ds.snapshot_cron(units, root="/nonexistent") == {"timer:apt-daily.timer": units["apt-daily.timer"]}


def test_one_finding_per_drifted_item_with_before_and_after(tmp_path):
    root = fake_root(tmp_path)
    before = ds.run(PARAMS, root=str(root))["fleetcare"]["data"]
    (root / "etc/ssh/sshd_config").write_text("PermitRootLogin yes\n")
    with open(root / "etc/passwd", "a") as fh:
        fh.write("mallory:x:1001:1001::/home/m:/bin/bash\n")
    (root / "proc/sys/net/ipv4/ip_forward").write_text("1\n")
    (root / "etc/cron.d/miner").write_text("* * * * * root /tmp/x\n")
    after = ds.run(PARAMS, root=str(root))["fleetcare"]["data"]
    assert drift.drift_findings(before, before, 1) and not [
        f for f in drift.drift_findings(before, before, 1) if f["status"] == "fail"]
    failing = {f["evidence"]["item"]: f for f in drift.drift_findings(before, after, 1) if f["status"] == "fail"}
    assert failing["files:/etc/ssh/sshd_config"]["id"] == "DRFT-FILE-001"
    assert failing["accounts:user:mallory"]["id"] == "DRFT-USER-001"
    assert failing["accounts:user:mallory"]["evidence"]["change"] == "added"
    sysctl = failing["sysctl:net.ipv4.ip_forward"]
    assert (sysctl["id"], sysctl["evidence"]["before"], sysctl["evidence"]["after"]) == ("DRFT-SYSCTL-001", "0", "1")
    assert failing["cron:/etc/cron.d/miner"]["id"] == "DRFT-CRON-001"
    # the passwd file drifted as a file too; nothing else did
    assert set(failing) == {"files:/etc/ssh/sshd_config", "files:/etc/passwd", "files:/etc/cron.d/miner",
                            "accounts:user:mallory", "sysctl:net.ipv4.ip_forward", "cron:/etc/cron.d/miner"}

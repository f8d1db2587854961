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
    assert data["accounts"]["user:alice"] == {"uid": "1000", "gid": "1000", "home": "/home/alice", "shell": "/bin/sh",
                                             "groups": "sudo"}
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


# -- kernel modules, mounts, sudo rights, group membership (a container cannot load modules
# nor, unprivileged, change its mounts' options: these are proven on fake /proc files) ----------
MODULES = ("overlay 151552 2 - Live 0x0000000000000000\n"
           "nf_tables 327680 0 - Live 0x0000000000000000\n")
MOUNTINFO = (
    "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
    "23 27 0:22 / /sys rw,nosuid - sysfs sysfs rw\n"
    "27 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n"
    "30 27 0:25 / /tmp rw,nosuid,nodev shared:5 - tmpfs tmpfs rw,size=1024k\n"
    "31 27 0:26 / /run/user/1000 rw,nosuid - tmpfs tmpfs rw,size=800k,mode=700\n"
    "32 27 8:2 / /srv/my\\040data rw - ext4 /dev/sda2 rw\n"
    "33 23 0:27 / /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n")
SUDOERS = """# comment
Defaults\tenv_reset
Defaults secure_path="/usr/sbin:/usr/bin"
User_Alias ADMINS = alice, bob
Cmnd_Alias RESTART = /bin/systemctl restart nginx, \\
                     /bin/systemctl restart php-fpm
root    ALL=(ALL:ALL) ALL
%sudo   ALL=(ALL:ALL) ALL
ADMINS  ALL = (root) NOPASSWD: RESTART
#1000   ALL = ALL  # a uid, not a comment
@includedir /etc/sudoers.d
"""


def sudo_root(tmp_path: Path) -> Path:
    root = fake_root(tmp_path)
    extra = {"proc/modules": MODULES, "proc/self/mountinfo": MOUNTINFO, "etc/sudoers": SUDOERS,
             "etc/sudoers.d/deploy": "deploy ALL=(www-data) NOPASSWD: /usr/bin/rsync\n",
             "etc/sudoers.d/README.dpkg-old": "evil ALL=(ALL) NOPASSWD: ALL\n",
             "etc/sudoers.d/backup~": "evil ALL=(ALL) NOPASSWD: ALL\n"}
    for rel, text in extra.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_kernel_modules_mounts_and_sudo_rights_are_recorded(tmp_path):
    root = sudo_root(tmp_path)
    data = ds.run(PARAMS, root=str(root))["fleetcare"]["data"]
    assert data["kmods"] == {"overlay": {"state": "Live"}, "nf_tables": {"state": "Live"}}
    # proc, sysfs, cgroup2 and /run/user are noise; an escaped space is a space
    assert set(data["mounts"]) == {"/", "/tmp", "/srv/my data"}
    assert data["mounts"]["/tmp"] == {"fstype": "tmpfs", "source": "tmpfs",
                                      "options": "nodev,nosuid,rw,size=1024k"}
    sudo = data["sudo"]
    assert sudo["alice"] == sudo["bob"] == {"rules": [
        "ALL = (root) NOPASSWD: /bin/systemctl restart nginx, /bin/systemctl restart php-fpm"]}
    assert sudo["%sudo"] == {"rules": ["ALL = (ALL:ALL) ALL"]}
    assert sudo["deploy"] == {"rules": ["ALL = (www-data) NOPASSWD: /usr/bin/rsync"]}
    assert "evil" not in sudo  # sudo skips names with a '.' or ending in '~'
    assert sudo["#1000"] == {"rules": ["ALL = ALL"]} and len(sudo["Defaults"]["rules"]) == 2
    # membership per user, beside the group's own list
    assert data["accounts"]["user:alice"]["groups"] == "sudo"
    assert data["accounts"]["user:root"]["groups"] == ""


def test_a_new_module_mount_option_sudo_rule_and_group_member_are_each_a_finding(tmp_path):
    root = sudo_root(tmp_path)
    before = ds.run(PARAMS, root=str(root))["fleetcare"]["data"]
    with open(root / "proc/modules", "a") as fh:
        fh.write("usb_storage 81920 0 - Live 0x0000000000000000\n")
    (root / "proc/self/mountinfo").write_text(MOUNTINFO.replace("/tmp rw,nosuid,nodev", "/tmp rw,nosuid"))
    (root / "etc/sudoers.d/mallory").write_text("mallory ALL=(ALL) NOPASSWD: ALL\n")
    (root / "etc/group").write_text("root:x:0:\nsudo:x:27:bob,alice,carol\n")
    with open(root / "etc/passwd", "a") as fh:
        fh.write("carol:x:1002:1002::/home/carol:/bin/sh\n")
    after = ds.run(PARAMS, root=str(root))["fleetcare"]["data"]
    failing = {f["evidence"]["item"]: f for f in drift.drift_findings(before, after, 1) if f["status"] == "fail"}
    assert failing["kmods:usb_storage"]["id"] == "DRFT-KMOD-001"
    mount = failing["mounts:/tmp"]
    assert mount["id"] == "DRFT-MOUNT-001" and "nodev" in mount["evidence"]["before"]["options"]
    assert "nodev" not in mount["evidence"]["after"]["options"]
    assert failing["sudo:mallory"]["id"] == "DRFT-SUDO-001"
    assert failing["sudo:mallory"]["evidence"]["after"] == {"rules": ["ALL = (ALL) NOPASSWD: ALL"]}
    assert failing["accounts:user:carol"]["evidence"]["after"]["groups"] == "sudo"
    assert failing["accounts:group:sudo"]["evidence"]["after"]["members"] == "alice,bob,carol"


def test_a_category_the_baseline_lacks_is_not_judged_item_by_item(tmp_path):
    root = sudo_root(tmp_path)
    now = ds.run(PARAMS, root=str(root))["fleetcare"]["data"]
    old = {k: v for k, v in now.items() if k not in ("kmods", "mounts", "sudo")}
    found = drift.drift_findings(old, now, 3)
    assert not [f for f in found if f["status"] == "fail"]
    skipped = {f["id"]: f for f in found if f["status"] == "not_applicable"}
    assert set(skipped) == {"DRFT-KMOD-001", "DRFT-MOUNT-001", "DRFT-SUDO-001"}
    assert "baseline version 3 does not record sudo" in skipped["DRFT-SUDO-001"]["evidence"]["reason"]


def test_without_proc_modules_or_sudoers_the_category_is_named_not_recorded(tmp_path):
    out = ds.run(PARAMS, root=str(fake_root(tmp_path)))["fleetcare"]
    assert not {"kmods", "sudo", "mounts"} & set(out["data"])
    assert {"kmods", "sudo", "mounts"} <= set(out["findings"][0]["evidence"]["not_recorded"])


def test_explain_knows_the_new_drift_ids():
    from fleetcare import catalog

    for fid in ("DRFT-KMOD-001", "DRFT-MOUNT-001", "DRFT-SUDO-001"):
        assert "drifted from the baseline" in catalog.explain(fid)


# -- unified diffs with secrets redacted on the host ---------------------------------------------
SECRET = "hunter2-XyZ"
APP_CONF = f"""listen = 8080
db_password = {SECRET}
  "api_token": "{SECRET}"
# password: {SECRET}
url = postgres://app:{SECRET}@db/app
requirepass {SECRET}
AWS_SECRET_ACCESS_KEY={SECRET}
-----BEGIN OPENSSH PRIVATE KEY-----
{SECRET}
-----END OPENSSH PRIVATE KEY-----
workers = 4
"""
TEXT_PARAMS = dict(PARAMS, text_max_bytes=4096, text_budget=1 << 20)


def text_root(tmp_path: Path) -> Path:
    root = fake_root(tmp_path)
    (root / "etc/app.conf").write_text(APP_CONF)
    os.chmod(root / "etc/app.conf", 0o644)
    (root / "etc/private.conf").write_text(f"{SECRET}\n")  # not world-readable: a digest only
    os.chmod(root / "etc/private.conf", 0o640)
    (root / "etc/blob.bin").write_bytes(b"\0\1\2" + SECRET.encode())
    os.chmod(root / "etc/blob.bin", 0o644)
    (root / "etc/big.conf").write_text("x = 1\n" * 1000)
    os.chmod(root / "etc/big.conf", 0o644)
    return root


def test_redaction_keeps_keys_and_hides_values():
    from fleetcare.collection import module_utils

    out = module_utils("redact").redact(APP_CONF)
    assert SECRET not in out
    assert "listen = 8080\n" in out and "workers = 4\n" in out
    assert "db_password = <redacted>\n" in out and "url = postgres://app:<redacted>@db/app" in out
    assert "requirepass <redacted>" in out and "-----BEGIN OPENSSH PRIVATE KEY-----\n<redacted>\n" in out
    assert module_utils("redact").redact_line("see https://u:pw@h/x") == "see https://u:<redacted>@h/x"


def test_only_small_world_readable_text_travels_redacted_and_known_texts_stay_home(tmp_path):
    root = text_root(tmp_path)
    out = ds.run(TEXT_PARAMS, root=str(root))["fleetcare"]
    texts = out["data"]["texts"]
    assert "/etc/app.conf" in texts and "/etc/private.conf" not in texts
    assert "/etc/blob.bin" not in texts and "/etc/big.conf" not in texts  # binary; over 4096 bytes
    assert SECRET not in repr(out)  # nowhere in the payload
    sha = out["data"]["files"]["/etc/app.conf"]["sha256"]
    assert sha == hashlib.sha256(APP_CONF.encode()).hexdigest()  # the digest is of the real file
    again = ds.run(dict(TEXT_PARAMS, known={"/etc/app.conf": sha[:16], "/etc/ssh/sshd_config": "-"}),
                   root=str(root))["fleetcare"]
    # known and unchanged, or known to have no text in the baseline: neither travels
    assert not {"/etc/app.conf", "/etc/ssh/sshd_config"} & set(again["data"].get("texts", {}))
    assert again["findings"][0]["evidence"]["texts"]["sent"] == len(texts) - 1  # sshd_config is 0600 anyway
    (root / "etc/app.conf").write_text("changed = 1\n")
    (root / "etc/group").write_text("root:x:0:\n")
    known = {"/etc/app.conf": sha[:16], "/etc/group": "-"}
    changed = ds.run(dict(TEXT_PARAMS, known=known), root=str(root))["fleetcare"]["data"]["texts"]
    assert changed["/etc/app.conf"] == "changed = 1\n" and "/etc/group" not in changed
    tight = ds.run(dict(TEXT_PARAMS, text_budget=5), root=str(root))["fleetcare"]
    assert "texts" not in tight["data"] and tight["findings"][0]["evidence"]["texts"]["over_budget"] >= 1
    assert "texts" not in ds.run(PARAMS, root=str(root))["fleetcare"]["data"]  # no text_max_bytes: none


def test_a_drifted_file_shows_a_unified_diff_and_the_secret_reaches_no_report_nor_history(tmp_path):
    from fleetcare import reports
    from fleetcare.history import History
    from fleetcare.results import Run

    root = text_root(tmp_path)

    def run_of(run_id, params):
        run = Run(id=run_id, command="drift", fail_on="major")
        run.add_payload("web1", ds.run(params, root=str(root))["fleetcare"])
        run.set_status("web1", "ok")
        return run

    db = tmp_path / "h.db"
    with History(db) as history:
        drift.take_baseline(history, run_of("r1", TEXT_PARAMS), by="alice")
        known = drift.known_digests(history, "web1")
        assert known["/etc/app.conf"] == drift.latest(history, "web1")[1]["files"]["/etc/app.conf"]["sha256"][:16]
        assert known["/etc/private.conf"] == "-"  # no text in the baseline: never sent on a drift run
        assert "/etc/private.conf" not in drift.known_digests(history, "web1", baseline=True)
        (root / "etc/app.conf").write_text(APP_CONF.replace("workers = 4", "workers = 8")
                                           .replace(f"db_password = {SECRET}", f"db_password = {SECRET}-2"))
        (root / "etc/private.conf").write_text(f"{SECRET}-3\n")
        run = run_of("r2", dict(TEXT_PARAMS, known=known))
        assert set(run.hosts["web1"].data["drift"]["texts"]) == {"/etc/app.conf"}  # only what changed travels
        drift.judge(history, run)
        found = {f.evidence["item"]: f for f in run.hosts["web1"].findings if f.failing and "item" in f.evidence}
        app = found["files:/etc/app.conf"].evidence
        assert "-workers = 4\n+workers = 8\n" in app["diff"] and app["diff"].startswith("--- baseline/etc/app.conf")
        assert "db_password" not in app["diff"]  # the secret line changed, but it reads the same redacted
        assert "no diff" in found["files:/etc/private.conf"].evidence["diff_note"]
        run.finish()
        run_dir = tmp_path / "run"
        run_dir.mkdir()
        written = reports.write_all(run, run_dir)
        history.save(run)
        assert drift.accept(history, "web1", ["files:/etc/app.conf"], "more workers", by="bob")[0] == 2
        assert "workers = 8" in drift.latest(history, "web1")[1]["texts"]["/etc/app.conf"]
    assert written and all(SECRET.encode() not in p.read_bytes() for p in written.values())
    for path in tmp_path.glob("h.db*"):
        assert SECRET.encode() not in path.read_bytes(), path


def test_a_private_key_without_its_end_line_is_hidden_to_the_end():
    from fleetcare.collection import module_utils

    redact = module_utils("redact").redact
    out = redact(f"a = 1\n-----BEGIN RSA PRIVATE KEY-----\n{SECRET}\nmore{SECRET}\n")
    assert SECRET not in out and out.startswith("a = 1\n-----BEGIN RSA PRIVATE KEY-----\n<redacted>\n")
    both = redact(f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\nafter = ok\n")
    assert both == "-----BEGIN PRIVATE KEY-----\n<redacted>\n-----END PRIVATE KEY-----\nafter = ok\n"
    assert redact("plain text, nothing here\n") == "plain text, nothing here\n"


def test_only_the_categories_asked_for_are_recorded(tmp_path):
    root = sudo_root(tmp_path)
    out = ds.run(dict(PARAMS, categories=["packages", "sudo"]), root=str(root))["fleetcare"]
    assert set(out["data"]) == {"packages", "sudo"}
    assert "not_recorded" not in out["findings"][0]["evidence"]  # services were not asked for
    from fleetcare.collection import module_utils

    (bad,) = module_utils("validation").drift_problems({"categories": ["files", "crons"]})
    assert "unknown category 'crons'" in bad[1]

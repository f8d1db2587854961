"""fleetcare.ops.health_inspect: parsers and judgements against fixture text, no Ansible run."""

from __future__ import annotations

import base64
import calendar
import importlib
import os
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "health"


# The checks live in module_utils (the module is a thin shell), imported by collection name
# (conftest.py puts the collection on the path).
hi = importlib.import_module("ansible_collections.fleetcare.ops.plugins.module_utils.health_inspection")

from ansible_collections.fleetcare.ops.plugins.module_utils import debian, host, x509  # noqa: E402
from ansible_collections.fleetcare.ops.plugins.module_utils.health_checks import BY_ID, CHECKS  # noqa: E402

PARAMS = {name: opt.get("default") for name, opt in hi.ARGUMENT_SPEC.items()}


def make_ctx(tmp_path, **overrides):
    params = dict(PARAMS, **overrides)
    return hi.Context(params, root=str(tmp_path))


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ---------------------------------------------------------------- /proc parsers


def test_loadavg():
    assert hi.parse_loadavg("0.52 1.50 2.25 3/412 12345\n") == (0.52, 1.5, 2.25)


STAT_BEFORE = """cpu  1000 0 500 8000 100 0 0 0 0 0
cpu0 500 0 250 4000 50 0 0 0 0 0
intr 1
"""
STAT_AFTER = """cpu  1010 0 510 8040 30 0 0 10 0 0
cpu0 505 0 255 4020 15 0 0 5 0 0
"""


def test_cpu_percentages_from_two_samples():
    before, after = hi.parse_cpu_stat(STAT_BEFORE), hi.parse_cpu_stat(STAT_AFTER)
    pcts = hi.cpu_percentages(before, after)
    # deltas: user 10, system 10, idle 40, iowait -70 (clamped to 0), steal 10 -> total 70
    assert pcts["steal"] == pytest.approx(100 * 10 / 70)
    assert pcts["iowait"] == 0.0


def test_cpu_stat_with_few_fields_and_no_time_passing():
    sample = hi.parse_cpu_stat("cpu  1 2 3 4\n")
    assert sample["steal"] == 0
    assert set(hi.cpu_percentages(sample, sample).values()) == {0.0}


def test_cpu_stat_without_aggregate_line():
    with pytest.raises(hi.CheckError):
        hi.parse_cpu_stat("cpu0 1 2 3\n")


MEMINFO = """MemTotal:        1000000 kB
MemFree:          100000 kB
MemAvailable:     250000 kB
SwapTotal:        200000 kB
SwapFree:          50000 kB
HugePages_Total:       0
"""


def test_memory_and_swap_from_meminfo():
    info = hi.parse_keyvalue_kb(MEMINFO)
    assert info["MemTotal"] == 1000000 * 1024
    assert info["HugePages_Total"] == 0
    assert hi.memory_usage(info)["used_pct"] == pytest.approx(75.0)
    assert hi.swap_usage(info)["used_pct"] == pytest.approx(75.0)


def test_memory_without_memavailable_is_an_error():
    with pytest.raises(hi.CheckError, match="MemAvailable"):
        hi.memory_usage(hi.parse_keyvalue_kb("MemTotal: 100 kB\n"))


def test_no_swap_passes_and_says_so(tmp_path):
    write(tmp_path, "proc/meminfo", "MemTotal: 100 kB\nMemAvailable: 50 kB\nSwapTotal: 0 kB\n")
    status, severity, evidence, _metrics = hi.check_swap(make_ctx(tmp_path))
    assert (status, severity) == ("pass", "minor")
    assert "no swap" in evidence["note"]
    assert evidence["threshold_pct"] == PARAMS["swap_warn_pct"]


def test_memory_check_grades_critical(tmp_path):
    write(tmp_path, "proc/meminfo", "MemTotal: 1000 kB\nMemAvailable: 10 kB\n")
    status, severity, evidence, _ = hi.check_memory(make_ctx(tmp_path))
    assert (status, severity) == ("fail", "critical")
    assert evidence["used_pct"] == 99.0


DISKSTATS_BEFORE = """   8       0 sda 100 0 2000 50 10 0 80 20 0 1000 70 0 0 0 0
   8       1 sda1 100 0 2000 50 10 0 80 20 0 1000 70 0 0 0 0
   7       0 loop0 1 0 2 0 0 0 0 0 0 0 0 0 0 0 0
 253       0 dm-0 5 0 10 1 1 0 1 1 0 500 2 0 0 0 0
"""
DISKSTATS_AFTER = """   8       0 sda 120 0 2400 60 12 0 90 25 0 1200 90 0 0 0 0
   8       1 sda1 120 0 2400 60 12 0 90 25 0 1200 90 0 0 0 0
   7       0 loop0 9 0 20 9 0 0 0 0 0 250 9 0 0 0 0
 253       0 dm-0 5 0 10 1 1 0 1 1 0 900 2 0 0 0 0
"""


def test_io_utilisation_only_for_whole_disks():
    before, after = hi.parse_diskstats(DISKSTATS_BEFORE), hi.parse_diskstats(DISKSTATS_AFTER)
    util = hi.io_utilisation(before, after, 0.25, sys_block={"sda", "loop0", "dm-0"})
    # sda: 200 ms busy in a 250 ms window; dm-0 400 ms is clamped; loops and partitions skipped
    assert util == {"sda": pytest.approx(80.0), "dm-0": 100.0}


def test_disk_io_check_names_the_worst_device(tmp_path):
    ctx = make_ctx(tmp_path)
    ctx.before["diskstats"] = hi.parse_diskstats(DISKSTATS_BEFORE)
    ctx.after["diskstats"] = hi.parse_diskstats(DISKSTATS_AFTER)
    ctx.elapsed = 0.25
    status, severity, evidence, metrics = hi.check_disk_io(ctx)
    assert (status, severity) == ("fail", "major")
    assert evidence["device"] == "dm-0"
    assert [o["device"] for o in evidence["over_threshold"]] == ["dm-0", "sda"]
    assert {m["labels"]["device"] for m in metrics} == {"sda", "dm-0"}


def test_a_failed_sample_is_reported_by_the_check(tmp_path):
    ctx = make_ctx(tmp_path)
    ctx.before["diskstats"] = OSError("no such file")
    ctx.after["diskstats"] = {}
    finding, metrics = hi.run_check(ctx, BY_ID["HLTH-DISK-003"], hi.check_disk_io)
    assert finding["status"] == "error"
    assert "/proc/diskstats" in finding["evidence"]["reason"]
    assert metrics == []


NET_BEFORE = """Inter-|   Receive                                                |  Transmit
 face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier
    lo:  100  10 0 0 0 0 0 0  100  10 0 0 0 0 0 0
  eth0: 5000 1000 5 30 0 0 0 0 4000 1000 0 5 0 0 0 0
  eth1: 5000 1000 0 0 0 0 0 0 4000 1000 0 0 0 0 0 0
"""
NET_AFTER = """Inter-|   Receive                                                |  Transmit
 face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier
    lo:  100  10 0 0 0 0 0 0  100  10 0 0 0 0 0 0
  eth0: 5000 1100 5 30 0 0 0 0 4000 1100 0 5 0 0 0 0
  eth1: 5000 1100 20 0 0 0 0 0 4000 1000 0 0 0 0 0 0
"""


def test_net_dev_parser():
    counters = hi.parse_net_dev(NET_BEFORE)
    assert set(counters) == {"lo", "eth0", "eth1"}
    assert counters["eth0"]["rx_drop"] == 30
    assert hi.net_bad_and_packets(counters["eth0"]) == (40, 2000)


def test_net_check_since_boot_and_window(tmp_path):
    ctx = make_ctx(tmp_path)
    ctx.before["net_dev"] = hi.parse_net_dev(NET_BEFORE)
    ctx.after["net_dev"] = hi.parse_net_dev(NET_AFTER)
    ctx.elapsed = 0.25
    status, severity, evidence, metrics = hi.check_net(ctx)
    # eth1: 20 errors in a 100-packet window = 20 % >= 5 %, so major; eth0: 1 % since boot
    assert (status, severity) == ("fail", "major")
    assert evidence["iface"] == "eth1"
    assert evidence["window_errors_drops"] == 20
    assert {o["iface"] for o in evidence["over_threshold"]} == {"eth0", "eth1"}
    assert "lo" not in {m["labels"]["iface"] for m in metrics}


def test_net_check_ignores_tiny_windows(tmp_path):
    ctx = make_ctx(tmp_path, net_error_warn_pct=50.0)
    ctx.before["net_dev"] = hi.parse_net_dev(NET_BEFORE.replace("1000 0 0", "1095 0 0"))
    ctx.after["net_dev"] = hi.parse_net_dev(NET_AFTER)
    ctx.elapsed = 0.25
    status, _severity, evidence, _ = hi.check_net(ctx)
    assert status == "pass"
    assert evidence["window_pct"] == 0.0


def test_vmstat_and_oom(tmp_path):
    write(tmp_path, "proc/vmstat", "nr_free_pages 1\noom_kill 3\n")
    write(tmp_path, "proc/uptime", "86400.00 1.0\n")
    status, severity, evidence, _ = hi.check_oom(make_ctx(tmp_path))
    assert (status, severity) == ("fail", "major")
    assert evidence == {"oom_kills_since_boot": 3, "threshold_count": 0, "uptime_days": 1.0}


def test_old_kernel_without_oom_counter(tmp_path):
    write(tmp_path, "proc/vmstat", "nr_free_pages 1\n")
    finding, _ = hi.run_check(make_ctx(tmp_path), BY_ID["HLTH-OOM-001"], hi.check_oom)
    assert finding["status"] == "not_applicable"
    assert "4.13" in finding["evidence"]["reason"]


# ---------------------------------------------------------------- filesystems


def test_mounts_decode_octal_escapes_and_filter():
    text = (
        "/dev/sda1 / ext4 rw 0 0\nproc /proc proc rw 0 0\n"
        "/dev/sdb1 /srv/my\\040data xfs rw 0 0\nserver:/x /mnt/nfs nfs4 rw 0 0\n"
        "/dev/sdc1 /snap/core squashfs ro 0 0\n"
    )
    mounts = host.parse_mounts(text)
    assert mounts[2] == {"source": "/dev/sdb1", "mount": "/srv/my data", "fstype": "xfs", "options": ["rw"]}
    selected = hi.select_mounts(mounts, PARAMS["disk_fstypes"], ["/srv/*"])
    assert [m[1] for m in selected] == ["/"]


class FakeStatvfs:
    f_frsize = 4096
    f_blocks = 1000
    f_bfree = 100
    f_bavail = 50  # 50 blocks reserved for root
    f_files = 200
    f_ffree = 20


def test_statvfs_usage_counts_like_df():
    usage = hi.statvfs_usage(FakeStatvfs())
    assert usage["used_pct"] == pytest.approx(900 / 950 * 100)
    assert usage["inode_used_pct"] == pytest.approx(90.0)


def test_disk_checks_on_the_real_root_filesystem(tmp_path):
    write(
        tmp_path,
        "proc/self/mounts",
        "/dev/root / ext4 rw 0 0\n/dev/root /etc/hostname ext4 rw 0 0\ntmpfs /run tmpfs rw 0 0\n",
    )
    ctx = make_ctx(tmp_path, disk_warn_pct=0.0, disk_critical_pct=0.0)
    status, severity, evidence, _ = hi.check_disk_space(ctx)
    assert (status, severity) == ("fail", "critical")
    assert evidence["mount"] == "/"
    assert evidence["mounts_checked"] == 1  # the bind-mounted file is the same filesystem
    assert evidence["over_threshold"] == [{"mount": "/", "used_pct": evidence["used_pct"]}]
    ctx = make_ctx(tmp_path, disk_warn_pct=100.0, disk_critical_pct=100.0)
    assert hi.check_disk_space(ctx)[0] == "pass"


def test_disk_check_without_any_filesystem(tmp_path):
    write(tmp_path, "proc/self/mounts", "proc /proc proc rw 0 0\nsysfs /sys sysfs rw 0 0\n")
    finding, _ = hi.run_check(make_ctx(tmp_path), BY_ID["HLTH-DISK-001"], hi.check_disk_space)
    assert finding["status"] == "not_applicable"


def test_per_item_worst_and_over_threshold():
    items = [
        {"mount": "/", "used_pct": 50.0},
        {"mount": "/var", "used_pct": 97.0},
        {"mount": "/srv", "used_pct": 88.0},
    ]
    status, severity, evidence = hi._per_item(
        items, "used_pct", "mount", 85.0, 95.0, "major", "critical", "used_pct"
    )
    assert (status, severity) == ("fail", "critical")
    assert evidence["mount"] == "/var"
    assert evidence["over_threshold"] == [
        {"mount": "/var", "used_pct": 97.0},
        {"mount": "/srv", "used_pct": 88.0},
    ]
    assert evidence["threshold_pct"] == 85.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [(84.9, ("pass", "major")), (85.0, ("fail", "major")), (95.0, ("fail", "critical"))],
)
def test_grade_boundaries(value, expected):
    assert hi.grade(value, 85.0, 95.0, "major", "critical") == expected


# ---------------------------------------------------------------- systemd, time, journal


def test_failed_units_with_and_without_bullet():
    text = (
        "\u25cf nginx.service loaded failed failed A high performance web server\n"
        "certbot.service loaded failed failed Certbot\n\n"
    )
    assert hi.parse_failed_units(text) == ["nginx.service", "certbot.service"]


def test_units_not_applicable_without_systemd(tmp_path):
    finding, _ = hi.run_check(make_ctx(tmp_path), BY_ID["HLTH-UNIT-001"], hi.check_units)
    assert finding["status"] == "not_applicable"
    assert "PID 1" in finding["evidence"]["reason"]


def test_units_counts_failures_but_not_ignored_ones(tmp_path, monkeypatch):
    (tmp_path / "run/systemd/system").mkdir(parents=True)
    out = "nginx.service loaded failed failed nginx\nfoo-known.service loaded failed failed foo\n"
    monkeypatch.setattr(hi, "run_cmd", lambda argv, timeout=15: (0, out, ""))
    status, severity, evidence, _ = hi.check_units(make_ctx(tmp_path, units_ignore=["foo-*"]))
    assert (status, severity) == ("fail", "major")
    assert evidence["failed_units"] == ["nginx.service"]
    assert evidence["ignored_units"] == ["foo-known.service"]


def test_timedatectl_and_chronyc_parsers():
    props = host.parse_properties("Timezone=UTC\nNTP=yes\nNTPSynchronized=no\n")
    assert props["NTPSynchronized"] == "no"
    tracking = host.parse_properties("Reference ID : 00000000 ()\nLeap status  : Not synchronised\n", ":")
    assert tracking["Leap status"] == "Not synchronised"


def test_time_falls_back_to_timedatectl(tmp_path, monkeypatch):
    def no_adjtimex():
        raise OSError("no libc")

    def fake_cmd(argv, timeout=15):
        if argv[0] == "timedatectl":
            return 0, "NTP=yes\nNTPSynchronized=yes\n", ""
        raise FileNotFoundError("chronyc is not installed")

    monkeypatch.setattr(hi, "adjtimex_state", no_adjtimex)
    monkeypatch.setattr(hi, "run_cmd", fake_cmd)
    status, _sev, evidence, _ = hi.check_time(make_ctx(tmp_path))
    assert status == "pass"
    assert evidence["source"] == "timedatectl"
    assert "not installed" in evidence["services"]["chronyc"]


def test_time_unknown_is_an_error_not_a_pass(tmp_path, monkeypatch):
    def fail(*_args, **_kwargs):
        raise OSError("unavailable")

    monkeypatch.setattr(hi, "adjtimex_state", fail)
    monkeypatch.setattr(hi, "run_cmd", fail)
    finding, _ = hi.run_check(make_ctx(tmp_path), BY_ID["HLTH-TIME-001"], hi.check_time)
    assert finding["status"] == "error"


def test_time_unsynchronised_kernel_clock_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(hi, "adjtimex_state", lambda: (False, 16000000))
    monkeypatch.setattr(hi, "run_cmd", lambda *a, **k: (1, "", "Failed to connect to bus"))
    write(tmp_path, ".dockerenv", "")
    status, severity, evidence, _ = hi.check_time(make_ctx(tmp_path))
    assert (status, severity) == ("fail", "major")
    assert "host" in evidence["note"]


def test_journal_not_applicable_without_journald(tmp_path):
    finding, _ = hi.run_check(make_ctx(tmp_path), BY_ID["HLTH-LOG-001"], hi.check_log)
    assert finding["status"] == "not_applicable"


def test_journal_counts_errors(tmp_path, monkeypatch):
    write(tmp_path, "run/systemd/journal/socket", "")
    monkeypatch.setattr(hi, "run_cmd", lambda argv, timeout=15: (0, "3\n3\n2\n" * 20, ""))
    status, severity, evidence, _ = hi.check_log(make_ctx(tmp_path))
    assert (status, severity) == ("fail", "minor")
    assert evidence["error_count"] == 60
    assert evidence["threshold_count"] == 50


def test_journal_unreadable_for_a_plain_user(tmp_path, monkeypatch):
    write(tmp_path, "run/systemd/journal/socket", "")
    hint = "Hint: You are currently not seeing messages from other users and the system.\n"
    monkeypatch.setattr(hi, "run_cmd", lambda argv, timeout=15: (0, "", hint))
    finding, _ = hi.run_check(make_ctx(tmp_path), BY_ID["HLTH-LOG-001"], hi.check_log)
    assert finding["status"] == "error"
    assert "systemd-journal" in finding["evidence"]["reason"]


# ---------------------------------------------------------------- reboot and containers


def test_container_detection(tmp_path):
    assert host.detect_container(str(tmp_path)) == ("", "no container marker")
    write(tmp_path, "proc/1/cgroup", "0::/machine.slice/libpod-4f2a.scope\n")
    assert host.detect_container(str(tmp_path)) == ("libpod", "PID 1 cgroup names libpod")
    write(tmp_path, "run/systemd/container", "podman\n")
    assert host.detect_container(str(tmp_path)) == ("podman", "/run/systemd/container: podman")


def test_newest_kernel_orders_debian_releases():
    releases = ["5.10.0-28-amd64", "6.1.0-9-amd64", "6.1.0-18-amd64", "6.1.0-18-cloud-amd64"]
    assert debian.newest_kernel(releases) in ("6.1.0-18-amd64", "6.1.0-18-cloud-amd64")
    assert debian.kernel_key("6.1.0-18-amd64") > debian.kernel_key("6.1.0-9-amd64")
    assert debian.newest_kernel([]) is None


def test_reboot_flag_and_packages(tmp_path):
    write(tmp_path, "var/run/reboot-required", "*** System restart required ***\n")
    write(tmp_path, "var/run/reboot-required.pkgs", "libc6\nlinux-image-amd64\nlibc6\n")
    status, severity, evidence, _ = hi.check_reboot(make_ctx(tmp_path))
    assert (status, severity) == ("fail", "major")
    assert evidence["packages"] == ["libc6", "linux-image-amd64"]


def test_newer_installed_kernel_means_reboot(tmp_path):
    write(tmp_path, "boot/vmlinuz-999.0.0-1-amd64", "")
    status, _sev, evidence, _ = hi.check_reboot(make_ctx(tmp_path))
    assert status == "fail"
    assert evidence["newest_installed_kernel"] == "999.0.0-1-amd64"
    assert evidence["newer_kernel_installed"] is True


def test_container_judges_reboot_by_flag_only(tmp_path):
    write(tmp_path, "boot/vmlinuz-999.0.0-1-amd64", "")
    write(tmp_path, "run/.containerenv", "")
    status, _sev, evidence, _ = hi.check_reboot(make_ctx(tmp_path))
    assert status == "pass"
    assert "host's" in evidence["note"]


# ---------------------------------------------------------------- certificates (hand-built DER)


def der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        head = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        head = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + head + body


def name(cn: str) -> bytes:
    attr = der(0x30, der(0x06, b"\x55\x04\x0a") + der(0x0C, b"Acme"))
    common = der(0x30, der(0x06, b"\x55\x04\x03") + der(0x0C, cn.encode()))
    return der(0x30, der(0x31, attr) + der(0x31, common))


def certificate(cn: str, not_after: float, generalized: bool = False) -> bytes:
    if generalized:
        end = der(0x18, time.strftime("%Y%m%d%H%M%SZ", time.gmtime(not_after)).encode())
    else:
        end = der(0x17, time.strftime("%y%m%d%H%M%SZ", time.gmtime(not_after)).encode())
    start = der(0x17, b"200101000000Z")
    alg = der(0x30, der(0x06, b"\x2a\x86\x48\xce\x3d\x04\x03\x02"))
    tbs = der(
        0x30,
        der(0xA0, der(0x02, b"\x02"))
        + der(0x02, b"\x01\x23")
        + alg
        + name("Test CA")
        + der(0x30, start + end)
        + name(cn)
        + der(0x30, b"\x00" * 200),
    )
    return der(0x30, tbs + alg + der(0x03, b"\x00" + b"\x01" * 64))


def pem(*ders: bytes) -> str:
    blocks = []
    for blob in ders:
        body = base64.b64encode(blob).decode()
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        blocks.append("-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n")
    return "".join(blocks)


NOW = calendar.timegm((2026, 11, 25, 12, 0, 0, 0, 0, 0))
DAY = 86400


@pytest.mark.parametrize("generalized", [False, True])
def test_certificate_info_reads_not_after_and_cn(generalized):
    info = x509.certificate_info(certificate("web.example.test", NOW + 10 * DAY, generalized))
    assert info == {"not_after": NOW + 10 * DAY, "subject_cn": "web.example.test"}


def test_truncated_der_is_a_value_error():
    with pytest.raises(ValueError):
        x509.certificate_info(certificate("x", NOW)[:40])


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (100, ("pass", "major")),
        (20, ("fail", "major")),
        (5, ("fail", "critical")),
        (-3, ("fail", "critical")),
    ],
)
def test_certificate_grading(tmp_path, days, expected):
    write(tmp_path, "certs/site.pem", pem(certificate("site", NOW + days * DAY)))
    ctx = make_ctx(tmp_path, cert_paths=[str(tmp_path / "certs/*.pem")])
    status, severity, evidence, metrics = hi.check_certs(ctx, now=NOW)
    assert (status, severity) == expected
    assert evidence["days_left"] == days
    assert evidence["certificates"][0]["subject_cn"] == "site"
    assert metrics[0]["value"] == days


def test_chain_is_judged_by_its_first_expiry_and_bad_files_listed(tmp_path):
    write(
        tmp_path,
        "certs/chain.pem",
        pem(certificate("leaf", NOW + 200 * DAY), certificate("intermediate", NOW + 12 * DAY)),
    )
    write(tmp_path, "certs/garbage.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    write(tmp_path, "certs/key.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    ctx = make_ctx(tmp_path, cert_paths=[str(tmp_path / "certs/*.pem")])
    status, severity, evidence, _ = hi.check_certs(ctx, now=NOW)
    assert (status, severity) == ("fail", "major")
    assert evidence["certificates"][0]["subject_cn"] == "intermediate"
    assert {os.path.basename(u["path"]) for u in evidence["unreadable"]} == {"garbage.pem", "key.pem"}


def test_no_certificate_is_not_applicable_and_unreadable_only_is_error(tmp_path):
    ctx = make_ctx(tmp_path, cert_paths=[str(tmp_path / "none/*.pem")])
    finding, _ = hi.run_check(ctx, BY_ID["HLTH-CERT-001"], hi.check_certs)
    assert finding["status"] == "not_applicable"
    assert finding["evidence"]["threshold_days"] == 30
    write(tmp_path, "bad.pem", "not a certificate")
    ctx = make_ctx(tmp_path, cert_paths=[str(tmp_path / "bad.pem")])
    finding, _ = hi.run_check(ctx, BY_ID["HLTH-CERT-001"], hi.check_certs)
    assert finding["status"] == "error"
    assert finding["evidence"]["unreadable"][0]["reason"] == "no PEM certificate in the file"


# ---------------------------------------------------------------- runner, validation, the whole


def test_run_check_turns_any_exception_into_one_error_finding(tmp_path):
    def broken(_ctx):
        raise KeyError("oops")

    def unreadable(_ctx):
        raise PermissionError(13, "Permission denied", "/proc/x")

    ctx = make_ctx(tmp_path)
    crashed, _ = hi.run_check(ctx, BY_ID["HLTH-MEM-001"], broken)
    assert crashed["status"] == "error"
    assert "KeyError" in crashed["evidence"]["reason"]
    denied, _ = hi.run_check(ctx, BY_ID["HLTH-MEM-001"], unreadable)
    assert denied["evidence"]["reason"] == "cannot read /proc/x: Permission denied"
    assert denied["remediation"]


def test_backup_without_backup_sets_is_not_applicable(tmp_path):
    finding, _ = hi.run_check(make_ctx(tmp_path), BY_ID["HLTH-BKUP-001"], hi.check_backup)
    assert finding["status"] == "not_applicable"
    assert finding["evidence"] == {"threshold_hours": 26, "reason": "no fleetcare backup set on this host"}


def test_validate_names_role_variables():
    assert hi.validate(PARAMS) == []
    errors = hi.validate(dict(PARAMS, disk_warn_pct=120.0, mem_warn_pct=99.0, cert_critical_days=40))
    text = " ".join(errors)
    assert "health_disk_warn_pct" in text
    assert "health_mem_critical_pct must not be below" in text.replace("(", "").replace(")", "")
    assert "health_cert_critical_days" in text


def test_inspect_on_this_machine_gives_every_id_once():
    result = hi.inspect(dict(PARAMS, sample_seconds=0.01))
    body = result["fleetcare"]
    assert body["contract"] == 1 and body["role"] == "health"
    ids = [f["id"] for f in body["findings"]]
    assert ids == [c["id"] for c in CHECKS]
    assert len(set(ids)) == len(CHECKS) == 34
    for found in body["findings"]:
        assert set(found) == {"id", "title", "severity", "status", "evidence", "remediation", "references"}
        assert found["remediation"]
        if found["status"] in ("error", "not_applicable"):
            assert found["evidence"]["reason"]
        assert "traceback" not in found["evidence"], found
    assert all(isinstance(m["value"], float) for m in body["metrics"])
    # the controller's capacity forecast (HLTH-CAP-001) takes the host's threshold from here
    assert body["data"] == {"capacity_days": PARAMS["capacity_days"]}
    assert hi.inspect(dict(PARAMS, sample_seconds=0.01, capacity_days=3.5))["fleetcare"]["data"] == {
        "capacity_days": 3.5}


# ---------------------------------------------------------------- role, spec and module agree


def test_role_spec_defaults_and_module_options_agree():
    spec = yaml.safe_load((ROLE / "meta/argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    tasks = yaml.safe_load((ROLE / "tasks/main.yml").read_text())
    module_args = tasks[0]["fleetcare.ops.health_inspect"]
    assert set(spec) == set(defaults) == {"health_" + o for o in hi.ARGUMENT_SPEC}
    for option, arg in hi.ARGUMENT_SPEC.items():
        var = "health_" + option
        assert spec[var]["default"] == defaults[var] == arg["default"], var
        assert spec[var]["type"] == arg["type"], var
        assert module_args[option] == "{{ " + var + " }}"

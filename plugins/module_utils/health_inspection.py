# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

"""The health role's inspection: every check of module_utils/health_checks.py run in order over
one sampling window, returning the findings payload.

``health_inspect`` is a thin module around :func:`inspect`; the patching role's health gate
(``patching_audit``) calls the same function in its own process, so a patch run's gate costs no
extra round trip. :data:`ARGUMENT_SPEC` is the one place the options and their defaults live.
Standard library only: it runs on the managed host.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import ctypes
import ctypes.util
import fnmatch
import glob
import os
import re
import subprocess
import threading
import time

from ansible_collections.fleetcare.ops.plugins.module_utils.backup_status import (
    read_record, set_names, success_age_hours)
from ansible_collections.fleetcare.ops.plugins.module_utils.debian import (
    reboot_state, running_kernel)
from ansible_collections.fleetcare.ops.plugins.module_utils.findings import (
    CheckError, RESULT_KEY, NotApplicable, ToolMissing, grade, metric, payload, run_check as run_finding)
from ansible_collections.fleetcare.ops.plugins.module_utils.health_certs import check_certs_in_use, expiry_grade
from ansible_collections.fleetcare.ops.plugins.module_utils.health_checks import CHECKS as CHECK_RECORDS
from ansible_collections.fleetcare.ops.plugins.module_utils.health_services import (
    OPTIONS as SERVICE_OPTIONS, check_http, check_listening, check_mysql, check_postgresql, check_processes,
    check_redis, check_tcp, check_tls, check_units as check_declared_units)
from ansible_collections.fleetcare.ops.plugins.module_utils.health_system import (
    check_conntrack, check_edac, check_file_descriptors, check_kernel_log, check_raid, check_smart,
    check_ssh_failures, check_zombies, memory_fs_left_out, parse_diskstats_detail, performance_evidence,
    window_start)
from ansible_collections.fleetcare.ops.plugins.module_utils.host import (
    parse_mounts, parse_properties, probe, read_text, run_cmd, user_name)
from ansible_collections.fleetcare.ops.plugins.module_utils.x509 import certificate_info, pem_certificates
from ansible_collections.fleetcare.ops.plugins.module_utils.validation import health_problems

ROLE = "health"
# Below this many packets in the window a percentage of errors means nothing.
NET_WINDOW_MIN_PACKETS = 100
# Whole-disk names that never carry a workload worth judging.
SKIP_DEVICE_PREFIXES = ("loop", "ram", "zram", "fd", "sr", "nbd")


# --------------------------------------------------------------------------- helpers


def rnd(value, digits=1):
    return round(float(value), digits)


# --------------------------------------------------------------------------- parsers


def parse_loadavg(text):
    fields = text.split()
    return float(fields[0]), float(fields[1]), float(fields[2])


def parse_cpu_stat(text):
    """Aggregate CPU times (ticks) from /proc/stat."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
            values = [int(v) for v in line.split()[1:]]
            values += [0] * (len(names) - len(values))
            return dict((name, values[i]) for i, name in enumerate(names))
    raise CheckError("no aggregate cpu line in /proc/stat")


def cpu_percentages(before, after):
    """Share of CPU time per state between two samples, in percent."""
    delta = dict((k, max(0, after[k] - before[k])) for k in after)
    total = sum(delta.values())
    if total <= 0:
        return dict((k, 0.0) for k in delta)
    return dict((k, 100.0 * v / total) for k, v in delta.items())


def parse_keyvalue_kb(text):
    """/proc/meminfo style 'Key:   123 kB' into bytes (or plain numbers)."""
    out = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, rest = line.split(":", 1)
        parts = rest.split()
        if not parts:
            continue
        try:
            value = int(parts[0])
        except ValueError:
            continue
        if len(parts) > 1 and parts[1] == "kB":
            value *= 1024
        out[key.strip()] = value
    return out


def memory_usage(meminfo):
    total = meminfo.get("MemTotal")
    if not total:
        raise CheckError("MemTotal missing from /proc/meminfo")
    if "MemAvailable" not in meminfo:
        raise CheckError("MemAvailable missing from /proc/meminfo (kernel older than 3.14)")
    avail = meminfo["MemAvailable"]
    return {"total_bytes": total, "available_bytes": avail,
            "used_pct": 100.0 * (total - avail) / total}


def swap_usage(meminfo):
    total = meminfo.get("SwapTotal", 0)
    free = meminfo.get("SwapFree", 0)
    if total <= 0:
        return {"total_bytes": 0, "used_bytes": 0, "used_pct": 0.0}
    return {"total_bytes": total, "used_bytes": total - free,
            "used_pct": 100.0 * (total - free) / total}


def parse_vmstat(text):
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            with contextlib.suppress(ValueError):
                out[parts[0]] = int(parts[1])
    return out


def parse_diskstats(text):
    """{device: io_ticks_ms} from /proc/diskstats (field 13 is the time spent doing I/O)."""
    return {device: row[4] for device, row in parse_diskstats_detail(text).items()}


PARTITION_RE = re.compile(r"^((s|v|xv|h)d[a-z]+[0-9]+|(nvme[0-9]+n[0-9]+|mmcblk[0-9]+)p[0-9]+)$")


def is_whole_disk(name, sys_block=None):
    """Whole disks only: a partition's busy time is already its disk's."""
    if name.startswith(SKIP_DEVICE_PREFIXES):
        return False
    if sys_block is not None:  # /sys/block lists whole disks and nothing else
        return name in sys_block
    return not PARTITION_RE.match(name)


def io_utilisation(before, after, elapsed, sys_block=None):
    """{device: percent busy} over the window."""
    out = {}
    if elapsed <= 0:
        return out
    for dev, ticks in after.items():
        if dev not in before or not is_whole_disk(dev, sys_block):
            continue
        busy = max(0, ticks - before[dev]) / (elapsed * 1000.0) * 100.0
        out[dev] = min(100.0, busy)
    return out


NET_FIELDS = ("rx_bytes", "rx_packets", "rx_errs", "rx_drop", "rx_fifo", "rx_frame",
              "rx_compressed", "rx_multicast", "tx_bytes", "tx_packets", "tx_errs", "tx_drop",
              "tx_fifo", "tx_colls", "tx_carrier", "tx_compressed")


def parse_net_dev(text):
    out = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        name, rest = line.split(":", 1)
        values = rest.split()
        if len(values) < len(NET_FIELDS):
            continue
        try:
            out[name.strip()] = dict((key, int(values[i])) for i, key in enumerate(NET_FIELDS))
        except ValueError:
            continue
    return out


def net_bad_and_packets(counters):
    bad = counters["rx_errs"] + counters["rx_drop"] + counters["tx_errs"] + counters["tx_drop"]
    return bad, counters["rx_packets"] + counters["tx_packets"]


def pct(part, whole):
    return 100.0 * part / whole if whole > 0 else 0.0


def select_mounts(mounts, fstypes, exclude):
    """[(device, mountpoint, fstype)] of the parsed mounts of the wanted types, excluded ones left out."""
    wanted = set(fstypes)
    out = []
    for entry in mounts:
        if entry["fstype"] not in wanted or memory_fs_left_out(entry):
            continue
        if any(fnmatch.fnmatch(entry["mount"], pat) for pat in exclude):
            continue
        out.append((entry["source"], entry["mount"], entry["fstype"]))
    return out


def statvfs_usage(st):
    """Space and inode use the way df counts it: blocks reserved for root are not available."""
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    space = {"size_bytes": st.f_blocks * st.f_frsize, "avail_bytes": avail,
             "used_pct": pct(used, used + avail)}
    if st.f_files > 0:
        space["inode_used_pct"] = pct(st.f_files - st.f_ffree, st.f_files)
    return space


def parse_failed_units(text):
    units = []
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        name = parts[0]
        if name in ("\u25cf", "*") and len(parts) > 1:
            name = parts[1]
        units.append(name)
    return units


def adjtimex_state():
    """(synchronised, maxerror_us) of the kernel clock, as timedatectl's NTPSynchronized sees it."""

    class Timex(ctypes.Structure):
        _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                    ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long),
                    ("status", ctypes.c_int), ("_rest", ctypes.c_byte * 256)]

    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    buf = Timex()
    state = libc.adjtimex(ctypes.byref(buf))
    if state < 0:
        raise OSError(ctypes.get_errno(), "adjtimex failed")
    time_error, sta_unsync = 5, 0x0040
    return state != time_error and not buf.status & sta_unsync, int(buf.maxerror)


# --------------------------------------------------------------------------- checks
#
# Every check is a function (ctx) -> (status, severity, evidence, metrics). The
# runner wraps each one, so an exception becomes one error finding, never a crash.


class Context(object):
    def __init__(self, params, root="/"):
        self.p = params
        self.root = root
        self.host = probe(root)
        self.container = self.host.container
        self.uid = os.geteuid()
        self.before = {}
        self.after = {}
        self.elapsed = 0.0

    def proc(self, name):
        return read_text(os.path.join(self.root, "proc", name))


def _sample(ctx, store):
    for name, reader in (("stat", lambda: parse_cpu_stat(ctx.proc("stat"))),
                         ("diskstats", lambda: parse_diskstats(ctx.proc("diskstats"))),
                         ("net_dev", lambda: parse_net_dev(ctx.proc("net/dev")))):
        try:
            store[name] = reader()
        except Exception as exc:  # kept to report per check
            store[name] = exc


def _sampled(ctx, name):
    before, after = ctx.before.get(name), ctx.after.get(name)
    for value in (before, after):
        if isinstance(value, Exception) or value is None:
            raise CheckError("cannot read /proc/%s: %s" % (name.replace("_", "/"), value))
    return before, after


def check_load(ctx):
    p = ctx.p
    load1, load5, load15 = parse_loadavg(ctx.proc("loadavg"))
    cores = os.cpu_count() or 1
    per_core = load5 / cores
    status, sev = grade(per_core, p["load_warn_per_core"], p["load_critical_per_core"], "minor", "major")
    evidence = {"load1": load1, "load5": load5, "load15": load15, "cores": cores,
                "load5_per_core": rnd(per_core, 2), "threshold_per_core": p["load_warn_per_core"],
                "critical_per_core": p["load_critical_per_core"]}
    if ctx.container:
        evidence["note"] = "in a %s container the load average is the host's" % ctx.container
    metrics = [metric("load1", load1), metric("load5", load5), metric("load15", load15),
               metric("load5_per_core", per_core), metric("cpu_cores", cores)]
    return status, sev, evidence, metrics


def _cpu_pcts(ctx):
    before, after = _sampled(ctx, "stat")
    return cpu_percentages(before, after)


def check_cpu_steal(ctx):
    value = _cpu_pcts(ctx)["steal"]
    p = ctx.p
    status, sev = grade(value, p["cpu_steal_warn_pct"], p["cpu_steal_critical_pct"], "minor", "major")
    return status, sev, {"steal_pct": rnd(value), "threshold_pct": p["cpu_steal_warn_pct"],
                         "critical_pct": p["cpu_steal_critical_pct"],
                         "window_seconds": rnd(ctx.elapsed, 3)}, [
        metric("cpu_steal_pct", value, "percent")]


def check_cpu_iowait(ctx):
    pcts = _cpu_pcts(ctx)
    value = pcts["iowait"]
    p = ctx.p
    status, sev = grade(value, p["cpu_iowait_warn_pct"], p["cpu_iowait_critical_pct"], "minor", "major")
    busy = 100.0 - pcts["idle"] - pcts["iowait"]
    return status, sev, {"iowait_pct": rnd(value), "threshold_pct": p["cpu_iowait_warn_pct"],
                         "critical_pct": p["cpu_iowait_critical_pct"],
                         "window_seconds": rnd(ctx.elapsed, 3)}, [
        metric("cpu_iowait_pct", value, "percent"), metric("cpu_busy_pct", busy, "percent")]


def check_memory(ctx):
    usage = memory_usage(parse_keyvalue_kb(ctx.proc("meminfo")))
    p = ctx.p
    status, sev = grade(usage["used_pct"], p["mem_warn_pct"], p["mem_critical_pct"], "major", "critical")
    evidence = {"used_pct": rnd(usage["used_pct"]), "threshold_pct": p["mem_warn_pct"],
                "critical_pct": p["mem_critical_pct"], "total_bytes": usage["total_bytes"],
                "available_bytes": usage["available_bytes"]}
    if ctx.container:
        evidence["note"] = "in a %s container /proc/meminfo may show the host's memory" % ctx.container
    return status, sev, evidence, [
        metric("mem_used_pct", usage["used_pct"], "percent"),
        metric("mem_available_bytes", usage["available_bytes"], "bytes"),
        metric("mem_total_bytes", usage["total_bytes"], "bytes")]


def check_swap(ctx):
    usage = swap_usage(parse_keyvalue_kb(ctx.proc("meminfo")))
    p = ctx.p
    evidence = {"used_pct": rnd(usage["used_pct"]), "threshold_pct": p["swap_warn_pct"],
                "critical_pct": p["swap_critical_pct"], "total_bytes": usage["total_bytes"]}
    if usage["total_bytes"] == 0:
        evidence["note"] = "no swap is configured on this host"
        return "pass", "minor", evidence, [metric("swap_used_pct", 0, "percent")]
    status, sev = grade(usage["used_pct"], p["swap_warn_pct"], p["swap_critical_pct"], "minor", "major")
    return status, sev, evidence, [metric("swap_used_pct", usage["used_pct"], "percent"),
                                   metric("swap_total_bytes", usage["total_bytes"], "bytes")]


def _filesystems(ctx):
    """[{mount, fstype, used_pct, inode_used_pct?, ...}] plus [{mount, reason}] unreadable; cached."""
    if getattr(ctx, "_fs", None) is not None:
        return ctx._fs
    mounts = select_mounts(parse_mounts(ctx.proc("self/mounts")), ctx.p["disk_fstypes"],
                           ctx.p["disk_exclude_mounts"])
    seen = {}
    unreadable = []
    # Shortest mount point first, so a bind mount of a file (/etc/hosts in a container)
    # is recognised as the filesystem already listed under "/".
    for _dev, mount, fstype in sorted(mounts, key=lambda m: (len(m[1]), m[1])):
        try:
            st_dev = os.stat(mount).st_dev
            if st_dev in seen:
                continue
            usage = statvfs_usage(os.statvfs(mount))
        except OSError as exc:
            unreadable.append({"mount": mount, "reason": exc.strerror or str(exc)})
            continue
        usage.update({"mount": mount, "fstype": fstype})
        seen[st_dev] = usage
    ctx._fs = (list(seen.values()), unreadable)
    return ctx._fs


def _per_item(items, key, label, warn, crit, warn_sev, crit_sev, unit_key):
    """Evidence for a per-mount/device/interface check: worst item and all over threshold."""
    if not items:
        return None
    worst = max(items, key=lambda i: i[key])
    status, sev = grade(worst[key], warn, crit, warn_sev, crit_sev)
    over = [{label: i[label], unit_key: rnd(i[key])} for i in
            sorted(items, key=lambda i: -i[key]) if i[key] >= warn]
    evidence = {label: worst[label], unit_key: rnd(worst[key]), "threshold_pct": warn,
                "critical_pct": crit, "over_threshold": over}
    return status, sev, evidence


def check_disk_space(ctx):
    filesystems, unreadable = _filesystems(ctx)
    p = ctx.p
    result = _per_item(filesystems, "used_pct", "mount", p["disk_warn_pct"], p["disk_critical_pct"],
                       "major", "critical", "used_pct")
    if result is None:
        if unreadable:
            raise CheckError("no filesystem could be read: %s" % unreadable)
        raise NotApplicable("no mounted filesystem of the types %s" % ", ".join(p["disk_fstypes"]))
    status, sev, evidence = result
    evidence["mounts_checked"] = len(filesystems)
    if unreadable:
        evidence["unreadable"] = unreadable
    metrics = []
    for fs in filesystems:
        metrics.append(metric("disk_used_pct", fs["used_pct"], "percent", mount=fs["mount"]))
        metrics.append(metric("disk_avail_bytes", fs["avail_bytes"], "bytes", mount=fs["mount"]))
        metrics.append(metric("disk_size_bytes", fs["size_bytes"], "bytes", mount=fs["mount"]))
    return status, sev, evidence, metrics


def check_disk_inodes(ctx):
    filesystems, unreadable = _filesystems(ctx)
    with_inodes = [fs for fs in filesystems if "inode_used_pct" in fs]
    p = ctx.p
    result = _per_item(with_inodes, "inode_used_pct", "mount", p["inode_warn_pct"],
                       p["inode_critical_pct"], "major", "critical", "inode_used_pct")
    if result is None:
        if unreadable:
            raise CheckError("no filesystem could be read: %s" % unreadable)
        raise NotApplicable("no mounted filesystem reports an inode count")
    status, sev, evidence = result
    evidence["mounts_checked"] = len(with_inodes)
    if unreadable:
        evidence["unreadable"] = unreadable
    metrics = [metric("inode_used_pct", fs["inode_used_pct"], "percent", mount=fs["mount"])
               for fs in with_inodes]
    return status, sev, evidence, metrics


def check_disk_io(ctx):
    before, after = _sampled(ctx, "diskstats")
    try:
        sys_block = set(os.listdir(os.path.join(ctx.root, "sys", "block")))
    except OSError:
        sys_block = None
    util = io_utilisation(before, after, ctx.elapsed, sys_block)
    p = ctx.p
    items = [{"device": d, "util_pct": v} for d, v in sorted(util.items())]
    result = _per_item(items, "util_pct", "device", p["disk_io_warn_pct"], p["disk_io_critical_pct"],
                       "minor", "major", "util_pct")
    if result is None:
        raise NotApplicable("no block device is visible in /proc/diskstats")
    status, sev, evidence = result
    evidence["window_seconds"] = rnd(ctx.elapsed, 3)
    evidence["devices_checked"] = len(items)
    return status, sev, evidence, [metric("disk_io_util_pct", i["util_pct"], "percent",
                                          device=i["device"]) for i in items]


def check_net(ctx):
    before, after = _sampled(ctx, "net_dev")
    p = ctx.p
    items = []
    metrics = []
    for iface in sorted(after):
        if any(fnmatch.fnmatch(iface, pat) for pat in p["net_exclude_ifaces"]):
            continue
        bad, packets = net_bad_and_packets(after[iface])
        item = {"iface": iface, "errors_drops": bad, "packets": packets,
                "since_boot_pct": pct(bad, packets), "window_errors_drops": 0,
                "window_packets": 0, "window_pct": 0.0}
        if iface in before:
            bad0, packets0 = net_bad_and_packets(before[iface])
            item["window_errors_drops"] = max(0, bad - bad0)
            item["window_packets"] = max(0, packets - packets0)
            if item["window_packets"] >= NET_WINDOW_MIN_PACKETS:
                item["window_pct"] = pct(item["window_errors_drops"], item["window_packets"])
        items.append(item)
        metrics += [metric("net_errors_total", after[iface]["rx_errs"] + after[iface]["tx_errs"],
                           iface=iface),
                    metric("net_drops_total", after[iface]["rx_drop"] + after[iface]["tx_drop"],
                           iface=iface),
                    metric("net_packets_total", packets, iface=iface),
                    metric("net_error_pct", item["since_boot_pct"], "percent", iface=iface)]
    if not items:
        raise NotApplicable("no network interface besides the excluded ones")
    warn, crit = p["net_error_warn_pct"], p["net_error_critical_pct"]
    over = []
    status, severity = "pass", "minor"
    for item in items:
        bad_window = item["window_pct"] >= crit
        bad_boot = item["since_boot_pct"] >= warn
        if bad_window:
            status, severity = "fail", "major"
        elif bad_boot and severity != "major":
            status = "fail"
        if bad_window or bad_boot:
            over.append({"iface": item["iface"], "since_boot_pct": rnd(item["since_boot_pct"], 3),
                         "window_pct": rnd(item["window_pct"], 3)})
    worst = max(items, key=lambda i: (i["window_pct"] >= crit, i["since_boot_pct"], i["window_pct"]))
    evidence = {"iface": worst["iface"], "since_boot_pct": rnd(worst["since_boot_pct"], 3),
                "errors_drops": worst["errors_drops"], "packets": worst["packets"],
                "window_errors_drops": worst["window_errors_drops"],
                "window_packets": worst["window_packets"], "window_pct": rnd(worst["window_pct"], 3),
                "threshold_pct": warn, "critical_window_pct": crit,
                "window_seconds": rnd(ctx.elapsed, 3), "over_threshold": over,
                "ifaces_checked": len(items)}
    return status, severity, evidence, metrics


def check_units(ctx):
    if not ctx.host.systemd:
        raise NotApplicable("systemd is not PID 1 on this host%s" % (
            " (a %s container)" % ctx.container if ctx.container else ""))
    try:
        rc, out, err = run_cmd(["systemctl", "list-units", "--state=failed", "--all",
                                "--no-legend", "--plain", "--no-pager"])
    except (ToolMissing, OSError, subprocess.SubprocessError) as exc:
        raise CheckError("cannot run systemctl: %s" % exc) from exc
    if rc != 0:
        reason = "systemctl list-units failed (rc=%s): %s" % (rc, err.strip()[:200])
        if ctx.uid != 0 and "bus" in err:
            reason += " (without root, systemctl needs the D-Bus system bus: install dbus or run as root)"
        raise CheckError(reason)
    failed = parse_failed_units(out)
    ignored = [u for u in failed if any(fnmatch.fnmatch(u, pat) for pat in ctx.p["units_ignore"])]
    counted = [u for u in failed if u not in ignored]
    evidence = {"failed_count": len(counted), "failed_units": counted, "threshold_count": 0}
    if ignored:
        evidence["ignored_units"] = ignored
    return ("fail" if counted else "pass"), "major", evidence, [
        metric("failed_units", len(counted))]


def check_time(ctx):
    evidence = {"expected": "synchronised"}
    synced = None
    try:
        synced, maxerror = adjtimex_state()
        evidence["kernel_synchronised"] = synced
        evidence["kernel_max_error_us"] = maxerror
        evidence["source"] = "kernel (adjtimex)"
    except Exception as exc:  # ctypes or libc trouble: rely on the services below
        evidence["kernel_error"] = str(exc)
    services = {}
    try:
        rc, out, _err = run_cmd(["timedatectl", "show"])
        if rc == 0:
            props = parse_properties(out)
            services["timedatectl"] = {"NTP": props.get("NTP"),
                                       "NTPSynchronized": props.get("NTPSynchronized")}
            if synced is None and "NTPSynchronized" in props:
                synced = props["NTPSynchronized"] == "yes"
                evidence["source"] = "timedatectl"
        else:
            services["timedatectl"] = "unavailable (rc=%s)" % rc
    except (ToolMissing, OSError, subprocess.SubprocessError) as exc:
        services["timedatectl"] = "unavailable: %s" % exc
    try:
        rc, out, _err = run_cmd(["chronyc", "-n", "tracking"], timeout=5)
        if rc == 0:
            info = parse_properties(out, ":")
            services["chronyc"] = {"leap_status": info.get("Leap status"),
                                   "system_time": info.get("System time")}
            if synced is None and info.get("Leap status"):
                synced = info["Leap status"] != "Not synchronised"
                evidence["source"] = "chronyc"
        else:
            services["chronyc"] = "unavailable (rc=%s)" % rc
    except (ToolMissing, OSError, subprocess.SubprocessError) as exc:
        services["chronyc"] = "unavailable: %s" % exc
    evidence["services"] = services
    if ctx.container:
        evidence["note"] = ("in a %s container the clock is the host kernel's; "
                            "synchronise it on the host" % ctx.container)
    if synced is None:
        raise CheckError("cannot tell whether the clock is synchronised (kernel, timedatectl "
                         "and chronyc all unavailable)")
    evidence["synchronised"] = synced
    return ("pass" if synced else "fail"), "major", evidence, [
        metric("time_synchronised", 1 if synced else 0)]


def _pattern_blocked(pattern):
    """The first existing parent directory of a glob, when this user cannot search it."""
    fixed = pattern.split("*")[0].split("?")[0].split("[")[0]
    directory = fixed if fixed.endswith("/") else os.path.dirname(fixed)
    while directory and not os.path.isdir(directory):
        directory = os.path.dirname(directory.rstrip("/"))
    probe = directory or "/"
    if not os.access(probe, os.R_OK | os.X_OK):
        return probe
    return None


def check_certs(ctx, now=None):
    now = time.time() if now is None else now
    p = ctx.p
    certs, unreadable = [], []
    for pattern in p["cert_paths"]:
        blocked = _pattern_blocked(pattern)
        if blocked:
            unreadable.append({"path": pattern, "reason": "cannot list %s" % blocked})
            continue
        for path in sorted(glob.glob(pattern)):
            try:
                ders = pem_certificates(read_text(path))
                if not ders:
                    unreadable.append({"path": path, "reason": "no PEM certificate in the file"})
                    continue
                infos = [certificate_info(d) for d in ders]
            except (IOError, OSError) as exc:
                unreadable.append({"path": path, "reason": exc.strerror or str(exc)})
                continue
            except (ValueError, UnicodeDecodeError) as exc:
                unreadable.append({"path": path, "reason": "cannot parse: %s" % exc})
                continue
            first = min(infos, key=lambda i: i["not_after"])
            days = (first["not_after"] - now) / 86400.0
            certs.append({"path": path, "subject_cn": first["subject_cn"],
                          "not_after": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                     time.gmtime(first["not_after"])),
                          "days_left": rnd(days)})
    evidence = {"threshold_days": p["cert_warn_days"], "critical_days": p["cert_critical_days"],
                "patterns": list(p["cert_paths"]), "certificates": certs}
    if unreadable:
        evidence["unreadable"] = unreadable
    metrics = [metric("cert_days_left", c["days_left"], "days", path=c["path"]) for c in certs]
    if not certs:
        if unreadable:
            raise CheckError("no certificate could be read", evidence)
        raise NotApplicable("no certificate matched the configured paths", evidence)
    worst = min(certs, key=lambda c: c["days_left"])
    evidence.update({"path": worst["path"], "days_left": worst["days_left"]})
    status, sev = expiry_grade(worst["days_left"], p)
    evidence["expiring"] = [c["path"] for c in certs if c["days_left"] <= p["cert_warn_days"]]
    return status, sev, evidence, metrics


def check_reboot(ctx):
    # One implementation with the patching role's PTCH-REBOOT-001 (module_utils/debian.py).
    pending, evidence = reboot_state(running_kernel(), ctx.container, ctx.root)
    evidence["expected"] = "no reboot pending"
    return ("fail" if pending else "pass"), "major", evidence, [
        metric("reboot_required", 1 if pending else 0)]


def check_oom(ctx):
    stats = parse_vmstat(ctx.proc("vmstat"))
    if "oom_kill" not in stats:
        raise NotApplicable("this kernel does not count OOM kills in /proc/vmstat (needs 4.13+)")
    count = stats["oom_kill"]
    evidence = {"oom_kills_since_boot": count, "threshold_count": ctx.p["oom_warn_count"]}
    with contextlib.suppress(OSError, ValueError, IndexError):
        evidence["uptime_days"] = rnd(float(ctx.proc("uptime").split()[0]) / 86400.0, 2)
    if ctx.container:
        evidence["note"] = "in a %s container the count is the host kernel's" % ctx.container
    return ("fail" if count > ctx.p["oom_warn_count"] else "pass"), "major", evidence, [
        metric("oom_kills_total", count)]


JOURNAL_DENIED = ("insufficient permissions", "not seeing messages from other users")


def check_log(ctx):
    p = ctx.p
    window = p["log_window_minutes"]
    if not os.path.exists(os.path.join(ctx.root, "run/systemd/journal/socket")):
        raise NotApplicable("no systemd journal on this host (journald is not running)")
    try:
        rc, out, err = run_cmd(["journalctl", "--system", "--quiet", "--no-pager", "--priority=err",
                                "--since=-%dmin" % window, "--output=cat",
                                "--output-fields=PRIORITY"])
    except ToolMissing:
        raise NotApplicable("journalctl is not installed") from None
    except (OSError, subprocess.SubprocessError) as exc:
        raise CheckError("cannot run journalctl: %s" % exc) from exc
    low = err.lower()
    if any(text in low for text in JOURNAL_DENIED) or (rc != 0 and "permission" in low):
        raise CheckError("user %s cannot read the system journal; run as root or add the user "
                         "to group adm or systemd-journal" % user_name(ctx.uid))
    if rc != 0:
        raise CheckError("journalctl failed (rc=%s): %s" % (rc, err.strip()[:200]))
    count = len([line for line in out.splitlines() if line.strip()])
    status, sev = grade(count, p["log_warn_count"], p["log_critical_count"], "minor", "major")
    return status, sev, {"error_count": count, "window_minutes": window,
                         "threshold_count": p["log_warn_count"],
                         "critical_count": p["log_critical_count"]}, [
        metric("journal_errors", count, window_minutes=window)]


def check_backup(ctx):
    # The backup role's status records (module_utils/backup_status.py, the reader backup_audit uses
    # too): the set whose last success is oldest, or that never succeeded, names the finding.
    threshold = ctx.p["backup_max_age_hours"]
    names = set_names(ctx.root)
    if not names:
        raise NotApplicable("no fleetcare backup set on this host", {"threshold_hours": threshold})
    now = time.time()
    ages = dict((name, success_age_hours(read_record(name, ctx.root), now))
                for name in names)
    never = sorted(name for name, age in ages.items() if age is None)
    evidence = {"threshold_hours": threshold, "never_succeeded": never,
                "age_hours": dict((n, None if a is None else round(a, 2)) for n, a in ages.items())}
    metrics = [metric("backup_last_success_age_hours", a, "hours", set=n) for n, a in ages.items() if a is not None]
    if never:
        return "fail", "major", dict(evidence, set=never[0]), metrics
    worst = max(ages, key=lambda n: ages[n])
    return ("fail" if ages[worst] > threshold else "pass"), "major", dict(evidence, set=worst), metrics


# The measuring function of each check; what the check is (title, severity, texts) is data in
# module_utils/health_checks.py, in the order the findings are reported.
CHECK_FUNCS = {
    "HLTH-LOAD-001": check_load,
    "HLTH-CPU-001": check_cpu_steal,
    "HLTH-CPU-002": check_cpu_iowait,
    "HLTH-MEM-001": check_memory,
    "HLTH-SWAP-001": check_swap,
    "HLTH-DISK-001": check_disk_space,
    "HLTH-DISK-002": check_disk_inodes,
    "HLTH-DISK-003": check_disk_io,
    "HLTH-NET-001": check_net,
    "HLTH-UNIT-001": check_units,
    "HLTH-TIME-001": check_time,
    "HLTH-CERT-001": check_certs,
    "HLTH-REBOOT-001": check_reboot,
    "HLTH-OOM-001": check_oom,
    "HLTH-LOG-001": check_log,
    "HLTH-BKUP-001": check_backup,
    # services (module_utils/health_services.py)
    "HLTH-SVC-001": lambda ctx: check_declared_units(ctx.p, ctx.host),
    "HLTH-SVC-002": lambda ctx: check_tcp(ctx.p, ctx.host),
    "HLTH-SVC-003": lambda ctx: check_http(ctx.p, ctx.host),
    "HLTH-SVC-004": lambda ctx: check_processes(ctx.p, ctx.host, ctx.root),
    "HLTH-SVC-005": lambda ctx: check_tls(ctx.p, ctx.host),
    "HLTH-PORT-001": lambda ctx: check_listening(ctx.p, ctx.host, ctx.root),
    "HLTH-DB-001": lambda ctx: check_postgresql(ctx.p, ctx.host, ctx.uid, ctx.root),
    "HLTH-DB-002": lambda ctx: check_mysql(ctx.p, ctx.host, ctx.uid, ctx.root),
    "HLTH-DB-003": lambda ctx: check_redis(ctx.p, ctx.host, ctx.root),
    "HLTH-CERT-002": check_certs_in_use,
    "HLTH-RAID-001": check_raid,
    "HLTH-SMART-001": check_smart,
    "HLTH-EDAC-001": check_edac,
    "HLTH-KERN-001": check_kernel_log,
    "HLTH-FD-001": check_file_descriptors,
    "HLTH-CONN-001": check_conntrack,
    "HLTH-PROC-001": check_zombies,
    "HLTH-SSH-001": check_ssh_failures,
}
CHECKS = tuple((record, CHECK_FUNCS[record["id"]]) for record in CHECK_RECORDS)


SWITCHED_OFF = "switched off (health_checks_skip)"


def run_check(ctx, record, func):
    """One finding and its metrics; any failure of the check becomes its own finding."""
    if record["id"] in ctx.p.get("checks_skip", ()):
        func = _switched_off
    return run_finding(record["id"], record["title"], record["severity"], lambda: func(ctx),
                       record["remediation"], record["references"])


def _switched_off(_ctx):
    raise NotApplicable(SWITCHED_OFF)


def validate(params):
    """Messages for thresholds out of range or out of order (role variable = health_ + option);
    the wrapper runs the same checks before Ansible starts."""
    return [message for _, message in health_problems(params)]


# Checks that mostly wait (on systemctl, timedatectl, psql or mysql, or on a socket), read none of
# the window's samples and no file the window measures: each runs in its own thread from the
# start of the window, so that its waiting is spent inside the window rather than after it. The
# journal readers (HLTH-LOG-001, KERN-001, SSH-001) stay after the window: they read from disk,
# which HLTH-DISK-003 measures in it.
WAITING_CHECKS = frozenset(("HLTH-UNIT-001", "HLTH-TIME-001", "HLTH-SVC-001", "HLTH-SVC-002", "HLTH-SVC-003",
                            "HLTH-SVC-005", "HLTH-DB-001", "HLTH-DB-002", "HLTH-DB-003"))


def start_waiting_checks(ctx):
    """{check id: (thread, holder)}: the checks of WAITING_CHECKS started in the background; the
    holder gets ``result``, the (finding, metrics) of :func:`run_check`."""
    started = {}
    for record, func in CHECKS:
        if record["id"] not in WAITING_CHECKS or record["id"] in ctx.p.get("checks_skip", ()):
            continue
        holder = {}
        thread = threading.Thread(target=lambda r=record, f=func, h=holder: h.update(result=run_check(ctx, r, f)))
        thread.daemon = True
        thread.start()
        started[record["id"]] = (thread, holder)
    return started


def _waited(started, ctx, record, func):
    pending = started.get(record["id"])
    if pending is None:
        return run_check(ctx, record, func)
    pending[0].join()
    # a thread ends without a result only on what run_finding does not catch: run it here then
    return pending[1].get("result") or run_check(ctx, record, func)


def inspect(params, root="/"):
    """All checks in order; returns the payload dictionary."""
    started = time.time()
    ctx = Context(params, root)
    _sample(ctx, ctx.before)
    t0 = time.monotonic()
    # process samples, the TLS handshakes of HLTH-CERT-002 and the waiting checks run inside the
    # window, not after it
    window_start(ctx)
    waiting = start_waiting_checks(ctx)
    time.sleep(max(0.0, params["sample_seconds"] - (time.monotonic() - t0)))
    _sample(ctx, ctx.after)
    ctx.elapsed = time.monotonic() - t0
    findings, metrics = [], []
    for record, func in CHECKS:
        one, more = _waited(waiting, ctx, record, func)
        findings.append(one)
        metrics.extend(more)
    performance_evidence(findings, ctx)
    metrics.append(metric("health_inspect_seconds", time.time() - started, "seconds"))
    result = payload(ROLE, findings, metrics, expected=len(CHECKS))
    # for the controller's capacity forecast (HLTH-CAP-001, fleetcare/trends.py)
    result[RESULT_KEY]["data"] = {"capacity_days": params.get("capacity_days", 14.0)}
    return result


ARGUMENT_SPEC = dict(
    sample_seconds=dict(type="float", default=0.25),
    load_warn_per_core=dict(type="float", default=1.0),
    load_critical_per_core=dict(type="float", default=2.0),
    cpu_steal_warn_pct=dict(type="float", default=10.0),
    cpu_steal_critical_pct=dict(type="float", default=25.0),
    cpu_iowait_warn_pct=dict(type="float", default=20.0),
    cpu_iowait_critical_pct=dict(type="float", default=50.0),
    mem_warn_pct=dict(type="float", default=90.0),
    mem_critical_pct=dict(type="float", default=97.0),
    swap_warn_pct=dict(type="float", default=50.0),
    swap_critical_pct=dict(type="float", default=80.0),
    disk_warn_pct=dict(type="float", default=85.0),
    disk_critical_pct=dict(type="float", default=95.0),
    inode_warn_pct=dict(type="float", default=85.0),
    inode_critical_pct=dict(type="float", default=95.0),
    disk_fstypes=dict(type="list", elements="str",
                      default=["ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "jfs",
                               "reiserfs", "vfat", "overlay", "tmpfs", "ramfs"]),
    disk_exclude_mounts=dict(type="list", elements="str",
                             default=["*/containers/storage/overlay*", "/var/lib/docker/*"]),
    disk_io_warn_pct=dict(type="float", default=80.0),
    disk_io_critical_pct=dict(type="float", default=95.0),
    net_error_warn_pct=dict(type="float", default=1.0),
    net_error_critical_pct=dict(type="float", default=5.0),
    net_exclude_ifaces=dict(type="list", elements="str", default=["lo", "veth*"]),
    units_ignore=dict(type="list", elements="str", default=[]),
    cert_paths=dict(type="list", elements="str",
                    default=["/etc/ssl/fleetcare/*.pem", "/etc/ssl/fleetcare/*.crt",
                             "/etc/letsencrypt/live/*/cert.pem"]),
    cert_warn_days=dict(type="int", default=30),
    cert_critical_days=dict(type="int", default=7),
    oom_warn_count=dict(type="int", default=0),
    log_window_minutes=dict(type="int", default=60),
    log_warn_count=dict(type="int", default=50),
    log_critical_count=dict(type="int", default=500),
    backup_max_age_hours=dict(type="int", default=26),
    capacity_days=dict(type="float", default=14.0),
    checks_skip=dict(type="list", elements="str", default=[]),
    cert_discover_ports=dict(type="bool", default=True),
    cert_discover_services=dict(type="bool", default=True),
    cert_discover_dirs=dict(type="list", elements="str", default=["/etc/ssl"]),
    cert_probe_timeout=dict(type="float", default=0.3),
    cert_probe_max_ports=dict(type="int", default=64),
    raid_mdstat_path=dict(type="str", default="/proc/mdstat"),
    edac_ce_warn_count=dict(type="int", default=0),
    kernel_log_window_hours=dict(type="float", default=24.0),
    fd_warn_pct=dict(type="float", default=80.0),
    fd_critical_pct=dict(type="float", default=95.0),
    conntrack_warn_pct=dict(type="float", default=80.0),
    conntrack_critical_pct=dict(type="float", default=95.0),
    zombie_warn_count=dict(type="int", default=10),
    perf_evidence=dict(type="bool", default=True),
    ssh_window_minutes=dict(type="int", default=60),
    ssh_failed_warn_per_hour=dict(type="float", default=30.0),
    ssh_failed_critical_per_hour=dict(type="float", default=300.0),
    **SERVICE_OPTIONS
)

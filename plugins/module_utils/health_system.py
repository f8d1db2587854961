# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

"""The health role's hardware and kernel checks, and the evidence that names who is busy.

Parsers of ``/proc/mdstat``, ``/proc/sys/fs/file-nr``, EDAC counters, ``/proc/<pid>/stat`` and
``io``, ``/proc/diskstats`` (all fields) and kernel and sshd log lines; the check functions
``(ctx) -> (status, severity, evidence, metrics)`` that ``health_inspect`` registers; and
:func:`performance_evidence`, which the module adds to a failing load, CPU, memory or I/O finding
(top processes by CPU, resident memory and I/O over the module's one sampling window, and the
busiest devices with their latency). Standard library only: it runs on the managed host.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import glob
import json
import os
import re
import subprocess
import threading
import time

from ansible_collections.fleetcare.ops.plugins.module_utils.health_certs import start_discovery
from ansible_collections.fleetcare.ops.plugins.module_utils.findings import (
    CheckError, NotApplicable, ToolMissing, grade, metric)
from ansible_collections.fleetcare.ops.plugins.module_utils.host import read_optional, run_cmd, user_name

# Whole-disk names that never carry SMART data or a workload worth naming.
VIRTUAL_DEVICES = ("loop", "ram", "zram", "fd", "sr", "nbd", "dm-", "md")
# Words of /sys/class/dmi/id that only hypervisors write there.
HYPERVISOR_VENDORS = ("qemu", "kvm", "vmware", "virtualbox", "xen", "microsoft corporation", "bochs",
                      "parallels", "openstack", "google compute engine", "amazon ec2")
TOP_N = 5


def _pct(part, whole):
    return 100.0 * part / whole if whole > 0 else 0.0


def _path(ctx, absolute):
    return os.path.join(ctx.root, absolute.lstrip("/"))


# --------------------------------------------------------------------------- software RAID


MD_LINE = re.compile(r"^(md\S+)\s*:\s*(\S+)\s*(.*)$")
MD_COUNT = re.compile(r"\[(\d+)/(\d+)\]\s*\[([U_]+)\]")
MD_ACTION = re.compile(r"\b(recovery|resync|reshape|check|repair)\s*=\s*([\d.]+)%")


def parse_mdstat(text):
    """[{name, state, level, members, failed_members, disks, active, map, action, progress_pct}]."""
    arrays, current = [], None
    for line in text.splitlines():
        match = MD_LINE.match(line)
        if match:
            words = match.group(3).split()
            level = words[0] if words and not words[0].startswith(("(", "sd", "nvme", "vd", "hd", "xvd")) \
                and "[" not in words[0] else ""
            members = [w for w in words if "[" in w]
            current = {"name": match.group(1), "state": match.group(2), "level": level,
                       "members": [m.split("[")[0] for m in members],
                       "failed_members": [m.split("[")[0] for m in members if m.endswith("(F)")]}
            arrays.append(current)
            continue
        if current is None:
            continue
        count = MD_COUNT.search(line)
        if count:
            current.update({"disks": int(count.group(1)), "active": int(count.group(2)),
                            "map": count.group(3)})
        action = MD_ACTION.search(line)
        if action:
            current.update({"action": action.group(1), "progress_pct": float(action.group(2))})
    return arrays


def md_problems(array):
    """Why an array is not healthy; [] when it is."""
    problems = []
    if array["state"] != "active":
        problems.append("array is %s" % array["state"])
    if "disks" in array and array["active"] < array["disks"]:
        problems.append("%d of %d devices active [%s]" % (array["active"], array["disks"], array["map"]))
    if array["failed_members"]:
        problems.append("failed members: %s" % ", ".join(array["failed_members"]))
    return problems


def check_raid(ctx):
    path = ctx.p["raid_mdstat_path"]
    text = read_optional(_path(ctx, path))
    if text is None:
        raise NotApplicable("no software RAID: %s is missing (the md driver is not loaded)" % path)
    arrays = parse_mdstat(text)
    if not arrays:
        raise NotApplicable("no md array in %s" % path)
    listed, degraded, severity = [], [], "major"
    for array in arrays:
        problems = md_problems(array)
        entry = dict(array, problems=problems)
        listed.append(entry)
        if problems:
            degraded.append(array["name"])
            if array["state"] != "active" or ("disks" in array and array["active"] == 0):
                severity = "critical"
    evidence = {"source": path, "arrays": listed, "degraded": degraded, "arrays_checked": len(arrays)}
    if degraded:
        evidence["array"] = degraded[0]
    metrics = [metric("md_degraded", 1 if a["name"] in degraded else 0, array=a["name"]) for a in arrays]
    return ("fail" if degraded else "pass"), severity, evidence, metrics


# --------------------------------------------------------------------------- SMART


def virtualisation(ctx):
    """'' on bare metal, else what says this is a container or a VM."""
    if ctx.container:
        return "a %s container" % ctx.container
    for name in ("sys_vendor", "product_name", "board_vendor"):
        text = (read_optional(_path(ctx, "/sys/class/dmi/id/" + name)) or "").strip().lower()
        if any(word in text for word in HYPERVISOR_VENDORS):
            return "a virtual machine (%s)" % text
    cpuinfo = read_optional(_path(ctx, "/proc/cpuinfo")) or ""
    for line in cpuinfo.splitlines():
        if line.startswith("flags") and " hypervisor" in line:
            return "a virtual machine (the CPU flags name a hypervisor)"
    return ""


def physical_disks(ctx):
    try:
        names = sorted(os.listdir(_path(ctx, "/sys/block")))
    except OSError:
        return []
    return [n for n in names if not n.startswith(VIRTUAL_DEVICES)]


def smart_status(text):
    """(passed or None, model) from ``smartctl -H -i -j`` output."""
    data = json.loads(text or "{}")
    status = data.get("smart_status") or {}
    return status.get("passed"), data.get("model_name") or data.get("model_family") or ""


def check_smart(ctx):
    where = virtualisation(ctx)
    if where:
        raise NotApplicable("this host is %s: its disks are virtual and have no SMART data to read" % where)
    disks = physical_disks(ctx)
    if not disks:
        raise NotApplicable("no physical disk under /sys/block")
    results, unreadable, failing = [], [], []
    for disk in disks:
        try:
            # -n standby: never spin up a sleeping disk just to ask it
            rc, out, err = run_cmd(["smartctl", "-H", "-i", "-j", "-n", "standby", "/dev/" + disk], timeout=15)
        except ToolMissing:
            raise NotApplicable("smartctl is not installed (Debian package smartmontools)",
                                {"disks": disks}) from None
        except (OSError, subprocess.SubprocessError) as exc:
            unreadable.append({"device": disk, "reason": str(exc)})
            continue
        try:
            passed, model = smart_status(out)
        except ValueError:
            passed, model = None, ""
        if passed is None:
            unreadable.append({"device": disk, "reason": "no SMART health (rc=%s) %s" % (rc, err.strip()[:120])})
            continue
        results.append({"device": disk, "model": model, "passed": passed})
        if not passed or rc & 8:  # bit 3: SMART status says the disk is failing
            failing.append(disk)
    evidence = {"disks": results, "failing": failing}
    if unreadable:
        evidence["unreadable"] = unreadable
    if not results:
        raise NotApplicable("no disk answered with SMART data (USB bridges, RAID controllers)", evidence)
    if failing:
        evidence["device"] = failing[0]
    return ("fail" if failing else "pass"), "critical", evidence, [
        metric("smart_passed", 1 if r["passed"] else 0, device=r["device"]) for r in results]


# --------------------------------------------------------------------------- EDAC


def check_edac(ctx):
    base = _path(ctx, "/sys/devices/system/edac/mc")
    controllers = sorted(glob.glob(os.path.join(base, "mc[0-9]*")))
    if not controllers:
        where = virtualisation(ctx)
        raise NotApplicable("no EDAC memory controller in /sys/devices/system/edac/mc%s" % (
            " (this host is %s)" % where if where else " (no ECC memory or no EDAC driver)"))
    items = []
    for mc in controllers:
        ce = (read_optional(os.path.join(mc, "ce_count")) or "0").strip()
        ue = (read_optional(os.path.join(mc, "ue_count")) or "0").strip()
        items.append({"controller": os.path.basename(mc), "corrected": int(ce or 0), "uncorrected": int(ue or 0)})
    corrected = sum(i["corrected"] for i in items)
    uncorrected = sum(i["uncorrected"] for i in items)
    evidence = {"corrected": corrected, "uncorrected": uncorrected, "controllers": items,
                "threshold_corrected": ctx.p["edac_ce_warn_count"], "threshold_uncorrected": 0}
    if uncorrected > 0:
        status, severity = "fail", "critical"
    elif corrected > ctx.p["edac_ce_warn_count"]:
        status, severity = "fail", "major"
    else:
        status, severity = "pass", "major"
    return status, severity, evidence, [metric("edac_corrected_total", corrected),
                                        metric("edac_uncorrected_total", uncorrected)]


# --------------------------------------------------------------------------- kernel log


KERNEL_PATTERNS = (
    ("machine_check", re.compile(r"machine check|\bmce\b|hardware error", re.I)),
    ("io_error", re.compile(r"i/o error|medium error|blk_update_request|critical target error|"
                            r"ata\d+(\.\d+)?: (failed command|exception)|nvme\d+.*(timeout|reset)|"
                            r"EXT4-fs error|XFS .*(corruption|metadata I/O error)|BTRFS error", re.I)),
)
DENIED = ("operation not permitted", "permission denied", "insufficient permissions")


def classify_kernel_lines(lines):
    """{kind: [line, ...]} of the lines that name a machine check or an I/O error."""
    found = dict((kind, []) for kind, _ in KERNEL_PATTERNS)
    for line in lines:
        for kind, pattern in KERNEL_PATTERNS:
            if pattern.search(line):
                found[kind].append(line.strip()[:300])
                break
    return found


def _kernel_lines_journal(ctx, window):
    if not os.path.exists(_path(ctx, "/run/systemd/journal/socket")):
        return None, "no systemd journal"
    try:
        rc, out, err = run_cmd(["journalctl", "--dmesg", "--quiet", "--no-pager", "--priority=warning",
                                "--since=-%dmin" % window, "--output=cat"])
        if rc != 0 or any(d in err.lower() for d in DENIED):
            return None, "journalctl -k: %s" % (err.strip()[:160] or "rc=%s" % rc)
        if not out.strip():
            # An empty answer is "no errors" only when the journal holds kernel messages at all.
            rc2, any_out, _ = run_cmd(["journalctl", "--dmesg", "--quiet", "--no-pager", "--lines=1",
                                       "--output=cat"])
            if rc2 != 0 or not any_out.strip():
                return None, "the journal holds no kernel messages"
        return out.splitlines(), "journal"
    except (ToolMissing, OSError, subprocess.SubprocessError) as exc:
        return None, "journalctl: %s" % exc


def _kernel_lines_dmesg(window):
    try:
        rc, out, err = run_cmd(["dmesg", "--level=emerg,alert,crit,err,warn", "--since=-%dmin" % window])
    except (ToolMissing, OSError, subprocess.SubprocessError) as exc:
        return None, "dmesg: %s" % exc
    if rc != 0:
        return None, "dmesg: %s" % (err.strip()[:160] or "rc=%s" % rc)
    return out.splitlines(), "dmesg"


def check_kernel_log(ctx):
    window = int(ctx.p["kernel_log_window_hours"] * 60)
    lines, source = _kernel_lines_journal(ctx, window)
    tried = [source] if lines is None else []
    if lines is None:
        lines, source = _kernel_lines_dmesg(window)
    if lines is None:
        tried.append(source)
        why = "; ".join(tried)
        if ctx.container:
            why = "a %s container cannot read the host's kernel log (%s)" % (ctx.container, why)
        elif ctx.uid != 0:
            why = "user %s cannot read the kernel log (%s); run as root" % (user_name(ctx.uid), why)
        raise NotApplicable("no readable kernel log: %s" % why)
    found = classify_kernel_lines(lines)
    counts = dict((k, len(v)) for k, v in found.items())
    evidence = {"source": source, "window_hours": ctx.p["kernel_log_window_hours"], "counts": counts,
                "threshold_count": 0, "examples": dict((k, v[-3:]) for k, v in found.items() if v)}
    if ctx.container:
        evidence["note"] = "in a %s container the kernel log is the host kernel's" % ctx.container
    if counts["machine_check"]:
        status, severity = "fail", "critical"
    elif counts["io_error"]:
        status, severity = "fail", "major"
    else:
        status, severity = "pass", "major"
    return status, severity, evidence, [metric("kernel_log_errors", n, kind=k) for k, n in sorted(counts.items())]


# --------------------------------------------------------------------------- file descriptors, conntrack


def parse_file_nr(text):
    """(used, max) from /proc/sys/fs/file-nr: allocated, allocated but unused, maximum."""
    allocated, unused, maximum = (int(v) for v in text.split()[:3])
    return allocated - unused, maximum


def check_file_descriptors(ctx):
    used, maximum = parse_file_nr(ctx.proc("sys/fs/file-nr"))
    p = ctx.p
    used_pct = _pct(used, maximum)
    status, severity = grade(used_pct, p["fd_warn_pct"], p["fd_critical_pct"], "major", "critical")
    evidence = {"used": used, "max": maximum, "used_pct": round(used_pct, 2),
                "threshold_pct": p["fd_warn_pct"], "critical_pct": p["fd_critical_pct"]}
    if ctx.container:
        evidence["note"] = "in a %s container the count is the host kernel's" % ctx.container
    return status, severity, evidence, [metric("fd_used", used), metric("fd_max", maximum),
                                        metric("fd_used_pct", used_pct, "percent")]


def check_conntrack(ctx):
    count = read_optional(_path(ctx, "/proc/sys/net/netfilter/nf_conntrack_count"))
    maximum = read_optional(_path(ctx, "/proc/sys/net/netfilter/nf_conntrack_max"))
    if count is None or maximum is None:
        raise NotApplicable("connection tracking is not in use (no nf_conntrack_count: module not loaded)")
    count, maximum = int(count.strip()), int(maximum.strip())
    p = ctx.p
    used_pct = _pct(count, maximum)
    status, severity = grade(used_pct, p["conntrack_warn_pct"], p["conntrack_critical_pct"], "major", "critical")
    return status, severity, {"entries": count, "max": maximum, "used_pct": round(used_pct, 2),
                              "threshold_pct": p["conntrack_warn_pct"],
                              "critical_pct": p["conntrack_critical_pct"]}, [
        metric("conntrack_entries", count), metric("conntrack_used_pct", used_pct, "percent")]


# --------------------------------------------------------------------------- processes


def parse_pid_stat(text):
    """(comm, state, ppid, cpu_ticks, rss_pages) of one /proc/<pid>/stat line."""
    head, _, rest = text.rpartition(")")
    comm = head.split("(", 1)[1] if "(" in head else head
    fields = rest.split()
    return comm, fields[0], int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[21])


def parse_pid_io(text):
    """Bytes read plus written from storage, from /proc/<pid>/io."""
    total = 0
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("read_bytes", "write_bytes"):
            total += int(value)
    return total


def sample_processes(root="/", with_io=True):
    """{pid: (comm, state, ppid, cpu_ticks, rss_pages, io_bytes or None)}; vanished processes left out."""
    out = {}
    proc = os.path.join(root, "proc")
    for name in os.listdir(proc):
        if not name.isdigit():
            continue
        try:
            with open(os.path.join(proc, name, "stat")) as handle:
                comm, state, ppid, ticks, rss = parse_pid_stat(handle.read())
        except (OSError, ValueError, IndexError):
            continue
        io = None
        if with_io:
            try:
                with open(os.path.join(proc, name, "io")) as handle:
                    io = parse_pid_io(handle.read())
            except (OSError, ValueError):
                pass
        out[int(name)] = (comm, state, ppid, ticks, rss, io)
    return out


def parse_diskstats_detail(text):
    """{device: (reads, read_ms, writes, write_ms, io_ticks_ms)} from /proc/diskstats."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 13:
            continue
        try:
            out[parts[2]] = (int(parts[3]), int(parts[6]), int(parts[7]), int(parts[10]), int(parts[12]))
        except ValueError:
            continue
    return out


def busiest_devices(before, after, elapsed, limit=TOP_N):
    """Devices by busy share of the window, with await (ms per completed I/O) and I/O per second."""
    rows = []
    if elapsed <= 0:
        return rows
    for dev, now in after.items():
        if dev not in before or dev.startswith(("loop", "ram", "zram", "sr", "fd")):
            continue
        old = before[dev]
        d = [max(0, now[i] - old[i]) for i in range(5)]
        ios = d[0] + d[2]
        if not ios and not d[4]:
            continue
        rows.append({"device": dev, "util_pct": round(min(100.0, d[4] / (elapsed * 10.0)), 1),
                     "await_ms": round((d[1] + d[3]) / ios, 2) if ios else 0.0,
                     "reads_per_s": round(d[0] / elapsed, 1), "writes_per_s": round(d[2] / elapsed, 1)})
    rows.sort(key=lambda r: (-r["util_pct"], -r["await_ms"]))
    return rows[:limit]


def _owner(root, pid):
    text = read_optional(os.path.join(root, "proc", str(pid), "status")) or ""
    for line in text.splitlines():
        if line.startswith("Uid:"):
            return user_name(int(line.split()[1]))
    return None


def top_processes(before, after, elapsed, root="/", limit=TOP_N):
    """{by_cpu, by_rss, by_io}: the processes that used most CPU and I/O in the window and hold
    most resident memory at its end."""
    page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    rows = []
    for pid, (comm, _state, _ppid, ticks, rss, io) in after.items():
        old = before.get(pid)
        same = old is not None and old[0] == comm
        cpu = max(0, ticks - old[3]) if same else 0
        io_delta = max(0, io - old[5]) if same and io is not None and old[5] is not None else 0
        rows.append((pid, comm, cpu, rss, io_delta))
    span = max(elapsed, 1e-6)

    def entry(row, **extra):
        return dict({"pid": row[0], "command": row[1], "user": _owner(root, row[0])}, **extra)

    by_cpu = [entry(r, cpu_pct=round(100.0 * r[2] / tick / span, 1))
              for r in sorted(rows, key=lambda r: -r[2])[:limit] if r[2] > 0]
    by_rss = [entry(r, rss_bytes=r[3] * page) for r in sorted(rows, key=lambda r: -r[3])[:limit] if r[3] > 0]
    by_io = [entry(r, io_bytes_per_s=int(r[4] / span)) for r in sorted(rows, key=lambda r: -r[4])[:limit] if r[4] > 0]
    return {"by_cpu": by_cpu, "by_rss": by_rss, "by_io": by_io}


# The findings whose failure asks "who?", and what answers it.
PERFORMANCE_FINDINGS = {
    "HLTH-LOAD-001": ("processes", "devices"),
    "HLTH-CPU-001": ("processes",),
    "HLTH-CPU-002": ("processes", "devices"),
    "HLTH-MEM-001": ("processes",),
    "HLTH-SWAP-001": ("processes",),
    "HLTH-DISK-003": ("processes", "devices"),
}


def performance_evidence(findings, ctx):
    """Add top processes and busiest devices to the failing performance findings, in place.

    The first process and device samples were taken at the start of the module's window; the
    second is taken only now, when a finding needs it, so a healthy host pays for one sample."""
    if not ctx.p["perf_evidence"]:
        return
    failing = [f for f in findings if f["id"] in PERFORMANCE_FINDINGS and f["status"] == "fail"]
    if not failing:
        return
    window_end(ctx)
    elapsed = ctx.after["extra_at"] - ctx.before.get("extra_at", ctx.after["extra_at"])
    procs = devices = None
    before, after = ctx.before.get("procs"), ctx.after.get("procs")
    if isinstance(before, dict) and isinstance(after, dict):
        procs = top_processes(before, after, elapsed, ctx.root)
    dbefore, dafter = ctx.before.get("diskstats_detail"), ctx.after.get("diskstats_detail")
    if isinstance(dbefore, dict) and isinstance(dafter, dict):
        devices = busiest_devices(dbefore, dafter, elapsed)
    for found in failing:
        wants = PERFORMANCE_FINDINGS[found["id"]]
        if "processes" in wants and procs is not None:
            found["evidence"]["top_processes"] = procs
        if "devices" in wants and devices is not None:
            found["evidence"]["busiest_devices"] = devices
        found["evidence"]["top_window_seconds"] = round(elapsed, 3)


def _extra_samplers(ctx):
    out = []
    if ctx.p["perf_evidence"] or "HLTH-PROC-001" not in ctx.p["checks_skip"]:
        out.append(("procs", lambda: sample_processes(ctx.root, with_io=ctx.p["perf_evidence"])))
    if ctx.p["perf_evidence"]:
        out.append(("diskstats_detail", lambda: parse_diskstats_detail(ctx.proc("diskstats"))))
    return out


def _take(ctx, store):
    for name, reader in _extra_samplers(ctx):
        try:
            store[name] = reader()
        except Exception as exc:  # kept to report per check
            store[name] = exc
    store["extra_at"] = time.monotonic()


def window_start(ctx):
    """At the start of the module's one sampling window, in the background so that their time is
    the window's: the certificate discovery of HLTH-CERT-002 and the first process and device
    samples (:func:`first_samples` waits for them)."""
    if "HLTH-CERT-002" not in ctx.p["checks_skip"]:
        # on trouble the check starts over by itself and reports what went wrong
        with contextlib.suppress(Exception):
            start_discovery(ctx)
    ctx.first_samples = threading.Thread(target=_take, args=(ctx, ctx.before))
    ctx.first_samples.daemon = True
    ctx.first_samples.start()


def first_samples(ctx):
    thread = getattr(ctx, "first_samples", None)
    if thread is not None:
        thread.join()
    return ctx.before


def window_end(ctx):
    """The second process and device samples (only when a failing finding asks who)."""
    first_samples(ctx)
    _take(ctx, ctx.after)


def check_zombies(ctx):
    procs = first_samples(ctx).get("procs")  # taken at the start of the window
    if not isinstance(procs, dict):
        procs = sample_processes(ctx.root, with_io=False)
    zombies = [(pid, v[0], v[2]) for pid, v in sorted(procs.items()) if v[1] == "Z"]
    parents = {}
    for _pid, _comm, ppid in zombies:
        parent = procs.get(ppid)
        key = "%s (pid %d)" % (parent[0] if parent else "?", ppid)
        parents[key] = parents.get(key, 0) + 1
    count = len(zombies)
    worst = sorted(parents.items(), key=lambda i: -i[1])[:TOP_N]
    evidence = {"zombies": count, "threshold_count": ctx.p["zombie_warn_count"], "processes_seen": len(procs),
                "parents": [{"parent": k, "zombies": n} for k, n in worst]}
    return ("fail" if count >= ctx.p["zombie_warn_count"] else "pass"), "minor", evidence, [
        metric("zombie_processes", count)]


# --------------------------------------------------------------------------- failed SSH logins


SSH_FAILED = re.compile(r"^Failed (password|publickey|keyboard-interactive\S*|none|hostbased) for "
                        r"(invalid user )?.*? from ([0-9a-fA-F:.]+) port (\d+)")
# Messages that end a connection which never authenticated; counted once per connection that had no
# "Failed ..." line (key probing, invalid users on a key-only server).
SSH_FAILED_CONNECTION = re.compile(
    r"^(Invalid user .*? from |Connection closed by (authenticating|invalid) user .*? |"
    r"Disconnected from (authenticating|invalid) user .*? |"
    r"error: maximum authentication attempts exceeded for .*? from )([0-9a-fA-F:.]+) port (\d+)")


def ssh_failures(lines):
    """(failed attempts, {source address: count}) from sshd's journal messages: every "Failed ..."
    line, plus one for each other connection that ended before authenticating."""
    attempts, with_failed, other = [], set(), set()
    for line in lines:
        line = line.strip()
        match = SSH_FAILED.match(line)
        if match:
            attempts.append(match.group(3))
            with_failed.add((match.group(3), match.group(4)))
            continue
        match = SSH_FAILED_CONNECTION.match(line)
        if match:
            other.add((match.group(4), match.group(5)))
    attempts.extend(addr for addr, port in sorted(other - with_failed))
    sources = {}
    for addr in attempts:
        sources[addr] = sources.get(addr, 0) + 1
    return len(attempts), sources


def check_ssh_failures(ctx):
    p = ctx.p
    window = p["ssh_window_minutes"]
    if not os.path.exists(_path(ctx, "/run/systemd/journal/socket")):
        raise NotApplicable("no systemd journal on this host (journald is not running)")
    if not any(os.path.exists(_path(ctx, d)) for d in ("/usr/sbin/sshd", "/usr/lib/openssh/sshd-session")):
        raise NotApplicable("the OpenSSH server is not installed")
    try:
        rc, out, err = run_cmd(["journalctl", "--system", "--quiet", "--no-pager", "--identifier=sshd",
                                "--identifier=sshd-session", "--since=-%dmin" % window, "--output=cat"])
    except ToolMissing:
        raise NotApplicable("journalctl is not installed") from None
    except (OSError, subprocess.SubprocessError) as exc:
        raise CheckError("cannot run journalctl: %s" % exc) from exc
    if any(d in err.lower() for d in DENIED):
        raise CheckError("user %s cannot read the system journal; run as root or add the user "
                         "to group adm or systemd-journal" % user_name(ctx.uid))
    if rc != 0:
        raise CheckError("journalctl failed (rc=%s): %s" % (rc, err.strip()[:200]))
    count, sources = ssh_failures(out.splitlines())
    per_hour = count * 60.0 / window
    status, severity = grade(per_hour, p["ssh_failed_warn_per_hour"], p["ssh_failed_critical_per_hour"],
                              "minor", "major")
    top = sorted(sources.items(), key=lambda i: -i[1])[:TOP_N]
    return status, severity, {"failed_per_hour": round(per_hour, 1), "failed": count, "window_minutes": window,
                              "threshold_per_hour": p["ssh_failed_warn_per_hour"],
                              "critical_per_hour": p["ssh_failed_critical_per_hour"],
                              "top_sources": [{"address": a, "failed": n} for a, n in top]}, [
        metric("ssh_failed_logins_per_hour", per_hour)]


# --------------------------------------------------------------------------- memory-backed filesystems


MEMORY_FSTYPES = ("tmpfs", "ramfs")


def memory_fs_left_out(entry):
    """A read-only tmpfs or ramfs cannot fill up (container engines mask paths with empty ones)."""
    return entry["fstype"] in MEMORY_FSTYPES and "ro" in entry["options"]

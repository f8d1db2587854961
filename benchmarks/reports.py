"""Benchmark: history ingest, every report, JUnit and the Prometheus textfile on a 1,000 hosts x 200 checks run.

    .venv/bin/python benchmarks/reports.py [--hosts 1000] [--checks 200] [--keep DIR] [--no-lifecycle]

The run is measured twice in one process: first alone, then with its lifecycle (issue 13): a
previous run of the same command over the same hosts already in history, 5,000 waivers (1,000 in
history, 4,000 as from a ``--waivers`` file) and the shipped service-level policy, judged by
``fleetcare.app.judge_lifecycle`` (waivers, comparison, service levels, recurrence) before the run is
saved and every report written. The previous run is built and saved by a child process, so this
process never holds two runs at once. Both totals are printed side by side.

Each stage is timed without tracemalloc (which slows allocation-heavy code and holds memory of
its own), the run alone and then with its lifecycle; ru_maxrss is the process high-water mark
after those timed passes, so it holds the synthetic run itself as well. Only then does a last
pass repeat the stages of the run alone, on a fresh synthetic run, under tracemalloc for the
Python peak of each one. The ``html matrix`` stage renders the host x check matrix's
blocks of report.html alone, to show their share; "report html" already includes them, so the
total counts them once. Every figure is printed beside its target as a ratio
(figure / target: below 1.00 meets it), and each stage's time beside a baseline measured
in the same run: ``json.dumps`` of the same report dict, the cheapest serialisation there is.
Each stage's CPU time (``time.process_time``: this process only, waits for the disk left out) is
printed beside, over the baseline's CPU time: on a shared machine the wall clock counts the other
processes' turns too, and that ratio holds better from one run to the next.

The traced pass is slow (minutes): fastjsonschema's generated validator, which checks the
JSON report, calls ``locals()`` for every item, and under tracemalloc that costs about a
hundred times more; ``--skip-tracemalloc`` gives the timings alone in about 20 seconds.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fleetcare import reports
from fleetcare.history import History
from fleetcare.reports import html as html_report
from fleetcare.reports import prometheus
from fleetcare.results import Finding, HostResult, Metric, Run

TARGET_SECONDS = 10.0  # history ingest + load + every report, rendered and written
TARGET_MEMORY_MB = 500.0
TARGET_HTML_MB = 5.0
MATRIX_FILE = "matrix.html.part"  # the matrix's blocks of report.html, written alone to be measured
MATRIX_STAGE = "html matrix (in html)"  # its share of "report html", so left out of the total
MB = 1024 * 1024

# -- a synthetic run, shaped like real ones -------------------------------------------------------------
_SSH = ["PermitRootLogin", "PasswordAuthentication", "X11Forwarding", "MaxAuthTries", "ClientAliveInterval",
        "AllowTcpForwarding", "LoginGraceTime", "PermitEmptyPasswords", "IgnoreRhosts",
        "HostbasedAuthentication"]
_SYSCTL = ["net.ipv4.ip_forward", "net.ipv4.conf.all.send_redirects", "net.ipv4.conf.all.accept_redirects",
           "kernel.randomize_va_space", "fs.suid_dumpable", "net.ipv4.tcp_syncookies", "kernel.kptr_restrict",
           "net.ipv4.conf.all.rp_filter", "kernel.dmesg_restrict", "net.ipv6.conf.all.accept_ra"]
_FILES = ["/etc/shadow", "/etc/gshadow", "/etc/passwd", "/etc/group", "/etc/crontab", "/etc/ssh/sshd_config",
          "/etc/cron.d", "/etc/cron.daily", "/boot/grub/grub.cfg", "/etc/sudoers"]
_PACKAGES = ["telnet", "rsh-client", "talk", "nis", "xinetd", "tftp", "ftp", "ldap-utils", "rpcbind",
             "avahi-daemon"]
_MOUNTS = ["/", "/var", "/var/log", "/srv", "/home", "/tmp"]
_UNITS = ["nginx.service", "certbot.service", "postgresql@15-main.service", "restic-backup.service",
          "systemd-timesyncd.service"]


def _catalog(n: int, rng: random.Random) -> list[dict[str, Any]]:
    """``n`` checks: a sixth health, most hardening, a few patching, backup and drift."""
    kinds = ["disk", "unit", "load", "cert", "time"] * 6 + ["sshd", "sysctl", "mode", "absent"] * 40 \
        + ["patch"] * 10 + ["backup"] * 5 + ["drift"] * 5
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        role = {"sshd": "hardening", "sysctl": "hardening", "mode": "hardening", "absent": "hardening",
                "patch": "patching", "backup": "backup", "drift": "drift"}.get(kind, "health")
        area = {"health": "HLTH", "hardening": "HARD", "patching": "PTCH", "backup": "BKUP",
                "drift": "DRFT"}[role]
        out.append({
            "id": f"{area}-{kind.upper()}-{i:03d}", "kind": kind, "role": role,
            "title": f"{kind} check {i}: " + rng.choice(["configured as the baseline requires",
                                                         "within its threshold", "present and current"]),
            "severity": rng.choices(["critical", "major", "minor", "info"], [1, 4, 4, 2])[0],
            # about the length of the remediation texts in the catalogs (100-150 characters)
            "remediation": (f"Run 'fleetcare harden --tags {area}-{kind.upper()}-{i:03d}', or fix it by "
                            "hand; see 'fleetcare explain' for the steps and side effects."),
            "references": [f"CIS Debian 12 v1.1.0 {i // 20 + 1}.{i % 20 + 1}", f"STIG V-{238000 + i}",
                           f"Lynis {area[:3]}-{7000 + i}"],
            # most checks rarely fail, a few fail widely: about 10% on average
            "fail_p": min(0.9, rng.expovariate(10.0)),
            "x": rng.randrange(10),
        })
    return out


def _evidence(check: dict[str, Any], failing: bool, rng: random.Random) -> dict[str, Any]:
    kind, x = check["kind"], check["x"]
    if kind == "disk":
        used = round(rng.uniform(91, 99.9) if failing else rng.uniform(10, 85), 1)
        return {"mount": _MOUNTS[x % len(_MOUNTS)], "used_pct": used, "threshold_pct": 90,
                "inodes_used_pct": round(rng.uniform(1, 40), 1)}
    if kind == "unit":
        units = rng.sample(_UNITS, rng.randint(1, 2)) if failing else []
        return {"failed_units": units, "count": len(units)}
    if kind == "load":
        return {"load15_per_core": round(rng.uniform(2.1, 6) if failing else rng.uniform(0, 1.5), 2),
                "threshold": 2.0, "cores": rng.choice([2, 4, 8, 16])}
    if kind == "cert":
        return {"path": f"/etc/ssl/certs/site-{x}.pem", "days_left": rng.randint(1, 13) if failing else
                rng.randint(30, 365), "threshold_days": 14, "subject": f"CN=www{x}.customer-a.example"}
    if kind == "time":
        return {"synchronized": not failing, "offset_ms": round(rng.uniform(0, 900 if failing else 20), 1),
                "source": "systemd-timesyncd"}
    if kind == "sshd":
        opt = _SSH[x]
        return {"file": "/etc/ssh/sshd_config", "option": opt, "expected": "no",
                "actual": "yes" if failing else "no"}
    if kind == "sysctl":
        return {"key": _SYSCTL[x], "expected": "0", "actual": "1" if failing else "0"}
    if kind == "mode":
        return {"path": _FILES[x], "expected_mode": "0640", "actual_mode": "0644" if failing else "0640",
                "owner": "root", "group": "shadow"}
    if kind == "absent":
        return {"package": _PACKAGES[x], "installed": failing,
                "version": f"0.17-{rng.randint(40, 50)}" if failing else None}
    if kind == "patch":
        n = rng.randint(1, 9) if failing else 0
        return {"security_updates": n, "other_updates": rng.randint(0, 40),
                "cves": [f"CVE-2025-{rng.randint(1000, 59999)}" for _ in range(min(n, 4))]}
    if kind == "backup":
        return {"repository": "sftp:backup@vault-1:/srv/restic/host", "age_hours":
                round(rng.uniform(26, 200) if failing else rng.uniform(1, 23), 1), "rpo_hours": 24}
    return {"path": f"/etc/app/conf.d/{x}.conf", "baseline_sha256": f"{rng.getrandbits(256):064x}",
            "sha256": f"{rng.getrandbits(256):064x}" if failing else "same", "mode": "0644"}


def synthetic_run(hosts: int, checks: int, unreachable: int = 5, seed: int = 20261125) -> Run:
    rng = random.Random(seed)
    catalog = _catalog(checks, rng)
    run = Run(id="20261125-092000-bench", command="inspect", inventory="inventories/customer-a.yml",
              started="2026-11-25T09:20:00+00:00")
    roles = ["web", "app", "db", "cache", "queue", "lb"]
    for n in range(hosts):
        name = f"{roles[n % len(roles)]}-{n // 250 + 1}-{n:04d}.dc{n % 3 + 1}.customer-a.example"
        host = run.hosts[name] = HostResult(name, status="ok")
        if n % 200 == 199:
            host.status = "failed"
            host.message = ("Check pending updates: E: Could not get lock /var/lib/dpkg/lock-frontend. "
                            "It is held by process 2231 (unattended-upgr)")
        findings = host.findings
        for c in catalog:
            r = rng.random()
            if r < c["fail_p"]:
                status = "fail"
            elif r > 0.997:
                status = "error"
            elif c["kind"] in ("sysctl", "time") and n % 20 == 0:
                status = "not_applicable"
            elif r > 0.992:
                status = "waived"
            else:
                status = "pass"
            if status in ("error", "not_applicable"):
                evidence = {"reason": "the check could not run: /proc/sys is read-only in this container"
                            if status == "not_applicable" else "command timed out after 30 s"}
            else:
                evidence = _evidence(c, status == "fail", rng)
            findings.append(Finding(c["id"], c["title"], c["severity"], status, name, c["role"], evidence,
                                    c["remediation"], list(c["references"])))
        host.metrics = [
            Metric(name, "load15_per_core", round(rng.uniform(0, 3), 2)),
            Metric(name, "memory_used_pct", round(rng.uniform(20, 95), 1), "percent"),
            Metric(name, "swap_used_pct", round(rng.uniform(0, 30), 1), "percent"),
            Metric(name, "disk_used_pct", round(rng.uniform(10, 99), 1), "percent", {"mount": "/"}),
            Metric(name, "disk_used_pct", round(rng.uniform(10, 99), 1), "percent", {"mount": "/var"}),
            Metric(name, "uptime_days", round(rng.uniform(0, 400), 1), "days"),
        ]
    for n in range(unreachable):
        name = f"edge-{n:02d}.dc1.customer-a.example"
        run.hosts[name] = HostResult(name, "unreachable", "Failed to connect to the host via ssh: "
                                     f"ssh: connect to host 10.20.{n}.7 port 22: Connection timed out")
    run.finished = "2026-11-25T09:24:31+00:00"
    run.status = "complete"
    run.exit_code = 3
    return run


# -- measuring ---------------------------------------------------------------------------------------------
def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# -- the lifecycle: a previous run in history, waivers, the service-level policy ----------------------
PREVIOUS_ID = "20261124-092000-prev"
WAIVERS_IN_HISTORY = 1000
WAIVERS_IN_FILE = 4000


def _previous_into(db: Path, hosts: int, checks: int) -> None:
    """In a child process: the previous run (same hosts and checks, other results, a day earlier)
    saved in ``db``, and the history's waivers."""
    prev = synthetic_run(hosts, checks, seed=20261124)
    prev.id, prev.started, prev.finished = PREVIOUS_ID, "2026-11-24T09:20:00+00:00", "2026-11-24T09:24:31+00:00"
    with History(db) as h:
        h.save(prev)
        for n, (fid, host) in enumerate(_waived_pairs(prev, WAIVERS_IN_HISTORY, 1)):
            h.add_waiver(fid, host, f"accepted risk, change CHG-{n:05d}", "ops-team",
                         "2027-01-15T00:00:00+00:00", "2026-11-01T00:00:00+00:00")


def _waived_pairs(run: Run, count: int, seed: int) -> list[tuple[str, str]]:
    """``count`` (finding ID, host pattern) pairs: most one failing finding on one host, some an ID
    on a group of hosts (``web-1-*``), a few a pattern of IDs on a group of hosts."""
    rng = random.Random(seed)
    failing = [(f.id, f.host) for f in run.findings() if f.status == "fail"]
    ids = sorted({f.id for f in run.findings()})
    out = []
    for n in range(count):
        if n % 500 == 0:
            fid, host = rng.choice(failing)
            out.append((ids[rng.randrange(len(ids))].rsplit("-", 1)[0] + "-*", "-".join(host.split("-", 2)[:2]) + "-*"))
        elif n % 10 == 0:
            fid, host = rng.choice(failing)
            out.append((fid, "-".join(host.split("-", 2)[:2]) + "-*"))
        else:
            out.append(rng.choice(failing))
    return out


def _file_waivers(run: Run) -> tuple[Any, ...]:
    """The waivers a ``--waivers`` file of 4,000 entries gives, as fleetcare.waivers reads them
    (built directly: the synthetic check IDs are not in the catalogs the file is checked against)."""
    from datetime import UTC, datetime

    from fleetcare.waivers import Waiver

    expires = datetime(2027, 2, 1, tzinfo=UTC)
    pairs = _waived_pairs(run, WAIVERS_IN_FILE, 2)
    return tuple(Waiver(fid, host, f"vendor exception {n}", "customer-a-security", expires, "file",
                        f"waivers.yml#{n + 1}") for n, (fid, host) in enumerate(pairs))


def _stages(run: Run, work: Path, lifecycle: bool = False, hosts: int = 0,
            checks: int = 0) -> list[tuple[str, Callable[[], Any]]]:
    db = work / "history.db"
    out = work / "reports"
    out.mkdir()
    # the baseline's input is built beforehand and dropped right after, so that it neither
    # counts in the baseline's figure nor inflates the memory of the stages after it
    state: dict[str, Any] = {"report": run.to_report()}
    if lifecycle:
        import multiprocessing

        child = multiprocessing.get_context("fork").Process(target=_previous_into, args=(db, hosts, checks))
        child.start()
        child.join()
        assert child.exitcode == 0, "the previous run could not be saved"

    def baseline() -> None:
        json.dumps(state.pop("report"))

    def judge() -> None:
        from fleetcare import app, policy

        state["history"] = History(db)
        rules = app.Rules(policy.defaults(), _file_waivers(run))
        app.judge_lifecycle(run, state["history"], rules)
        assert run.comparison and run.comparison["against"] == PREVIOUS_ID, "not compared"
        assert run.waivers and run.waivers["waived"] > 0 and run.service_levels

    def save() -> None:
        h = state.get("history") or History(db)
        state["history"] = h
        h.save(run)

    def load() -> None:
        loaded = state["history"].load(run.id)
        state["history"].close()
        assert len(loaded.hosts) == len(run.hosts)

    def write(fmt: str) -> Callable[[], None]:
        def stage() -> None:
            reports.atomic_write(out / reports.filename(fmt), reports.render(run, fmt))
        return stage

    def textfile() -> None:
        prometheus.write(run, out)

    def matrix() -> None:
        # the host x check matrix alone (report html above already holds it): its share
        reports.atomic_write(out / MATRIX_FILE, html_report.render_matrix(run))

    return [("json.dumps (baseline)", baseline),
            *([("lifecycle (5k waivers)", judge)] if lifecycle else []),
            ("history save", save), ("history load", load),
            *((f"report {fmt}", write(fmt)) for fmt in (*reports.FORMATS, *reports.EXPORTS)),
            (MATRIX_STAGE, matrix),
            ("prometheus textfile", textfile)]


def _timed(stages) -> tuple[list[float], list[float], list[float]]:
    times, cpu, rss = [], [], []
    for _, fn in stages:
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        rss.append(_rss_mb())
    return times, cpu, rss


def _peaks(stages) -> list[float]:
    peaks = []
    tracemalloc.start()
    try:
        for _, fn in stages:
            gc.collect()
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            fn()
            peaks.append((tracemalloc.get_traced_memory()[1] - base) / MB)
    finally:
        tracemalloc.stop()
    return peaks


def _measure(run: Run, args: argparse.Namespace, lifecycle: bool) -> dict[str, Any]:
    """One pass: every stage timed (the traced pass, which inflates the process's memory, comes
    after every timed pass: see :func:`_traced_peaks`)."""
    with tempfile.TemporaryDirectory(prefix="fleetcare-bench-") as tmp:
        first = Path(tmp) / "timed"
        first.mkdir()
        stages = _stages(run, first, lifecycle, args.hosts, args.checks)
        times, cpu, rss_after = _timed(stages)
        sizes = {fmt: (first / "reports" / reports.filename(fmt)).stat().st_size
                 for fmt in (*reports.FORMATS, *reports.EXPORTS)}
        sizes["prometheus"] = (first / "reports" / prometheus.filename(run.command)).stat().st_size
        sizes["matrix"] = (first / "reports" / MATRIX_FILE).stat().st_size
        sizes["history"] = (first / "history.db").stat().st_size
        if args.keep:
            keep = args.keep / ("lifecycle" if lifecycle else "plain")
            keep.mkdir(parents=True, exist_ok=True)
            for fmt in reports.FORMATS:
                name = reports.filename(fmt)
                (keep / name).write_bytes((first / "reports" / name).read_bytes())
    return {"stages": [name for name, _ in stages], "times": times, "cpu": cpu, "rss": rss_after,
            "peaks": [float("nan")] * len(stages), "sizes": sizes, "traced": 0.0}


def _traced_peaks(args: argparse.Namespace) -> tuple[list[float], float]:
    """The Python peak of each stage of the run alone, traced in a pass of its own on a fresh
    synthetic run (the timed lifecycle pass changed the first one); (peaks, seconds it took)."""
    t0 = time.perf_counter()
    fresh = synthetic_run(args.hosts, args.checks)
    with tempfile.TemporaryDirectory(prefix="fleetcare-bench-") as tmp:
        peaks = _peaks(_stages(fresh, Path(tmp)))
    return peaks, time.perf_counter() - t0


def _table(m: dict[str, Any], title: str) -> float:
    """Print one pass; return its total (history + lifecycle + reports, the matrix counted once)."""
    sizes, times = m["sizes"], m["times"]
    base = times[0]
    size_of = {"history save": sizes["history"], "prometheus textfile": sizes["prometheus"],
               MATRIX_STAGE: sizes["matrix"],
               **{f"report {f}": sizes[f] for f in (*reports.FORMATS, *reports.EXPORTS)}}
    print(f"-- {title}")
    cpu, cpu_base = m["cpu"], m["cpu"][0] or 1e-9
    print(f"{'stage':<24}{'time s':>8}{'x baseline':>12}{'cpu s':>8}{'x cpu base':>12}{'py peak MB':>12}"
          f"{'rss MB':>8}{'size MB':>10}")
    for name, secs, used, peak, high in zip(m["stages"], times, cpu, m["peaks"], m["rss"], strict=True):
        size = f"{size_of[name] / MB:10.2f}" if name in size_of else ""
        peak_text = f"{peak:12.1f}" if peak == peak else f"{'-':>12}"
        print(f"{name:<24}{secs:8.2f}{secs / base:12.2f}{used:8.2f}{used / cpu_base:12.2f}{peak_text}{high:8.0f}{size}")
    # the matrix stage re-renders a part of report.html, whose stage already holds it: not counted twice
    total = sum(t for name, t in zip(m["stages"][1:], times[1:], strict=True) if name != MATRIX_STAGE)
    cpu_total = sum(t for name, t in zip(m["stages"][1:], cpu[1:], strict=True) if name != MATRIX_STAGE)
    # CPU time (this process's, fsync waits not in it) beside: on a shared machine the wall clock
    # also counts the other processes' turns, so the ratio of CPU times compares runs better
    print(f"total: {total:.2f} s / {TARGET_SECONDS:.0f} s = {total / TARGET_SECONDS:.2f} · "
          f"{total / base:.1f} x baseline · cpu {cpu_total:.2f} s = {cpu_total / cpu_base:.1f} x cpu baseline")
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--checks", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="copy the reports of the timed passes here")
    parser.add_argument("--skip-tracemalloc", action="store_true",
                        help="time only (the traced pass takes minutes, see the module docstring)")
    parser.add_argument("--no-lifecycle", action="store_true",
                        help="measure the run alone, without its lifecycle")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    run = synthetic_run(args.hosts, args.checks)
    report = run.to_report()
    s = report["summary"]
    print(f"synthetic run: {s['hosts_total']:,} hosts ({s['hosts_unreachable']} unreachable, "
          f"{s['hosts_failed']} failed), {args.checks} checks, {len(report['findings']):,} findings "
          f"({s['findings_by_status']['fail']:,} fail = "
          f"{s['findings_by_status']['fail'] / max(1, len(report['findings'])):.1%}, "
          f"{s['findings_by_status']['error']:,} error), {len(report['metrics']):,} metrics; "
          f"built in {time.perf_counter() - t0:.1f} s, rss {_rss_mb():.0f} MB")
    del report

    plain = _measure(run, args, lifecycle=False)
    shown = html_report.matrix_context(run, html_report.analyse(run))["matrix"]
    life = None if args.no_lifecycle else _measure(run, args, lifecycle=True)
    # the high-water mark of the timed passes, before tracemalloc's own memory adds to it
    rss = _rss_mb()
    if not args.skip_tracemalloc:
        plain["peaks"], plain["traced"] = _traced_peaks(args)
    total = _table(plain, "the run alone")
    sizes = plain["sizes"]
    peak = max(p for p in plain["peaks"][1:]) if not args.skip_tracemalloc else 0.0
    met = total <= TARGET_SECONDS and peak <= TARGET_MEMORY_MB
    html_mb = sizes["html"] / MB
    if life is not None:
        life_total = _table(life, f"with its lifecycle: a previous run of the same size, "
                                  f"{WAIVERS_IN_HISTORY + WAIVERS_IN_FILE:,} waivers, the service-level policy")
        w, levels = run.waivers, run.service_levels
        c = run.comparison["counts"]
        print(f"lifecycle: {w['waived']:,} findings waived by {len(w['used']):,} waivers; comparison "
              f"new {c['new']:,}, still open {c['still_open']:,}, regressed {c['regressed']:,}, resolved "
              f"{c['resolved']:,}; {levels['counts'].get('open', 0):,} open findings with due times, "
              f"{levels['counts'].get('overdue', 0):,} overdue")
        print(f"with lifecycle vs alone: {life_total:.2f} s vs {total:.2f} s = {life_total / total:.2f}")
        met = met and life_total <= TARGET_SECONDS
        html_mb = max(html_mb, life["sizes"]["html"] / MB)
    if args.skip_tracemalloc:
        print("python peak: not measured (--skip-tracemalloc)")
    else:
        print(f"python peak (largest stage, run alone): {peak:.0f} MB / {TARGET_MEMORY_MB:.0f} MB = "
              f"{peak / TARGET_MEMORY_MB:.2f} (traced in a second pass that took {plain['traced']:.0f} s)")
    print(f"ru_maxrss (process, both timed passes and the synthetic run): {rss:.0f} MB / {TARGET_MEMORY_MB:.0f} MB = "
          f"{rss / TARGET_MEMORY_MB:.2f}")
    print(f"report.html: {html_mb:.2f} MB / {TARGET_HTML_MB:.0f} MB = {html_mb / TARGET_HTML_MB:.2f}"
          f" · report.json {sizes['json'] / MB:.1f} MB · report.md {sizes['md'] / 1024:.0f} KB")
    print(f"matrix: {len(shown.hosts):,} hosts x {shown.checks:,} checks = {shown.cells:,} cells, "
          f"{sizes['matrix'] / MB:.2f} MB of report.html ({'drawn' if not shown.too_big else 'left out'}; "
          f"per-host sections {'listed' if shown.hosts_listed else 'left out'}: they are up to "
          f"{html_report.matrix.MAX_HOST_CELLS:,} cells)")
    met = met and rss <= TARGET_MEMORY_MB and html_mb <= TARGET_HTML_MB
    print("(py peak: the most Python memory a stage held at once; rss: process high-water mark after the stage)")
    print("targets: met" if met else "targets: NOT met")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

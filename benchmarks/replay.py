"""Benchmark: the cost of run accounting while events arrive (issue 9, item 6).

    .venv/bin/python benchmarks/replay.py [--hosts 1000] [--findings 337] [--repeat 5]

A recorded-style event stream (per host: task start, runner start, one module
result carrying ``--findings`` findings; then the play's stats) is fed through
the results model twice: once bare, once with the progress line redrawn on a
pseudo-terminal (``pty.openpty()``; a thread drains the other end as a terminal
would). The figure is the time with progress divided by the time without, best
of ``--repeat`` runs each: the target is at most 1.1, i.e. keeping the display
up to date costs no more than a tenth of building the run itself.
"""

from __future__ import annotations

import argparse
import gc
import os
import pty
import sys
import threading
import time
from typing import Any

from fleetcare.app import Progress
from fleetcare.results import Run

TARGET_RATIO = 1.1


def events(hosts: int, findings: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    task_uuid = "00000000-0000-0000-0000-000000000001"
    out.append({"event": "playbook_on_task_start", "event_data": {"task": "Inspect", "task_uuid": task_uuid}})
    for h in range(hosts):
        name = f"host-{h:04d}"
        records = [{"id": f"HLTH-X{i:03d}-001", "title": f"check {i}", "severity": ("critical", "major",
                    "minor", "info")[i % 4], "status": "fail" if (h + i) % 7 == 0 else "pass",
                    "evidence": {"value": i}, "remediation": "", "references": []} for i in range(findings)]
        base = {"host": name, "task": "Inspect", "task_uuid": task_uuid,
                "task_action": "fleetcare.ops.health_inspect",
                "resolved_action": "fleetcare.ops.health_inspect"}
        out.append({"event": "runner_on_start", "event_data": dict(base)})
        out.append({"event": "runner_on_ok", "event_data": {**base, "res": {"changed": False, "fleetcare": {
            "contract": 1, "role": "health", "findings": records, "metrics": [],
            "expected": findings}}}})
        # events that touch no host still reach the handler (and the progress line)
        out.append({"event": "verbose", "event_data": {}})
    out.append({"event": "playbook_on_stats", "event_data": {
        "ok": {f"host-{h:04d}": 1 for h in range(hosts)}, "dark": {}, "failures": {}}})
    return out


def replay(stream: list[dict[str, Any]], hosts: int, progress: Progress | None) -> float:
    run = Run(id="20261201-000000-bench", command="inspect")
    for h in range(hosts):
        run.host(f"host-{h:04d}")
    gc.collect()
    start = time.perf_counter()
    for event in stream:
        run.feed(event)
        if progress is not None:
            progress.update(run)
    elapsed = time.perf_counter() - start
    if progress is not None:
        progress.close()
    assert sum(1 for h in run.hosts.values() if h.status == "ok") == hosts
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--findings", type=int, default=337)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    stream = events(args.hosts, args.findings)

    master, slave = pty.openpty()
    drained = [0]

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            drained[0] += len(chunk)

    threading.Thread(target=drain, daemon=True).start()
    terminal = os.fdopen(slave, "w", encoding="utf-8", buffering=1)
    bare, shown = [], []
    for _ in range(args.repeat):
        bare.append(replay(stream, args.hosts, None))
        shown.append(replay(stream, args.hosts, Progress(terminal, args.hosts)))
    terminal.close()
    ratio = min(shown) / min(bare)
    print(f"replay {args.hosts} hosts x {args.findings} findings ({len(stream)} events), best of {args.repeat}")
    print(f"  without progress: {min(bare):8.3f} s")
    print(f"  progress on pty:  {min(shown):8.3f} s   ({drained[0]} bytes drawn)")
    print(f"  ratio {ratio:.3f} (target at most {TARGET_RATIO}) -> {'ok' if ratio <= TARGET_RATIO else 'MISSED'}")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())

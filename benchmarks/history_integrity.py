"""Benchmark: what guarding history against damage costs a run.

    .venv/bin/python benchmarks/history_integrity.py [--hosts 1000] [--checks 337] [--runs 3]

Before its first write (``History.begin``, at the start of every run, before any host
is contacted) fleetcare runs SQLite's ``PRAGMA quick_check`` over the whole database,
so that a damaged file is refused untouched. That read grows with the history. This
stores ``--runs`` synthetic runs of hosts x checks findings, then times the check a
next run pays, beside a baseline measured in the same run: saving one such run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from reports import synthetic_run  # benchmarks/reports.py: run as a script, its folder is on sys.path

from fleetcare.history import History


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--checks", type=int, default=337)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    run = synthetic_run(args.hosts, args.checks)
    with tempfile.TemporaryDirectory() as work:
        db = Path(work) / "history.db"
        saves = []
        for n in range(args.runs):
            run.id = f"bench-{n}"
            with History(db) as h:
                start = time.perf_counter()
                h.save(run)
                saves.append(time.perf_counter() - start)
        with History(db) as h:
            start = time.perf_counter()
            h._check_integrity()
            check = time.perf_counter() - start
        size = db.stat().st_size / 1e6
    save = min(saves)
    print(f"history of {args.runs} runs x {args.hosts} hosts x {args.checks} checks: {size:.0f} MB")
    print(f"baseline, saving one run:          {save:.2f} s")
    print(f"quick_check before the next write: {check:.2f} s = {check / save:.2f} x baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())

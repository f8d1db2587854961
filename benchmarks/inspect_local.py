#!/usr/bin/env python3
"""Wall time of `fleetcare inspect` on this machine beside `ansible localhost -m setup`.

Both are whole processes, measured alternately in the same run (median of
--repeat runs each), so the ratio holds whatever the machine is doing.
Target: ratio at most 1.5 (the inspection costs about one fact gathering).

    .venv/bin/python benchmarks/inspect_local.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TARGET = 1.5


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):  # inspect exits 1 when a finding fails; that is a result
        sys.exit(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "XDG_DATA_HOME": data, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
               "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        inspect = [str(BIN / "fleetcare"), "inspect", "-q"]
        setup = [str(BIN / "ansible"), "localhost", "-i", str(ROOT / "inventories" / "localhost.yml"),
                 "-m", "ansible.builtin.setup"]
        timed(inspect, env), timed(setup, env)  # warm the page cache for both
        t_inspect, t_setup = [], []
        for _ in range(args.repeat):
            t_inspect.append(timed(inspect, env))
            t_setup.append(timed(setup, env))
    inspect_s, setup_s = statistics.median(t_inspect), statistics.median(t_setup)
    ratio = inspect_s / setup_s
    print(f"fleetcare inspect (local)        {inspect_s:6.2f} s  (median of {args.repeat})")
    print(f"ansible localhost -m setup       {setup_s:6.2f} s  (baseline, same run)")
    print(f"ratio inspect/setup              {ratio:6.2f}    target <= {TARGET}  "
          f"{'OK' if ratio <= TARGET else 'OVER TARGET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

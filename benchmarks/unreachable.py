#!/usr/bin/env python3
"""`fleetcare inspect` on a fleet of unreachable hosts beside `ansible all -m ping`.

Every host is a 127.0.0.x address (x = 1..254, reused round-robin: names are
distinct, addresses repeat) with a port that nothing listens on, so each SSH
connection is refused at once and nothing leaves the machine. Both whole
processes run on the same inventory, the same ansible.cfg and the same forks;
a third figure, ``ansible-playbook`` on the inspect playbook alone, tells the
wrapper's share from the playbook's. Prints the seconds and the ratio
(target: inspect / ping <= 1.2).

    .venv/bin/python benchmarks/unreachable.py                # 2,000 hosts (several minutes)
    .venv/bin/python benchmarks/unreachable.py --hosts 500 --repeat 3   # while developing
    .venv/bin/python benchmarks/unreachable.py --hosts 500 --profile DIR   # cProfile of the wrapper
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TARGET = 1.2


def closed_port() -> int:
    """A loopback port nothing listens on: the kernel's pick, released again."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for address in ("127.0.0.1", "127.0.0.254"):
        with socket.socket() as s:
            if s.connect_ex((address, port)) == 0:
                sys.exit(f"{address}:{port} accepts connections; run again")
    return port


def write_inventory(path: Path, hosts: int, port: int) -> None:
    lines = ["all:", "  vars:", f"    ansible_port: {port}", "    ansible_user: nobody", "  hosts:"]
    for i in range(hosts):
        lines.append(f"    down-{i:05d}:")
        lines.append(f"      ansible_host: 127.0.0.{1 + i % 254}")
    path.write_text("\n".join(lines) + "\n")


def timed(argv: list[str], env: dict[str, str], ok: tuple[int, ...]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        sys.exit(f"{' '.join(argv[:3])} exited {proc.returncode}: {proc.stderr.strip()[-800:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=2000, help="fleet size (default 2000)")
    parser.add_argument("--forks", type=int, default=16, help="forks for both (default 16)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each command this many times, alternately, and take the median (default 1)")
    parser.add_argument("--no-playbook", action="store_true",
                        help="skip the third figure (ansible-playbook alone)")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="then profile one more inspect run (cProfile, DIR/inspect.prof)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fleetcare-bench-unreachable-"))
    inventory = work / "down.yml"
    write_inventory(inventory, args.hosts, closed_port())
    env = {**os.environ, "XDG_DATA_HOME": str(work / "data"), "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
           "ANSIBLE_NOCOLOR": "1", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    forks = ["--forks", str(args.forks)]
    inspect = [str(BIN / "fleetcare"), "inspect", "-q", "-i", str(inventory), *forks]
    ping = [str(BIN / "ansible"), "all", "-i", str(inventory), *forks, "-m", "ansible.builtin.ping"]
    playbook = [str(BIN / "ansible-playbook"), "-i", str(inventory), *forks,
                str(ROOT / "playbooks" / "inspect.yml")]
    try:
        # alternately, ping first (it warms the page cache for Ansible's own imports for
        # both), so that the load of a shared machine weighs on every figure alike
        runs: dict[str, list[float]] = {"ping": [], "inspect": [], "playbook": []}
        for _ in range(args.repeat):
            runs["ping"].append(timed(ping, env, ok=(4,)))  # 4: every host unreachable
            runs["inspect"].append(timed(inspect, env, ok=(3,)))  # 3: hosts unreachable
            if not args.no_playbook:
                runs["playbook"].append(timed(playbook, env, ok=(4,)))
        tp, ti = statistics.median(runs["ping"]), statistics.median(runs["inspect"])
        tb = statistics.median(runs["playbook"]) if runs["playbook"] else None
        if args.profile:  # apart from the timed runs: the profiler slows Python down
            args.profile.mkdir(parents=True, exist_ok=True)
            timed([sys.executable, "-m", "cProfile", "-o", str(args.profile / "inspect.prof"),
                   str(ROOT / "runner.py"), *inspect[1:]], env, ok=(0, 3))
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=False)
    print(f"{'hosts':>6} {'forks':>5} {'inspect s':>10} {'ping s':>8} {'ratio':>6}"
          f"{'':>2}{'playbook alone s':>16}")
    alone = f"{tb:>16.1f}" if tb is not None else f"{'-':>16}"
    print(f"{args.hosts:>6} {args.forks:>5} {ti:>10.1f} {tp:>8.1f} {ti / tp:>6.2f}  {alone}")
    if args.repeat > 1:
        for name, seconds in runs.items():
            if seconds:
                print(f"  {name}: {', '.join(f'{t:.1f}' for t in seconds)} s")
    print(f"target: ratio <= {TARGET} (fleetcare inspect beside ansible all -m ping, same inventory, "
          "ansible.cfg and forks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

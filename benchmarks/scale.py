#!/usr/bin/env python3
"""`fleetcare inspect` sharded over ansible-runner workers, beside a local run and beside a
plain `ansible all -m setup`, on the same lab hosts in the same run.

Brings up a podman lab (Debian 12, SSH on 127.0.0.1), then for each fleet size times whole
processes, alternately: `ansible all -m setup` (the baseline), `fleetcare inspect` run locally,
and `fleetcare inspect --workers` with one and with two workers (``ansible-runner worker``
processes on this machine, reached through ``cmd:``: the same stream a remote node or a
Receptor mesh carries). Printed per size: wall times, the merged runs as a ratio of the local
run (target <= 1.15: sharding and merging cost little), the cost per host, and the artifact
bytes and files each run left per host (bounded: no file per event on big runs). Then the
per-host cost at the largest size against the smallest (target: flat within 15 %) and an
estimate of N workers on N machines from the measured figures. The lab is removed at the end.

Workers on one 2-core machine share its cores, so they cannot make a run faster here; the
figures are about overhead and correctness (the integration tests compare the findings).

    .venv/bin/python benchmarks/scale.py                    # 4,8,16,32 hosts
    .venv/bin/python benchmarks/scale.py --sizes 4,16 --repeat 3
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
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
OVERHEAD_TARGET = 1.15
FLAT_TARGET = 0.15
WORKER = f"cmd:env PATH={BIN}:/usr/bin:/bin {BIN / 'ansible-runner'} worker"


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"{' '.join(argv[:4])} failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
    return elapsed


def newest_run(data: Path) -> Path:
    return max((data / "fleetcare" / "runs").iterdir(), key=lambda p: p.stat().st_mtime)


def footprint(run_dir: Path) -> tuple[int, int]:
    """(bytes, files) a run directory holds."""
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="4,8,16,32", help="comma-separated fleet sizes (default 4,8,16,32)")
    parser.add_argument("--forks", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=1, help="timings per command and size (median)")
    args = parser.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",")})

    import fleetcare_lab as lab

    state = Path(os.environ.get("FLEETCARE_LAB_DIR") or tempfile.mkdtemp(prefix="fleetcare-bench-lab-"))
    data = Path(tempfile.mkdtemp(prefix="fleetcare-bench-data-"))
    env = {**os.environ, "XDG_DATA_HOME": str(data), "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    modes = ("setup", "local", "1 worker", "2 workers")
    per_host: dict[str, dict[int, float]] = {m: {} for m in modes}
    try:
        t0 = time.perf_counter()
        inventory = lab.up(max(sizes), "12", state_dir=state)
        print(f"lab up: {max(sizes)} hosts in {time.perf_counter() - t0:.1f} s")
        names = sorted(h["host"] for h in lab.status(state))
        print(f"{'hosts':>5} {'setup s':>8} {'local s':>8} {'1w s':>7} {'2w s':>7} {'1w/local':>9} "
              f"{'2w/local':>9} {'local/setup':>12} {'local s/host':>13} {'2w s/host':>10} "
              f"{'local B/host':>13} {'local files/host':>17} {'2w B/host':>10} {'2w files/host':>14}")
        for n in sizes:
            limit = ",".join(names[:n])
            base = [str(BIN / "fleetcare"), "inspect", "-q", "-i", str(inventory), "--limit", limit,
                    "--forks", str(args.forks), "--fail-on", "critical"]
            argv = {
                "setup": [str(BIN / "ansible"), "all", "-i", str(inventory), "--limit", limit,
                          "--forks", str(args.forks), "-m", "ansible.builtin.setup"],
                "local": base,
                "1 worker": [*base, "--workers", WORKER],
                "2 workers": [*base, "--workers", WORKER, "--workers", WORKER],
            }
            timed(argv["setup"], env)  # warm: SSH control masters, page cache
            times: dict[str, list[float]] = {m: [] for m in modes}
            prints: dict[str, tuple[int, int]] = {}
            for _ in range(args.repeat):
                for mode in modes:
                    times[mode].append(timed(argv[mode], env))
                    if mode != "setup":
                        prints[mode] = footprint(newest_run(data))
            med = {m: statistics.median(t) for m, t in times.items()}
            for m in modes:
                per_host[m][n] = med[m] / n
            lb, lf = prints["local"]
            wb, wf = prints["2 workers"]
            print(f"{n:>5} {med['setup']:>8.2f} {med['local']:>8.2f} {med['1 worker']:>7.2f} "
                  f"{med['2 workers']:>7.2f} {med['1 worker'] / med['local']:>9.2f} "
                  f"{med['2 workers'] / med['local']:>9.2f} {med['local'] / med['setup']:>12.2f} "
                  f"{med['local'] / n:>13.3f} {med['2 workers'] / n:>10.3f} {lb / n:>13,.0f} {lf / n:>17.2f} "
                  f"{wb / n:>10,.0f} {wf / n:>14.2f}", flush=True)
        small, large = sizes[0], sizes[-1]
        db = data / "fleetcare" / "history.db"
        if db.exists():
            # what history keeps of every run: per host its status and findings, no event data
            host_runs = sum(n for n in sizes) * (len(modes) - 1) * args.repeat
            size = db.stat().st_size + sum(p.stat().st_size for p in db.parent.glob("history.db-*"))
            print(f"history: {size:,} bytes for {host_runs} host results ({size / host_runs:,.0f} B per host "
                  "and run)")
        print(f"target: merged run <= {OVERHEAD_TARGET}x the local run")
        for m in modes:
            # per-host cost with the fixed start-up of the run taken out: (t(N) - t(small)) / (N - small)
            # against the whole cost per host at the small size
            print(f"per-host cost {m:>9}: {per_host[m][small]:.3f} s at {small} hosts, "
                  f"{per_host[m][large]:.3f} s at {large} ({per_host[m][large] / per_host[m][small]:.2f}x)")
        if large > small:
            marginal = {m: (per_host[m][large] * large - per_host[m][small] * small) / (large - small) for m in modes}
            fixed = {m: per_host[m][small] * small - marginal[m] * small for m in modes}
            print(f"target: per-host cost flat within {FLAT_TARGET:.0%} from {small} to {large} hosts "
                  f"(decreasing is fine: the fixed start-up is shared by more hosts)")
            for m in modes:
                print(f"model {m:>9}: {fixed[m]:.2f} s fixed + {marginal[m]:.3f} s per host")
            # N workers on N machines: each machine runs its shard as the local run does, so the
            # wall time is about the fixed start-up plus the merged overhead plus 1/N of the host work
            extra = fixed["2 workers"] - fixed["local"]
            if marginal["local"] <= 0:
                print("estimate: none; the local run's time fell as hosts were added (the machine's load "
                      "changed between runs): repeat on a quieter machine, or with --repeat 3")
                return 0
            for workers in (2, 4, 8):
                hosts = 1000
                one = fixed["local"] + marginal["local"] * hosts
                many = fixed["local"] + max(extra, 0) + marginal["local"] * hosts / workers
                print(f"estimate: {hosts} hosts, {workers} workers on {workers} machines: {many:.0f} s "
                      f"against {one:.0f} s local ({one / many:.1f}x faster)")
    finally:
        lab.down(state)
        subprocess.run(["rm", "-rf", str(data)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

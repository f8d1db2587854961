#!/usr/bin/env python3
"""`fleetcare inspect` on a lab fleet beside a plain `ansible all -m setup`.

Brings up a podman lab (Debian 12, SSH on 127.0.0.1), then, for each fleet
size, times both whole processes alternately on the same inventory and forks
(median of --repeat) and prints the ratio (target <= 1.3: the inspection
costs about one fact-gathering round trip), the wall time per host, and how
many tasks reached each host over SSH (from the run's own runner events).
Half the hosts (--served) run nginx and PostgreSQL, installed with apt inside
them, and the inspection runs with every check on, declared service checks
included. The module's own time (its health_inspect_seconds metric, median
over hosts) is printed with the service checks off and on, in the same run, and so is the
same playbook run by ansible-playbook alone, to tell the role's cost from the wrapper's.
fleetcare's caches start empty in a folder of this run: the first (warm-up) inspection per
size is printed as the cold figure; the timed ones find the compiled template and validator and
the verdict of the input checks, as every later run on the same inventory does.
The lab is removed at the end.

    .venv/bin/python benchmarks/inspect_fleet.py                 # 8 hosts
    .venv/bin/python benchmarks/inspect_fleet.py --sizes 4,8,16  # per-host cost as the fleet grows
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
TARGET = 1.3
CONTROLLER_ACTIONS = {"validate_argument_spec", "ansible.builtin.validate_argument_spec"}
SERVED_PACKAGES = ("nginx", "postgresql")
# declared checks of every host: they pass on the served half and fail fast on the rest
DECLARED = [{"unit": "nginx.service"}, {"unit": "postgresql.service"}, {"tcp": 5432}, {"tcp": 80},
            {"http": "http://127.0.0.1/"}, {"process": "nginx"}, {"process": "postgres"}, {"tls": 443}]
SERVICE_CHECKS_OFF = {"health_services": [], "health_listening_enabled": False, "health_postgresql_enabled": False,
                      "health_mysql_enabled": False, "health_redis_enabled": False}


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"{' '.join(argv[:3])} failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
    return elapsed


def remote_tasks_per_host(data: Path) -> Counter[str]:
    """Tasks that ran on each host (controller-only actions left out), from
    the newest run's runner events."""
    runs = sorted((data / "fleetcare" / "runs").iterdir())
    counts: Counter[str] = Counter()
    for path in runs[-1].glob("runner/artifacts/*/job_events/*.json"):
        event = json.loads(path.read_text())
        ed = event.get("event_data", {})
        if event.get("event") == "runner_on_start" and ed.get("task_action") not in CONTROLLER_ACTIONS:
            counts[ed["host"]] += 1
    return counts


def serve(names: list[str], state: Path) -> None:
    """nginx and PostgreSQL on each named host, installed in parallel."""
    from concurrent.futures import ThreadPoolExecutor

    import fleetcare_lab as lab

    script = ("DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
              + " ".join(SERVED_PACKAGES))
    with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
        for name, proc in zip(names, pool.map(lambda n: lab.exec_in(n, ["sh", "-c", script], state_dir=state),
                                               names), strict=True):
            if proc.returncode != 0:
                sys.exit(f"apt-get install on {name} failed: {proc.stderr.strip()[-800:]}")


def module_seconds(data: Path) -> float:
    """Median of the module's own time (health_inspect_seconds) over the hosts of the newest run."""
    run = sorted((data / "fleetcare" / "runs").iterdir())[-1]
    report = json.loads((run / "report.json").read_text())
    values = [m["value"] for m in report["metrics"] if m["name"] == "health_inspect_seconds"]
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="8", help="comma-separated fleet sizes (default 8)")
    parser.add_argument("--forks", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--served", type=float, default=0.5,
                        help="share of the hosts running nginx and PostgreSQL (default 0.5)")
    args = parser.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",")})

    import fleetcare_lab as lab

    state = Path(tempfile.mkdtemp(prefix="fleetcare-bench-lab-"))
    data = Path(tempfile.mkdtemp(prefix="fleetcare-bench-data-"))
    env = {**os.environ, "XDG_DATA_HOME": str(data), "XDG_CACHE_HOME": str(data / "cache"),
           "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    try:
        t0 = time.perf_counter()
        inventory = lab.up(max(sizes), "12", state_dir=state)
        print(f"lab up: {max(sizes)} hosts in {time.perf_counter() - t0:.1f} s")
        names = [h["host"] for h in lab.status(state)]
        served = names[:round(len(names) * args.served)]
        if served:
            t0 = time.perf_counter()
            serve(served, state)
            print(f"nginx and PostgreSQL on {len(served)} of {len(names)} hosts in {time.perf_counter() - t0:.1f} s")
        on_vars, off_vars = data / "services-on.json", data / "services-off.json"
        on_vars.write_text(json.dumps({"health_services": DECLARED}))
        off_vars.write_text(json.dumps(SERVICE_CHECKS_OFF))
        print(f"{'hosts':>5} {'inspect s':>10} {'setup s':>8} {'ratio':>6} {'inspect s/host':>15} "
              f"{'setup s/host':>13} {'remote tasks/host':>18}")
        for n in sizes:
            limit = ",".join(names[:n])
            inspect = [str(BIN / "fleetcare"), "inspect", "-q", "-i", str(inventory), "--limit", limit,
                       "--forks", str(args.forks), "--vars-file", str(on_vars)]
            setup = [str(BIN / "ansible"), "all", "-i", str(inventory), "--limit", limit,
                     "--forks", str(args.forks), "-m", "ansible.builtin.setup"]
            # the role's playbook without the wrapper: what fleetcare itself adds is the difference
            playbook = [str(BIN / "ansible-playbook"), "-i", str(inventory), "--limit", limit,
                        "--forks", str(args.forks), "-e", f"@{on_vars}", str(ROOT / "playbooks" / "inspect.yml")]
            timed(setup, env)  # warm: SSH control masters, page cache
            cold_i, cold_s = timed(inspect, env), timed(setup, env)
            ti, ts, tp, on, off = [], [], [], [], []
            for _ in range(args.repeat):
                ti.append(timed(inspect, env))
                on.append(module_seconds(data))
                tasks = remote_tasks_per_host(data)
                ts.append(timed(setup, env))
                tp.append(timed(playbook, env))
                timed([*inspect[:-1], str(off_vars)], env)  # the same run with the service checks off
                off.append(module_seconds(data))
            module_on, module_off = statistics.median(on), statistics.median(off)
            i, s = statistics.median(ti), statistics.median(ts)
            per_host = sorted(set(tasks.values()))
            print(f"{n:>5} {i:>10.2f} {s:>8.2f} {i / s:>6.2f} {i / n:>15.3f} {s / n:>13.3f} "
                  f"{','.join(map(str, per_host)):>18}")
            print(f"      first run, cold caches: inspect {cold_i:.2f} s vs setup {cold_s:.2f} s "
                  f"-> ratio {cold_i / cold_s:.2f}")
            p = statistics.median(tp)
            print(f"      the same playbook run by ansible-playbook alone: {p:.2f} s ({p / s:.2f} x setup); "
                  f"what the wrapper adds (inventory and variable checks, history, reports): {i - p:.2f} s")
            print(f"      module's own time per host (median of hosts, then of {args.repeat} runs): "
                  f"{module_off:.3f} s with the service checks off, "
                  f"{module_on:.3f} s with them on ({module_on / module_off:.2f}x)")
        print(f"target: ratio <= {TARGET} (inspect beside ansible -m setup, same inventory and forks)")
    finally:
        lab.down(state)
        subprocess.run(["rm", "-rf", str(data)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

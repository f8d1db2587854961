#!/usr/bin/env python3
"""Hardening on a fresh Debian 12 lab host: Lynis before and after, and what it costs.

Brings up one fresh lab host (podman, SSH on 127.0.0.1), installs Debian's
lynis package inside it, and prints:

- the Lynis hardening index (``lynis audit system --quick``) before and after
  ``fleetcare harden`` (target after: >= 85 on a container host);
- the wall time of ``fleetcare harden`` (enforce, then audit);
- the wall time of the audit (``fleetcare audit`` and the bare
  ``ansible-playbook playbooks/audit.yml``) beside ``ansible -m setup`` on the
  same host in the same run, median of --repeat, as a ratio (target <= 1.5);
- the Lynis suggestions left after hardening (``suggestion[]`` of
  /var/log/lynis-report.dat), the list to mine for further controls.

The index rises only by what the catalog's controls really change on the
host; nothing is hidden from Lynis (no Lynis profile, no skipped tests).
The lab host is an unprivileged system container (fleetcare_lab/): its
network sysctls and packet filter are its own and get hardened, while the
kernel-wide sysctls, modules, mounts and auditd belong to this machine and
stay as they are (Lynis still counts them, so they are the points left).
The lab is removed at the end.

    .venv/bin/python benchmarks/hardening.py [--repeat 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
INDEX_TARGET = 85
RATIO_TARGET = 1.5
HOST = "debian12-1"

import fleetcare_lab as lab  # noqa: E402


def lynis(host: str, state: Path) -> tuple[int, list[str]]:
    proc = lab.exec_in(host, ["lynis", "audit", "system", "--quick", "--no-colors"], state_dir=state)
    match = re.search(r"Hardening index\s*:\s*(\d+)", proc.stdout)
    if not match:
        raise SystemExit(f"lynis gave no hardening index (exit {proc.returncode}): {proc.stdout[-800:]}")
    report = lab.exec_in(host, ["cat", "/var/log/lynis-report.dat"], state_dir=state).stdout
    suggestions = [line.split("=", 1)[1] for line in report.splitlines() if line.startswith("suggestion[]=")]
    return int(match.group(1)), suggestions


def run(argv: list[str], env: dict[str, str], ok: tuple[int, ...] = (0, 1)) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        tail = f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        raise SystemExit(f"{' '.join(argv[:3])} exited {proc.returncode}:\n{tail}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each audit/setup command (median)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON document as well")
    parser.add_argument("--enable-disruptive", default="", metavar="IDS",
                        help="comma-separated disruptive controls to switch on (default: none, the role's defaults)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fc-bench-hardening-") as tmp:
        tmp_path = Path(tmp)
        state = tmp_path / "lab"
        control = tmp_path / "cp"
        control.mkdir()
        env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control),
               "XDG_DATA_HOME": str(tmp_path / "data"), "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.timer",
               "ANSIBLE_DEPRECATION_WARNINGS": "false"}
        try:
            inventory = lab.up(1, "12", state_dir=state)
            print(f"lab: 1 fresh Debian 12 host ({HOST}), inventory {inventory}")
            install = lab.exec_in(HOST, ["sh", "-c", "DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
                                         "--no-install-recommends lynis"], state_dir=state)
            if install.returncode != 0:
                raise SystemExit(f"apt-get install lynis failed: {install.stderr[-800:]}")
            before, _ = lynis(HOST, state)
            print(f"lynis hardening index before: {before}")

            fleetcare = [sys.executable, str(ROOT / "runner.py")]
            switches = []
            if args.enable_disruptive:
                ids = [i.strip() for i in args.enable_disruptive.split(",") if i.strip()]
                varsfile = tmp_path / "switches.json"
                varsfile.write_text(json.dumps({"hardening_controls_enable_disruptive": ids}))
                switches = ["--vars-file", str(varsfile)]
                print(f"disruptive controls switched on: {', '.join(ids)}")
            harden_s = run([*fleetcare, "harden", "-i", str(inventory), "-q", *switches], env)
            print(f"fleetcare harden: {harden_s:.1f} s (enforce, then audit)")
            after, suggestions = lynis(HOST, state)
            verdict = "ok" if after >= INDEX_TARGET else f"BELOW target {INDEX_TARGET}"
            print(f"lynis hardening index after: {after} ({after - before:+d}; {verdict})")
            again_s = run([*fleetcare, "harden", "-i", str(inventory), "-q", *switches], env)
            print(f"fleetcare harden, second run (nothing to change): {again_s:.1f} s")

            commands = {
                "setup": [str(BIN / "ansible"), "-i", str(inventory), "all", "-m", "ansible.builtin.setup"],
                "audit playbook": [str(BIN / "ansible-playbook"), "-i", str(inventory), "playbooks/audit.yml",
                                   *(["-e", f"@{switches[1]}"] if switches else [])],
                "fleetcare audit": [*fleetcare, "audit", "-i", str(inventory), "-q", *switches],
            }
            times: dict[str, list[float]] = {name: [] for name in commands}
            run(commands["setup"], env)  # warm the SSH master, as both sides then reuse it
            for _ in range(args.repeat):
                for name, argv in commands.items():
                    times[name].append(run(argv, env))
            medians = {name: statistics.median(values) for name, values in times.items()}
            for name in ("audit playbook", "fleetcare audit"):
                ratio = medians[name] / medians["setup"]
                mark = "ok" if ratio <= RATIO_TARGET else f"ABOVE target {RATIO_TARGET}"
                print(f"{name}: {medians[name]:.2f} s vs ansible -m setup {medians['setup']:.2f} s "
                      f"-> ratio {ratio:.2f} ({mark})")
            print(f"lynis suggestions left after hardening ({len(suggestions)}):")
            for line in suggestions:
                test_id, _, text = line.partition("|")
                print(f"  {test_id:10} {' | '.join(p for p in text.split('|') if p and p != '-')}")
            if args.json:
                print(json.dumps({"lynis_before": before, "lynis_after": after, "harden_s": round(harden_s, 2),
                                  "harden_again_s": round(again_s, 2),
                                  "median_s": {k: round(v, 3) for k, v in medians.items()},
                                  "suggestions": suggestions}, indent=2))
        finally:
            for socket in control.iterdir():
                subprocess.run(["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "lab"], capture_output=True,
                               check=False)
            lab.down(state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
